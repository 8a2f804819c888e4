"""`kiln run`, `kiln pipeline show`, `kiln lineage` on the demo pipeline (examples/pipeline)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import kiln
from kiln.cli import cli

DEMO = Path(__file__).resolve().parents[1] / "examples" / "pipeline"
KILN = str(Path(sys.executable).with_name("kiln"))


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the demo project as the working directory."""
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns(".kiln", "__pycache__"))
    monkeypatch.chdir(root)
    monkeypatch.syspath_prepend(str(root))
    sys.modules.pop("churn_steps", None)
    return root


def kiln_cli(*args: str) -> dict:  # type: ignore[type-arg]
    result = CliRunner().invoke(cli, [*args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)  # type: ignore[no-any-return]


def statuses(out: dict) -> dict[str, str]:  # type: ignore[type-arg]
    return {n: s["status"] for n, s in out["steps"].items()}


@pytest.mark.slow
def test_run_dry_run_force_only_and_lineage(demo: Path) -> None:
    first = kiln_cli("run")
    assert set(statuses(first).values()) == {"done"}
    kiln.flush()
    accuracy = kiln.get_run(first["steps"]["evaluate"]["run_id"]).metrics["accuracy"]
    assert 0.5 < accuracy <= 1.0

    plan = kiln_cli("run", "--dry-run", "-p", "train.C=0.1")
    assert plan["run_id"] is None
    assert statuses(plan) == {
        "load": "cached",
        "features": "cached",
        "split": "cached",
        "train": "would run",
        "evaluate": "would run",
    }
    assert plan["steps"]["train"]["reason"] == "param train.C changed (1.0 -> 0.1)"

    forced = kiln_cli("run", "--force", "features")
    assert statuses(forced)["features"] == "done"
    assert statuses(forced)["train"] == "cached"  # same features, same key downstream

    only = kiln_cli("run", "--only", "train", "-p", "train.C=0.5")
    assert statuses(only) == {
        "load": "not run",
        "features": "not run",
        "split": "not run",
        "train": "done",
        "evaluate": "not run",
    }

    tree = kiln_cli("lineage", "evaluate")
    assert tree["step"] == "evaluate"
    assert [c["step"] for c in tree["inputs"]] == ["split", "train"]
    load = tree["inputs"][0]["inputs"][0]["inputs"][0]
    assert load["step"] == "load"
    assert load["params"] == {"data": "data/customers.csv"}
    assert set(load["files"]) == {"data"}

    shown = kiln_cli("pipeline", "show")
    assert shown["evaluate"]["needs"] == ["train", "split"]
    assert shown["train"]["reads"] == ["C"]


@pytest.mark.slow
def test_a_no_op_run_imports_neither_the_project_nor_pandas(
    demo: Path, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "KILN_HOME": str(demo / ".kiln")}
    first = subprocess.run(
        [KILN, "run"], cwd=demo, env=env, capture_output=True, text=True, timeout=300
    )
    assert first.returncode == 0, first.stderr
    code = (
        "import sys\nfrom kiln.cli import main\nsys.argv = ['kiln', 'run']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'pandas', 'sqlalchemy', 'sklearn', 'numpy', 'churn_steps'}\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))\n"
    )
    again = subprocess.run(
        [sys.executable, "-c", code], cwd=demo, env=env, capture_output=True, text=True, timeout=120
    )

    assert again.returncode == 0, again.stderr
    assert "Nothing changed: 5 steps up to date" in again.stdout
    assert again.stdout.strip().endswith("[]")

    # The no-op is a tracked run like any other: the pipeline run, finished, with one
    # child per step, each a cache hit with the key, code and output of the real run.
    from kiln.tracking import TrackingClient

    client = TrackingClient(demo / ".kiln")
    found = re.search(r"\(run ([0-9a-f]{12}); outputs from run ([0-9a-f]{12})\)", again.stdout)
    assert found, again.stdout
    noop, real = (client.get_run(found[i]) for i in (1, 2))
    assert noop.id != real.id
    assert (noop.status, noop.experiment, noop.name) == ("finished", real.experiment, real.name)
    assert noop.params == real.params
    assert noop.tags == real.tags
    assert noop.metrics["kiln.pipeline.steps_cached"] == 5.0
    assert noop.environment["packages"] == real.environment["packages"]

    def children(run_id: str) -> dict[str, Any]:
        return {r.name: r for r in client.search_runs(filter=f"parent_id = '{run_id}'")}

    hits, ran = children(noop.id), children(real.id)
    assert sorted(hits) == sorted(ran) == ["evaluate", "features", "load", "split", "train"]
    for name, hit in hits.items():
        assert hit.status == "finished"
        # The params the step reads (what ran also logged what the step itself logs).
        assert hit.params.items() <= ran[name].params.items()
        assert hit.tags["kiln.pipeline.cache"] == "hit"
        for tag in ("step", "key", "code", "inputs", "output"):
            assert hit.tags[f"kiln.pipeline.{tag}"] == ran[name].tags[f"kiln.pipeline.{tag}"]

    # A changed param is noticed without running anything else first.
    (demo / "params.yaml").write_text(
        (demo / "params.yaml").read_text().replace("C: 1.0", "C: 2.0"), encoding="utf-8"
    )
    changed = subprocess.run(
        [KILN, "run"], cwd=demo, env=env, capture_output=True, text=True, timeout=300
    )
    assert changed.returncode == 0, changed.stderr
    assert "param train.C changed (1.0 -> 2.0)" in changed.stdout


def test_a_failing_step_exits_1_with_the_users_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "params.yaml").write_text("n: 3\n", encoding="utf-8")
    (tmp_path / "broken_steps.py").write_text(
        "def first(n):\n    return n\n\n\ndef second(first):\n    return first / 0\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    result = CliRunner().invoke(cli, ["run", "broken_steps"])

    assert result.exit_code == 1
    assert "Step 'second' raised ZeroDivisionError: division by zero" in result.output
    assert "inputs: first: int" in result.output
    assert 'broken_steps.py", line 6, in second' in result.output


def test_run_without_a_target_explains_pyproject(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run"])

    assert result.exit_code == 2
    assert "[tool.kiln]" in result.output


def test_lineage_of_an_unknown_output_suggests_names(demo: Path) -> None:
    kiln_cli("run", "--only", "load")
    result = CliRunner().invoke(cli, ["lineage", "lod"])

    assert result.exit_code == 1 or isinstance(result.exception, kiln.NotFoundError)
    assert "Did you mean 'load'" in str(result.exception)


@pytest.mark.skipif(os.name != "posix", reason="forkserver is POSIX only")
def test_bad_override_syntax_is_explained(demo: Path) -> None:
    result = CliRunner().invoke(cli, ["run", "-p", "train.C"])

    assert isinstance(result.exception, kiln.ConfigurationError)
    assert "KEY=VALUE" in str(result.exception)


def _git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.slow
@pytest.mark.parametrize("env", ["fresh", "current"])
def test_runs_reproduce_recreates_a_run_from_an_older_commit(demo: Path, env: str) -> None:
    _git(demo, "init", "-q")
    _git(demo, "add", ".")
    _git(demo, "commit", "-qm", "first")
    # in a process of its own, as users run it (it records what that process imported)
    ran = subprocess.run(
        [KILN, "run", "-p", "split.seed=3", "--json"],
        cwd=demo, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    original = json.loads(ran.stdout)
    # Move on: new code and params, committed; the old commit is no longer checked out.
    params = demo / "params.yaml"
    params.write_text(params.read_text().replace("C: 1.0", "C: 0.001"), encoding="utf-8")
    _git(demo, "commit", "-qam", "second")

    out = kiln_cli("runs", "reproduce", original["run_id"], "--env", env)

    # fresh: a new venv (uv) with the demo's declared dependencies (pandas, scikit-learn)
    # and kiln's, each at the version the run recorded.
    assert out["env"] == env
    assert out["original"] == original["run_id"]
    assert out["reproduced"] != original["run_id"]
    assert out["identical"] is True
    assert out["packages_changed"] == []  # the run recorded this very environment
    assert [(r["step"], r["key"]) for r in out["metrics"]] == [("evaluate", "accuracy")]
    again = kiln.get_run(out["reproduced"])
    assert again.params["train.C"] == "1.0"
    assert again.params["split.seed"] == "3"
    # kiln is installed with the extras the run used: the model is saved with skops again,
    # not pickle (a fresh env with kiln's lean base lacked skops)
    steps = {r.tags["kiln.pipeline.step"]: r for r in kiln.get_client().search_runs(
        filter=f"parent_id = '{out['reproduced']}'")}  # fmt: skip
    first = {r.tags["kiln.pipeline.step"]: r for r in kiln.get_client().search_runs(
        filter=f"parent_id = '{original['run_id']}'")}  # fmt: skip
    assert "skops" in first["train"].tags["kiln.imports"].split(",")
    assert "skops" in steps["train"].tags["kiln.imports"].split(",")
    manifest = json.loads(
        kiln.get_client().read_artifact(steps["train"].id, "model/kiln-model.json")
    )
    assert manifest["serialization"] == "skops"
    assert (
        "worktree"
        not in subprocess.run(
            ["git", "worktree", "list"], cwd=demo, capture_output=True, text=True, check=True
        ).stdout.split("\n", 1)[-1]
    )


def test_kiln_sweep_over_a_function_marks_the_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n", encoding="utf-8")
    (tmp_path / "sweep_fn.py").write_text(
        "def loss(lr, depth):\n    if depth == 9:\n        raise ValueError('bad depth')\n"
        "    return {'loss': (lr - 0.1) ** 2 + depth}\n",
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))

    out = kiln_cli(
        "sweep", "sweep_fn:loss", "-g", "lr=0.01,0.1,1.0", "-g", "depth=1,9",
        "-o", "loss", "--direction", "min",
    )  # fmt: skip

    assert len(out["trials"]) == 6
    assert out["best"]["params"] == {"lr": 0.1, "depth": 1}
    assert sum(t["status"] == "failed" for t in out["trials"]) == 3
