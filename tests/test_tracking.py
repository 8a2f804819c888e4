"""The tracking API as users call it: `kiln.start_run`, logging calls, `kiln.runs`, the client.

Every test runs once on a SQLite file and once on a real PostgreSQL database (the
`tracked` and `client` fixtures). Bad input must raise a clear error and leave what was
logged before intact.
"""

from __future__ import annotations

import getpass
import math
import os
import platform
import re
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kiln
from kiln import (
    ExperimentNotFoundError,
    InvalidMetricError,
    NoActiveRunError,
    ParamConflictError,
    RunNotFoundError,
    TrackingError,
)
from kiln.tracking import DEFAULT_EXPERIMENT, TrackingClient

# ------------------------------------------------------------------ a run's record


def test_run_records_params_metrics_tags_and_environment(tracked: str) -> None:
    with kiln.start_run(
        name="baseline", experiment="churn", params={"C": 1.0, "layers": [64, 32]}, tags={"a": 1}
    ) as run:
        kiln.log_param("model", "rf")
        kiln.log_params({"seed": 7, "opts": {"b": 2, "a": 1}, "flag": True})
        kiln.log_metric("loss", 0.5)
        kiln.log_metric("loss", 0.25)
        kiln.log_metrics({"acc": 0.8, "f1": 0.7}, step=3)
        kiln.set_tag("stage", "dev")
        kiln.set_tags({"owner": "ana", "a": 2})
        assert kiln.active_run() is run
    assert kiln.active_run() is None

    got = kiln.get_run(run.id)
    assert got.id == run.id
    assert len(run.id) == 32
    assert (got.name, got.experiment, got.status, got.parent_id) == (
        "baseline",
        "churn",
        "finished",
        None,
    )
    # Params are stored as text: lists and dicts as JSON (dict keys sorted).
    assert got.params == {
        "C": "1.0",
        "flag": "True",
        "layers": "[64, 32]",
        "model": "rf",
        "opts": '{"a": 1, "b": 2}',
        "seed": "7",
    }
    assert got.metrics == {"acc": 0.8, "f1": 0.7, "loss": 0.25}
    assert got.tags == {"a": "2", "owner": "ana", "stage": "dev"}
    assert got.error is None
    assert got.end_time is not None
    assert got.end_time >= got.start_time
    assert got.duration == (got.end_time - got.start_time) / 1000

    env = got.environment
    assert (
        env["python_version"] == f"{platform.python_implementation()} {platform.python_version()}"
    )
    assert env["user"] == getpass.getuser()
    assert env["host"] == socket.gethostname()
    assert env["pid"] == os.getpid()
    assert env["command"] == " ".join(sys.argv)
    assert env["packages"]["pandas"] == pd.__version__
    assert env["packages"]["numpy"] == np.__version__
    assert "kiln-ml" in env["packages"]
    # The autouse fixture works in a temporary folder outside any git repository.
    assert (env["git_commit"], env["git_dirty"], env["git_diff"]) == (None, None, None)


def test_run_snapshot_to_dict_and_active_run_methods(tracked: str) -> None:
    with kiln.start_run(experiment="e") as run:
        run.log_param("p", 1)
        run.log_params({"q": "x"})
        run.log_metric("m", 1.5)
        run.log_metrics({"m": 2.5, "n": 1})
        run.set_tag("t", "v")
        run.set_tags({"u": "w"})
        info = run.info()
        assert info.status == "running"
        assert info.end_time is None
        assert info.duration is None
        assert info.params == {"p": "1", "q": "x"}
        assert info.metrics == {"m": 2.5, "n": 1.0}
        assert repr(run).startswith(f"<ActiveRun {run.id[:12]} ")
    record = kiln.get_run(run.id).to_dict()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["start_time"])
    assert record["status"] == "finished"
    assert record["duration"] >= 0
    assert record["tags"] == {"t": "v", "u": "w"}


def test_default_experiment_and_generated_name(tracked: str) -> None:
    with kiln.start_run() as run:
        pass
    got = kiln.get_run(run.id)
    assert got.experiment == DEFAULT_EXPERIMENT == "Default"
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{1,2}", got.name)
    assert run.name == got.name


# ------------------------------------------------------------------------- metrics


