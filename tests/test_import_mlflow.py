"""`kiln import mlflow`: MLflow stores written by the real `mlflow` client (a file store
and a SQLite database), imported into real kiln stores and read back through kiln's
public API: the same ids, names, statuses, times, params, tags, metric histories,
artifacts and registered versions."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

mlflow = pytest.importorskip("mlflow")
from mlflow.tracking import MlflowClient  # noqa: E402

from kiln._exceptions import ConfigurationError, TrackingError  # noqa: E402
from kiln.cli import cli  # noqa: E402
from kiln.importer import IMPORTED_FROM, ImportReport, import_mlflow  # noqa: E402
from kiln.registry import RegistryClient  # noqa: E402
from kiln.tracking import TrackingClient  # noqa: E402

# MLflow's own SQL store uses a SQLAlchemy loader option that SQLAlchemy 2.1 deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:DeprecationWarning"
)

T0 = 1_764_000_000_000  # 2025-11-24, ms: every time logged below is T0 + something


@contextlib.contextmanager
def _file_store_allowed() -> Iterator[None]:
    """MLflow 3 refuses to write a file store unless told; these tests make one on purpose."""
    before = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = before


def _log_history(client: MlflowClient, tmp: Path) -> dict[str, Any]:
    """A team's MLflow history: two experiments, finished, failed, nested and running
    runs, metric series with steps, artifacts, and a registered model with two versions
    and two aliases. Returns what was logged, to compare with."""
    exp = client.create_experiment("churn")
    rf = client.create_run(exp, start_time=T0, run_name="rf-1", tags={"owner": "data-team"})
    rid = rf.info.run_id
    client.log_param(rid, "max_depth", "6")
    client.log_param(rid, "model", "rf")
    for step in range(5):
        client.log_metric(rid, "loss", 1.0 / (step + 1), timestamp=T0 + 10 * step, step=step)
    client.log_metric(rid, "auc", 0.91, timestamp=T0 + 99, step=4)
    client.log_metric(rid, "auc", float("nan"), timestamp=T0 + 100, step=5)
    client.set_tag(rid, "note", "baseline")
    (tmp / "report.txt").write_text("hello from MLflow")
    client.log_artifact(rid, str(tmp / "report.txt"))
    client.log_dict(rid, {"features": ["age", "plan"]}, "config/features.json")
    # A kiln saved model logged to MLflow (registrable) and an MLflow model (not).
    client.log_dict(rid, {"flavor": "function"}, "kiln_model/kiln-model.json")
    client.log_text(rid, "weights", "kiln_model/weights.bin")
    client.log_text(rid, "flavors:\n  sklearn: {}\n  python_function: {}\n", "model/MLmodel")
    client.log_text(rid, "not a real pickle", "model/model.pkl")
    client.set_terminated(rid, "FINISHED", end_time=T0 + 5_000)

    child = client.create_run(
        exp, start_time=T0 + 1_000, run_name="fold-0", tags={"mlflow.parentRunId": rid}
    )
    client.log_metric(child.info.run_id, "loss", 0.3, timestamp=T0 + 1_001, step=0)
    client.set_terminated(child.info.run_id, "FINISHED", end_time=T0 + 2_000)

    failed = client.create_run(exp, start_time=T0 + 6_000, run_name="lr-1")
    client.log_param(failed.info.run_id, "model", "lr")
    client.set_terminated(failed.info.run_id, "FAILED", end_time=T0 + 7_000)

    running = client.create_run(exp, start_time=T0 + 8_000, run_name="still-going")

    other = client.create_experiment("fraud")
    killed = client.create_run(other, start_time=T0 + 9_000, run_name="xgb-1")
    client.log_metric(killed.info.run_id, "acc", 0.5, timestamp=T0 + 9_001, step=0)
    client.set_terminated(killed.info.run_id, "KILLED", end_time=T0 + 9_500)

    client.create_registered_model("churn-model", tags={"team": "risk"}, description="Churn.")
    v1 = client.create_model_version(
        "churn-model", f"runs:/{rid}/kiln_model", run_id=rid, description="first"
    )
    v2 = client.create_model_version("churn-model", f"runs:/{rid}/model", run_id=rid)
    client.set_registered_model_alias("churn-model", "champion", v1.version)
    client.set_registered_model_alias("churn-model", "candidate", v2.version)
    return {
        "rf": rid,
        "child": child.info.run_id,
        "failed": failed.info.run_id,
        "running": running.info.run_id,
        "killed": killed.info.run_id,
    }


def _make_source(kind: str, folder: Path) -> tuple[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    uri = folder.joinpath("mlruns").as_uri() if kind == "file" else f"sqlite:///{folder}/mlflow.db"
    # In the folder: MLflow's SQL store keeps artifacts in ./mlruns of the working folder.
    with _file_store_allowed(), tempfile.TemporaryDirectory() as tmp, contextlib.chdir(folder):
        ids = _log_history(MlflowClient(tracking_uri=uri, registry_uri=uri), Path(tmp))
    source = str(folder / "mlruns") if kind == "file" else uri
    return source, ids


@pytest.fixture(scope="module", params=["file", "sqlite"])
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, dict[str, Any]]:
    """An MLflow store written by MLflow's client: `./mlruns` once, `mlflow.db` once."""
    return _make_source(request.param, tmp_path_factory.mktemp(f"mlflow-{request.param}"))


