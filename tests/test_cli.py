"""The `kiln` command line, as users call it: `CliRunner` for most, real processes for errors.

`CliRunner` runs `kiln.cli.cli` itself, so a kiln error reaches the test as an exception;
the `Error: ...` line and exit status 1 come from `kiln.cli.main`, which only a real
`kiln` process goes through.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from conftest import make_pg_database
from kiln import (
    ExperimentNotFoundError,
    FilterSyntaxError,
    RunNotFoundError,
    TrackingError,
    __version__,
)
from kiln.cli import cli
from kiln.store import SCHEMA_REVISIONS
from kiln.tracking import TrackingClient

KILN = str(Path(sys.executable).parent / "kiln")

A_NOTES = b"only run a has these notes\n" * 40
SHARED = b"both runs logged this file\n" * 10
B_NOTES = b"run b's notes"


@dataclass
class Populated:
    """A store with two finished runs in experiment `churn` and one child run of b."""

    url: str
    client: TrackingClient
    a: str
    b: str
    child: str


def populate(url: str) -> Populated:
    client = TrackingClient(url)
    a = client.create_run(experiment="churn", name="rf-small")
    client.log_params(a, {"model": "rf", "depth": 3, "seed": 7})
    client.log_metrics(a, [("acc", 0.81, 0, None), ("loss", 0.52, 0, None)])
    client.set_tags(a, {"owner": "ana"})
    client.log_dataset(a, {"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]}, role="train", name="train-v1")
    client.log_artifact(a, A_NOTES, name="notes.txt")
    client.log_artifact(a, SHARED, name="shared/readme.txt")
    client.end_run(a)
    b = client.create_run(experiment="churn", name="rf-deep")
    client.log_params(b, {"model": "rf", "depth": 9, "seed": 7})
    client.log_metrics(b, [("acc", 0.5, 0, None), ("acc", 0.87, 1, None), ("loss", 0.41, 1, None)])
    client.log_artifact(b, B_NOTES, name="notes.txt")
    client.log_artifact(b, SHARED, name="shared/readme.txt")
    client.end_run(b)
    child = client.create_run(name="fold-1", parent_id=b)
    client.end_run(child, "failed", error="ValueError: fold 1 broke")
    return Populated(url, client, a, b, child)


@pytest.fixture
def populated(store_url: str) -> Populated:
    """A fresh populated store (both backends), for tests that change it."""
    return populate(store_url)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Populated:
    """One populated store per backend for this module's read-only tests."""
    with pytest.MonkeyPatch.context() as mp:
        for var in ("KILN_STORE", "KILN_HOME", "KILN_ARTIFACTS"):
            mp.delenv(var, raising=False)
        if request.param == "sqlite":
            return populate(f"sqlite:///{tmp_path_factory.mktemp('shared') / 'kiln.db'}")
        return populate(make_pg_database(tmp_path_factory.mktemp("shared-pg-artifacts")))


def kiln(store: str, *args: str, input: str | None = None) -> Result:
    """`kiln --store STORE ARGS...` in this process; kiln errors are left in `.exception`."""
    return CliRunner().invoke(cli, ["--store", store, *args], input=input)


