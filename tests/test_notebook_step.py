"""Notebooks as pipeline steps: parameters in, recorded values out, cached on code cells."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

import kiln
import kiln.notebooks
from kiln._exceptions import NotebookError, StepFailedError
from nbutil import write_nb

pytestmark = pytest.mark.slow

KILN = str(Path(sys.executable).with_name("kiln"))

NOTEBOOK = (
    "alpha = 1.0\nload = None",
    ("md", "# Train"),
    "import kiln\nscore = alpha * float(sum(load['a']))\nkiln.record('score', score)\n"
    "kiln.record('rows', len(load))\nprint('score', score)",
)

STEPS = """\
import pandas as pd

import kiln.notebooks


def load() -> pd.DataFrame:
    return pd.DataFrame({"a": [1, 2, 3]})


train = kiln.notebooks.notebook_step("train.ipynb", outputs=["score"])


def report(train: dict) -> str:
    return f"score {train['score']:.1f}"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    write_nb(root / "train.ipynb", *NOTEBOOK)
    (root / "nb_steps.py").write_text(STEPS)
    (root / "params.yaml").write_text("train:\n  alpha: 0.5\n")
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop("nb_steps", None)
    return root


def kiln_run(root: Path, env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [KILN, "run", "nb_steps", "--json", *args], cwd=root, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def edit_cell(path: Path, index: int, source: str) -> None:
    data = json.loads(path.read_text())
    data["cells"][index]["source"] = source
    path.write_text(json.dumps(data))


def test_a_notebook_step_runs_in_a_pipeline_with_injected_inputs(project: Path) -> None:
    import nb_steps

    assert nb_steps.train.__name__ == "train"
    result = kiln.Pipeline.from_module(nb_steps).run()
    assert result["train"] == {"score": 3.0}  # alpha 0.5 from params.yaml, the DataFrame sum 6
    assert result["report"] == "score 3.0"
    kiln.flush()
    step_run = kiln.get_run(result.steps["train"].run_id)
    nb_run = kiln.get_run(step_run.tags["kiln.notebook.run"])
    assert nb_run.parent_id == step_run.id
    assert nb_run.status == "finished"
    assert nb_run.params["alpha"] == "0.5"
    assert "notebook/train.ipynb" in {a.path for a in nb_run.artifacts}
    assert kiln.notebook_results(nb_run.id) == {"rows": 3, "score": 3.0}
    executed = nbformat.reads(
        kiln.get_client().read_artifact(nb_run.id, "notebook/train.ipynb").decode(), 4
    )
    injected = [
        c.source for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert "alpha = 0.5" in injected[0]
    assert "load = kiln.notebooks.step_input(" in injected[0]


def test_kiln_run_caches_on_code_cells_not_outputs_or_markdown(
    project: Path, subprocess_env: dict[str, str]
) -> None:
    env = subprocess_env
    first = kiln_run(project, env)
    assert {n: s["status"] for n, s in first["steps"].items()} == dict.fromkeys(
        ("load", "train", "report"), "done"
    )
    again = subprocess.run(
        [KILN, "run", "nb_steps"], cwd=project, env=env, capture_output=True, text=True,
        timeout=300, check=True,
    )  # fmt: skip
    assert "Nothing changed" in again.stdout
    nb = project / "train.ipynb"
    edit_cell(nb, 1, "# Train, explained better")  # markdown: the step stays cached
    assert kiln_run(project, env)["steps"]["train"]["status"] == "cached"
    edit_cell(nb, 2, NOTEBOOK[2] + "\nkiln.record('score', score * 10)")  # code: re-runs
    changed = kiln_run(project, env)
    assert changed["steps"]["train"]["status"] == "done"
    assert changed["steps"]["train"]["reason"] == "code changed"
    assert changed["steps"]["report"]["status"] == "done"
    params = kiln_run(project, env, "-p", "train.alpha=2", "--runner", "processes")
    assert params["steps"]["train"]["reason"] == "param train.alpha changed (0.5 -> 2)"
    kiln.flush()
    step_run = kiln.get_run(params["steps"]["train"]["run_id"])
    assert kiln.notebook_results(step_run.tags["kiln.notebook.run"])["score"] == 120.0


def test_a_failing_notebook_fails_its_step_naming_the_cell(project: Path) -> None:
    write_nb(
        project / "broken.ipynb", "alpha = 1", "x = 1", "raise ValueError('bad ' + str(alpha))"
    )
    broken = kiln.notebooks.notebook_step("broken.ipynb")
    with pytest.raises(StepFailedError, match=r"(?s)code cell 2.*ValueError: bad 3"):
        kiln.Pipeline([broken]).run({"alpha": 3})


def test_missing_outputs_and_bad_paths_are_clear_errors(project: Path) -> None:
    lacking = kiln.notebooks.notebook_step("train.ipynb", name="lacking", outputs="accuracy")
    assert lacking.__name__ == "lacking"
    with pytest.raises(NotebookError, match=r"expects the notebook train.ipynb to record \['accuracy'\], but it recorded \['rows', 'score'\]"):  # fmt: skip
        lacking(load={"a": [1]})
    with pytest.raises(NotebookError, match=r"No notebook 'nope\.ipynb' for a notebook step"):
        kiln.notebooks.notebook_step("nope.ipynb")


def test_called_directly_a_step_injects_only_what_is_given(project: Path) -> None:
    source = textwrap.dedent("""\
        import kiln
        kiln.record('alpha', alpha)
        kiln.record('n', n)""")
    write_nb(project / "plain.ipynb", "alpha = 1.0\nn = 7", source)
    plain = kiln.notebooks.notebook_step("plain.ipynb", outputs=["alpha", "n"])
    assert list(plain.__signature__.parameters) == ["alpha", "n"]
    with kiln.start_run("by hand"):
        assert plain(alpha=0.25) == {"alpha": 0.25, "n": 7}
