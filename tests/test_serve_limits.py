"""`kiln serve` against slow, half-open and abusive clients: timeouts, the connection cap,
large bodies off the event loop, and what reaches the log.

Each test starts its own server with the `kiln` command on a free loopback port, talks to
it over raw sockets where HTTP clients would be too polite, and always stops it.
"""

from __future__ import annotations

import json
import selectors
import socket
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

from serve_helpers import KILN, breast_cancer, running, server_env, stop, train, wait_for_port

pytestmark = pytest.mark.slow

ERROR_KEYS = {"error", "error_code", "message", "errors", "request_id"}
PARTIAL = b"POST /predict HTTP/1.1\r\nHost: kiln\r\nContent-Type: application/json\r\n"


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train(tmp_path_factory.mktemp("limits") / "model")


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _connect(url: str) -> socket.socket:
    return socket.create_connection(_address(url), timeout=10)


def _until_closed(socks: list[socket.socket], seconds: float) -> dict[socket.socket, bytes]:
    """Read every socket until the server closes it or `seconds` pass: what each got, for
    the closed ones."""
    got: dict[socket.socket, bytes] = dict.fromkeys(socks, b"")
    closed: dict[socket.socket, bytes] = {}
    with selectors.DefaultSelector() as sel:
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + seconds
        while len(closed) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=0.1):
                s = key.fileobj
                assert isinstance(s, socket.socket)
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if chunk:
                    got[s] += chunk
                else:
                    closed[s] = got[s]
                    sel.unregister(s)
    return closed


def _json_error(raw: bytes, status: int, code: str) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), raw[:300]
    assert b"content-type: application/json" in head.lower()
    data = json.loads(body)
    assert set(data) == ERROR_KEYS
    assert data["error_code"] == code
    return data


def _record() -> dict[str, Any]:
    X, _ = breast_cancer()
    return X.iloc[0].to_dict()


def _stop_and_read(proc: Any) -> str:
    """Stop the server and return what it wrote to stderr."""
    import signal

    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=30)
    return err.decode(errors="replace")


# ----------------------------------------------------------------- timeouts


def test_half_sent_requests_are_answered_408_and_closed(tmp_path: Path, model: str) -> None:
    args = [model, "--header-timeout", "1"]
    with running(args, server_env(tmp_path)) as (url, proc):
        socks = [_connect(url) for _ in range(200)]
        try:
            for s in socks:
                s.sendall(PARTIAL)
            start = time.monotonic()
            closed = _until_closed(socks, 15)
            assert len(closed) == 200, f"{200 - len(closed)} half-sent requests still open"
            assert time.monotonic() - start < 10
            data = _json_error(next(iter(closed.values())), 408, "REQUEST_TIMEOUT")
            assert "headers did not arrive within 1 seconds" in data["message"]
            # A connection that sends nothing at all is closed too, without an answer.
            idle = _connect(url)
            assert list(_until_closed([idle], 10).values()) == [b""]
            idle.close()
            assert httpx.post(f"{url}/predict", json=_record()).status_code == 200
        finally:
            for s in socks:
                s.close()
        log = _stop_and_read(proc)
    assert "Traceback" not in log


def test_one_byte_at_a_time_does_not_keep_a_request_alive(tmp_path: Path, model: str) -> None:
    args = [model, "--header-timeout", "1", "--body-timeout", "1"]
    with running(args, server_env(tmp_path)) as (url, proc):
        for what in ("headers", "body"):
            sock = _connect(url)
            try:
                if what == "body":
                    sock.sendall(PARTIAL + b"Content-Length: 1000\r\n\r\n")
                    trickle = b"[" + b"1," * 100
                else:
                    trickle = PARTIAL + b"X-Slow: " + b"a" * 100
                start = time.monotonic()
                sent = b""
                sock.settimeout(0.25)
                for byte in trickle:  # one byte every 0.25 s: never idle for long
                    try:
                        sock.sendall(bytes([byte]))
                    except (BrokenPipeError, ConnectionResetError):
                        break
                    try:
                        sent = sock.recv(65536)
                    except TimeoutError:
                        continue
                    break
                elapsed = time.monotonic() - start
                assert sent, f"a {what} trickle kept the request open for {elapsed:.1f} s"
                assert elapsed < 5
                data = _json_error(sent, 408, "REQUEST_TIMEOUT")
                assert f"request {what} did not arrive within 1 seconds" in data["message"]
            finally:
                sock.close()
        log = _stop_and_read(proc)
    assert "Traceback" not in log
    assert "did not arrive within 1 s" in log


