"""schemathesis against the server's own OpenAPI document: no request gets a 5xx.

Also checks that every 4xx it provokes has the one error shape.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from serve_helpers import child_env, running, train

pytestmark = pytest.mark.slow

ERROR_KEYS = {"error", "error_code", "message", "errors", "request_id"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("schema")
    folder = train(root / "model")
    env = child_env(
        {k: v for k, v in os.environ.items() if k != "KILN_STORE"},
        KILN_HOME=str(root / "home"),
        KILN_CAPTURE_PACKAGES="0",
    )
    with running([folder, "--validation", "strict"], env) as (url, _proc):
        yield url


def test_no_request_gets_a_server_error(server: str) -> None:
    # schemathesis' pytest plugin does not load under this pytest; drive it through
    # hypothesis directly, one strategy per operation of the document.
    api = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            response = case.call(base_url=server, timeout=30)
            assert response.status_code < 500, (case.path, response.text[:500])
            if response.status_code >= 400:
                assert set(response.json()) == ERROR_KEYS

        check()
