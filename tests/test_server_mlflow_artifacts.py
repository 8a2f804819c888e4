"""`kiln server` serves MLflow's artifact API: the real `mlflow` client logs, lists and
downloads artifacts through a real server on loopback (SQLite and PostgreSQL stores),
and they are kiln's own checked, content-addressed artifacts of the run."""

from __future__ import annotations

import hashlib
import http.client
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from serve_helpers import KILN, server_env, serving

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from kiln.tracking import TrackingClient  # noqa: E402
from test_server_mlflow import _point_mlflow_at, mlflow_at  # noqa: E402, F401
from test_server_users import Team, team  # noqa: E402, F401

ART = "/api/2.0/mlflow-artifacts/artifacts"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _raw(url: str, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
    """A request whose path goes out byte for byte (no client normalizes `..` away)."""
    import json

    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, path, body=body)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, json.loads(data) if data else None
    finally:
        conn.close()


def test_mlflow_logs_lists_and_downloads_artifacts(
    mlflow_at: str,  # noqa: F811
    store_url: str,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "out"
    (folder / "plots").mkdir(parents=True)
    (folder / "summary.csv").write_text("a,b\n1,2\n")
    (folder / "plots" / "raw.bin").write_bytes(bytes(range(256)) * 40)
    single = tmp_path / "notes.md"
    single.write_text("# notes\n")
    mlflow.set_experiment("arts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(single))
        mlflow.log_artifacts(str(folder), "report")
        mlflow.log_dict({"depth": 3}, "config/params.json")
        mlflow.log_text("héllo", "text/hello.txt")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            plt = None
        if plt is not None:
            fig = plt.figure()
            plt.plot([1, 2, 3])
            mlflow.log_figure(fig, "figs/line.png")
            plt.close(fig)
    run_id = run.info.run_id

    client = MlflowClient()
    root = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    sub = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id, "report")}
    got_file = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.md"))
    got_dir = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path="report", dst_path=str(tmp_path / "dl")
        )
    )
    listed = MlflowClient().get_run(run_id).info.artifact_uri

    assert listed.startswith(f"mlflow-artifacts:/{run.info.experiment_id}/{run_id}/artifacts")
    assert {("notes.md", False, 8), ("report", True, None), ("config", True, None)} <= root
    assert ("text", True, None) in root
    assert sub == {("report/summary.csv", False, 8), ("report/plots", True, None)}
    assert got_file.read_bytes() == single.read_bytes()
    assert _tree(got_dir) == _tree(folder)

    kiln_run = TrackingClient(store_url).get_run(run_id)
    by_path = {a.path: a for a in kiln_run.artifacts}
    expected = {
        "notes.md": single.read_bytes(),
        "report/summary.csv": (folder / "summary.csv").read_bytes(),
        "report/plots/raw.bin": (folder / "plots" / "raw.bin").read_bytes(),
        "text/hello.txt": "héllo".encode(),
    }
    for path, data in expected.items():
        assert by_path[path].sha256 == hashlib.sha256(data).hexdigest()
        assert by_path[path].size == len(data)
        assert TrackingClient(store_url).read_artifact(run_id, path) == data
    assert '"depth": 3' in TrackingClient(store_url).read_artifact(
        run_id, "config/params.json"
    ).decode("utf-8")
    if "figs/line.png" in by_path:
        png = TrackingClient(store_url).read_artifact(run_id, "figs/line.png")
        assert png.startswith(b"\x89PNG")


def test_the_tracking_api_lists_artifacts_and_kiln_logged_ones_read_in_mlflow(
    mlflow_at: str,  # noqa: F811
    store_url: str,
    tmp_path: Path,
) -> None:
    kiln = TrackingClient(store_url)
    run_id = kiln.create_run(experiment="from-kiln")
    kiln.log_artifact(run_id, {"k": 1}, name="cfg/a.json")
    kiln.log_text(run_id, "txt", name="b.txt")
    kiln.end_run(run_id)
    kiln.flush()

    listing = httpx.get(
        f"{mlflow_at}/api/2.0/mlflow/artifacts/list",
        params={"run_id": run_id, "path": "cfg"},
        timeout=30,
    )
    root = httpx.get(
        f"{mlflow_at}/api/2.0/mlflow/artifacts/list", params={"run_id": run_id}, timeout=30
    )
    got = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="b.txt"))

    assert listing.status_code == 200, listing.text
    assert listing.json()["files"] == [{"path": "cfg/a.json", "is_dir": False, "file_size": 12}]
    assert listing.json()["root_uri"].endswith(f"/{run_id}/artifacts")
    assert root.json()["files"] == [
        {"path": "b.txt", "is_dir": False, "file_size": 3},
        {"path": "cfg", "is_dir": True},
    ]
    assert got.read_text() == "txt"