def test_metric_steps_continue_the_series(tracked: str) -> None:
    with kiln.start_run() as run:
        for value in (0.1, 0.2, 0.3):
            kiln.log_metric("loss", value)  # steps 0, 1, 2
        kiln.log_metric("loss", 0.9, step=10)
        kiln.log_metric("loss", 1.0)  # continues after the highest step: 11
        kiln.log_metric("other", 5)  # each key has its own series
    history = kiln.metric_history(run.id, "loss")
    assert [(m.step, m.value) for m in history] == [
        (0, 0.1),
        (1, 0.2),
        (2, 0.3),
        (10, 0.9),
        (11, 1.0),
    ]
    assert all(m.key == "loss" and m.timestamp > 0 for m in history)
    assert [(m.step, m.value) for m in kiln.metric_history(run.id[:10], "other")] == [(0, 5.0)]


def test_latest_metric_is_the_value_at_the_highest_step(tracked: str) -> None:
    with kiln.start_run(experiment="late") as run:
        kiln.log_metric("acc", 0.9, step=5)
        kiln.log_metric("acc", 0.1, step=2)  # logged later, but at a lower step
        kiln.log_metrics({"acc": 0.3, "auc": 0.6}, step=1)
    assert kiln.get_run(run.id).metrics == {"acc": 0.9, "auc": 0.6}
    df = kiln.runs(experiment="late")
    assert df.loc[0, "metrics.acc"] == 0.9
    # The whole series is kept, in step order.
    assert [m.step for m in kiln.metric_history(run.id, "acc")] == [1, 2, 5]


def test_series_continues_from_the_store_in_a_new_client(
    client: TrackingClient, store_url: str
) -> None:
    rid = client.create_run()
    client.log_metrics(rid, [("loss", v, None, None) for v in (0.3, 0.2, 0.1)])  # steps 0-2
    client.flush()  # a hand-off to another process flushes first (kiln.flush())
    # Another process (a new client) goes on logging to the same run.
    later = TrackingClient(store_url)
    later.log_metrics(rid, [("loss", 0.05, None, None)])
    assert [m.step for m in later.metric_history(rid, "loss")] == [0, 1, 2, 3]
    # An explicit step below the stored ones must not rewind the series.
    fresh = TrackingClient(store_url)
    fresh.log_metrics(rid, [("loss", 0.5, 1, None), ("loss", 0.04, None, None)])
    assert [m.step for m in fresh.metric_history(rid, "loss")] == [0, 1, 1, 2, 3, 4]
    assert fresh.get_run(rid).metrics == {"loss": 0.04}


