"""Pipelines: graph from names, cache keys that follow code, helpers, params and files.

The 100-step chain runs once per test module variant; each test edits one thing and
checks that exactly the steps that depend on it re-run.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import kiln
from kiln import PipelineError, StepFailedError
from kiln.pipeline import PickledOutputWarning, Pipeline
from pipeline_helpers import Project, chain_source

N = 100


def tail(start: int) -> list[str]:
    return [f"s{i}" for i in range(start, N)]


@pytest.fixture
def chain(tmp_path: Path) -> Project:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "data.txt").write_text("hello", encoding="utf-8")
    return Project(
        tmp_path / "proj", chain_source(N), {"seed": 1, "scale": 2.0, "data": "data.txt"}
    )


def run(project: Project) -> kiln.pipeline.PipelineResult:
    return Pipeline.from_module(project.module, root=project.root).run()


def test_a_100_step_chain_reruns_exactly_what_changed(chain: Project) -> None:
    first = run(chain)
    assert first.ran == tail(0)
    assert first["s99"][:3] == [1, 1, 2]

    second = run(chain)
    assert second.ran == []
    assert second.cached == tail(0)

    # A step's code: that step and its dependants.
    chain.edit(chain_source(N, tweak={50: "500"}))
    third = run(chain)
    assert third.ran == tail(50)
    assert third.steps["s50"].reason == "code changed"
    assert third.steps["s51"].reason == "input 's50' changed"

    # A helper that s30 calls: s30 (and its dependants, whose input changed).
    chain.edit(chain_source(N, tweak={50: "500"}, helper="x + 2"))
    fourth = run(chain)
    assert fourth.ran == tail(30)
    assert fourth.steps["s30"].reason == "code changed"

    # A param read by s60 only.
    chain.set_params({"seed": 1, "scale": 3.0, "data": "data.txt"})
    fifth = run(chain)
    assert fifth.ran == tail(60)
    assert fifth.steps["s60"].reason == "param scale changed (2.0 -> 3.0)"

    # The input file read by s70.
    (chain.root / "data.txt").write_text("hello, world", encoding="utf-8")
    sixth = run(chain)
    assert sixth.ran == tail(70)
    assert sixth.steps["s70"].reason.startswith("input file data.txt changed")
    assert sixth["s99"][70] == len("hello, world")


def test_a_code_change_that_keeps_the_output_stops_at_that_step(chain: Project) -> None:
    run(chain)
    chain.edit(chain_source(N, tweak={20: "int('20')"}))  # same value, new code

    again = run(chain)

    assert again.ran == ["s20"]


def test_comments_and_formatting_do_not_invalidate(chain: Project) -> None:
    run(chain)
    chain.edit("# a comment\n\n" + chain_source(N).replace("return [seed]", "return [ seed ]  # x"))

    assert run(chain).ran == []


SMALL = """
from pathlib import Path


def _double(x):
    return 2 * x


def raw(n: int):
    return list(range(n))


def doubled(raw):
    return [_double(x) for x in raw]


def total(doubled, offset=0):
    return sum(doubled) + offset


def other(raw, boom: bool = False):
    if boom:
        raise ValueError("the step broke on purpose")
    return len(raw)


def after_other(other):
    return other + 1
