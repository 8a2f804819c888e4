"""Runners (process pool, Ray) and sweeps: parallel runs recorded as real child runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import kiln
from kiln import ConfigurationError
from kiln.pipeline import Pipeline
from pipeline_helpers import Project

# Four independent steps. Each takes the next free arrival slot, then waits (up to a
# minute) for its partner - slot 0 with 1, 2 with 3 - before working for a second: with
# two workers the pairs run side by side, so their recorded intervals overlap whatever
# the machine's load; a runner that ran them one at a time would leave each step alone.
PARALLEL = """
import os
import time

SLOTS = os.environ.get("KILN_TEST_SLOTS", "")


def _together():
    if not SLOTS:
        return
    i = 0
    while True:
        try:
            os.close(os.open(os.path.join(SLOTS, str(i)), os.O_CREAT | os.O_EXCL))
            break
        except FileExistsError:
            i += 1
    partner = os.path.join(SLOTS, str(i ^ 1))
    deadline = time.monotonic() + 60
    while not os.path.exists(partner) and time.monotonic() < deadline:
        time.sleep(0.01)


def a():
    _together()
    time.sleep(1)
    return "a"


def b():
    _together()
    time.sleep(1)
    return "b"


def c():
    _together()
    time.sleep(1)
    return "c"


def d():
    _together()
    time.sleep(1)
    return "d"
"""


def _overlap(x: Any, y: Any) -> bool:
    return bool(x["start_time"] < y["end_time"] and y["start_time"] < x["end_time"])


@pytest.mark.slow
def test_process_runner_runs_independent_steps_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = tmp_path / "slots"
    slots.mkdir()
    monkeypatch.setenv("KILN_TEST_SLOTS", str(slots))  # inherited by the spawned workers
    project = Project(tmp_path / "par", PARALLEL)
    pipe = Pipeline.from_module(project.module, root=project.root)

    result = pipe.run(runner="processes", jobs=2)

    assert result.ran == ["a", "b", "c", "d"]
    assert result["c"] == "c"
    kiln.flush()
    runs = kiln.runs(filter=f"parent_id = '{result.run_id}'", order_by="start_time")
    assert len(runs) == 4
    rows = [r for _, r in runs.iterrows()]
    assert all(r["status"] == "finished" for r in rows)
    # The steps ran two by two: the first two recorded intervals overlap, and so do the
    # last two; never more than two at once.
    assert _overlap(rows[0], rows[1])
    assert _overlap(rows[2], rows[3])
    for r in rows:
        at_start = [o for o in rows if o["start_time"] <= r["start_time"] < o["end_time"]]
        assert len(at_start) <= 2


def test_an_unknown_runner_or_start_method_is_refused(tmp_path: Path) -> None:
    def one() -> int:
        return 1

    pipe = Pipeline([one], root=tmp_path)
    with pytest.raises(ConfigurationError, match="Did you mean 'processes'"):
        pipe.run(runner="process")
    with pytest.raises(kiln.PipelineError, match=r"defined inside a function.*Move it to a module"):
        pipe.run(runner="processes")
    project = Project(tmp_path / "p", PARALLEL)
    importable = Pipeline.from_module(project.module, root=project.root)
    with pytest.raises(ConfigurationError, match="fork is unsafe"):
        importable.run(runner="processes", start_method="fork")


SMALL = """
def raw(n: int):
    return list(range(n))


def doubled(raw):
    return [2 * x for x in raw]


def halves(raw):
    return [x / 2 for x in raw]


def total(doubled, halves):
    return {"sum": sum(doubled) + sum(halves)}
"""


@pytest.fixture(scope="session")
def ray_local() -> Iterator[Any]:
    """One local Ray for the session (num_cpus=2); always shut down."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _strip(tree: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in tree.items() if k not in ("run_id", "status")}
    out["inputs"] = [_strip(c) for c in tree["inputs"]]
    return out