@pytest.fixture(scope="module")
def file_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    return _make_source("file", tmp_path_factory.mktemp("mlflow-file"))


def _read_back(ids: dict[str, Any], source: str) -> dict[str, Any]:
    """What MLflow itself says about the runs, to compare kiln's copy with."""
    uri = source if "://" in source else Path(source).as_uri()
    with _file_store_allowed():
        c = MlflowClient(tracking_uri=uri)
        return {name: c.get_run(run_id) for name, run_id in ids.items()}, c


def test_everything_mlflow_logged_arrives_with_the_same_values(
    source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, ids = source
    store = f"sqlite:///{tmp_path / 'kiln' / 'kiln.db'}"
    report = import_mlflow(src, store=store)

    client = TrackingClient(store)
    runs = {r.id: r for r in client.search_runs(files=True)}
    originals, mlflow_client = _read_back(ids, src)
    rf = runs[ids["rf"]]
    history = [(m.step, m.value, m.timestamp) for m in client.metric_history(rf.id, "loss")]
    files = {a.path for a in rf.artifacts}
    registry = RegistryClient(client)
    versions = registry.list_versions("churn-model")
    model = registry.list_models()[0]

    assert isinstance(report, ImportReport)
    assert report.ok, report.summary()
    assert (report.runs_imported, report.runs_skipped, report.runs_failed) == (4, 0, 0)
    assert sorted(report.experiments) == ["Default", "churn", "fraud"]  # MLflow's 0 too
    assert report.metric_points == 5 + 1 + 1 + 1  # rf's loss and auc (NaN left out), two more
    assert set(runs) == {ids["rf"], ids["child"], ids["failed"], ids["killed"]}
    assert {r.id: r.status for r in runs.values()} == {
        ids["rf"]: "finished",
        ids["child"]: "finished",
        ids["failed"]: "failed",
        ids["killed"]: "killed",
    }
    for name in ("rf", "child", "failed", "killed"):
        original, copy = originals[name], runs[ids[name]]
        assert copy.name == original.info.run_name
        assert (copy.start_time, copy.end_time) == (
            original.info.start_time,
            original.info.end_time,
        )
        assert copy.params == original.data.params
        assert copy.tags == {**original.data.tags, IMPORTED_FROM: f"mlflow:{ids[name]}"}
    assert rf.experiment == "churn"
    assert runs[ids["killed"]].experiment == "fraud"
    assert rf.tags["mlflow.runName"] == "rf-1"  # MLflow's own tags are kept
    assert runs[ids["child"]].parent_id == ids["rf"]
    assert history == [(s, 1.0 / (s + 1), T0 + 10 * s) for s in range(5)]
    assert [(m.step, m.value) for m in client.metric_history(rf.id, "auc")] == [(4, 0.91)]
    assert files == {
        "report.txt",
        "config/features.json",
        "kiln_model/kiln-model.json",
        "kiln_model/weights.bin",
        "model/MLmodel",
        "model/model.pkl",
    }
    assert client.read_artifact(rf.id, "report.txt") == b"hello from MLflow"
    assert json.loads(client.read_artifact(rf.id, "config/features.json")) == {
        "features": ["age", "plan"]
    }
    assert len(mlflow_client.get_metric_history(ids["rf"], "loss")) == 5
    # The registry: the kiln model is version 1 with its alias; the MLflow model is not.
    assert [(v.version, v.source) for v in versions] == [(1, f"runs:/{ids['rf']}/kiln_model")]
    assert versions[0].tags["mlflow.description"] == "first"
    assert versions[0].tags[IMPORTED_FROM] == "mlflow:models:/churn-model/1"
    assert (model.name, model.description, model.aliases) == (
        "churn-model",
        "Churn.",
        {"champion": 1},
    )
    assert (report.models, report.versions, report.aliases) == (1, 1, 1)
    skipped = {(i.kind, i.name): i.reason for i in report.skipped}
    assert "finite" in skipped[("metric", f"auc of run {ids['rf']}")]
    assert "RUNNING" in skipped[("run", ids["running"])]
    assert "flavors: python_function, sklearn" in skipped[("model version", "churn-model/2")]
    assert "never unpickles" in skipped[("model version", "churn-model/2")]
    assert "version 2, not imported" in skipped[("alias", "churn-model@candidate")]
    assert "team" in skipped[("model tags", "churn-model")]


def test_importing_again_skips_what_was_imported(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, _ids = file_source
    store = f"sqlite:///{tmp_path / 'kiln.db'}"
    first = import_mlflow(src, store=store)
    n_runs = len(TrackingClient(store).search_runs())

    again = import_mlflow(src, store=store)

    assert first.runs_imported == 4
    assert (again.runs_imported, again.runs_skipped, again.runs_failed) == (0, 4, 0)
    assert (again.versions, again.versions_skipped, again.aliases) == (0, 1, 0)
    assert (again.metric_points, again.artifacts, again.experiments_created) == (0, 0, 0)
    assert len(TrackingClient(store).search_runs()) == n_runs
    assert len(RegistryClient(store).list_versions("churn-model")) == 1


def test_a_dry_run_counts_and_writes_nothing(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, _ids = file_source
    path = tmp_path / "kiln" / "kiln.db"

    dry = import_mlflow(src, store=f"sqlite:///{path}", dry_run=True)
    created = path.exists()
    real = import_mlflow(src, store=f"sqlite:///{path}")

    assert not created
    assert dry.dry_run
    assert dry.ok
    for field in ("runs_imported", "metric_points", "params", "tags", "artifacts", "versions"):
        assert getattr(dry, field) == getattr(real, field), field
    assert (dry.aliases, dry.experiments_created) == (real.aliases, real.experiments_created)


def test_a_dry_run_on_an_existing_store_adds_nothing(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, _ids = file_source
    store = f"sqlite:///{tmp_path / 'kiln.db'}"
    client = TrackingClient(store)
    mine = client.create_run(experiment="churn")
    client.end_run(mine)
    client.flush()

    report = import_mlflow(src, store=store, dry_run=True)

    assert report.runs_imported == 4
    assert [r.id for r in client.search_runs()] == [mine]


def test_only_the_experiments_asked_for_without_artifacts(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, ids = file_source
    store = f"sqlite:///{tmp_path / 'kiln.db'}"

    report = import_mlflow(src, store=store, experiments=["fraud"], artifacts=False)

    runs = TrackingClient(store).search_runs(files=True)
    assert [r.id for r in runs] == [ids["killed"]]
    assert report.artifacts == 0
    assert report.versions == 0
    assert "was not imported" in {i.name: i.reason for i in report.skipped}["churn-model/1"]


def test_an_existing_experiment_of_the_same_name_is_reused(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, ids = file_source
    store = f"sqlite:///{tmp_path / 'kiln.db'}"
    client = TrackingClient(store)
    before = client.experiment_id("fraud", create=True)

    report = import_mlflow(src, store=store, experiments=["fraud"])

    assert report.experiments_created == 0
    assert client.experiment_id("fraud") == before
    assert client.get_run(ids["killed"]).experiment == "fraud"


def test_a_run_that_fails_is_rolled_back_and_the_import_goes_on(tmp_path: Path) -> None:
    uri = (tmp_path / "mlruns").as_uri()
    with _file_store_allowed():
        c = MlflowClient(tracking_uri=uri)
        exp = c.create_experiment("x")
        bad = c.create_run(exp, start_time=T0, run_name="bad")
        c.log_param(bad.info.run_id, "p", "1")
        # kiln refuses an artifact name part over 200 bytes; MLflow's file store takes it.
        c.log_text(bad.info.run_id, "x", "y" * 220 + ".txt")
        c.set_terminated(bad.info.run_id, "FINISHED", end_time=T0 + 1)
        good = c.create_run(exp, start_time=T0 + 2, run_name="good")
        c.set_terminated(good.info.run_id, "FINISHED", end_time=T0 + 3)
    store = f"sqlite:///{tmp_path / 'kiln.db'}"

    report = import_mlflow(tmp_path / "mlruns", store=store)

    runs = TrackingClient(store).search_runs()
    assert not report.ok
    assert (report.runs_imported, report.runs_failed) == (1, 1)
    assert [r.name for r in runs] == ["good"]
    (failure,) = report.failed
    assert failure.name == bad.info.run_id
    assert "200" in failure.reason
    assert "Rolled back" in failure.reason


@pytest.mark.postgres
def test_import_into_postgresql(file_source: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    from conftest import make_pg_database

    src, ids = file_source
    store = make_pg_database(tmp_path / "pg-artifacts")

    report = import_mlflow(src, store=store)

    client = TrackingClient(store)
    rf = client.get_run(ids["rf"])
    assert report.ok
    assert report.runs_imported == 4
    assert [(m.step, m.timestamp) for m in client.metric_history(rf.id, "loss")] == [
        (s, T0 + 10 * s) for s in range(5)
    ]
    assert client.read_artifact(rf.id, "report.txt") == b"hello from MLflow"
    assert RegistryClient(client).get_model_version("churn-model", "champion").version == 1


# ------------------------------------------------------------------ the command line
def test_the_command_prints_a_summary_and_imports(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    src, ids = file_source
    store = f"sqlite:///{tmp_path / 'kiln.db'}"

    result = CliRunner().invoke(cli, ["import", "mlflow", src, "--store", store])
    again = CliRunner().invoke(cli, ["--store", store, "import", "mlflow", src, "--dry-run"])

    assert result.exit_code == 0, result.output
    assert "runs imported" in result.output
    assert "metric points" in result.output
    assert "churn-model/2" in result.output  # the skipped version, with its reason
    assert TrackingClient(store).get_run(ids["rf"]).name == "rf-1"
    assert again.exit_code == 0, again.output
    assert "4 already imported" in again.output
    assert "nothing was written" in again.output


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: str(p / "nothere"), "MLflow source not found"),
        (lambda p: f"sqlite:///{p / 'nothere.db'}", "MLflow source not found"),
        (lambda p: str(p), "is not an MLflow file store"),
        (lambda p: _plain_sqlite(p / "other.db"), "not MLflow's"),
        (lambda p: _text_file(p / "notes.db"), "not a SQLite database"),
        (lambda p: "ftp://example.com/x", "Cannot read MLflow data"),
    ],
)
def test_a_bad_source_is_a_clear_error_and_exit_1(
    tmp_path: Path, make: Any, expected: str, subprocess_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    given = make(tmp_path)
    store = tmp_path / "kiln.db"

    with pytest.raises(ConfigurationError, match=expected):
        import_mlflow(given, store=f"sqlite:///{store}")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("kiln")),
            "--store",
            str(store),
            "import",
            "mlflow",
            given,
        ],
        capture_output=True,
        text=True,
        env=subprocess_env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stderr
    assert not (tmp_path / "nothere.db").exists()  # MLflow was never let create it


def _plain_sqlite(path: Path) -> str:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE runs (id TEXT)")
    return str(path)


def _text_file(path: Path) -> str:
    path.write_text("not a database, just some text that is long enough " * 4)
    return str(path)


def test_an_unknown_experiment_says_which_exist(file_source: tuple[str, dict[str, Any]]) -> None:
    src, _ids = file_source
    with pytest.raises(ConfigurationError, match=r"no experiment 'churm'.*Did you mean 'churn'"):
        import_mlflow(src, experiments=["churm"])


def test_an_unreachable_server_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens once closed
    with pytest.raises(ConfigurationError, match="Cannot read MLflow experiments from http"):
        import_mlflow(f"http://127.0.0.1:{port}")


# ----------------------------------------------------- the tracking options it uses
def test_create_run_takes_an_id_and_times_and_refuses_a_taken_or_bad_id(
    client: TrackingClient,
) -> None:
    run_id = "0123456789abcdef0123456789abcdef"
    client.create_run(experiment="e", run_id=run_id, start_time=T0)
    client.end_run(run_id, "killed", end_time=T0 + 5)
    run = client.get_run(run_id)

    assert (run.id, run.status, run.start_time, run.end_time) == (run_id, "killed", T0, T0 + 5)
    with pytest.raises(TrackingError, match="already taken"):
        client.create_run(run_id=run_id)
    with pytest.raises(TrackingError, match="32 lowercase hex"):
        client.create_run(run_id="ABC")
    with pytest.raises(TrackingError, match="start_time must be"):
        client.create_run(start_time=-1)
    with pytest.raises(TrackingError, match="end_time must be"):
        client.end_run(run_id, end_time=1.5)  # type: ignore[arg-type]


# ------------------------------------------------------------------- properties


def _mlflow_text(text: str) -> bool:
    """Text both stores keep as is (no surrogates, no NUL)."""
    return "\x00" not in text and not any(0xD800 <= ord(c) <= 0xDFFF for c in text)


_keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_-.", min_size=1, max_size=20).filter(
    lambda k: not k.startswith(".") and ".." not in k and "/" not in k
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    params=st.dictionaries(
        _keys, st.text(min_size=0, max_size=200).filter(_mlflow_text), max_size=5
    ),
    values=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=10
    ),
)
def test_params_and_metric_values_round_trip(params: dict[str, str], values: list[float]) -> None:
    with tempfile.TemporaryDirectory() as tmp, _file_store_allowed():
        uri = (Path(tmp) / "mlruns").as_uri()
        c = MlflowClient(tracking_uri=uri)
        run = c.create_run(c.create_experiment("p"), start_time=T0)
        for key, value in params.items():
            c.log_param(run.info.run_id, key, value)
        for step, value in enumerate(values):
            c.log_metric(run.info.run_id, "m", value, timestamp=T0 + step, step=step * 3)
        c.set_terminated(run.info.run_id, "FINISHED", end_time=T0 + 100)
        store = f"sqlite:///{tmp}/kiln.db"

        report = import_mlflow(Path(tmp) / "mlruns", store=store)

        client = TrackingClient(store)
        copy = client.get_run(run.info.run_id)
        assert report.ok
        assert copy.params == params
        assert [(m.value, m.step, m.timestamp) for m in client.metric_history(copy.id, "m")] == [
            (v, i * 3, T0 + i) for i, v in enumerate(values)
        ]


# ------------------------------------------------------------ an MLflow server
def test_import_from_a_server_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server speaking MLflow's REST API on loopback (`kiln server`, which serves
    runs, artifacts and the registry): runs and their artifacts come over HTTP (or the
    runs alone with artifacts=False); a registered version that is not a kiln saved
    model is skipped, saying why."""
    from serve_helpers import KILN, server_env, serving

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    served = f"sqlite:///{tmp_path / 'served.db'}"
    origin = TrackingClient(served)
    run_id = origin.create_run(experiment="web", name="over-http", tags={"k": "v"})
    origin.log_params(run_id, {"lr": 0.1})
    origin.log_metrics(run_id, [("loss", 0.5, 0, T0), ("loss", 0.25, 1, T0 + 1)])
    origin.log_text(run_id, "over the wire", name="notes/readme.txt")
    origin.end_run(run_id, "finished")
    origin.flush()
    RegistryClient(origin).record_version("scorer", "s3://bucket/scorer")
    with serving([KILN, "--store", served, "server"], server_env(tmp_path)) as (url, _proc):
        with_files = import_mlflow(url, store=f"sqlite:///{tmp_path / 'a.db'}")
        report = import_mlflow(url, store=f"sqlite:///{tmp_path / 'b.db'}", artifacts=False)

    copy = TrackingClient(f"sqlite:///{tmp_path / 'b.db'}")
    run = copy.get_run(run_id)
    files = TrackingClient(f"sqlite:///{tmp_path / 'a.db'}")
    assert with_files.ok, with_files.summary()
    assert with_files.artifacts == 1
    assert files.read_artifact(run_id, "notes/readme.txt") == b"over the wire"
    assert report.ok, report.summary()
    assert report.artifacts == 0
    assert (run.name, run.status, run.params, run.experiment) == (
        "over-http",
        "finished",
        {"lr": "0.1"},
        "web",
    )
    assert run.tags["k"] == "v"
    assert [(m.step, m.value, m.timestamp) for m in copy.metric_history(run_id, "loss")] == [
        (0, 0.5, T0),
        (1, 0.25, T0 + 1),
    ]
    skipped = {i.kind: i for i in report.skipped}
    assert "model registry" not in skipped  # served now
    assert skipped["model version"].name == "scorer/1"


def test_without_mlflow_the_error_gives_the_install_line(
    file_source: tuple[str, dict[str, Any]], tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    import subprocess
    import sys

    src, _ids = file_source
    blocked = tmp_path / "no-mlflow" / "mlflow"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('mlflow is not installed here')\n")
    env = {**subprocess_env, "PYTHONPATH": str(blocked.parent)}

    done = subprocess.run(
        [str(Path(sys.executable).with_name("kiln")), "import", "mlflow", src],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert done.returncode == 1, done.stdout + done.stderr
    assert "pip install 'kiln-ml[mlflow]'" in done.stderr
