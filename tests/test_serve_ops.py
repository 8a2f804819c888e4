"""`kiln serve` under load: hot swap, overload, the prediction log, graceful shutdown.

Each test starts its own server with the `kiln` command on a free loopback port and
always stops it.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pandas as pd
import pytest

from serve_helpers import (
    breast_cancer,
    register,
    running,
    server_env,
    set_alias,
    stop,
    train,
)

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench" / "scenarios"))
from loadgen import closed_loop, open_loop  # noqa: E402


def _slow_model(tmp_path: Path) -> str:
    import kiln
    from serve_fns import slow_sum

    example = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    model = kiln.Model.from_function(slow_sum, signature=example, task="regression")
    return model.save(tmp_path / "slow")


async def _load(
    url: str, clients: int, seconds: float, body: Any, ids: str | None = None
) -> list[tuple[int, float, dict[str, str]]]:
    """`clients` closed-loop connections for `seconds`: (status, latency, headers) each."""
    headers = (lambda i, n: {"x-request-id": f"{ids}-{i}-{n}"}) if ids else None
    raw = orjson.dumps(body)
    return await closed_loop(
        url, "/predict", raw, clients=clients, seconds=seconds, headers=headers
    )


def test_hot_swap_under_load_fails_no_request(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    v1 = register(store, train(tmp_path / "m1", C=1.0), "bc")
    v2 = register(store, train(tmp_path / "m2", C=0.01), "bc")
    set_alias(store, "bc", "production", v1)
    X, _ = breast_cancer()
    body = X.iloc[0].to_dict()
    args = ["models:/bc@production", "--reload-interval", "0.2"]
    with running(args, server_env(tmp_path), store=store) as (url, _proc):
        results: list[Any] = []

        def load() -> None:
            results.extend(asyncio.run(_load(url, 8, 4.0, body)))

        worker = threading.Thread(target=load)
        worker.start()
        time.sleep(1.0)
        set_alias(store, "bc", "production", v2)
        worker.join(60)
        assert results
        assert {status for status, _, _ in results} == {200}
        versions = [h["x-kiln-model-version"] for _, _, h in results]
        assert set(versions) == {"1", "2"}
        assert versions[-20:] == ["2"] * 20
        # Rollback: the alias moves back, so does the server.
        set_alias(store, "bc", "production", v1)
        deadline = time.monotonic() + 20
        while httpx.post(f"{url}/predict", json=body).headers["x-kiln-model-version"] != "1":
            assert time.monotonic() < deadline, "the server did not roll back"
            time.sleep(0.1)
        metrics = httpx.get(f"{url}/metrics").text
        assert "kiln_model_swaps_total 2.0" in metrics
        assert 'kiln_model_info{version="1"} 1.0' in metrics


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98]


def test_overload_answers_503_with_retry_after_and_recovers(tmp_path: Path) -> None:
    folder = _slow_model(tmp_path)
    body = {"a": 1.0, "b": 2.0}
    env = server_env(tmp_path, KILN_TEST_SLEEP="0.1")
    args = [folder, "--max-batch", "4", "--max-queue", "8", "--max-wait-ms", "1"]
    with running(args, env) as (url, _proc):
        # Capacity: 4 rows per 100 ms, 40 requests/s. Half load: 20/s; four times: 160/s.
        raw = orjson.dumps(body)
        half = asyncio.run(open_loop(url, "/predict", raw, rate=20, seconds=3.0))
        assert {s for s, _, _ in half} == {200}
        over = asyncio.run(open_loop(url, "/predict", raw, rate=160, seconds=3.0))
        statuses = {s for s, _, _ in over}
        assert statuses == {200, 503}
        for status, _, headers in over:
            if status == 503:
                assert headers["retry-after"] == "1"
        accepted = [t for s, t, _ in over if s == 200]
        assert _p99(accepted) <= 5 * _p99([t for _, t, _ in half])
        start = time.monotonic()
        while httpx.post(f"{url}/predict", json=body).status_code != 200:
            time.sleep(0.05)
        assert time.monotonic() - start < 2.0
        metrics = httpx.get(f"{url}/metrics").text
        assert 'kiln_errors_total{kind="TEMPORARILY_UNAVAILABLE"}' in metrics


def test_prediction_log_holds_exactly_the_sampled_requests(tmp_path: Path) -> None:
    import kiln
    from kiln.serving import in_sample

    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    folder = train(tmp_path / "m1")
    version = register(store, folder, "bc")
    set_alias(store, "bc", "production", version)
    X, _ = breast_cancer()
    body = X.iloc[0].to_dict()
    uri = "models:/bc@production"
    args = [uri, "--log-rate", "0.1", "--log-flush", "0.2"]
    before = pd.Timestamp.now(tz="UTC")
    with running(args, server_env(tmp_path), store=store) as (url, proc):
        results = asyncio.run(_load(url, 8, 3.0, body, ids="load"))
        time.sleep(0.5)  # at least one chunk is written while serving
        assert stop(proc) == 0
    sent = [h["x-request-id"] for s, _, h in results if s == 200]
    assert len(sent) == len(results) > 100
    expected = {rid for rid in sent if in_sample(rid, 0.1)}
    log = kiln.prediction_log(uri, store=store)
    assert set(log["kiln_request_id"]) == expected
    assert len(log) == len(expected)
    assert set(log["kiln_model_version"]) == {"1"}
    assert list(log.columns[4:]) == list(X.columns)
    assert (log["mean radius"] == body["mean radius"]).all()
    assert (log["kiln_time"] >= before.floor("ms")).all()
    assert kiln.prediction_log(uri, since=pd.Timestamp.now(tz="UTC").isoformat(), store=store).empty
    assert kiln.prediction_log("models:/other@production", store=store).empty


def test_graceful_shutdown_finishes_in_flight_requests_and_flushes_the_log(
    tmp_path: Path,
) -> None:
    import kiln

    folder = _slow_model(tmp_path)
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    env = server_env(tmp_path, KILN_TEST_SLEEP="1.0")
    args = [folder, "--log-rate", "1", "--log-flush", "60", "--max-batch", "1"]
    with running(args, env, store=store) as (url, proc):
        answers: list[int] = []

        def call(i: int) -> None:
            r = httpx.post(
                f"{url}/predict", json={"a": 1.0, "b": float(i)}, headers={"x-request-id": f"g{i}"}
            )
            answers.append(r.status_code)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while "kiln_queue_depth 2.0" not in httpx.get(f"{url}/metrics").text:
            assert time.monotonic() < deadline, "the requests did not arrive"
            time.sleep(0.02)
        assert stop(proc) == 0  # one request is being predicted, two wait in the queue
        for t in threads:
            t.join(30)
    assert answers == [200, 200, 200]
    log = kiln.prediction_log(folder, store=store)
    assert sorted(log["kiln_request_id"]) == ["g0", "g1", "g2"]
    assert sorted(log["kiln_prediction"]) == [1.0, 2.0, 3.0]


def test_several_workers_serve(tmp_path: Path) -> None:
    folder = train(tmp_path / "m")
    X, _ = breast_cancer()
    with running([folder, "--workers", "2"], server_env(tmp_path)) as (url, _proc):
        results = asyncio.run(_load(url, 4, 1.0, X.iloc[0].to_dict()))
        assert results
        assert {s for s, _, _ in results} == {200}