@pytest.mark.slow
def test_ray_runner_gives_the_same_outputs_keys_and_lineage(tmp_path: Path, ray_local: Any) -> None:
    from kiln.pipeline._lineage import lineage

    project = Project(tmp_path / "rayproj", SMALL, {"n": 5})
    pipe = Pipeline.from_module(project.module, root=project.root)
    here = pipe.run()
    here_keys = {n: o.key for n, o in here.steps.items()}
    here_outputs = {n: o.output for n, o in here.steps.items()}
    here_tree = _strip(lineage(project.root, "total"))
    from kiln.pipeline._state import state_dir

    shutil.rmtree(state_dir(project.root))

    there = pipe.run(runner="ray", jobs=2)

    assert there.ran == ["raw", "doubled", "halves", "total"]
    assert {n: o.key for n, o in there.steps.items()} == here_keys
    assert {n: o.output for n, o in there.steps.items()} == here_outputs
    assert there["total"] == {"sum": 25.0}
    assert _strip(lineage(project.root, "total")) == here_tree
    kiln.flush()
    children = kiln.runs(filter=f"parent_id = '{there.run_id}'")
    assert sorted(children["tags.kiln.pipeline.step"]) == ["doubled", "halves", "raw", "total"]


SWEEP = """
def objective(x, y):
    if x == 3 and y == 1:
        raise RuntimeError("this trial crashes on purpose")
    return {"score": -((x - 2) ** 2) - (y - 1) ** 2, "x_plus_y": x + y}
"""


@pytest.mark.slow
def test_a_sweep_of_20_trials_on_2_jobs(tmp_path: Path) -> None:
    project = Project(tmp_path / "sweep", SWEEP)

    found = kiln.sweep(
        project.module.objective,
        {"x": [0, 1, 2, 3, 4], "y": [0, 1, 2, 3]},
        objective="score",
        jobs=2,
    )

    assert len(found.trials) == 20
    assert found.best is not None
    assert found.best["params"] == {"x": 2, "y": 1}
    table = found.table()
    assert bool(table.iloc[0]["best"])
    assert table.iloc[0]["metrics.score"] == 0
    assert table["best"].sum() == 1
    kiln.flush()
    children = kiln.runs(filter=f"parent_id = '{found.run_id}'")
    assert len(children) == 20
    failed = children[children["status"] == "failed"]
    assert len(failed) == 1
    crashed = kiln.get_run(failed.iloc[0]["run_id"])
    assert crashed.params == {"x": "3", "y": "1"}
    assert "RuntimeError: this trial crashes on purpose" in (crashed.error or "")
    assert "in objective" in (crashed.error or "")
    assert kiln.get_run(found.run_id).tags["kiln.sweep.best_run"] == found.best["run_id"]


def test_a_random_sweep_in_process_is_seeded(tmp_path: Path) -> None:
    def f(a: float, k: int) -> float:
        return a * k

    one = kiln.sweep(f, {"a": (0.0, 1.0), "k": [1, 2, 3]}, strategy="random", trials=4, seed=3)
    two = kiln.sweep(f, {"a": (0.0, 1.0), "k": [1, 2, 3]}, strategy="random", trials=4, seed=3)

    assert [t["params"] for t in one.trials] == [t["params"] for t in two.trials]
    assert one.best is not None
    assert one.best["metrics"]["objective"] == max(t["metrics"]["objective"] for t in one.trials)
    with pytest.raises(ConfigurationError, match="Did you mean 'grid'"):
        kiln.sweep(f, {"a": [1.0], "k": [1]}, strategy="gird")


def test_a_pipeline_sweep_reuses_cached_steps(tmp_path: Path) -> None:
    project = Project(tmp_path / "psweep", SMALL, {"n": 3})
    pipe = Pipeline.from_module(project.module, root=project.root)

    found = pipe.sweep({"n": [2, 3, 4]}, objective="sum", direction="max")

    assert found.best is not None
    assert found.best["params"] == {"n": 4}
    assert json.loads(json.dumps(found.best["metrics"])) == {"sum": 15.0}


def test_an_optuna_sweep_finds_the_optimum_and_records_each_trial(tmp_path: Path) -> None:
    def bowl(x: float, k: int) -> dict[str, float]:
        if k == 3:
            raise ValueError("k=3 crashes")
        return {"loss": (x - 0.3) ** 2 + k}

    found = kiln.sweep(
        bowl,
        {"x": (0.0, 1.0), "k": [0, 1, 3]},
        strategy="optuna",
        trials=12,
        objective="loss",
        direction="min",
        seed=1,
    )

    assert len(found.trials) == 12
    assert found.best is not None
    assert found.best["params"]["k"] == 0
    finished = [t["metrics"]["loss"] for t in found.trials if t["status"] == "finished"]
    assert found.best["metrics"]["loss"] == min(finished)
    kiln.flush()
    assert len(kiln.runs(filter=f"parent_id = '{found.run_id}'")) == 12
