"""A notebook run leaves no process behind: the kernel goes with everything it started.

A notebook that used joblib (`GridSearchCV(n_jobs=-1)`) left its loky workers and
resource tracker orphaned; they held `kiln notebook run ... | tee log`'s pipe open until
joblib's 300 s idle timeout. These tests run the CLI the way a user does, through a pipe,
and look for any process carrying a mark set in the environment of that one command.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nbutil import write_nb

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

KILN = str(Path(sys.executable).parent / "kiln")
JOBLIB = (
    "from joblib import Parallel, delayed\nimport os, time\n"
    "def pid(_):\n    time.sleep(0.5)\n    return os.getpid()\n"
    "pids = Parallel(n_jobs=2, backend='loky')(delayed(pid)(i) for i in range(4))\n"
    "open(f'workers-{x}', 'w').write(str(len(set(pids))))"
)


def _marked(mark: str) -> list[int]:
    """Processes whose environment holds `KILN_TEST_MARK=mark`."""
    needle = f"KILN_TEST_MARK={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read().split(b"\0")
        except OSError:
            continue
        if needle in environ:
            found.append(int(entry))
    return found


def _kill_marked(mark: str) -> None:
    for pid in _marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _left_after(mark: str, grace: float = 5.0) -> list[int]:
    """The marked processes still alive after `grace` seconds (resource trackers end
    themselves once their writers are gone: give them a moment)."""
    deadline = time.monotonic() + grace
    while (left := _marked(mark)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def _piped(args: list[str], tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    line = "set -o pipefail; " + " ".join([KILN, *args]) + " | cat"
    return subprocess.Popen(
        ["bash", "-c", line], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("case", "last", "args"),
    [
        ("finished", "print('done')", []),
        ("failed", "raise ValueError('boom')", []),
        ("timeout", "import time\nwhile True:\n    time.sleep(0.01)", ["-t", "3"]),
        ("grid", "print(x)", ["--grid", "x=1,2"]),  # kernels forked from the fork server
    ],
)
def test_a_piped_run_that_used_joblib_ends_at_once_and_leaves_no_process(
    tmp_path: Path, subprocess_env: dict[str, str], case: str, last: str, args: list[str]
) -> None:
    write_nb(tmp_path / "jl.ipynb", "x = 0", JOBLIB, last)
    mark = uuid.uuid4().hex
    env = {**subprocess_env, "KILN_TEST_MARK": mark}
    proc = _piped(["notebook", "run", "jl.ipynb", *args], tmp_path, env)
    try:
        begin = time.monotonic()
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`kiln notebook run | cat` did not end; processes left: {_marked(mark)}")
        assert time.monotonic() - begin < 60
        assert (proc.returncode == 0) == (case in ("finished", "grid")), err
        if case == "failed":
            assert "boom" in err, err  # it failed in the last cell, not before
        if case in ("finished", "failed", "timeout"):
            workers = tmp_path / "workers-0"
            assert workers.exists(), f"the joblib cell did not finish:\n{err}"
            assert workers.read_text() == "2"  # loky's workers did start
        assert _left_after(mark) == []
    finally:
        _kill_marked(mark)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()


def test_sigterm_stops_the_kernel_and_its_workers(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    write_nb(
        tmp_path / "jl.ipynb",
        "x = 0",
        JOBLIB,
        "import time\nopen('started', 'w').close()\nwhile True:\n    time.sleep(0.01)",
    )
    mark = uuid.uuid4().hex
    env = {**subprocess_env, "KILN_TEST_MARK": mark}
    proc = subprocess.Popen(
        [KILN, "notebook", "run", "jl.ipynb"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the looping cell never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGTERM, err
        assert _left_after(mark) == []
    finally:
        _kill_marked(mark)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_ctrl_c_still_interrupts_the_cell(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    # The kernel left the terminal's process group; a Ctrl-C (SIGINT to the foreground
    # group) must still interrupt the running cell, as it did when the kernel was in it.
    write_nb(
        tmp_path / "jl.ipynb",
        "x = 0",
        JOBLIB,
        "import time\nopen('started', 'w').close()\nwhile True:\n    time.sleep(0.01)",
    )
    mark = uuid.uuid4().hex
    env = {**subprocess_env, "KILN_TEST_MARK": mark}
    proc = subprocess.Popen(
        [KILN, "notebook", "run", "jl.ipynb"], cwd=tmp_path, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the looping cell never started"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "KeyboardInterrupt" in err
        assert _left_after(mark) == []
    finally:
        _kill_marked(mark)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
