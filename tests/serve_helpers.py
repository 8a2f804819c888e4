"""Helpers for the serving tests: a trained model in a store, and real servers on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

KILN = str(Path(sys.executable).with_name("kiln"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def breast_cancer() -> tuple[Any, Any]:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer(return_X_y=True, as_frame=True)


def train(folder: Path, C: float = 1.0) -> str:
    """Fit the breast-cancer pipeline and save it to `folder`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import kiln

    X, y = breast_cancer()
    pipe = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
    return kiln.Model(pipe).fit(X, y).save(folder)


def register(store: str, folder: str, name: str) -> int:
    """Log a saved-model folder to a new run of `store` and register it; return the version."""
    from kiln.registry import RegistryClient
    from kiln.tracking import TrackingClient

    client = TrackingClient(store)
    run_id = client.create_run(experiment="serve-tests")
    client.log_artifact(run_id, folder, name="model")
    client.end_run(run_id)
    client.flush()
    return RegistryClient(client).register(f"runs:/{run_id}/model", name).version


def set_alias(store: str, name: str, alias: str, version: int) -> None:
    from kiln.registry import RegistryClient

    RegistryClient(store).set_alias(name, alias, version)


@contextlib.contextmanager
def running(
    args: list[str],
    env: dict[str, str],
    *,
    store: str | None = None,
    timeout: float = 60,
    prefix: list[str] | None = None,
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`kiln serve ARGS` on a free loopback port; yields (base URL, process); always stopped.

    `prefix` runs the command through a wrapper (its argv comes first)."""
    port = free_port()
    cmd = [KILN, *(["--store", store] if store else []), "serve", *args, "--port", str(port)]
    cmd = [*(prefix or []), *cmd]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                _out, err = proc.communicate()
                raise AssertionError(f"kiln serve exited {proc.returncode}: {err.decode()[-2000:]}")
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"kiln serve was not ready within {timeout} s")
            time.sleep(0.05)
        yield url, proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """SIGTERM, then SIGKILL after `timeout`; return the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return int(proc.returncode)


def child_env(base: dict[str, str], **extra: str) -> dict[str, str]:
    env = {**base, **extra}
    env.pop("KILN_TOKEN", None)
    return {k: v for k, v in env.items() if v is not None} | {"PYTHONUNBUFFERED": "1"}


def server_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `kiln serve` started by a test: its own home, tests/ importable
    (for the test models' functions), no store or token inherited."""
    base = {k: v for k, v in os.environ.items() if k != "KILN_STORE"}
    here = str(Path(__file__).resolve().parent)
    path = os.pathsep.join(p for p in (here, base.get("PYTHONPATH", "")) if p)
    return child_env(
        base,
        KILN_HOME=str(tmp_path / "home"),
        KILN_CAPTURE_PACKAGES="0",
        PYTHONPATH=path,
        **extra,
    )


__all__ = [
    "KILN",
    "breast_cancer",
    "child_env",
    "free_port",
    "os",
    "register",
    "running",
    "server_env",
    "set_alias",
    "stop",
    "train",
]
