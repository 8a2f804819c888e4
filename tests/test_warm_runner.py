"""`kiln.notebooks.WarmRunner`: every execution in a fresh kernel, the next one's kernel
forked and booting ahead of it, nothing left running after `close`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_notebook

pytest.importorskip("ipykernel")


def _notebook(path: Path) -> None:
    params = new_code_cell("label = 'a'")
    params.metadata["tags"] = ["parameters"]
    probe = (
        "import os\n"
        "seen = globals().get('seen', 0) + 1\n"
        # Both since boot, to 10 ms: psutil's create_time adds the boot time, which
        # /proc/stat gives in whole seconds (up to a second off).
        "uptime = float(open('/proc/uptime').read().split()[0])\n"
        "ticks = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19])\n"
        "age = uptime - ticks / os.sysconf('SC_CLK_TCK')\n"
        "print(f'pid={os.getpid()} seen={seen} age={age:.3f} label={label}')"
    )
    nb = new_notebook(cells=[params, new_code_cell(probe)])
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))


def _probe(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    text = "".join(
        out.get("text", "") for cell in result.notebook.cells for out in cell.get("outputs", [])
    )
    line = next(x for x in text.splitlines() if x.startswith("pid="))
    return dict(part.split("=", 1) for part in line.split())


def _kernels() -> set[int]:
    """Kernel processes below this test process (forked ones keep the fork server's name)."""
    found = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        if "ipykernel" in cmd or "kiln.notebooks._zygote" in cmd:
            found.add(proc.pid)
    return found


def _timed(runner: Any, params: dict[str, Any]) -> tuple[dict[str, str], float]:
    """The probe's answer for one submit, and the seconds the submit took."""
    start = time.time()
    result = runner.run(params)
    return _probe(result), time.time() - start


def test_each_run_gets_a_fresh_kernel_started_ahead_and_close_stops_them_all(
    tmp_path: Path,
) -> None:
    from kiln.notebooks import WarmRunner

    nb = tmp_path / "probe.ipynb"
    _notebook(nb)
    before = _kernels()
    runner = WarmRunner(nb, store=f"sqlite:///{tmp_path / 'kiln.db'}")
    try:
        runner.warm()
        time.sleep(1.5)  # the spare kernel waits, booted, for the first submit
        first, first_took = _timed(runner, {"label": "one"})
        time.sleep(1.5)
        second, second_took = _timed(runner, {"label": "two"})
        assert first["label"] == "one"
        assert second["label"] == "two"
        # Fresh every time: another process, and nothing of the last run's namespace.
        assert first["pid"] != second["pid"]
        assert first["seen"] == second["seen"] == "1"
        # Each kernel was started before its submit (while the runner waited), not after:
        # it is older than the submit call, whatever the machine's load.
        assert float(first["age"]) > first_took, (first, first_took)
        assert float(second["age"]) > second_took, (second, second_took)
        # A used kernel is gone; the next one is waiting.
        assert not psutil.pid_exists(int(first["pid"]))
        assert len(_kernels() - before) >= 2  # the fork server and the spare
    finally:
        runner.close()
    deadline = time.monotonic() + 10
    while _kernels() - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _kernels() - before, "close() left kernel processes running"


def test_without_a_spare_each_kernel_starts_on_submit(tmp_path: Path) -> None:
    from kiln.notebooks import WarmRunner

    nb = tmp_path / "probe.ipynb"
    _notebook(nb)
    runner = WarmRunner(nb, store=f"sqlite:///{tmp_path / 'kiln.db'}", spare=False)
    try:
        runner.warm()
        time.sleep(1.5)
        got, took = _timed(runner, {})
        # Started during the submit: no older than the call, however long it took.
        assert float(got["age"]) <= took + 0.02, (got, took)  # both clocks tick in 10 ms
    finally:
        runner.close()
