"""A sweep's kernels forked from a fork server: each still a fresh process of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import kiln
from kiln.notebooks import run_grid
from kiln.notebooks._kernel import Kernel, start_zygote
from nbutil import write_nb

pytestmark = pytest.mark.slow

PROBE = (
    "i = 0",
    "import os, sys, random\nimport numpy as np",
    "import kiln\n"
    "kiln.record('pid', os.getpid())\n"
    "kiln.record('ppid', os.getppid())\n"
    "kiln.record('numpy_draw', float(np.random.rand()))\n"
    "kiln.record('random_draw', random.random())\n"
    "kiln.record('leftover', 'leftover' in globals())\n"
    "kiln.record('cwd', os.getcwd())\n"
    "kiln.record('main', sys.modules['__main__'].__name__)\n"
    "leftover = i",
)


@pytest.mark.parametrize("jobs", [1, 2])
def test_forked_kernels_are_fresh_separate_processes(tmp_path: Path, jobs: int) -> None:
    src = write_nb(tmp_path / "probe.ipynb", *PROBE)
    sweep = run_grid(src, {"i": [1, 2, 3, 4]}, jobs=jobs, cwd=tmp_path)
    assert [r.status for r in sweep.results] == ["finished"] * 4
    seen = [kiln.notebook_results(r.run_id) for r in sweep.results]
    pids = {s["pid"] for s in seen}
    assert len(pids) == 4  # a process per notebook
    assert os.getpid() not in {s["ppid"] for s in seen}  # forked, not launched by kiln
    assert len({s["ppid"] for s in seen}) == 1  # ... all by the one fork server
    assert len({s["numpy_draw"] for s in seen}) == 4  # random streams of their own
    assert len({s["random_draw"] for s in seen}) == 4
    assert not any(s["leftover"] for s in seen)  # nothing carried over
    assert {s["cwd"] for s in seen} == {str(tmp_path)}
    assert {s["main"] for s in seen} == {"__main__"}
    for pid in pids:  # every kernel is gone after the sweep
        with pytest.raises(ProcessLookupError, match="No such process"):
            os.kill(pid, 0)


def test_forked_kernels_report_timeouts_and_deaths(tmp_path: Path) -> None:
    src = write_nb(
        tmp_path / "t.ipynb",
        "mode = 'ok'",
        "import os, time\nif mode == 'slow':\n    time.sleep(30)\nif mode == 'die':\n    os._exit(3)",
        "print('end', mode)",
    )
    sweep = run_grid(src, {"mode": ["ok", "slow", "die", "ok"]}, timeout=2)
    statuses = [r.status for r in sweep.results]
    assert statuses == ["finished", "failed", "failed", "finished"]
    slow, die = sweep.results[1].error, sweep.results[2].error
    assert isinstance(slow, kiln.CellTimeoutError)
    assert slow.cell_index == 1
    assert isinstance(die, kiln.KernelDiedError)
    assert "kernel died" in str(die)


def test_no_fork_and_foreign_kernels_start_from_their_spec(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "p.ipynb", *PROBE)
    sweep = run_grid(src, {"i": [1, 2]}, fork=False)
    assert {kiln.notebook_results(r.run_id)["ppid"] for r in sweep.results} == {os.getpid()}
    zygote = start_zygote("python3", str(tmp_path), [])
    assert zygote is not None
    zygote.close()
    assert zygote.proc.returncode == 0
    dead = start_zygote("python3", str(tmp_path), [])
    assert dead is not None
    dead.proc.kill()
    dead.proc.wait()
    kernel = Kernel.start("python3", str(tmp_path), [], dead)  # falls back to its spec
    assert isinstance(kernel.proc, subprocess.Popen)
    kernel.shutdown()
    dead.close()
    spec = tmp_path / "share" / "jupyter" / "kernels" / "other"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "other_kernel", "-f", "{connection_file}"]
    (spec / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "Other"}))
    os.environ["JUPYTER_PATH"] = str(tmp_path / "share" / "jupyter")
    try:
        assert start_zygote("other", str(tmp_path), []) is None
    finally:
        del os.environ["JUPYTER_PATH"]


def test_forked_kernels_show_matplotlib_figures_inline(tmp_path: Path) -> None:
    src = write_nb(
        tmp_path / "plot.ipynb",
        "n = 2",
        "import matplotlib.pyplot as plt",
        "plt.plot(range(n))\nplt.show()",
    )
    sweep = run_grid(src, {"n": [2, 3]}, output=tmp_path / "plot-{n}.ipynb")
    for n in (2, 3):
        executed = nbformat.read(tmp_path / f"plot-{n}.ipynb", as_version=4)
        assert any("image/png" in o.get("data", {}) for o in executed.cells[-1].outputs)
    assert [r.status for r in sweep.results] == ["finished", "finished"]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_forked_kernels_die_with_kiln(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    src = write_nb(
        tmp_path / "sleepy.ipynb",
        "i = 0",
        "import os, pathlib, time\npathlib.Path(f'pid-{i}').write_text(str(os.getpid()))",
        "time.sleep(120)",
    )
    kiln_cli = str(Path(sys.executable).with_name("kiln"))
    args = [kiln_cli, "notebook", "run", str(src), "--grid", "i=1,2", "--jobs", "2"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=subprocess_env)
    files = [tmp_path / "pid-1", tmp_path / "pid-2"]
    deadline = time.monotonic() + 120
    while not all(f.exists() and f.read_text() for f in files):
        assert time.monotonic() < deadline, "the kernels never started"
        assert proc.poll() is None, "kiln exited before the kernels started"
        time.sleep(0.1)
    pids = [int(f.read_text()) for f in files]
    proc.kill()  # no clean-up code of kiln's runs
    proc.wait()
    deadline = time.monotonic() + 30
    while not all(_gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"kernels {pids} outlived kiln"
        time.sleep(0.1)


def test_forked_kernels_render_dataframes_as_a_fresh_kernel_does(tmp_path: Path) -> None:
    wide = (
        "import pandas as pd\n"
        "pd.DataFrame([[i * j for j in range(40)] for i in range(3)], "
        "columns=[f'column_{j}' for j in range(40)])"
    )
    src = write_nb(
        tmp_path / "wide.ipynb",
        "i = 0",
        wide,
        "import pandas as pd\npd.get_option('display.max_columns')",
    )
    # two combinations: a sweep of one starts its kernel without the fork server
    forked = run_grid(src, {"i": [1, 2]}, cwd=tmp_path, output=tmp_path / "forked-{i}.ipynb")
    fresh = run_grid(
        src, {"i": [1, 2]}, cwd=tmp_path, output=tmp_path / "fresh-{i}.ipynb", fork=False
    )
    outputs = []
    for sweep in (forked, fresh):
        result = sweep.results[0]
        nb = nbformat.read(result.output_path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        outputs.append([c.outputs[0]["data"]["text/plain"] for c in code[-2:]])
    assert outputs[0] == outputs[1]
    assert outputs[1][1] == "20"  # what a kernel started from scratch has
    assert "..." in outputs[1][0]  # 40 columns are elided there, so here too