def test_a_body_trickling_after_an_early_answer_gets_only_that_answer(
    tmp_path: Path, model: str
) -> None:
    args = [model, "--body-timeout", "1", "--max-body", "1000"]
    with running(args, server_env(tmp_path)) as (url, _proc):
        sock = _connect(url)
        try:  # 413 from Content-Length at once; the body keeps trickling in
            sock.sendall(PARTIAL + b"Content-Length: 5000\r\n\r\n[")
            sock.settimeout(0.2)
            raw = b""
            start = time.monotonic()
            while time.monotonic() - start < 5:
                try:
                    sock.sendall(b"1,")
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
                if not chunk:
                    break
                raw += chunk
            assert time.monotonic() - start < 4, "the trickle was not cut off"
            data = _json_error(raw, 413, "REQUEST_TOO_LARGE")
            assert "the limit is 1000" in data["message"]
            assert b"408" not in raw
        finally:
            sock.close()


def test_several_workers_apply_the_same_limits(tmp_path: Path, model: str) -> None:
    args = [model, "--workers", "2", "--header-timeout", "1"]
    with running(args, server_env(tmp_path)) as (url, _proc):
        socks = [_connect(url) for _ in range(4)]  # spread over both workers
        try:
            for s in socks:
                s.sendall(PARTIAL)
            closed = _until_closed(socks, 10)
            assert len(closed) == 4
            for raw in closed.values():
                _json_error(raw, 408, "REQUEST_TIMEOUT")
        finally:
            for s in socks:
                s.close()


def test_an_idle_kept_alive_connection_is_closed(tmp_path: Path, model: str) -> None:
    args = [model, "--keepalive-timeout", "0.5"]
    with running(args, server_env(tmp_path)) as (url, _proc):
        sock = _connect(url)
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: kiln\r\n\r\n")
            time.sleep(0.1)
            start = time.monotonic()
            closed = _until_closed([sock], 10)
            assert len(closed) == 1
            assert b"HTTP/1.1 200" in next(iter(closed.values()))
            assert time.monotonic() - start < 3
        finally:
            sock.close()