"""


@pytest.fixture
def small(tmp_path: Path) -> Project:
    return Project(tmp_path / "small", SMALL, {"n": 4})


def test_graph_from_names_helpers_are_not_steps(small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)

    assert pipe.graph() == {
        "raw": [],
        "doubled": ["raw"],
        "total": ["doubled"],
        "other": ["raw"],
        "after_other": ["other"],
    }
    assert pipe.dependants("raw")[0] == "raw"
    assert pipe.run()["total"] == 12


def test_a_failing_step_stops_only_its_dependants(small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)

    with pytest.raises(StepFailedError, match="the step broke on purpose") as info:
        pipe.run(overrides={"other.boom": True})

    result = info.value.result
    assert result.steps["other"].status == "failed"
    assert result.steps["after_other"].status == "skipped"
    assert result.steps["total"].status == "done"  # the independent branch finished
    error = info.value.failures["other"]
    assert "inputs: raw: list of length 4" in error
    assert "ValueError: the step broke on purpose" in error
    assert "kiln/pipeline" not in error  # the user's frames only
    assert small.name in error

    fixed = pipe.run()
    assert fixed.ran == ["other", "after_other"]  # the rest stayed cached


def test_every_run_is_tracked_with_a_child_run_per_step(tracked: str, small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)
    pipe.run()
    result = pipe.run(overrides={"n": 5, "total.offset": 1})

    kiln.flush()
    children = kiln.runs(filter=f"parent_id = '{result.run_id}'")
    assert len(children) == 5
    by_step = {r["tags.kiln.pipeline.step"]: r for _, r in children.iterrows()}
    assert set(by_step) == set(pipe.steps)
    assert by_step["raw"]["tags.kiln.pipeline.cache"] == "miss"
    assert by_step["raw"]["params.n"] == "5"
    assert by_step["total"]["params.total.offset"] == "1"
    assert by_step["doubled"]["tags.kiln.pipeline.output"] == result.steps["doubled"].output["sha"]
    parent = kiln.get_run(result.run_id)
    assert parent.params["n"] == "5"
    assert parent.metrics["kiln.pipeline.steps_done"] == 5.0


def test_missing_param_says_what_to_add(small: Project) -> None:
    small.set_params({})
    pipe = Pipeline.from_module(small.module, root=small.root)

    with pytest.raises(PipelineError, match=r"Step 'raw' needs 'n'.*-p raw.n=VALUE"):
        pipe.run()


def test_cycles_and_duplicate_names_are_refused() -> None:
    def a(b):
        return b

    def b(a):
        return a

    with pytest.raises(PipelineError, match="cycle: a -> b -> a"):
        Pipeline([a, b])
    with pytest.raises(PipelineError, match="Two steps are named 'a'"):
        Pipeline([a, kiln.step(b, name="a")])


def test_unknown_step_names_get_a_suggestion(small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)

    with pytest.raises(PipelineError, match="Did you mean 'total'"):
        pipe.run(force=["totl"])


def test_force_from_and_only(small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)
    pipe.run()

    assert pipe.run(force=["doubled"]).ran == ["doubled"]
    assert pipe.run(from_step="doubled").ran == ["doubled", "total"]
    only = pipe.run(only=["total"], overrides={"total.offset": 5})
    assert only.ran == ["total"]
    assert only["total"] == 17
    assert only.steps["raw"].status == "not run"


def test_dry_run_says_why_and_runs_nothing(small: Project) -> None:
    pipe = Pipeline.from_module(small.module, root=small.root)
    pipe.run()

    plan = pipe.plan(overrides={"n": 6})

    assert plan.steps["raw"].status == "would run"
    assert plan.steps["raw"].reason == "param n changed (4 -> 6)"
    assert plan.steps["doubled"].reason == "input 'raw' will be recomputed first"
    assert pipe.run().ran == []  # the dry run changed nothing


def _frame():
    return pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})


def _array():
    return np.arange(6, dtype="float32").reshape(2, 3)


def _nested():
    return (pd.DataFrame({"a": [1]}), {"k": np.ones(2)}, [1, "two"])


@pytest.mark.parametrize("make", [_frame, _array, _nested, lambda: {"x": [1, 2.5, None]}])
def test_outputs_are_stored_by_type_and_read_back(make, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    def produce():
        return make()

    result = Pipeline([produce], root=tmp_path).run()
    back = result["produce"]
    expected = make()
    if isinstance(expected, tuple):
        assert isinstance(back, tuple)
        pd.testing.assert_frame_equal(back[0], expected[0])
        np.testing.assert_array_equal(back[1]["k"], expected[1]["k"])
        assert back[2] == expected[2]
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(back, expected)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(back, expected)
        assert result.steps["produce"].output["format"] == "npy"
    else:
        assert back == expected


def test_an_unknown_type_is_pickled_with_a_warning(tmp_path: Path) -> None:
    def produce():
        return {1, 2, 3}

    with pytest.warns(PickledOutputWarning, match="stored with pickle"):
        result = Pipeline([produce], root=tmp_path).run()

    assert result["produce"] == {1, 2, 3}
    assert result.steps["produce"].output["warning"] == "pickled"


def test_a_kiln_model_output_is_saved_in_kilns_format(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    def fit():
        X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        return kiln.Model(LinearRegression()).fit(X, [1.0, 3.0, 5.0, 7.0])

    def predict(fit):
        return fit.predict(pd.DataFrame({"x": [2.5]})).tolist()

    result = Pipeline([fit, predict], root=tmp_path).run()

    assert result.steps["fit"].output["format"] == "kiln-model"
    assert "signature.json" in result.steps["fit"].output["files"]
    assert result["predict"] == pytest.approx([6.0])
    assert isinstance(result["fit"], kiln.Model)


def test_a_step_returning_a_model_saves_it_on_its_run_for_the_registry(
    tracked: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner
    from sklearn.linear_model import LinearRegression

    from kiln.cli import cli

    def fit():
        X = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
        return kiln.Model(LinearRegression()).fit(X, [1.0, 3.0, 5.0, 7.0])

    def fit_and_save():  # a step that saved its model itself is not saved twice
        model = fit()
        model.save()
        return model

    result = Pipeline([fit, fit_and_save], root=tmp_path).run()
    step_run = result.steps["fit"].run_id
    assert step_run is not None
    files = [a.path for a in kiln.get_run(step_run).artifacts]
    assert "model/kiln-model.json" in files
    saved_itself = [a.path for a in kiln.get_run(result.steps["fit_and_save"].run_id).artifacts]
    assert saved_itself.count("model/kiln-model.json") == 1
    registered = CliRunner().invoke(
        cli, ["--store", tracked, "models", "register", step_run[:12], "line", "--json"]
    )
    assert registered.exit_code == 0, registered.output
    model = kiln.load_model("models:/line/1", store=tracked)
    assert model.predict(pd.DataFrame({"x": [2.5]})).tolist() == pytest.approx([6.0])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    value=st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_json_outputs_round_trip(value, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kiln.artifacts import ArtifactStore
    from kiln.pipeline._outputs import load_output, save_output

    store = ArtifactStore(str(tmp_path / "a"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        desc = save_output(store, value)
    assert desc["format"] == "json"
    assert load_output(store, desc, tmp_path / "m") == value


def test_a_step_with_cache_off_always_runs_and_can_be_renamed(tmp_path: Path) -> None:
    calls: list[int] = []

    @kiln.step(name="now", cache=False)
    def clock() -> int:
        calls.append(1)
        return len(calls)

    def later(now: int) -> int:
        return now * 10

    pipe = Pipeline([clock, later], root=tmp_path)
    assert pipe.run()["later"] == 10
    again = pipe.run()

    assert again.steps["now"].reason == "not cached (cache=False)"
    assert again["later"] == 20


def test_the_runner_base_class_is_abstract() -> None:
    from kiln.pipeline._runners import Runner

    with pytest.raises(TypeError, match="abstract"):
        Runner()  # type: ignore[abstract]
