"""Notebook execution for real: kernels, papermill side by side, the tracked run, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill
import pytest

import kiln
from kiln.notebooks import run_grid
from nbutil import code_texts, write_nb

pytestmark = pytest.mark.slow

TRAIN = (
    ("md", "# Train"),
    "alpha = 1.0\nmsg = 'default'\nitems = [1]\nopts = {'a': 1}\nflag = False\nnothing = 0",
    "print(repr(alpha), repr(msg), items, opts, flag, nothing)",
    "import kiln\nkiln.log_metric('double', alpha * 2)\nkiln.log_param('seen', msg)\n"
    "kiln.record('summary', {'alpha': alpha, 'items': items})\nalpha * 3",
)
PARAMS = {
    "alpha": 3.5,
    "msg": 'hi "there"\n\\',
    "items": [1, 2.5, "x", None],
    "opts": {"k": [True, False], "n": None},
    "flag": True,
    "nothing": None,
}


def test_papermill_and_kiln_inject_and_output_the_same(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "train.ipynb", *TRAIN, parameters=1)
    # papermill's notebook must not log to kiln (no run): give it a copy without that cell.
    plain = write_nb(tmp_path / "plain.ipynb", *TRAIN[:3], parameters=1)
    pm_out = tmp_path / "pm.ipynb"
    papermill.execute_notebook(str(plain), str(pm_out), parameters=PARAMS, progress_bar=False)
    result = kiln.run_notebook(src, PARAMS, output=tmp_path / "kiln.ipynb")
    ours = nbformat.read(tmp_path / "kiln.ipynb", as_version=4)
    theirs = nbformat.read(pm_out, as_version=4)

    def injected(nb: nbformat.NotebookNode) -> tuple[int, str]:
        for i, cell in enumerate(nb.cells):
            if "injected-parameters" in (cell.metadata.get("tags") or []):
                return i, cell.source
        raise AssertionError("no injected cell")

    assert injected(ours) == injected(theirs) == (2, injected(theirs)[1])
    assert code_texts(ours)[:3] == code_texts(theirs)[:3]
    assert "3.5 'hi \"there\"\\n\\\\' [1, 2.5, 'x', None]" in code_texts(ours)[2]
    assert code_texts(ours)[3] == "10.5"
    assert result.status == "finished"


def test_the_kernel_logs_to_the_same_run(tracked: str, tmp_path: Path) -> None:
    src = write_nb(tmp_path / "train.ipynb", *TRAIN, parameters=1)
    result = kiln.run_notebook(src, {"alpha": 2.0, "msg": "m"}, experiment="nb", html=True)
    run = kiln.get_run(result.run_id)
    assert run.status == "finished"
    assert run.experiment == "nb"
    assert run.params["alpha"] == "2.0"
    assert run.params["seen"] == "m"  # logged by the kernel
    assert run.metrics["double"] == 4.0  # logged by the kernel
    paths = {a.path for a in run.artifacts}
    assert {"notebook/train.ipynb", "notebook/train.html"} <= paths
    assert kiln.notebook_results(result.run_id) == {"summary": {"alpha": 2.0, "items": [1]}}
    html = kiln.get_client().read_artifact(result.run_id, "notebook/train.html").decode()
    assert "<html" in html
    assert "log_metric" in html
    stored = nbformat.reads(
        kiln.get_client().read_artifact(result.run_id, "notebook/train.ipynb").decode(), 4
    )
    assert stored.metadata.kiln["run_id"] == result.run_id


def test_a_failing_cell_fails_the_run_and_keeps_the_partial_notebook(tmp_path: Path) -> None:
    src = write_nb(
        tmp_path / "f.ipynb",
        ("md", "x"),
        "n = 1",
        "print('before')",
        "1 / (n - 2)",
        "print('never')",
        parameters=1,
    )
    out = tmp_path / "out" / "f.ipynb"
    with pytest.raises(kiln.CellExecutionError, match=r"code cell 2 .*ZeroDivisionError") as info:
        kiln.run_notebook(src, {"n": 2}, output=out)
    err = info.value
    assert err.cell_index == 2  # the injected cell is not counted
    assert err.source == "1 / (n - 2)"
    assert "ZeroDivisionError" in err.traceback
    assert "\x1b[" not in err.traceback
    assert err.output_path == str(out)
    partial = nbformat.read(out, as_version=4)
    assert code_texts(partial)[2] == "before\n"
    assert partial.cells[-1].outputs == []
    run = kiln.get_run(err.run_id)
    assert run.status == "failed"
    assert "code cell 2" in (run.error or "")
    assert run.tags["kiln.failed_cell"] == "2"
    assert "notebook/f.ipynb" in {a.path for a in run.artifacts}


def test_timeout_and_dead_kernel_are_reported_as_such(tmp_path: Path) -> None:
    slow = write_nb(tmp_path / "slow.ipynb", "import time", "time.sleep(30)", parameters=None)
    with pytest.raises(kiln.CellTimeoutError, match="per-cell timeout") as info:
        kiln.run_notebook(slow, timeout=1)
    assert info.value.cell_index == 1
    dead = write_nb(tmp_path / "dead.ipynb", "import os", "os._exit(1)", parameters=None)
    with pytest.raises(kiln.KernelDiedError, match="kernel died"):
        kiln.run_notebook(dead)


def test_a_grid_runs_every_combination_as_child_runs(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "g.ipynb", "a = 0\nb = 'x'", "import kiln\nkiln.log_metric('a', a)")
    sweep = run_grid(src, {"a": [1, 2]}, {"b": "y"}, jobs=2, output=tmp_path / "o-{a}.ipynb")
    assert [r.parameters for r in sweep.results] == [{"b": "y", "a": 1}, {"b": "y", "a": 2}]
    assert (tmp_path / "o-1.ipynb").exists()
    assert (tmp_path / "o-2.ipynb").exists()
    for r in sweep.results:
        run = kiln.get_run(r.run_id)
        assert run.parent_id == sweep.run_id
        assert run.metrics["a"] == r.parameters["a"]
    assert kiln.get_run(sweep.run_id).status == "finished"


def _kiln(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_cli_run_check_and_exit_codes(tmp_path: Path, subprocess_env: dict[str, str]) -> None:
    src = write_nb(tmp_path / "c.ipynb", "x = 1", "print(10 / x)")
    ok = _kiln(
        "notebook",
        "run",
        str(src),
        "-p",
        "x=4",
        "--json",
        cwd=tmp_path,
        env=subprocess_env,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "finished"
    latest = _kiln("notebook", "html", "latest", "-o", "latest.html", cwd=tmp_path, env=subprocess_env)  # fmt: skip
    assert latest.returncode == 0, latest.stderr
    assert "2.5" in (tmp_path / "latest.html").read_text()
    bad = _kiln(
        "notebook",
        "run",
        str(src),
        "-p",
        "x=0",
        "-o",
        "out.ipynb",
        cwd=tmp_path,
        env=subprocess_env,
    )
    assert bad.returncode == 1
    assert "code cell 1" in bad.stderr
    assert "ZeroDivisionError" in bad.stderr
    assert (tmp_path / "out.ipynb").exists()
    grid = _kiln(
        "notebook", "run", str(src), "--grid", "x=1,2", "--json", cwd=tmp_path, env=subprocess_env
    )  # fmt: skip
    assert grid.returncode == 0, grid.stderr
    assert len(json.loads(grid.stdout)["runs"]) == 2
    run_id = json.loads(ok.stdout)["run_id"]
    html = _kiln("notebook", "html", run_id, "-o", "page.html", cwd=tmp_path, env=subprocess_env)
    assert html.returncode == 0, html.stderr
    assert "2.5" in (tmp_path / "page.html").read_text()
    assert "notebook/c.html" in {a.path for a in kiln.get_run(run_id).artifacts}


def test_preloading_imports_leaves_no_names_behind(tmp_path: Path) -> None:
    from kiln.notebooks._preload import preload_modules

    src = write_nb(
        tmp_path / "p.ipynb",
        "n = 1",
        "import sys\nprint(sorted(k for k in globals() if 'colorsys' in k or 'kiln' in k), "
        "'colorsys' in sys.modules)",
        "import colorsys\nfrom os import path",
        "import os\nos.environ['X'] = '1'",
        "import wave",
    )
    assert preload_modules(src) == ["sys", "colorsys", "os"]  # stops at os.environ
    result = kiln.run_notebook(src, {"n": 2})
    assert code_texts(result.notebook)[2] == "[] True\n"
    plain = kiln.run_notebook(src, {"n": 2}, preload=False)
    assert code_texts(plain.notebook)[2] == "[] False\n"


def test_a_process_with_kiln_run_id_logs_to_that_run_and_leaves_it_running(
    tracked: str, subprocess_env: dict[str, str]
) -> None:
    run = kiln.start_run(experiment="attach")
    kiln.flush()
    code = (
        "import kiln\n"
        "kiln.log_metric('m', 1.5)\n"
        "assert kiln.active_run().id == kiln.get_run(kiln.active_run().id).id\n"
        "with kiln.start_run(name='inner') as inner:\n"
        "    print(inner.parent_id)\n"
    )
    env = {**subprocess_env, "KILN_STORE": tracked, "KILN_RUN_ID": run.id}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == run.id  # a run started there nests under the attached one
    seen = kiln.get_run(run.id)
    assert seen.metrics["m"] == 1.5
    assert seen.status == "running"  # the child process did not end it
    run.end()


def test_a_failed_combination_does_not_stop_the_sweep(tmp_path: Path) -> None:
    src = write_nb(tmp_path / "s.ipynb", "x = 1", "print(1 / (x - 2))")
    sweep = run_grid(src, {"x": [1, 2, 3]}, jobs=1)
    assert [r.status for r in sweep.results] == ["finished", "failed", "finished"]
    assert [r.parameters["x"] for r in sweep.failed] == [2]
    failed = sweep.failed[0].error
    assert failed is not None
    assert failed.cell_index == 1
    assert kiln.get_run(sweep.run_id).status == "failed"
