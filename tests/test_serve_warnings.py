"""`kiln serve` prints each distinct warning once, never a flood.

scikit-learn wraps every joblib task in `warnings.catch_warnings()`, which swaps the
process-global filters; threads doing so at once (joblib's threads, the batcher's
thread, the event loop parsing a CSV body) can leave the filters empty, and a
RandomForest then warned "`sklearn.utils.parallel.delayed` should be used with ..."
once per tree per request: thousands of lines.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from serve_helpers import running, server_env

COLUMNS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]

# `kiln ARGS` in this interpreter, switching threads every 10 µs instead of 5 ms, so
# that threads interleave inside each other's catch_warnings in a few hundred requests.
_EAGER_SWITCHES = (
    "import sys; sys.setswitchinterval(1e-5); sys.argv = sys.argv[1:]; "
    "from kiln.cli import main; main()"
)


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    import kiln

    X, y = load_iris(return_X_y=True, as_frame=True)
    rf = RandomForestClassifier(n_estimators=50, n_jobs=-1, random_state=0)
    return kiln.Model(rf).fit(X, y).save(tmp_path_factory.mktemp("serve-warn") / "rf")


@contextlib.contextmanager
def _server(
    args: list[str], tmp_path: Path, prefix: list[str] | None = None
) -> Iterator[tuple[str, list[str]]]:
    """`kiln serve ARGS`; yields (URL, its stderr's warning lines, complete once stopped)."""
    lines: list[str] = []
    with running(args, server_env(tmp_path), prefix=prefix) as (url, proc):
        # Read stderr as it comes: a flood would fill the pipe and stall the server.
        assert proc.stderr is not None
        chunks: list[bytes] = []
        reader = threading.Thread(target=lambda: chunks.extend(iter(proc.stderr.readline, b"")))
        reader.start()
        try:
            yield url, lines
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
            reader.join(10)
        text = b"".join(chunks).decode(errors="replace")
        lines.extend(line for line in text.splitlines() if "Warning:" in line)


def _request(client: httpx.Client, i: int) -> int:
    if i % 2:
        body = (",".join(COLUMNS) + "\n5.1,3.5,1.4,0.2\n").encode()
        r = client.post("/invocations", content=body, headers={"content-type": "text/csv"})
    else:
        r = client.post("/predict", json=dict.fromkeys(COLUMNS, 5.0))
    return r.status_code


def test_concurrent_requests_print_each_warning_once(tmp_path: Path, forest: str) -> None:
    prefix = [sys.executable, "-c", _EAGER_SWITCHES]
    # Four joblib threads per predict, one predict per request: many racing threads.
    args = [forest, "--model-threads", "4", "--max-batch", "1"]
    with _server(args, tmp_path, prefix) as (url, lines):
        limits = httpx.Limits(max_connections=16)
        with (
            httpx.Client(base_url=url, timeout=30, limits=limits) as client,
            concurrent.futures.ThreadPoolExecutor(16) as pool,
        ):
            codes = list(pool.map(lambda i: _request(client, i), range(300)))
            assert _request(client, 1) == 200, "the server still answers after the load"
    assert codes.count(200) == len(codes), {c: codes.count(c) for c in set(codes)}
    assert len(lines) <= 3, f"{len(lines)} warning lines, e.g. {lines[:2]}"


def test_a_warning_the_model_gives_on_every_call_is_shown_once(tmp_path: Path) -> None:
    import kiln
    from serve_fns import warns_each_call

    example = pd.DataFrame({"a": [1.0, 2.0]})
    model = kiln.Model.from_function(warns_each_call, signature=example, task="regression")
    folder = model.save(tmp_path / "warns")
    with _server([folder], tmp_path) as (url, lines), httpx.Client(base_url=url) as client:
        for i in range(50):
            r = client.post("/predict", json={"a": [float(i)]})
            assert r.status_code == 200, r.text
    assert len(lines) == 1, lines[:3]
    assert "warns_each_call warns on every call" in lines[0]


def test_a_csv_row_longer_than_the_header_is_still_refused(tmp_path: Path, forest: str) -> None:
    header = ",".join(COLUMNS)
    with _server([forest], tmp_path) as (url, lines), httpx.Client(base_url=url) as client:
        csv = {"content-type": "text/csv"}
        for body in (f"{header}\n1,2,3,4,5\n", f"{header}\n1,2,3,4\n1,2,3,4,5\n"):
            r = client.post("/invocations", content=body, headers=csv)
            assert r.status_code == 400, r.text
            assert "not CSV that can be read as a table" in r.json()["message"]
        ok = client.post("/invocations", content=f"{header}\n1,2,3,4\n", headers=csv)
        assert ok.status_code == 200, ok.text
    assert lines == []
