"""schemathesis against the server's own OpenAPI document: no request gets a 5xx.

Every operation (kiln's own, MLflow's and the Open Inference Protocol's V2 endpoints) is
driven with bodies that follow the schema and with bodies that break it (wrong types,
missing fields), each with fuzzed headers (Authorization, Content-Type, x-request-id,
any others, non-ASCII included). Every 4xx it provokes has the one error shape.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from serve_helpers import child_env, running, train

pytestmark = pytest.mark.slow

ERROR_KEYS = {"error", "error_code", "message", "errors", "request_id"}
TOKEN = "s3cret"

# Header values as latin-1 text: what HTTP carries, non-ASCII bytes included.
_value = st.text(st.characters(min_codepoint=32, max_codepoint=255, exclude_characters="\x7f")).map(
    lambda v: v.strip(" \t")
)
_headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.one_of(
            _value, _value.map(lambda v: f"Bearer {v}"), st.just(f"Bearer {TOKEN}")
        ),
        "Content-Type": st.one_of(
            _value,
            st.sampled_from(
                ["application/json", "application/json; charset=utf-8", "text/csv", ""]
            ),
        ),
        "x-request-id": _value,
        "Accept": _value,
        "X-Anything": _value,
    },
)


def _drain(stream: Any, into: collections.deque[bytes]) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed once the server is stopped
        into.extend(iter(stream.readline, b""))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root: Path = tmp_path_factory.mktemp("schema")
    folder = train(root / "model")
    env = child_env(
        {k: v for k, v in os.environ.items() if k != "KILN_STORE"},
        KILN_HOME=str(root / "home"),
        KILN_CAPTURE_PACKAGES="0",
    )
    with running([folder, "--validation", "strict", "--token", TOKEN], env) as (url, proc):
        # Read the server's output as it comes: a 5xx logs a traceback, and hypothesis
        # repeats a failing case while shrinking it; a full pipe would block the server
        # and turn the failure into read timeouts. The last lines stay for the report.
        tail: collections.deque[bytes] = collections.deque(maxlen=200)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            threading.Thread(target=_drain, args=(stream, tail), daemon=True).start()
        yield url


def _operations(server: str) -> list[Any]:
    api = schemathesis.openapi.from_url(
        f"{server}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return [result.ok() for result in api.get_all_operations()]


def test_the_document_covers_the_v2_endpoints(server: str) -> None:
    paths = {op.path for op in _operations(server)}
    assert {
        "/v2",
        "/v2/models/{name}",
        "/v2/models/{name}/ready",
        "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}/infer",
    } <= paths


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(server: str, mode: GenerationMode) -> None:
    # schemathesis' pytest plugin does not load under this pytest; drive it through
    # hypothesis directly, one strategy per operation of the document.
    operations = _operations(server)
    assert len(operations) >= 12
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and operation.method.upper() != "POST":
            continue  # only bodies can break the schema (path parameters are text anyway)

        @given(case=operation.as_strategy(generation_mode=mode), headers=_headers)
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: Any, headers: dict[str, str]) -> None:
            if "Authorization" not in headers:
                headers = {**headers, "Authorization": f"Bearer {TOKEN}"}
            sent = {**(case.headers or {}), **headers}
            encoded = {k: v.encode("latin-1") for k, v in sent.items()}
            response = case.call(base_url=server, timeout=30, headers=encoded)
            where = (mode.value, case.method, case.path, sent, response.text[:500])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert set(response.json()) == ERROR_KEYS, where

        check()
