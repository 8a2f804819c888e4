"""Helpers for the serving tests: a trained model in a store, and real servers on loopback."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

KILN = str(Path(sys.executable).with_name("kiln"))


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
    """`kiln serve ARGS` on a port of its own; yields (base URL, process); always stopped.

    The server binds port 0 and writes the port it got to `--port-file`, so no other
    process (another xdist worker, say) can take the port between choosing and binding.
    `prefix` runs the command through a wrapper (its argv comes first)."""
    cmd = [KILN, *(["--store", store] if store else []), "serve", *args]
    with serving([*(prefix or []), *cmd], env, timeout=timeout) as started:
        yield started


@contextlib.contextmanager
def serving(
    cmd: list[str], env: dict[str, str], *, timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Run a `kiln serve`-like command (it takes `--port` and `--port-file`) on port 0,
    wait until it answers /ready; yields (base URL, process); always stopped."""
    with tempfile.TemporaryDirectory(prefix="kiln-port-") as folder:
        port_file = Path(folder) / "port"
        full = [*cmd, "--port", "0", "--port-file", str(port_file)]
        proc = subprocess.Popen(full, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            url = f"http://127.0.0.1:{wait_for_port(proc, port_file, timeout)}"
            deadline = time.monotonic() + timeout
            while True:
                _check_alive(proc)
                try:
                    if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"{cmd[0]} was not ready within {timeout} s")
                time.sleep(0.05)
            yield url, proc
        finally:
            stop(proc)


def wait_for_port(proc: subprocess.Popen[bytes], port_file: Path, timeout: float = 60) -> int:
    """The port a server started with `--port-file port_file` bound, once it wrote it."""
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        _check_alive(proc)
        if time.monotonic() > deadline:
            raise AssertionError(f"the server wrote no port to {port_file} within {timeout} s")
        time.sleep(0.05)
    return int(port_file.read_text(encoding="utf-8"))


def _check_alive(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        _out, err = proc.communicate()
        raise AssertionError(f"the server exited {proc.returncode}: {err.decode()[-2000:]}")


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
    "os",
    "register",
    "running",
    "server_env",
    "serving",
    "set_alias",
    "stop",
    "train",
    "wait_for_port",
]