def test_bad_limits_are_refused_with_the_option_named(tmp_path: Path, model: str) -> None:
    import subprocess

    from kiln._exceptions import ConfigurationError
    from kiln.serving import ServeConfig

    proc = subprocess.run(
        [KILN, "serve", model, "--header-timeout", "0", "--port", "1"],
        env=server_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--header-timeout" in proc.stderr
    with pytest.raises(ConfigurationError, match="max_connections must be a positive number"):
        ServeConfig(max_connections=0).limits()


# ------------------------------------------------------------ connection cap

_LIMIT_FILES = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def test_half_open_connections_cannot_exhaust_file_descriptors(tmp_path: Path, model: str) -> None:
    # The server may open 256 files; 400 half-open requests would take them all. The
    # header timeout is long, so only the connection cap keeps it answering.
    args = [model, "--header-timeout", "60"]
    prefix = [sys.executable, "-c", _LIMIT_FILES]
    with running(args, server_env(tmp_path), prefix=prefix) as (url, proc):
        socks: list[socket.socket] = []
        try:
            for _ in range(400):
                s = _connect(url)
                s.sendall(PARTIAL)
                socks.append(s)
            time.sleep(0.5)
            with httpx.Client(base_url=url, timeout=10) as client:
                for _ in range(3):
                    assert client.get("/health").status_code == 200
                    r = client.post("/predict", json=_record())
                    assert r.status_code == 200, r.text
            closed = _until_closed(socks, 2)
            assert len(closed) >= 400 - 256, "the oldest half-open connections make room"
            refused = [raw for raw in closed.values() if raw]
            assert refused, "half-sent requests closed to make room are told why"
            _json_error(refused[0], 503, "TEMPORARILY_UNAVAILABLE")
        finally:
            for s in socks:
                s.close()
        log = _stop_and_read(proc)
    assert "the open-file limit is lower" in log
    assert "Traceback" not in log


# ---------------------------------------------------------- large bodies


def _columns(rows: int) -> bytes:
    X, _ = breast_cancer()
    big = pd.concat([X] * (rows // len(X) + 1), ignore_index=True).iloc[:rows]
    return orjson.dumps(big.to_dict(orient="list"))


_SENDER = """
import socket, sys, time
host, port, path, seconds = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
body = open(path, "rb").read()
head = b"POST /predict HTTP/1.1\\r\\nHost: kiln\\r\\nContent-Type: application/json\\r\\n"
request = head + b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body
stop = time.monotonic() + seconds
while time.monotonic() < stop:
    with socket.create_connection((host, port), timeout=30) as s:
        try:
            s.sendall(request)
        except OSError:
            pass
        print(s.recv(65536)[:12].decode(), flush=True)
"""


def test_health_answers_fast_while_large_bodies_arrive(tmp_path: Path, model: str) -> None:
    import subprocess

    big = tmp_path / "big.json"  # 9 MB: refused by size (the default limit is 1 MiB)
    big.write_bytes(_columns(45_000))
    near = tmp_path / "near.json"  # just under 1 MiB: parsed and validated off the loop
    near.write_bytes(_columns(4_500))
    assert big.stat().st_size > 9 * 10**6
    assert 0.8 * 2**20 < near.stat().st_size < 2**20
    with running([model], server_env(tmp_path)) as (url, _proc):
        host, port = _address(url)
        senders = [  # four clients in their own processes, sending as fast as they can
            subprocess.Popen(
                [sys.executable, "-c", _SENDER, host, str(port), str(body), "5"],
                stdout=subprocess.PIPE,
                text=True,
            )
            for body in (big, big, near, near)
        ]
        latencies: list[float] = []
        try:
            time.sleep(0.5)
            stop_at = time.monotonic() + 4
            with httpx.Client(base_url=url, timeout=10) as client:
                while time.monotonic() < stop_at:
                    start = time.perf_counter()
                    assert client.get("/health").status_code == 200
                    latencies.append(time.perf_counter() - start)
                    time.sleep(0.01)
        finally:
            answers = [p.communicate(timeout=60)[0].split() for p in senders]
    assert all("413" in lines for lines in answers[:2]), answers[:2]
    assert all("200" in lines for lines in answers[2:]), answers[2:]
    # Parsing on the event loop stalled every probe (p50 and p99 ~0.8-1 s: four or five
    # probes in 4 s). The aim is a p99 under 50 ms (measured in bench/); on a shared
    # two-core machine under load scheduling noise alone reaches that and more in the last
    # percent, so the test holds the median and the 90th percentile, which a stall of the
    # loop moves as much as the tail, and which noise does not.
    assert len(latencies) > 20, f"only {len(latencies)} probes answered in 4 s"
    median = statistics.median(latencies)
    p90 = statistics.quantiles(latencies, n=10)[-1]
    assert median < 0.05, f"health p50 {median * 1000:.0f} ms"
    assert p90 < 0.25, f"health p90 {p90 * 1000:.0f} ms"


# ------------------------------------------------------------------- the log


def test_a_client_leaving_mid_body_is_one_log_line(tmp_path: Path, model: str) -> None:
    with running([model], server_env(tmp_path)) as (url, proc):
        sock = _connect(url)
        sock.sendall(PARTIAL + b"Content-Length: 5000\r\n\r\n" + b"[1," * 100)
        time.sleep(0.3)
        sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{url}/health").status_code == 200
        log = _stop_and_read(proc)
    lines = [line for line in log.splitlines() if "disconnected" in line]
    assert len(lines) == 1, log
    assert "Traceback" not in log


def test_serving_is_printed_only_once_the_model_is_loaded(tmp_path: Path, model: str) -> None:
    import subprocess

    env = server_env(tmp_path)
    bad = subprocess.run(
        [KILN, "serve", str(tmp_path / "no-such-model"), "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0
    assert "Serving" not in bad.stderr
    proc = subprocess.Popen(
        [KILN, "serve", model, "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        line = _line_with(proc.stderr, "Serving", 120)
        url = line.split(" on ", 1)[1].split(" ", 1)[0]
        assert not url.endswith(":0")
        r = httpx.get(f"{url}/ready", timeout=5)  # printed once ready: no retry needed
        assert r.status_code == 200
    finally:
        stop(proc)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_port_0_writes_the_bound_port_to_the_port_file(
    tmp_path: Path, model: str, workers: str
) -> None:
    import subprocess

    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [KILN, "serve", model, "--port", "0", "--port-file", str(port_file), "--workers", workers],
        env=server_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        line = _line_with(proc.stderr, "Serving", 120)
        port = wait_for_port(proc, port_file, 10)  # written before the line is printed
        assert port > 0
        assert port_file.read_text(encoding="utf-8") == f"{port}\n"
        assert line.split(" on ", 1)[1].startswith(f"http://127.0.0.1:{port} ")
        deadline = time.monotonic() + 60
        while True:  # with several workers the parent writes it once bound: poll /ready
            try:
                if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready"
            time.sleep(0.05)
    finally:
        assert stop(proc) == 0


def test_a_port_in_use_is_one_clear_error_before_the_model_loads(
    tmp_path: Path, model: str
) -> None:
    import socket
    import subprocess

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [KILN, "serve", model, "--port", str(port)],
            env=server_env(tmp_path), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"Error: Port {port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port 0 takes a free one" in done.stderr
    assert "Serving" not in done.stderr
    assert "Errno" not in done.stderr


def _line_with(stream: Any, needle: str, seconds: float) -> str:
    found: list[str] = []

    def read() -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace")
            if needle in line:
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(seconds)
    assert found, f"no line with {needle!r} within {seconds} s"
    return found[0]


def test_infinite_predictions_are_reported_not_silently_null(tmp_path: Path) -> None:
    import kiln
    from serve_fns import infinite_when_negative

    example = pd.DataFrame({"a": [1.0, 2.0]})
    model = kiln.Model.from_function(infinite_when_negative, signature=example, task="regression")
    folder = model.save(tmp_path / "inf")
    with running([folder], server_env(tmp_path)) as (url, _proc):
        r = httpx.post(f"{url}/predict", json={"a": [1.0, -1.0, 2.0]})
        assert r.status_code == 200, r.text
        data = r.json()
        assert data["predictions"] == [1.0, None, 2.0]
        (warning,) = [w for w in data["warnings"] if w["problem"] == "non_finite_output"]
        assert warning["problem"] == "non_finite_output"
        assert warning["rows"] == [1]
        assert "inf" in warning["message"]
        assert "sent as null" in warning["message"]
        tensor = {"name": "a", "shape": [2], "datatype": "FP64", "data": [-1.0, 3.0]}
        v2 = httpx.post(f"{url}/v2/models/model/infer", json={"inputs": [tensor]}).json()
        assert v2["outputs"][0]["data"] == [None, 3.0]
        assert "sent as null" in v2["parameters"]["warnings"]
        clean = httpx.post(f"{url}/predict", json={"a": [1.0]}).json()
        assert "non_finite_output" not in json.dumps(clean)
