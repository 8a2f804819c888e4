"""Running scenario scripts as fresh subprocesses: timeouts, peak RSS, clean failures.

Every child runs in its own session (so a timeout kills it and anything it started),
with output captured to temporary files, and is reaped with `os.wait4` so its peak RSS
comes with its exit status. A child that fails, times out or prints no JSON raises
`BenchError` naming the scenario.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIOS = BENCH / "scenarios"
KILN_PY = ROOT / ".venv" / "bin" / "python"
KILN_CLI = ROOT / ".venv" / "bin" / "kiln"
MLFLOW_ENV = BENCH / ".envs" / "mlflow"
MLFLOW_PY = MLFLOW_ENV / "bin" / "python"
MLFLOW_CLI = MLFLOW_ENV / "bin" / "mlflow"

_live: set[subprocess.Popen[bytes]] = set()


class BenchError(Exception):
    """A scenario could not be measured; the message says which and why."""


@dataclass
class Child:
    """What one finished child reported.

    Attributes:
        wall: Seconds from spawning the process to reaping it.
        rss_mb: Peak resident set size of the process, in MB.
        data: The JSON object on its last line of output ({} when it printed none).
        stdout: Everything it printed.
    """

    wall: float
    rss_mb: float
    data: dict[str, Any]
    stdout: str


def child_env() -> dict[str, str]:
    """The environment children run in: no inherited kiln, MLflow or Python settings.

    MLflow's telemetry is switched off: this machine has no internet, and its attempts
    to reach the telemetry server would be timed rather than MLflow itself.
    """
    drop = ("KILN_", "MLFLOW_", "PYTHON", "VIRTUAL_ENV", "CONDA_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return env


class Workspace:
    """The session's temporary folder: scenario scripts copied out of the git checkout
    (so neither tool finds a repository to record) and a fresh folder per repetition.
    """

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="kiln-bench-"))
        self.scripts = self.root / "scripts"
        shutil.copytree(SCENARIOS, self.scripts, ignore=shutil.ignore_patterns("__pycache__"))
        self._count = 0

    def script(self, name: str) -> str:
        """The path of a scenario script, e.g. `kiln_hello.py`."""
        path = self.scripts / name
        if not path.is_file():
            raise BenchError(f"No scenario script {name} in {SCENARIOS}.")
        return str(path)

    @contextmanager
    def fresh(self, label: str) -> Iterator[Path]:
        """A new empty folder, removed afterwards."""
        self._count += 1
        path = self.root / f"{self._count:04d}-{label}"
        path.mkdir()
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def close(self) -> None:
        """Kill any child still running and remove every temporary file."""
        kill_all()
        shutil.rmtree(self.root, ignore_errors=True)


def _tree(pid: int) -> list[int]:
    """Every process below `pid`, whatever session it started for itself."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as fh:
                    kids = [int(k) for k in fh.read().split()]
            except (OSError, ValueError):
                continue
            for kid in kids:
                if kid not in found:
                    found.append(kid)
                    todo.append(kid)
    return found


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the child, its group, and every process below it.

    A child's servers start sessions of their own (so they can be stopped as a group),
    and their kernels do too: killing the child's group alone would leave them running.
    The tree is listed before anything is killed, while every process still has its
    parent.
    """
    family = _tree(proc.pid)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    for pid in family:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def kill_all() -> None:
    """Kill every child still running (on Ctrl-C or an error)."""
    for proc in list(_live):
        _kill(proc)


def _spawn(cmd: Sequence[str], cwd: Path, stdin: Any, stdout: Any, stderr: IO[bytes]) -> Any:
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        cwd=cwd,
        env=child_env(),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        start_new_session=True,
    )
    _live.add(proc)
    return proc


def _reap(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """Wait for the child; return its exit code and peak RSS in MB."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        _live.discard(proc)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss / 1024  # Linux reports KB


def _tail(data: bytes, lines: int = 12) -> str:
    text = data.decode("utf-8", "replace").strip().splitlines()
    return "\n".join("    " + line for line in text[-lines:]) or "    (no output)"


def _parse(
    label: str,
    cmd: Sequence[str],
    code: int,
    timed_out: bool,
    out: bytes,
    err: bytes,
    timeout: float,
) -> dict[str, Any]:
    name = Path(str(cmd[1] if len(cmd) > 1 else cmd[0])).name
    if timed_out:
        raise BenchError(f"{label}: {name} did not finish within {timeout:.0f} s and was killed.")
    if code != 0:
        raise BenchError(
            f"{label}: {name} exited with status {code}. Its last lines of stderr:\n{_tail(err)}"
        )
    lines = [line for line in out.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return {}
    try:
        data = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def run(
    label: str, cmd: Sequence[str], *, cwd: Path, timeout: float, want_json: bool = True
) -> Child:
    """Run one child to completion and return what it reported.

    Args:
        label: Names the scenario in error messages, e.g. "a. kiln log_metric".
        cmd: The command; the first element is the interpreter or executable.
        cwd: Its working directory.
        timeout: Seconds before it is killed and the scenario fails.
        want_json: Fail when the child's last line is not a JSON object.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        timed_out = threading.Event()
        t0 = time.perf_counter()
        proc = _spawn(cmd, cwd, subprocess.DEVNULL, out, err)

        def expire() -> None:
            timed_out.set()
            _kill(proc)

        timer = threading.Timer(timeout, expire)
        timer.start()
        try:
            code, rss = _reap(proc)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    data = _parse(label, cmd, code, timed_out.is_set(), stdout, stderr, timeout)
    if want_json and not data:
        raise BenchError(
            f"{label}: {Path(str(cmd[1])).name} printed no JSON result. Its output:\n{_tail(stdout)}"
        )
    return Child(wall, rss, data, stdout.decode("utf-8", "replace"))


def run_together(
    label: str, cmds: Sequence[Sequence[str]], *, cwd: Path, timeout: float
) -> list[Child]:
    """Start several children, wait until each prints `ready`, then tell them all `go`.

    The children import their tool and start their run before `ready`, so only the
    writing overlaps; each reports its own wall-clock start and end.
    """
    procs: list[subprocess.Popen[bytes]] = []
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        for p in procs:
            _kill(p)

    timer = threading.Timer(timeout, expire)
    with ExitStack() as stack:
        errs = [stack.enter_context(tempfile.TemporaryFile()) for _ in cmds]
        try:
            t0 = time.perf_counter()
            for cmd, err in zip(cmds, errs, strict=True):
                procs.append(_spawn(cmd, cwd, subprocess.PIPE, subprocess.PIPE, err))
            timer.start()
            for proc in procs:
                assert proc.stdout is not None
                while (line := proc.stdout.readline()) and line.strip() != b"ready":
                    pass
            for proc in procs:  # every child is ready (or dead, and its pipe closed)
                assert proc.stdin is not None
                with suppress(BrokenPipeError):
                    proc.stdin.write(b"go\n")
                    proc.stdin.close()
            results = []
            for cmd, proc, err in zip(cmds, procs, errs, strict=True):
                assert proc.stdout is not None
                stdout = proc.stdout.read()
                code, rss = _reap(proc)
                err.seek(0)
                data = _parse(label, cmd, code, timed_out.is_set(), stdout, err.read(), timeout)
                if not data:
                    raise BenchError(f"{label}: a writer printed no JSON result:\n{_tail(stdout)}")
                results.append(Child(time.perf_counter() - t0, rss, data, stdout.decode()))
            return results
        finally:
            timer.cancel()
            for proc in procs:
                if proc in _live:
                    _kill(proc)
                    _reap(proc)
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None:
                        with suppress(OSError):
                            pipe.close()