def test_numpy_numbers_are_accepted(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_metric("a", np.float32(0.5))
        kiln.log_metric("b", np.int64(3), step=np.int64(4))
        kiln.log_metric("c", np.array(0.25))  # a 0-d array, as from a tensor's .numpy()
        kiln.log_param("d", np.float64(0.1))
        kiln.log_param("e", np.int32(2))
    got = kiln.get_run(run.id)
    assert got.metrics == {"a": 0.5, "b": 3.0, "c": 0.25}
    assert got.params == {"d": "0.1", "e": "2"}
    assert kiln.metric_history(run.id, "b")[0].step == 4


INVALID_METRICS: list[tuple[object, str]] = [
    (float("nan"), r"Metric 'loss' is nan; kiln stores only finite numbers"),
    (float("inf"), r"Metric 'loss' is inf; kiln stores only finite numbers"),
    (-math.inf, r"Metric 'loss' is -inf;.*kiln\.set_tag\('diverged', 'true'\)"),
    (np.float64("nan"), r"is nan; kiln stores only finite numbers"),
    ("0.5", r"Metric 'loss' got '0\.5' \(str\); expected a real number"),
    (None, r"got None \(NoneType\); expected a real number"),
    (True, r"got True \(bool\); expected a real number"),
    ([1.0], r"got \[1\.0\] \(list\); expected a real number"),
    (1 + 2j, r"\(complex\); expected a real number"),
    (np.array([1.0, 2.0]), r"\(ndarray\); expected a real number"),
    (10**400, r"Metric 'loss' is a number of about 401 digits, too large for a 64-bit float"),
    (-(10**5000), r"about 5001 digits, too large .*record the exact number with kiln\.log_param"),
    (Fraction(10**400, 7), r"Metric 'loss' is a number of about 400 digits"),
]


def test_invalid_metric_values_are_refused(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_metric("loss", 1.0)
        for value, message in INVALID_METRICS:
            with pytest.raises(InvalidMetricError, match=message):
                kiln.log_metric("loss", value)  # type: ignore[arg-type]
        kiln.log_metric("loss", 0.5)
    # The refused values left no trace and no gap in the series.
    assert [(m.step, m.value) for m in kiln.metric_history(run.id, "loss")] == [(0, 1.0), (1, 0.5)]
    assert kiln.get_run(run.id).status == "finished"


def test_invalid_steps_are_refused(client: TrackingClient) -> None:
    rid = client.create_run()
    with pytest.raises(InvalidMetricError, match=r"Metric 'm': step must be an integer; got 1\.5"):
        client.log_metrics(rid, [("m", 1.0, 1.5, None)])  # type: ignore[list-item]
    with pytest.raises(InvalidMetricError, match=r"step must be an integer; got True"):
        client.log_metrics(rid, [("m", 1.0, True, None)])
    with pytest.raises(InvalidMetricError, match=r"Metric 'm' at step 3 is nan"):
        client.log_metrics(rid, [("m", float("nan"), 3, None)])
    # A step past 64 bits once reached the background writer and failed there.
    with pytest.raises(InvalidMetricError, match=r"step 9223372036854775808 does not fit in a 64"):
        client.log_metric(rid, "m", 1.0, step=2**63)
    with pytest.raises(InvalidMetricError, match=r"step of about 401 digits does not fit"):
        client.log_metrics(rid, [("m", 1.0, -(10**400), None)])
    with pytest.raises(InvalidMetricError, match=r"Metric 'm' at step 2 is a number of about 401"):
        client.log_metric(rid, "m", 10**400, step=2)
    client.log_metrics(rid, [("m", 2.0, None, None)])
    assert [(m.step, m.value) for m in client.metric_history(rid, "m")] == [(0, 2.0)]


def test_a_refused_batch_logs_nothing(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_metrics({"a": 1.0, "b": 1.0})
        with pytest.raises(InvalidMetricError, match=r"Metric 'b' is nan"):
            kiln.log_metrics({"a": 2.0, "b": float("nan")})
        kiln.log_metrics({"a": 3.0, "b": 3.0})
    for key in ("a", "b"):
        assert [(m.step, m.value) for m in kiln.metric_history(run.id, key)] == [
            (0, 1.0),
            (1, 3.0),
        ]


def test_metric_history_errors(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_metric("accuracy", 0.5)
    with pytest.raises(TrackingError, match=r"has no metric 'acuracy'\. Did you mean 'accuracy'\?"):
        kiln.metric_history(run.id, "acuracy")
    with pytest.raises(TrackingError, match=r"has no metric 'zzz'\. It has: accuracy\."):
        kiln.metric_history(run.id, "zzz")
    with pytest.raises(RunNotFoundError, match=r"No run with id 'ffffffff'"):
        kiln.metric_history("ffffffff", "accuracy")


# -------------------------------------------------------------------- params, tags


def test_param_relogged_with_same_value_is_a_no_op_and_a_change_is_refused(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_param("lr", 0.1)
        kiln.log_param("lr", 0.1)  # the same value again: fine
        kiln.log_params({"lr": 0.1, "depth": 3})
        with pytest.raises(
            ParamConflictError,
            match=r"Param 'lr' of run \w{12} is already '0\.1'; it cannot become '0\.2'",
        ):
            kiln.log_param("lr", 0.2)
        # A batch with one conflict is refused whole.
        with pytest.raises(ParamConflictError, match=r"Param 'depth' .* cannot become '4'"):
            kiln.log_params({"new": "x", "depth": 4})
        kiln.log_param("after", "ok")
    got = kiln.get_run(run.id)
    assert got.params == {"after": "ok", "depth": "3", "lr": "0.1"}
    assert got.status == "finished"


def test_bad_keys_and_values_are_refused(client: TrackingClient) -> None:
    rid = client.create_run()
    client.log_params(rid, {"kept": 1})
    client.set_tags(rid, {"kept": "yes"})
    with pytest.raises(TrackingError, match=r"A param key must be a non-empty string; got ''"):
        client.log_params(rid, {"": 1})
    with pytest.raises(TrackingError, match=r"A metric key must be a non-empty string; got 3"):
        client.log_metrics(rid, [(3, 1.0, None, None)])  # type: ignore[list-item]
    with pytest.raises(TrackingError, match=r"The tag key 'a\\nb' contains a control character"):
        client.set_tags(rid, {"a\nb": "x"})
    with pytest.raises(TrackingError, match=r"is 251 characters; the limit is 250"):
        client.log_params(rid, {"k" * 251: 1})
    with pytest.raises(TrackingError, match=r"Param 'big' is 8001 characters long; the limit"):
        client.log_params(rid, {"big": "x" * 8001})
    with pytest.raises(
        TrackingError, match=r"log_params expects a dict of name -> value; got list"
    ):
        client.log_params(rid, [("a", 1)])  # type: ignore[arg-type]
    with pytest.raises(TrackingError, match=r"set_tags expects a dict of name -> value; got str"):
        client.set_tags(rid, "a=1")  # type: ignore[arg-type]
    run = client.get_run(rid)
    assert (run.params, run.tags) == ({"kept": "1"}, {"kept": "yes"})


def test_log_metrics_needs_a_mapping(tracked: str) -> None:
    with (
        kiln.start_run() as run,
        pytest.raises(TrackingError, match=r"log_metrics expects a dict .*; got list"),
    ):
        kiln.log_metrics([("a", 1.0)])  # type: ignore[arg-type]
    assert kiln.get_run(run.id).metrics == {}


def test_tags_can_change(tracked: str) -> None:
    with kiln.start_run(tags={"stage": "draft"}) as run:
        kiln.set_tag("stage", "final")
        kiln.set_tag("n", 3)
    assert kiln.get_run(run.id).tags == {"n": "3", "stage": "final"}


# ------------------------------------------------------------------ run lifecycle


def test_nested_runs_become_children_and_inherit_the_experiment(tracked: str) -> None:
    with kiln.start_run(name="outer", experiment="search") as outer:
        with kiln.start_run(name="inner") as inner:
            assert kiln.active_run() is inner
            kiln.log_metric("fold", 1.0)  # goes to the innermost run
            with kiln.start_run(name="deepest") as deepest:
                pass
        with kiln.start_run(name="elsewhere", experiment="other") as other:
            pass
        assert kiln.active_run() is outer
        kiln.log_metric("mean", 0.5)
    got = {r.id: r for r in (kiln.get_run(x.id) for x in (outer, inner, deepest, other))}
    assert got[inner.id].parent_id == outer.id
    assert got[deepest.id].parent_id == inner.id
    assert got[other.id].parent_id == outer.id
    assert [got[x.id].experiment for x in (outer, inner, deepest, other)] == [
        "search",
        "search",
        "search",
        "other",
    ]
    assert inner.experiment == "search"
    assert inner.parent_id == outer.id
    assert got[inner.id].metrics == {"fold": 1.0}
    assert got[outer.id].metrics == {"mean": 0.5}
    assert all(r.status == "finished" for r in got.values())
    # Packages and git state are recorded once, on the top-level run.
    assert got[outer.id].environment["packages"]
    assert got[inner.id].environment["packages"] is None
    df = kiln.runs(filter=f"parent_id = '{outer.id}'")
    assert set(df["run_id"]) == {inner.id, other.id}


def test_parent_given_by_id_prefix(tracked: str) -> None:
    with kiln.start_run(experiment="sweep") as parent:
        pass
    with kiln.start_run(parent=parent.id[:8]) as child:
        assert child.parent_id == parent.id
    got = kiln.get_run(child.id)
    assert (got.parent_id, got.experiment) == (parent.id, "sweep")
    with pytest.raises(RunNotFoundError, match=r"No run with id '0123abcd'"):
        kiln.start_run(parent="0123abcd")
    assert kiln.active_run() is None


def test_a_run_that_raises_is_failed_with_its_traceback(tracked: str) -> None:
    started: list[str] = []

    def train() -> None:
        with kiln.start_run(experiment="crashy") as run:
            started.append(run.id)
            kiln.log_metric("before", 1.0)
            raise ValueError("boom")

    with pytest.raises(ValueError, match=r"^boom$"):  # the exception is not swallowed
        train()
    assert kiln.active_run() is None
    got = kiln.get_run(started[0])
    assert got.status == "failed"
    assert got.error is not None
    assert got.error.startswith("Traceback (most recent call last):")
    assert 'raise ValueError("boom")' in got.error
    assert got.error.rstrip().endswith("ValueError: boom")
    assert got.metrics == {"before": 1.0}  # what was logged before the failure is kept
    assert got.end_time is not None


def test_keyboard_interrupt_marks_the_run_killed(tracked: str) -> None:
    started: list[str] = []

    def train() -> None:
        with kiln.start_run() as run:
            started.append(run.id)
            kiln.log_metric("m", 1.0)
            raise KeyboardInterrupt("ctrl-c")

    with pytest.raises(KeyboardInterrupt, match=r"ctrl-c"):
        train()
    got = kiln.get_run(started[0])
    assert (got.status, got.error, got.metrics) == ("killed", "KeyboardInterrupt", {"m": 1.0})


def test_a_failing_child_fails_only_itself(tracked: str) -> None:
    with kiln.start_run() as parent:
        with pytest.raises(RuntimeError, match="fold 2"), kiln.start_run() as child:
            raise RuntimeError("fold 2")
        kiln.log_metric("after", 1.0)
    assert kiln.get_run(child.id).status == "failed"
    assert kiln.get_run(parent.id).status == "finished"
    assert kiln.get_run(parent.id).metrics == {"after": 1.0}


def test_runs_without_with_and_end_run(tracked: str) -> None:
    parent = kiln.start_run(name="manual")
    child = kiln.start_run(name="open child")
    kiln.log_metric("x", 1.0)
    parent.end("failed")  # ending a run ends the runs still open inside it
    assert kiln.active_run() is None
    assert kiln.get_run(child.id).status == "failed"
    assert kiln.get_run(child.id).error is None
    assert kiln.get_run(parent.id).status == "failed"

    solo = kiln.start_run()
    kiln.end_run()
    assert kiln.get_run(solo.id).status == "finished"
    solo.end("killed")  # already ended: nothing changes
    assert kiln.get_run(solo.id).status == "finished"
    with pytest.raises(
        NoActiveRunError, match=r"kiln\.end_run\(\) was called, but no run is active"
    ):
        kiln.end_run()

    other = kiln.start_run()
    with pytest.raises(
        TrackingError, match=r"A run ends as finished, failed or killed; got 'done'"
    ):
        kiln.end_run("done")
    kiln.end_run("killed")
    assert kiln.get_run(other.id).status == "killed"


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: kiln.log_param("a", 1), "log_param"),
        (lambda: kiln.log_params({"a": 1}), "log_params"),
        (lambda: kiln.log_metric("a", 1.0), "log_metric"),
        (lambda: kiln.log_metrics({"a": 1.0}), "log_metrics"),
        (lambda: kiln.set_tag("a", 1), "set_tag"),
        (lambda: kiln.set_tags({"a": 1}), "set_tags"),
        (lambda: kiln.log_artifact(b"x", name="x.bin"), "log_artifact"),
        (lambda: kiln.log_text("x", "x.txt"), "log_text"),
        (lambda: kiln.log_dataset({"a": [1]}), "log_dataset"),
    ],
)
def test_logging_outside_a_run_starts_one(tracked: str, call: object, name: str) -> None:
    # It raised NoActiveRunError, so a notebook that logs could not run in plain Jupyter;
    # MLflow's fluent calls start a run, and so do kiln's.
    call()  # type: ignore[operator]
    run = kiln.active_run()
    assert run is not None
    assert run.experiment == "Default"
    kiln.end_run()
    stored = kiln.get_run(run.id)
    assert stored.status == "finished"
    assert stored.params or stored.metrics or stored.tags or stored.artifacts or stored.datasets
    assert kiln.active_run() is None


def test_logging_after_the_run_ended_starts_another(tracked: str) -> None:
    with kiln.start_run() as run:
        kiln.log_metric("m", 1.0)
    kiln.log_metric("m", 2.0)
    second = kiln.active_run()
    assert second is not None
    assert second.id != run.id
    kiln.end_run()
    assert [m.value for m in kiln.metric_history(run.id, "m")] == [1.0]
    assert [m.value for m in kiln.metric_history(second.id, "m")] == [2.0]


@pytest.mark.parametrize(
    ("tail", "status", "error"),
    [
        ("", "finished", None),
        ("raise ValueError('boom')", "failed", "ValueError: boom"),
        ("raise KeyboardInterrupt", "killed", "KeyboardInterrupt"),
    ],
)
def test_a_script_that_logs_without_a_run_gets_one_ended_at_exit(
    tracked: str, subprocess_env: dict[str, str], tail: str, status: str, error: str | None
) -> None:
    code = f"import kiln\nkiln.log_metric('loss', 0.5)\nkiln.log_param('lr', 0.1)\n{tail}\n"
    done = subprocess.run(
        [sys.executable, "-c", code], env={**subprocess_env, "KILN_STORE": tracked},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert (done.returncode == 0) == (status == "finished"), done.stderr
    (run,) = kiln.get_client().search_runs()
    assert run.status == status
    assert run.metrics == {"loss": 0.5}
    assert run.params == {"lr": "0.1"}
    if error is None:
        assert run.error is None
    else:
        assert error in (run.error or "")


def test_refused_params_at_start_end_the_run_failed(tracked: str) -> None:
    with pytest.raises(TrackingError, match=r"A param key must be a non-empty string; got ''"):
        kiln.start_run(experiment="bad", params={"": 1})
    assert kiln.active_run() is None
    df = kiln.runs(experiment="bad")
    assert list(df["status"]) == ["failed"]
    assert kiln.get_run(df.loc[0, "run_id"]).error == "The params given to start_run were refused."


def test_store_cannot_change_while_a_run_is_active(tracked: str, tmp_path: Path) -> None:
    with kiln.start_run() as run:
        with pytest.raises(TrackingError, match=r"Cannot change the store while a run is active"):
            kiln.configure(tmp_path / "elsewhere")
        kiln.log_metric("m", 1.0)
    assert kiln.get_run(run.id).metrics == {"m": 1.0}


# ------------------------------------------------------------------- kiln.runs()


def test_runs_dataframe_columns_and_values(tracked: str) -> None:
    with kiln.start_run(name="a", experiment="churn", params={"model": "rf"}) as a:
        kiln.log_metric("acc", 0.5)
        kiln.log_metric("acc", 0.8)
        kiln.set_tag("note", "first")
    with kiln.start_run(name="b", experiment="churn", params={"model": "gbm", "depth": 3}) as b:
        kiln.log_metric("auc", 0.7)
    with kiln.start_run(name="c", experiment="other"):
        pass
    df = kiln.runs(experiment="churn", order_by="name")
    assert list(df.columns) == [
        "run_id",
        "experiment",
        "name",
        "status",
        "start_time",
        "end_time",
        "duration",
        "parent_id",
        "user",
        "git_commit",
        "params.depth",
        "params.model",
        "metrics.acc",
        "metrics.auc",
        "tags.note",
    ]
    assert list(df["run_id"]) == [a.id, b.id]
    assert list(df["name"]) == ["a", "b"]
    assert list(df["status"]) == ["finished", "finished"]
    assert list(df["params.model"]) == ["rf", "gbm"]
    assert df.loc[0, "metrics.acc"] == 0.8  # the latest value
    assert math.isnan(df.loc[1, "metrics.acc"])  # missing values are NaN
    assert df.loc[1, "params.depth"] == "3"
    assert pd.isna(df.loc[0, "params.depth"])
    assert isinstance(df["start_time"].dtype, pd.DatetimeTZDtype)
    assert str(df["start_time"].dt.tz) == "UTC"
    assert (df["end_time"] >= df["start_time"]).all()
    assert (df["duration"] >= 0).all()
    assert set(df["user"]) == {getpass.getuser()}

    assert len(kiln.runs()) == 3
    assert set(kiln.runs(experiment=["churn", "other"])["name"]) == {"a", "b", "c"}
    assert list(kiln.runs(experiment="churn", filter="metrics.acc > 0.6")["name"]) == ["a"]


def test_runs_on_an_empty_store_has_the_base_columns(tracked: str) -> None:
    df = kiln.runs()
    assert df.empty
    assert list(df.columns)[:4] == ["run_id", "experiment", "name", "status"]
    with kiln.start_run(experiment="e"):
        pass
    assert kiln.runs(experiment="e", filter="status = 'failed'").empty


def test_unknown_experiment_suggests_the_closest_name(tracked: str) -> None:
    with kiln.start_run(experiment="churn"):
        pass
    with pytest.raises(
        ExperimentNotFoundError,
        match=r"No experiment named 'chrun'\. Did you mean 'churn'\? List them with: kiln",
    ):
        kiln.runs(experiment="chrun")
    with pytest.raises(ExperimentNotFoundError, match=r"No experiment named 'zzzzzz'\. List them"):
        kiln.runs(experiment=["churn", "zzzzzz"])
    assert len(kiln.runs(experiment="churn")) == 1


# ----------------------------------------------------------------------- run ids


def test_get_run_by_unique_prefix(tracked: str) -> None:
    with kiln.start_run() as run:
        pass
    assert kiln.get_run(run.id[:6]).id == run.id
    assert kiln.get_run(run.id[:8].upper()).id == run.id
    assert kiln.get_run(f"  {run.id}  ").id == run.id


def test_unknown_and_ambiguous_run_ids(client: TrackingClient) -> None:
    ids = [client.create_run() for _ in range(17)]  # 17 ids: two share a first digit
    first = [i[0] for i in ids]
    shared = next(c for c in first if first.count(c) > 1)
    with pytest.raises(RunNotFoundError, match=rf"Run id prefix '{shared}' matches several runs"):
        client.resolve_run_id(shared)
    with pytest.raises(RunNotFoundError, match=r"No run with id '0{32}' in the store at "):
        client.get_run("0" * 32)
    with pytest.raises(RunNotFoundError, match=r"A run id must be a non-empty string; got ''"):
        client.get_run("")
    with pytest.raises(RunNotFoundError, match=r"got None"):
        client.get_run(None)  # type: ignore[arg-type]
    # '%' and '_' are not id characters (nor SQL wildcards here).
    for bad in ("%", "_", ids[0][:4] + "%"):
        with pytest.raises(RunNotFoundError, match=rf"No run with id '{re.escape(bad)}'"):
            client.get_run(bad)


# ------------------------------------------------------------------- experiments


def test_experiments_list_rename_and_delete(client: TrackingClient) -> None:
    churn = client.experiment_id("churn", create=True)
    assert client.experiment_id("churn") == churn
    assert client.experiment_id("churn", create=True) == churn
    r1 = client.create_run(experiment="churn")
    client.create_run(experiment="churn")
    client.create_run(experiment="fraud")
    listed = {e.name: e for e in client.list_experiments()}
    assert {n: e.n_runs for n, e in listed.items()} == {"churn": 2, "fraud": 1}
    assert listed["churn"].id == churn
    assert listed["churn"].created_at > 0

    client.rename_experiment("churn", "churn-v2")
    assert client.get_run(r1).experiment == "churn-v2"
    with pytest.raises(ExperimentNotFoundError, match=r"No experiment named 'churn'\. Did you"):
        client.experiment_id("churn")
    with pytest.raises(TrackingError, match=r"an experiment called 'fraud' already exists"):
        client.rename_experiment("churn-v2", "fraud")
    with pytest.raises(TrackingError, match=r"An experiment name must be a non-empty string"):
        client.rename_experiment("churn-v2", " ")
    with pytest.raises(TrackingError, match=r"An experiment name must be a non-empty string"):
        client.experiment_id("")

    assert client.delete_experiment("churn-v2") == 2
    assert [e.name for e in client.list_experiments()] == ["fraud"]
    with pytest.raises(RunNotFoundError, match=r"No run with id"):
        client.get_run(r1)
    # The name can be used again, for a new, empty experiment.
    again = client.experiment_id("churn-v2", create=True)
    assert again != churn
    assert client.search_runs(experiment="churn-v2") == []
    client.create_run(experiment="churn-v2")
    assert len(client.search_runs(experiment="churn-v2")) == 1
    # gc purges the deleted runs and the deleted experiment.
    assert client.gc()["runs_purged"] == 2
    assert client.info()["deleted_runs"] == 0
    assert {e.name: e.n_runs for e in client.list_experiments()} == {"fraud": 1, "churn-v2": 1}


def test_delete_runs_deletes_their_children(client: TrackingClient) -> None:
    top = client.create_run(experiment="e", name="top")
    child = client.create_run(name="child", parent_id=top)
    grandchild = client.create_run(name="grandchild", parent_id=child)
    sibling = client.create_run(experiment="e", name="sibling")
    client.log_metrics(grandchild, [("m", 1.0, None, None)])
    deleted = client.delete_runs([top[:10]])
    assert sorted(deleted) == sorted([top, child, grandchild])
    assert [r.id for r in client.search_runs()] == [sibling]
    for rid in (top, child, grandchild):
        with pytest.raises(RunNotFoundError, match=rf"No run with id '{rid}'"):
            client.get_run(rid)
    with pytest.raises(RunNotFoundError, match=r"No run with id"):
        client.delete_runs([top])
    assert client.info()["deleted_runs"] == 3
    assert client.gc() == {
        "runs_purged": 3,
        "blobs_removed": 0,
        "bytes_freed": 0,
        "blobs_kept_recent": 0,
    }
    assert client.info()["deleted_runs"] == 0
    assert client.get_run(sibling).name == "sibling"


# --------------------------------------------------------------------- git state


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    out = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def test_git_state_is_recorded(
    tracked: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "trunk")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)

    with kiln.start_run(experiment="git") as clean, kiln.start_run() as nested:
        pass
    (repo / "train.py").write_text("print('v2')\n")
    # Runs started within a second of each other share one reading of the repository
    # (reading it costs ~8 ms of subprocesses): after an edit, clear_caches() makes the
    # next run read it again at once.
    kiln.tracking.clear_caches()
    with kiln.start_run(experiment="git") as dirty:
        pass

    env = kiln.get_run(clean.id).environment
    assert (env["git_commit"], env["git_branch"], env["git_dirty"], env["git_diff"]) == (
        head,
        "trunk",
        False,
        None,
    )
    assert kiln.get_run(nested.id).environment["git_commit"] is None  # top-level runs only
    env = kiln.get_run(dirty.id).environment
    assert (env["git_commit"], env["git_dirty"]) == (head, True)
    assert "-print('v1')" in env["git_diff"]
    assert "+print('v2')" in env["git_diff"]
    assert list(kiln.runs(filter="git_dirty = true")["run_id"]) == [dirty.id]
    for clean_filter in ("git_dirty = false", "git_dirty = 'false'", "git_dirty = 0"):
        assert list(kiln.runs(filter=clean_filter)["run_id"]) == [clean.id], clean_filter
    assert list(kiln.runs(filter="git_dirty in ('True', 1)")["run_id"]) == [dirty.id]
    with pytest.raises(kiln.FilterSyntaxError, match=r"git_dirty is true or false.*not 'no'"):
        kiln.runs(filter="git_dirty = 'no'")
    assert set(kiln.runs(filter=f"git_commit = '{head}'")["run_id"]) == {clean.id, dirty.id}
    assert kiln.runs(filter="git_branch = 'trunk'")["git_commit"].tolist() == [head, head]


def test_a_huge_error_is_stored_cut_and_kept_whole_as_an_artifact(
    tracked: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # A 5 MB exception message was stored whole as the run's error, read by every listing
    # and printed whole by `kiln runs show`.
    script = tmp_path / "big.py"
    script.write_text(
        "import kiln\n"
        "with kiln.start_run(name='big'):\n"
        "    raise ValueError('head ' + 'x' * 5_000_000 + ' tail')\n",
        encoding="utf-8",
    )
    env = {**subprocess_env, "KILN_STORE": tracked}
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 1
    [run] = kiln.get_client().search_runs(filter="name = 'big'")
    full = run.error or ""
    assert run.status == "failed"
    assert len(full) <= 10_000
    assert full.startswith("Traceback (most recent call last):")
    assert full.rstrip().endswith("x tail")
    assert re.search(r"\[\.\.\. 4,99\d,\d{3} characters cut; the whole text is the run's "
                     r"artifact kiln/error\.txt \.\.\.\]", full)  # fmt: skip
    whole = kiln.get_client().read_artifact(run.id, "kiln/error.txt").decode()
    assert "ValueError: head " + "x" * 5_000_000 + " tail" in whole
    shown = subprocess.run(
        [str(Path(sys.executable).parent / "kiln"), "--store", tracked, "runs", "show", run.id],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert len(shown.stdout) < 30_000
    assert "kiln/error.txt" in shown.stdout
    # A short error is stored as given, with no artifact.
    with pytest.raises(KeyError, match="small"), kiln.start_run(name="small") as small:
        raise KeyError("small")
    got = kiln.get_run(small.id)
    assert (got.error or "").rstrip().endswith("KeyError: 'small'")
    assert got.artifacts == []
