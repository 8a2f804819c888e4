"""Notebook execution for real: kernels, papermill side by side, the tracked run, failures."""

from __future__ import annotations

import inspect
import json
import re
import signal
import subprocess
import sys
import time
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


def test_yaml_base64_and_file_parameters_merge_as_papermills_cli_does(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    import base64

    write_nb(tmp_path / "plain.ipynb", *TRAIN[:3], parameters=1)
    (tmp_path / "p.yaml").write_text("items: [1, 2]\nopts: {k: [true]}\nmsg: from-file\n")
    args = [
        "-b", base64.b64encode(b"alpha: 0.5\nmsg: from-base64").decode(),
        "-f", "p.yaml",
        "-y", "msg: 2026-01-02\nopts: {k: [false], n: 3}",  # a date stays a string
        "-p", "flag", "True",
        "-r", "nothing", "7",
    ]  # fmt: skip
    pm = subprocess.run(
        [str(Path(sys.executable).with_name("papermill")), "plain.ipynb", "pm.ipynb",
         "--prepare-only", *args],
        cwd=tmp_path, env=subprocess_env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert pm.returncode == 0, pm.stderr
    # papermill's -p NAME VALUE is kiln's -p NAME=VALUE
    kiln_args = [*args[:6], "-p", "flag=True", "-r", "nothing=7"]
    ours = _kiln("notebook", "run", "plain.ipynb", "-o", "kiln.ipynb", *kiln_args, "--json",
                 cwd=tmp_path, env=subprocess_env)  # fmt: skip
    assert ours.returncode == 0, ours.stderr

    def injected(path: Path) -> str:
        nb = nbformat.read(path, as_version=4)
        return next(
            c.source for c in nb.cells if "injected-parameters" in (c.metadata.get("tags") or [])
        )

    assert injected(tmp_path / "kiln.ipynb") == injected(tmp_path / "pm.ipynb")
    assert 'msg = "2026-01-02"' in injected(tmp_path / "kiln.ipynb")
    assert 'opts = {"k": [False], "n": 3}' in injected(tmp_path / "kiln.ipynb")
    bad = _kiln("notebook", "run", "plain.ipynb", "-y", "[1, 2]", cwd=tmp_path, env=subprocess_env)
    assert bad.returncode == 2
    assert "must hold a mapping of name: value; got a list" in bad.stderr


def test_a_grid_with_an_objective_marks_the_best_run(tmp_path: Path) -> None:
    src = write_nb(
        tmp_path / "obj.ipynb", "x = 0", "import kiln\nkiln.log_metric('loss', (x - 2) ** 2)"
    )
    sweep = kiln.notebooks.run_grid(src, {"x": [1, 2, 4]}, cwd=tmp_path, objective="loss")
    assert sweep.direction == "min"  # loss: known to be better lower
    assert sweep.best is not None
    assert sweep.best.parameters == {"x": 2}
    assert sweep.best_value == 0.0
    parent = kiln.get_run(sweep.run_id)
    assert parent.tags["kiln.sweep.best_run"] == sweep.best.run_id
    assert parent.tags["kiln.direction.loss"] == "min"
    assert parent.metrics["loss"] == 0.0
    most = kiln.notebooks.run_grid(
        src, {"x": [1, 4]}, cwd=tmp_path, objective="loss", direction="max"
    )
    assert most.best is not None
    assert most.best.parameters == {"x": 4}


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
        "with kiln.start_run(name='joined') as joined:\n"
        "    with kiln.start_run(name='inner') as inner:\n"
        "        print(joined.id, inner.parent_id)\n"
        "kiln.end_run()\n"  # the owner ends it, not this process
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
    # The first start_run there joins the attached run; one inside it nests under it.
    assert out.stdout.split() == [run.id, run.id]
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


def test_a_huge_exception_message_is_printed_once_and_cut(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # The message was printed twice (the error line and the traceback), 10 MB to stderr,
    # and stored whole as the run's error.
    src = write_nb(tmp_path / "big.ipynb", "n = 1", "raise ValueError('head ' + 'x' * 5_000_000)")
    done = _kiln("notebook", "run", str(src), "-o", "out.ipynb", cwd=tmp_path, env=subprocess_env)
    assert done.returncode == 1
    assert len(done.stderr) < 30_000
    assert "raised ValueError: head xxx" in done.stderr
    assert "characters cut; the whole text is in the cell's output in the partial notebook" in (
        done.stderr
    )
    partial = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert partial.cells[1].outputs[0]["evalue"] == "head " + "x" * 5_000_000
    [run] = kiln.get_client().search_runs(filter="name = 'big'")
    assert run.status == "failed"
    assert len(run.error or "") <= 10_000


def test_sigterm_saves_the_partial_notebook_and_marks_the_run_killed(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # SIGTERM used to end `kiln notebook run` at once: no -o notebook, no artifact, and
    # the run left "running" until its heartbeat went stale.
    src = write_nb(
        tmp_path / "loop.ipynb",
        "n = 1",
        "import kiln, time\nprint('started', flush=True)\nkiln.log_metric('m', 1.0)\n"
        "open('started', 'w').close()\nwhile True:\n    time.sleep(0.01)",
        "print('never')",
    )
    # Only the teardown's flush writes what the kernel logged (no periodic write in time).
    env = {**subprocess_env, "KILN_FLUSH_INTERVAL": "60"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "kiln"), "notebook", "run", str(src), "-o", "out.ipynb"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the looping cell never started"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGTERM, stderr
    partial = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert code_texts(partial)[1] == "started\n"
    assert partial.cells[2].outputs == []
    assert partial.metadata.kiln["error"] == {"cell_index": 1, "ename": "SIGTERM"}
    run = kiln.get_run(partial.metadata.kiln["run_id"])
    assert run.status == "killed"
    assert run.tags["kiln.failed_cell"] == "1"
    assert "was running when kiln was sent SIGTERM" in (run.error or "")
    assert f"Run {run.id} is marked killed" in (run.error or "")
    assert "notebook/loop.ipynb" in {a.path for a in run.artifacts}
    assert run.metrics["m"] == 1.0  # the interrupted cell's log reached the run


def test_what_a_timed_out_cell_logged_reaches_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The teardown that flushes the kernel's logs was sent while the interrupted cell was
    # failing, and the kernel aborted it: the metric was lost.
    monkeypatch.setenv("KILN_FLUSH_INTERVAL", "60")  # only the teardown writes in time
    src = write_nb(
        tmp_path / "slow.ipynb", "import kiln, time\nkiln.log_metric('m', 2.0)\ntime.sleep(30)"
    )
    result = kiln.run_notebook(src, timeout=2, raise_on_error=False)
    assert isinstance(result.error, kiln.CellTimeoutError)
    assert "per-cell timeout (2 seconds)" in str(result.error)
    assert kiln.get_run(result.run_id).metrics["m"] == 2.0


def test_cells_have_a_generous_default_timeout(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # There was no default: an infinite loop ran forever.
    assert inspect.signature(kiln.run_notebook).parameters["timeout"].default == 3600
    assert inspect.signature(run_grid).parameters["timeout"].default == 3600
    shown = _kiln("notebook", "run", "--help", cwd=tmp_path, env=subprocess_env)
    assert re.search(r"-t, --timeout SECONDS\s+Seconds each cell may run; 0 for no limit\.\s+"
                     r"\[default: 3600\.0; x>=0\]", shown.stdout)  # fmt: skip
    slow = write_nb(tmp_path / "slow.ipynb", "import time", "time.sleep(30)", parameters=None)
    done = _kiln("notebook", "run", str(slow), "-t", "1", cwd=tmp_path, env=subprocess_env)
    assert done.returncode == 1
    assert "ran longer than the per-cell timeout (1 seconds)" in done.stderr
    assert "raise it with -t/--timeout SECONDS" in " ".join(done.stderr.split())


MLFLOW_STYLE = (
    "alpha = 0.5",
    "import kiln\nwith kiln.start_run(experiment='mine', params={'seed': 1}) as run:\n"
    "    kiln.log_metric('auc', alpha)\nkiln.log_metric('after', 1.0)",
)


def test_a_notebook_that_logs_runs_in_plain_jupyter_and_under_kiln(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # In plain Jupyter, kiln.log_metric raised NoActiveRunError; wrapped in start_run,
    # the notebook made a child run in another experiment under `kiln notebook run`.
    from nbclient import NotebookClient

    write_nb(tmp_path / "plain.ipynb", "alpha = 0.5", "import kiln\nkiln.log_metric('auc', alpha)")
    plain = nbformat.read(tmp_path / "plain.ipynb", as_version=4)
    NotebookClient(plain, timeout=120, resources={"metadata": {"path": str(tmp_path)}}).execute()
    (auto,) = kiln.get_client().search_runs()
    assert (auto.experiment, auto.status, auto.metrics) == ("Default", "finished", {"auc": 0.5})

    write_nb(tmp_path / "mlflow_style.ipynb", *MLFLOW_STYLE)
    done = _kiln(
        "notebook", "run", "mlflow_style.ipynb", "-p", "alpha=0.75", "-e", "nb", "--json",
        cwd=tmp_path, env=subprocess_env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run = kiln.get_run(json.loads(done.stdout)["run_id"])
    assert (run.experiment, run.status) == ("nb", "finished")
    assert run.metrics == {"auc": 0.75, "after": 1.0} | {
        k: v for k, v in run.metrics.items() if k.startswith("notebook.")
    }
    assert run.params == {"alpha": "0.75", "seed": "1"}
    assert len(kiln.get_client().search_runs()) == 2  # no child run, no experiment "mine"