def test_paths_that_escape_the_run_are_400_and_write_nothing(
    mlflow_at: str,  # noqa: F811
    store_url: str,
    tmp_path: Path,
) -> None:
    kiln = TrackingClient(store_url)
    run_id = kiln.create_run(experiment="safe")
    kiln.flush()
    exp = MlflowClient().get_run(run_id).info.experiment_id
    base = f"{ART}/{exp}/{run_id}/artifacts"
    attempts = [
        f"{base}/../../evil.txt",
        f"{base}/%2e%2e/%2e%2e/evil.txt",
        f"{base}/a/..%2f..%2fevil.txt",
        f"{ART}//tmp/evil.txt",
        f"{ART}/{exp}/{run_id}/../evil.txt",
        f"{base}/a%00b.txt",
        f"{base}/./evil.txt",
    ]
    answers = [_raw(mlflow_at, "PUT", p, b"pwned") for p in attempts]
    reads = [
        _raw(mlflow_at, "GET", f"{base}/%2e%2e/%2e%2e/{run_id}/artifacts/x"),
        _raw(mlflow_at, "GET", f"{ART}?path={exp}/{run_id}/artifacts/..%2f..%2f"),
        _raw(mlflow_at, "GET", f"/api/2.0/mlflow/artifacts/list?run_id={run_id}&path=../x"),
    ]
    unknown = _raw(mlflow_at, "PUT", f"{ART}/{exp}/{'f' * 32}/artifacts/x.txt", b"x")
    missing = _raw(mlflow_at, "GET", f"{base}/nothing.txt")

    for status, body in [*answers, *reads]:
        assert status == 400, body
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
    assert unknown[0] == missing[0] == 404
    assert unknown[1]["error_code"] == missing[1]["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert kiln.get_run(run_id).artifacts == []
    assert not list(tmp_path.rglob("evil.txt"))
    assert not Path("/tmp/evil.txt").exists()


def test_an_upload_over_the_limit_is_413_and_stores_nothing(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = server_env(tmp_path, KILN_MAX_ARTIFACT_SIZE="1000")
    with serving([KILN, "--store", store_url, "server"], env) as (url, _proc):
        _point_mlflow_at(url, monkeypatch)
        kiln = TrackingClient(store_url)
        run_id = kiln.create_run(experiment="big")
        kiln.flush()
        base = f"{ART}/{MlflowClient().get_run(run_id).info.experiment_id}/{run_id}/artifacts"
        small = _raw(url, "PUT", f"{base}/small.bin", b"s" * 1000)
        big = _raw(url, "PUT", f"{base}/big.bin", b"b" * 5000)

    assert small[0] == 200
    assert big[0] == 413
    assert big[1]["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "max-artifact-size" in big[1]["message"]
    assert [a.path for a in kiln.get_run(run_id).artifacts] == ["small.bin"]


def test_health_answers_during_a_slow_upload(
    mlflow_at: str,  # noqa: F811
    store_url: str,
) -> None:
    kiln = TrackingClient(store_url)
    run_id = kiln.create_run(experiment="slow")
    kiln.flush()
    exp = MlflowClient().get_run(run_id).info.experiment_id
    u = urlparse(mlflow_at)
    total = 64 * 1024
    with socket.create_connection((u.hostname, u.port), timeout=30) as sock:
        head = (
            f"PUT {ART}/{exp}/{run_id}/artifacts/slow.bin HTTP/1.1\r\n"
            f"Host: {u.hostname}\r\nContent-Length: {total}\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 1024)
        started = time.monotonic()
        health = httpx.get(f"{mlflow_at}/health", timeout=10)
        took = time.monotonic() - started
        sock.sendall(b"x" * (total - 1024))
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(4096)

    assert health.status_code == 200
    assert took < 2.0
    assert answer.startswith(b"HTTP/1.1 200")
    stored = {a.path: a for a in kiln.get_run(run_id).artifacts}
    assert stored["slow.bin"].sha256 == hashlib.sha256(b"x" * total).hexdigest()


def test_a_viewer_downloads_but_cannot_upload(team: Team, tmp_path: Path) -> None:  # noqa: F811
    from mlflow.exceptions import MlflowException
    from requests import HTTPError

    root = team.as_("root")
    experiment_id = root.create_experiment("shared")
    run = root.create_run(experiment_id)
    src = tmp_path / "model.txt"
    src.write_text("weights")
    root.log_artifact(run.info.run_id, str(src))

    vic = team.as_("vic")
    got = Path(vic.download_artifacts(run.info.run_id, "model.txt", str(tmp_path / "dl")))
    listed = [f.path for f in vic.list_artifacts(run.info.run_id)]
    other = tmp_path / "other.txt"
    other.write_text("nope")
    with pytest.raises((MlflowException, HTTPError)) as denied:
        vic.log_artifact(run.info.run_id, str(other))

    assert got.read_text() == "weights"
    assert listed == ["model.txt"]
    assert "403" in str(denied.value) or "PERMISSION_DENIED" in str(denied.value)
    assert [a.path for a in TrackingClient(team.store).get_run(run.info.run_id).artifacts] == [
        "model.txt"
    ]


def test_logged_models_say_what_to_do_instead(mlflow_at: str) -> None:  # noqa: F811
    answer = httpx.post(f"{mlflow_at}/api/2.0/mlflow/logged-models", json={}, timeout=30)

    assert answer.status_code == 501
    assert "mlflow.log_artifacts" in answer.json()["message"]
    assert "kiln" in answer.json()["message"]