def ok(store: str, *args: str, input: str | None = None) -> Result:
    """Like `kiln`, for commands that must succeed."""
    result = CliRunner().invoke(cli, ["--store", store, *args], input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def as_json(store: str, *args: str) -> Any:
    return json.loads(ok(store, *args, "--json").stdout)


# ------------------------------------------------------------------------- kiln runs
def test_runs_list_json_has_every_run_with_latest_metrics(shared: Populated) -> None:
    listed = as_json(shared.url, "runs", "list", "--all")

    assert isinstance(listed, list)
    by_name = {r["name"]: r for r in listed}
    assert set(by_name) == {"rf-small", "rf-deep", "fold-1"}
    assert by_name["rf-deep"]["metrics"] == {"acc": 0.87, "loss": 0.41}  # highest step
    assert by_name["rf-small"]["params"] == {"depth": "3", "model": "rf", "seed": "7"}
    assert by_name["rf-small"]["tags"] == {"owner": "ana"}
    assert by_name["fold-1"]["parent_id"] == shared.b
    assert by_name["fold-1"]["status"] == "failed"
    assert by_name["rf-small"]["experiment"] == "churn"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*\+00:00", by_name["rf-small"]["start_time"])
    # the runs' files too, as `kiln runs show --json` has them
    assert [a["path"] for a in by_name["rf-small"]["artifacts"]] == [
        "notes.txt",
        "shared/readme.txt",
    ]
    assert [a["path"] for a in by_name["rf-deep"]["artifacts"]] == [
        "notes.txt",
        "shared/readme.txt",
    ]
    assert [(d["name"], d["role"]) for d in by_name["rf-small"]["datasets"]] == [
        ("train-v1", "train")
    ]
    assert by_name["rf-small"]["datasets"][0]["n_rows"] == 3
    assert by_name["fold-1"]["artifacts"] == []
    shown = as_json(shared.url, "runs", "show", shared.a)
    assert shown["artifacts"] == by_name["rf-small"]["artifacts"]
    assert shown["datasets"] == by_name["rf-small"]["datasets"]


def test_runs_list_filters_orders_and_limits(shared: Populated) -> None:
    def names(*args: str) -> list[str]:
        return [r["name"] for r in as_json(shared.url, "runs", "list", "--all", *args)]

    assert names("--filter", "metrics.acc > 0.85") == ["rf-deep"]
    assert names("-f", "params.depth >= 3 and params.model = 'rf'", "-o", "params.depth") == [
        "rf-small",
        "rf-deep",
    ]
    assert names("--order-by", "metrics.acc desc") == ["rf-deep", "rf-small", "fold-1"]
    assert names("-o", "metrics.acc desc", "--limit", "1") == ["rf-deep"]
    assert names("-e", "churn", "-f", "status = 'failed'") == ["fold-1"]
    assert names("-f", "metrics.acc > 2") == []
    # A limit past SQL's 64-bit LIMIT was an OverflowError from the driver; it means all.
    assert len(names("-n", "99999999999999999999")) == 3
    assert len(names("-n", "9" * 400, "-o", "metrics.acc desc")) == 3


def test_runs_list_table_shows_runs_and_metric_columns(shared: Populated) -> None:
    out = ok(shared.url, "runs", "list", "-o", "metrics.acc desc").stdout

    header = next(line for line in out.splitlines() if "experiment" in line)
    assert re.search(r"id .* experiment .* name .* status .* acc .* loss", header)
    assert out.index("rf-deep") < out.index("rf-small")
    assert shared.a[:12] in out
    assert "0.87" in out


def test_runs_list_says_when_there_is_nothing(store_url: str) -> None:
    out = ok(store_url, "runs", "list").stdout
    assert re.match(r"No runs found(: there is no kiln store at | in ).*kiln\.start_run\(\)", out)
    assert as_json(store_url, "runs", "list") == []


def test_runs_list_rejects_bad_input(shared: Populated) -> None:
    unknown = kiln(shared.url, "runs", "list", "-e", "chrun")
    assert isinstance(unknown.exception, ExperimentNotFoundError)
    assert "No experiment named 'chrun'. Did you mean 'churn'?" in str(unknown.exception)

    bad = kiln(shared.url, "runs", "list", "--filter", "metrics.acc >> 1")
    assert isinstance(bad.exception, FilterSyntaxError)

    zero = kiln(shared.url, "runs", "list", "--limit", "0")
    assert zero.exit_code == 2
    assert "Invalid value for '-n' / '--limit'" in zero.stderr


def test_runs_show_json_by_prefix_has_params_metrics_datasets_artifacts(
    shared: Populated,
) -> None:
    shown = as_json(shared.url, "runs", "show", shared.a[:7])

    assert isinstance(shown, dict)
    assert shown["id"] == shared.a
    assert shown["params"] == {"depth": "3", "model": "rf", "seed": "7"}
    assert shown["metrics"] == {"acc": 0.81, "loss": 0.52}
    assert shown["tags"] == {"owner": "ana"}
    [dataset] = shown["datasets"]
    assert (dataset["name"], dataset["role"], dataset["direction"]) == (
        "train-v1",
        "train",
        "input",
    )
    assert (dataset["n_rows"], dataset["n_cols"]) == (3, 2)
    assert [c["name"] for c in dataset["schema"]] == ["x", "y"]
    assert re.fullmatch(r"[0-9a-f]{64}", dataset["fingerprint"])
    artifacts = {a["path"]: (a["sha256"], a["size"]) for a in shown["artifacts"]}
    assert artifacts == {
        "notes.txt": (hashlib.sha256(A_NOTES).hexdigest(), len(A_NOTES)),
        "shared/readme.txt": (hashlib.sha256(SHARED).hexdigest(), len(SHARED)),
    }
    assert shown["status"] == "finished"
    assert shown["duration"] >= 0
    assert "python_version" in shown["environment"]


def test_runs_show_prints_every_section(shared: Populated) -> None:
    out = ok(shared.url, "runs", "show", shared.a).stdout

    assert f"Run {shared.a}  rf-small" in out
    for section in ("Params", "Metrics (latest)", "Tags", "Datasets", "Artifacts"):
        assert section in out
    assert re.search(r"notes\.txt .* 1\.1 KB .* " + hashlib.sha256(A_NOTES).hexdigest()[:16], out)
    assert "train-v1" in out

    failed = ok(shared.url, "runs", "show", shared.child).stdout
    assert f"parent      {shared.b}" in failed
    assert "ValueError: fold 1 broke" in failed


def test_runs_list_shows_the_runs_started_and_rolls_up_pipeline_steps(store_url: str) -> None:
    client = TrackingClient(store_url)
    pipeline = client.create_run(
        experiment="shop", name="pipe", tags={"kiln.pipeline.target": "steps"}
    )
    client.log_params(pipeline, {"train.C": 0.5})
    client.log_metrics(pipeline, [("kiln.pipeline.steps_done", 2.0, 0, None)])
    step_tags = {
        "kiln.pipeline.step": "evaluate",
        "kiln.pipeline.cache": "miss",
        "kiln.pipeline.key": "k1",
    }
    evaluate = client.create_run(name="evaluate", parent_id=pipeline, tags=step_tags)
    client.log_metrics(
        evaluate, [("accuracy", 0.91, 0, None), ("kiln.pipeline.seconds", 1.0, 0, None)]
    )
    for run in (evaluate, pipeline):
        client.end_run(run)
    # a second pipeline run whose evaluate step came from the cache: it shows the same metric
    again = client.create_run(
        experiment="shop", name="pipe", tags={"kiln.pipeline.target": "steps"}
    )
    hit = client.create_run(
        name="evaluate", parent_id=again, tags={**step_tags, "kiln.pipeline.cache": "hit"}
    )
    for run in (hit, again):
        client.end_run(run)

    listed = as_json(store_url, "runs", "list")
    assert {r["id"] for r in listed} == {again, pipeline}  # no step runs (same ms: any order)
    assert [r["metrics"].get("evaluate.accuracy") for r in listed] == [0.91, 0.91]
    assert "evaluate.kiln.pipeline.seconds" not in listed[1]["metrics"]
    assert {r["id"] for r in as_json(store_url, "runs", "list", "--all")} == {
        pipeline,
        evaluate,
        again,
        hit,
    }
    children = as_json(store_url, "runs", "list", "-f", f"parent_id = '{pipeline}'")
    assert [r["id"] for r in children] == [evaluate]
    table = ok(store_url, "runs", "list").stdout
    assert "evaluate.accuracy" in table
    compared = as_json(store_url, "runs", "compare", pipeline, again)
    assert compared["metrics"]["evaluate.accuracy"] == [0.91, 0.91]
    assert compared["params"]["train.C"] == ["0.5", None]
    import kiln

    kiln.configure(store_url)
    try:
        frame = kiln.runs(experiment="shop")
        assert set(frame["run_id"]) == {again, pipeline}
        assert list(frame["metrics.evaluate.accuracy"]) == [0.91, 0.91]
        assert len(kiln.runs(children=True)) == 4
    finally:
        kiln.configure(None)


def test_runs_list_ids_prints_one_full_id_per_line(shared: Populated) -> None:
    lines = ok(shared.url, "runs", "list", "-e", "churn", "--ids", "--all").stdout.split()

    assert set(lines) == {shared.a, shared.b, shared.child}
    assert lines[0] == shared.child  # newest first


def test_runs_show_latest_is_the_newest_top_level_run(shared: Populated) -> None:
    shown = as_json(shared.url, "runs", "show", "latest")

    assert shown["id"] == shared.b  # not its child fold-1, which started later
    compared = as_json(shared.url, "runs", "compare", "latest", shared.a)
    assert compared["runs"] == [shared.b, shared.a]
    assert TrackingClient(shared.url).resolve_run_id("LATEST") == shared.b


def test_runs_show_latest_without_runs(store_url: str) -> None:
    TrackingClient(store_url)  # an existing store with no runs (no store: test_cli_reads.py)
    result = kiln(store_url, "runs", "show", "latest")

    assert isinstance(result.exception, RunNotFoundError)
    assert "There are no runs in the store at" in str(result.exception)
    assert "yet, so there is no 'latest' run" in str(result.exception)


def test_runs_show_unknown_id(shared: Populated) -> None:
    result = kiln(shared.url, "runs", "show", "0000000")

    assert isinstance(result.exception, RunNotFoundError)
    assert "No run with id '0000000'" in str(result.exception)
    assert "kiln runs list" in str(result.exception)


def test_runs_compare_json_lines_up_params_and_metrics(shared: Populated) -> None:
    compared = as_json(shared.url, "runs", "compare", shared.a[:8], shared.b[:8])

    assert compared == {
        "runs": [shared.a, shared.b],
        "params": {"depth": ["3", "9"], "model": ["rf", "rf"], "seed": ["7", "7"]},
        "metrics": {"acc": [0.81, 0.87], "loss": [0.52, 0.41]},
        "directions": {"acc": "max", "loss": "min"},
    }


def test_runs_compare_table_marks_the_best_and_hides_equal_params(shared: Populated) -> None:
    out = ok(shared.url, "runs", "compare", shared.a, shared.b).stdout

    assert re.search(r"params\.depth .* 3 .* 9", out)
    assert "params.model" not in out  # equal in both runs
    assert re.search(r"metrics\.acc .* 0\.81 .* 0\.87 \*", out)  # higher is better
    assert re.search(r"metrics\.loss .* 0\.52 .* 0\.41 \*", out)  # lower is better for loss

    every = ok(shared.url, "runs", "compare", "--all", shared.a, shared.b).stdout
    assert re.search(r"params\.model .* rf .* rf", every)


def test_runs_compare_stars_only_metrics_with_a_known_or_declared_direction(
    store_url: str,
) -> None:
    client = TrackingClient(store_url)
    runs = []
    for i, (seconds, cached, score) in enumerate([(1.5, 2, 0.7), (3.0, 5, 0.9)]):
        run = client.create_run(experiment="dirs", name=f"r{i}")
        client.log_metrics(
            run,
            [
                ("fit_seconds", seconds, 0, None),
                ("kiln.pipeline.seconds", seconds, 0, None),
                ("notebook.cell_seconds", seconds, 0, None),
                ("kiln.pipeline.steps_cached", cached, 0, None),
                ("kiln.pipeline.steps_done", cached, 0, None),
                ("evaluate.val_loss", score, 0, None),
                ("test/roc_auc", score, 0, None),
                ("neg_mean_squared_error", score, 0, None),
                ("my_custom", score, 0, None),
                ("lift_at_10", score, 0, None),
            ],
        )
        client.end_run(run)
        runs.append(run)
    client.set_tags(runs[0], {"kiln.direction.lift_at_10": "max"})
    out = ok(store_url, "runs", "compare", *runs).stdout
    for key in ("fit_seconds", "kiln.pipeline.seconds", "notebook.cell_seconds"):
        assert re.search(rf"metrics\.{re.escape(key)} .* 1\.5 \* .* 3(\.0)? ", out), key
    for key in ("kiln.pipeline.steps_cached", "kiln.pipeline.steps_done", "my_custom"):
        line = next(ln for ln in out.splitlines() if f"metrics.{key} " in ln)
        assert "*" not in line, line
    assert re.search(r"metrics\.evaluate\.val_loss .* 0\.7 \*", out)
    assert re.search(r"metrics\.test/roc_auc .* 0\.9 \*", out)
    assert re.search(r"metrics\.neg_mean_squared_error .* 0\.9 \*", out)
    assert re.search(r"metrics\.lift_at_10 .* 0\.9 \*", out)  # declared by a run tag
    declared = as_json(store_url, "runs", "compare", *runs, "--min", "my_custom")
    assert declared["directions"]["my_custom"] == "min"
    assert declared["directions"]["kiln.pipeline.steps_done"] is None


def test_runs_compare_needs_two_runs(shared: Populated) -> None:
    result = kiln(shared.url, "runs", "compare", shared.a)

    assert result.exit_code == 2
    assert "Give at least two run ids to compare." in result.stderr


def test_runs_delete_then_gc_frees_only_unreferenced_artifacts(populated: Populated) -> None:
    sha = hashlib.sha256(A_NOTES).hexdigest()
    a_blob = Path(populated.client.store.artifact_root) / "objects" / sha[:2] / sha
    assert a_blob.is_file()

    deleted = ok(populated.url, "runs", "delete", "--yes", populated.a[:10])
    assert "Deleted 1 run(s). Run `kiln store gc` to free their artifacts." in deleted.stdout
    assert {r["name"] for r in as_json(populated.url, "runs", "list", "--all")} == {
        "rf-deep",
        "fold-1",
    }
    assert a_blob.is_file()  # deleting a run keeps its files until gc

    dry = as_json(populated.url, "store", "gc", "--dry-run")
    assert dry == {
        "runs_purged": 1,
        "blobs_removed": 1,
        "bytes_freed": len(A_NOTES),
        "blobs_kept_recent": 0,
        "dry_run": True,
    }
    assert a_blob.is_file()

    freed = ok(populated.url, "store", "gc").stdout
    assert f"Freed {len(A_NOTES)} bytes in 1 artifact file(s); purged 1 deleted run(s)." in freed
    assert not a_blob.exists()
    # The file both runs logged is still there for run b, and still verifies.
    assert populated.client.read_artifact(populated.b, "shared/readme.txt") == SHARED
    assert as_json(populated.url, "store", "gc") == {
        "runs_purged": 0,
        "blobs_removed": 0,
        "bytes_freed": 0,
        "blobs_kept_recent": 0,
        "dry_run": False,
    }
    gone = kiln(populated.url, "runs", "show", populated.a)
    assert isinstance(gone.exception, RunNotFoundError)


def test_runs_delete_takes_child_runs_along(populated: Populated) -> None:
    out = ok(populated.url, "runs", "delete", "-y", populated.b).stdout

    assert "Deleted 2 run(s)." in out
    assert [r["name"] for r in as_json(populated.url, "runs", "list")] == ["rf-small"]


def test_runs_delete_asks_first(populated: Populated) -> None:
    refused = kiln(populated.url, "runs", "delete", populated.a, input="n\n")

    assert refused.exit_code == 1
    assert "Delete 1 run(s) and their child runs? [y/N]" in refused.output
    assert len(as_json(populated.url, "runs", "list", "--all")) == 3

    agreed = ok(populated.url, "runs", "delete", populated.a, input="y\n")
    assert "Deleted 1 run(s)." in agreed.stdout


def test_runs_delete_unknown_id_deletes_nothing(populated: Populated) -> None:
    result = kiln(populated.url, "runs", "delete", "-y", populated.a, "fffffffffff")

    assert isinstance(result.exception, RunNotFoundError)
    assert len(as_json(populated.url, "runs", "list", "--all")) == 3


# ------------------------------------------------------------------- kiln experiments
def test_experiments_list(populated: Populated) -> None:
    populated.client.create_run(experiment="baseline")
    populated.client.flush()  # the CLI is another client: hand off after a flush

    listed = as_json(populated.url, "experiments", "list")

    assert [(e["name"], e["runs"]) for e in listed] == [("churn", 3), ("baseline", 1)]
    table = ok(populated.url, "experiments", "list").stdout
    assert re.search(r"churn .* 3", table)


def test_experiments_list_when_empty(store_url: str) -> None:
    assert "No experiments found" in ok(store_url, "experiments", "list").stdout


def test_experiments_rename(populated: Populated) -> None:
    populated.client.create_run(experiment="baseline")
    populated.client.flush()  # the CLI is another client: hand off after a flush

    out = ok(populated.url, "experiments", "rename", "churn", "churn-2026").stdout

    assert "Renamed 'churn' to 'churn-2026'." in out
    assert len(as_json(populated.url, "runs", "list", "-e", "churn-2026", "--all")) == 3
    old = kiln(populated.url, "runs", "list", "-e", "churn")
    assert isinstance(old.exception, ExperimentNotFoundError)
    assert "Did you mean 'churn-2026'?" in str(old.exception)
    taken = kiln(populated.url, "experiments", "rename", "churn-2026", "baseline")
    assert isinstance(taken.exception, TrackingError)
    assert "an experiment called 'baseline' already exists" in str(taken.exception)


def test_experiments_delete_then_the_name_is_reused(populated: Populated) -> None:
    [before] = as_json(populated.url, "experiments", "list")

    out = ok(populated.url, "experiments", "delete", "churn", "--yes").stdout

    assert "Deleted experiment 'churn' and 3 run(s)." in out
    assert as_json(populated.url, "experiments", "list") == []
    assert as_json(populated.url, "runs", "list") == []
    fresh = populated.client.create_run(experiment="churn", name="second-life")
    populated.client.flush()
    [after] = as_json(populated.url, "experiments", "list")
    assert after["name"] == "churn"
    assert after["id"] != before["id"]
    assert after["runs"] == 1
    assert [r["id"] for r in as_json(populated.url, "runs", "list", "-e", "churn")] == [fresh]
    gc = as_json(populated.url, "store", "gc")
    assert gc["runs_purged"] == 3
    assert as_json(populated.url, "store", "info")["experiments"] == 1


def test_experiments_delete_asks_and_checks_the_name(populated: Populated) -> None:
    typo = kiln(populated.url, "experiments", "delete", "chrun", "-y")
    assert isinstance(typo.exception, ExperimentNotFoundError)
    assert "Did you mean 'churn'?" in str(typo.exception)

    refused = kiln(populated.url, "experiments", "delete", "churn", input="n\n")
    assert refused.exit_code == 1
    assert "Delete experiment 'churn' and all its runs?" in refused.output
    assert len(as_json(populated.url, "experiments", "list")) == 1


# ------------------------------------------------------------------------ kiln store
def test_store_info_json(shared: Populated) -> None:
    info = as_json(shared.url, "store", "info")

    assert isinstance(info, dict)
    assert info["backend"] == shared.client.store.dialect
    assert info["url"] == shared.client.store.display_url
    assert info["schema_revision"] == info["client_schema_revision"] == SCHEMA_REVISIONS[-1]
    assert info["artifact_root"] == shared.client.store.artifact_root
    assert re.fullmatch(r"[0-9a-f]{32}", info["store_id"])
    assert info["created_at"] > 0
    assert (info["experiments"], info["runs"], info["deleted_runs"]) == (1, 3, 0)
    assert (info["metrics"], info["artifacts"], info["datasets"]) == (5, 4, 1)
    # SHARED is one file in the artifact store, though both runs logged it.
    assert info["artifact_bytes"] == len(A_NOTES) + len(B_NOTES) + len(SHARED)
    assert info["artifact_files"] == 3


def test_store_info_table(shared: Populated) -> None:
    out = ok(shared.url, "store", "info").stdout

    assert "kiln store" in out
    assert re.search(rf"schema_revision .* {SCHEMA_REVISIONS[-1]}", out)
    assert re.search(r"created_at .* \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", out)


def test_store_migrate_on_a_current_store_is_a_no_op(shared: Populated) -> None:
    out = ok(shared.url, "store", "migrate").stdout

    assert f"is already at schema revision {SCHEMA_REVISIONS[-1]}." in out


def test_the_store_comes_from_kiln_store_or_the_embedded_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    default = json.loads(runner.invoke(cli, ["store", "info", "--json"]).stdout)
    assert default["url"] == f"sqlite:///{Path(os.environ['KILN_HOME']) / 'kiln.db'}"

    monkeypatch.setenv("KILN_STORE", str(tmp_path / "team.db"))
    from_env = json.loads(runner.invoke(cli, ["store", "info", "--json"]).stdout)
    assert from_env["url"] == f"sqlite:///{tmp_path / 'team.db'}"
    given = json.loads(
        runner.invoke(cli, ["--store", str(tmp_path / "x.db"), "store", "info", "--json"]).stdout
    )
    assert given["url"] == f"sqlite:///{tmp_path / 'x.db'}"


def test_help_and_version() -> None:
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for line in (
        "runs         List, show, compare and delete runs.",
        "experiments  List, rename and delete experiments.",
        "store        Inspect, migrate and garbage-collect the store.",
        "--store URL",
    ):
        assert line in top.stdout
    runs_help = runner.invoke(cli, ["runs", "--help"]).stdout
    assert all(cmd in runs_help for cmd in ("list", "show", "compare", "delete"))
    assert runner.invoke(cli, ["--version"]).stdout == f"kiln, version {__version__}\n"


# ------------------------------------------------------------------ a real kiln process
@pytest.fixture
def subprocess_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment for a `kiln` process: this test's settings plus a bytecode cache.

    The cache sits in pytest's cache folder, so processes stop paying for compiling
    SQLAlchemy after the first one, without writing into the virtualenv.
    """
    cache = (
        request.config.cache.mkdir("kiln-pycache")
        if request.config.cache is not None
        else tmp_path_factory.getbasetemp() / "pycache"
    )
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(cache), "COLUMNS": "80"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture
def sqlite_populated(tmp_path: Path) -> Populated:
    return populate(f"sqlite:///{tmp_path / 'cli-store' / 'kiln.db'}")


def run_kiln(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILN, *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("runs", "show", "nosuchid"),
            "Error: No run with id 'nosuchid' in the store at sqlite:///",
            id="unknown-run",
        ),
        pytest.param(
            ("runs", "list", "--filter", "metrics.acc >"),
            "Error: Expected a value (a number or a 'quoted string') (at position 13)\n"
            "  metrics.acc >\n"
            "               ^\n",
            id="malformed-filter",
        ),
        pytest.param(
            ("experiments", "delete", "chrun", "--yes"),
            "Error: No experiment named 'chrun'. Did you mean 'churn'?",
            id="unknown-experiment",
        ),
    ],
)
def test_kiln_errors_print_one_message_and_exit_1(
    sqlite_populated: Populated,
    subprocess_env: dict[str, str],
    args: tuple[str, ...],
    message: str,
) -> None:
    done = run_kiln(subprocess_env, "--store", sqlite_populated.url, *args)

    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


@pytest.mark.slow
def test_an_unknown_command_suggests_the_right_one(subprocess_env: dict[str, str]) -> None:
    done = run_kiln(subprocess_env, "rnus", "list")

    assert done.returncode == 2
    assert "Error: No such command 'rnus'. Did you mean 'runs'?" in done.stderr
    assert "Try 'kiln --help' for help." in done.stderr


@pytest.mark.slow
def test_runs_show_json_in_a_real_process(
    sqlite_populated: Populated, subprocess_env: dict[str, str]
) -> None:
    env = {**subprocess_env, "KILN_STORE": sqlite_populated.url}

    done = run_kiln(env, "runs", "show", sqlite_populated.b[:6], "--json")

    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["id"] == sqlite_populated.b
    assert shown["metrics"] == {"acc": 0.87, "loss": 0.41}
    assert [a["path"] for a in shown["artifacts"]] == ["notes.txt", "shared/readme.txt"]


@pytest.mark.slow
def test_a_long_error_is_printed_whole_on_one_line(
    sqlite_populated: Populated, subprocess_env: dict[str, str]
) -> None:
    engine = sa.create_engine(sqlite_populated.url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()

    done = run_kiln(subprocess_env, "--store", sqlite_populated.url, "store", "info")

    assert done.returncode == 1
    [line] = done.stderr.splitlines()  # not folded, so the advice can be copied
    assert line.startswith(f"Error: The store at {sqlite_populated.url} has schema revision 9999")
    assert line.endswith(
        f"(its newest is {SCHEMA_REVISIONS[-1]}). Upgrade kiln (pip install -U kiln-ml) to use this store."
    )
