"""What a newcomer meets on the `kiln init` tour says what to do next (issue 19, item 4).

Each test goes through the CLI or the public API as the generated project's Makefile
does: `kiln runs list --ids` before any run, `kiln monitor` (also `--every`) before any
served request, the outlier note on a logged request of several rows, and `kiln models
register --if-changed` on every `make serve`, also after a `kiln run` that found nothing
changed.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

import kiln
from kiln.cli import cli
from kiln.tracking import LoggedRequest, PredictionLogWriter
from serve_helpers import breast_cancer, register, running, server_env, set_alias, train


def _kiln(store: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--store", store, *args])


def _flat(text: str) -> str:
    """Rich wraps long lines: one space for every run of whitespace."""
    return re.sub(r"\s+", " ", text)


# ------------------------------------------------------------ kiln runs list --ids


def test_runs_list_ids_without_a_store_prints_no_ids(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'none' / 'kiln.db'}"
    result = _kiln(store, "runs", "list", "--all", "-f", "name = 'train'", "--ids", "-n", "1")
    assert (result.exit_code, result.output) == (0, "")
    assert not (tmp_path / "none").exists()  # reading never creates a store
    # --json still answers a JSON list
    assert _kiln(store, "runs", "list", "--ids", "--json").output.strip() == "[]"


# ------------------------------------------------------------------ kiln monitor


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A registered breast-cancer model with a production alias; nothing served yet."""
    tmp = tmp_path_factory.mktemp("production")
    store = f"sqlite:///{tmp / 'store' / 'kiln.db'}"
    version = register(store, train(tmp / "model"), "bc")
    set_alias(store, "bc", "production", version)
    return {"store": store, "uri": "models:/bc@production", "version": version}


def _monitor_json(store: str, *args: str) -> tuple[int, dict[str, Any]]:
    result = _kiln(store, "monitor", *args, "--no-record", "--json")
    return result.exit_code, json.loads(result.stdout)


def test_monitor_before_any_request_says_no_predictions_were_logged(
    production: dict[str, Any],
) -> None:
    store, uri = production["store"], production["uri"]
    code, report = _monitor_json(store, uri)
    assert code == 1  # an empty window is a breach, as docs/monitoring.md says
    [finding] = report["quality"]
    assert finding["check"] == "empty"
    message = finding["message"]
    assert message.startswith(f"No predictions of {uri!r} were logged yet")
    assert f"kiln serve {uri} --log-rate 1" in message
    assert "the file" not in message  # there is no file: the data is the prediction log
    assert "--since" not in message  # no window was given, so none to widen

    code, report = _monitor_json(store, uri, "--since", "2d")
    message = report["quality"][0]["message"]
    assert code == 1
    assert re.search(r"were logged between \d{4}-\d\d-\d\d \d\d:\d\d and .* UTC", message)
    assert "widen the window (--since" in message

    # the text summary says the same
    result = _kiln(store, "monitor", uri, "--no-record")
    assert result.exit_code == 1
    assert f"No predictions of {uri!r} were logged yet" in _flat(result.output)


def test_monitor_every_without_any_logged_request_says_what_to_do(
    production: dict[str, Any],
) -> None:
    store, uri = production["store"], production["uri"]
    result = _kiln(store, "monitor", uri, "--since", "2d", "--every", "1d", "--no-record")
    assert result.exit_code == 0, result.output  # a quiet span is no alert
    text = _flat(result.output)
    assert text.startswith("No logged requests in any window. ")
    assert re.search(rf"No predictions of {re.escape(repr(uri))} were logged between", text)
    assert f"kiln serve {uri} --log-rate 1" in text
    assert "widen the window (--since" in text
    assert "Recorded as run" not in text  # nothing was recorded, not even the look-up


def _log(uri: str, store: str, requests: list[tuple[str, pd.DataFrame]]) -> None:
    writer = PredictionLogWriter(uri, store=store)
    now = int(time.time() * 1000) - 60_000
    writer.write(
        [
            LoggedRequest(rid, now + i, "1", rows, [0] * len(rows))
            for i, (rid, rows) in enumerate(requests)
        ]
    )
    writer.close()


def test_monitor_names_the_uri_that_was_served_when_another_was_asked(
    production: dict[str, Any], tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    register(store, train(tmp_path / "model"), "bc")
    X, _ = breast_cancer()
    _log("models:/bc/1", store, [("r1", X.iloc[:3])])
    code, report = _monitor_json(store, "models:/bc/latest")
    assert code == 1
    message = report["quality"][0]["message"]
    assert "The log holds predictions of 'models:/bc/1'" in message
    assert "exactly as it was given to kiln serve" in message
    code, report = _monitor_json(store, "models:/bc/1")  # the URI served: its rows
    assert report["n_current"] == 3
    # with --every too, where no window of the asked URI has a request
    result = _kiln(store, "monitor", "models:/bc/latest", "--since", "1d", "--every", "1h")
    assert result.exit_code == 0, result.output
    assert "The log holds predictions of 'models:/bc/1'" in _flat(result.output)


def test_the_outlier_note_names_the_request_and_its_row(production: dict[str, Any]) -> None:
    X, _ = breast_cancer()
    odd = X.iloc[10:14].reset_index(drop=True)
    odd.loc[2, "mean radius"] = 1_000.0  # the third row of request "batch-7"
    uri = "models:/bc/1"
    _log(uri, production["store"], [("batch-6", X.iloc[:5]), ("batch-7", odd)])
    kiln.configure(production["store"])
    report = kiln.monitor(uri, since="1d", experiment=None)
    [outliers] = [f for f in report.quality if f.check == "outliers"]
    assert "(the most outlying: request 'batch-7', row 2, column 'mean radius'" in (
        outliers.message
    )
    first = outliers.details["rows"][0]
    assert (first["row"], first["kiln_row"], first["column"]) == ("batch-7", 2, "mean radius")


def test_the_outlier_note_of_other_data_names_the_row_by_its_key(tmp_path: Path) -> None:
    from kiln.monitor import quality

    X, _ = breast_cancer()
    profile = json.loads((Path(train(tmp_path / "model")) / "profile.json").read_text())
    current = X.iloc[:5].assign(customer=[f"c{i}" for i in range(5)])
    current.loc[3, "mean radius"] = 1_000.0
    [outliers] = [f for f in quality(current, profile, key="customer") if f.check == "outliers"]
    assert "(the most outlying: row 'c3', column 'mean radius'" in outliers.message
    assert "kiln_row" not in outliers.details["rows"][0]


# ----------------------------------------------------- kiln models register --if-changed


STEPS = """
import kiln
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression


def load() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame.iloc[:, [0, 1, 2, 3, -1]]


def train(load: pd.DataFrame, C: float = 1.0) -> kiln.Model:
    model = kiln.Model(LogisticRegression(C=C, max_iter=500))
    return model.fit(load.drop(columns="target"), load["target"])
"""


@pytest.fixture
def pipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> kiln.Pipeline:
    """A project's pipeline, load -> train, in a module of its own."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tour_steps.py").write_text(STEPS)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    import importlib

    return kiln.Pipeline.from_module(importlib.import_module("tour_steps"))


def _newest_train(store: str) -> str:
    """What the Makefile's register step picks: the newest finished `train` run."""
    result = _kiln(
        store, "runs", "list", "--all", "-f", "name = 'train' and status = 'finished'",
        "--ids", "-n", "1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_register_if_changed_adds_a_version_only_for_a_new_model(
    tmp_path: Path, pipe: kiln.Pipeline
) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    kiln.configure(store)
    pipe.run()
    first = _newest_train(store)

    out = _kiln(store, "models", "register", first, "demo", "--if-changed")
    assert out.exit_code == 0, out.output
    assert out.output == f"Registered models:/demo/1 from runs:/{first}/model\n"

    # `make serve` again: the same run, no new version, and it says so
    out = _kiln(store, "models", "register", first, "demo", "--if-changed")
    assert out.exit_code == 0, out.output
    assert out.output.startswith(
        f"models:/demo/1, the latest version of 'demo', is already this model (from "
        f"runs:/{first}/model, registered "
    )
    assert out.output.rstrip().endswith("nothing registered.")

    # `make run` with nothing changed: its train run reused the cached model, which
    # registers as the run that saved it, and so again as no new version
    result = pipe.run()
    assert result.steps["train"].status == "cached"
    cached = _newest_train(store)
    assert cached != first
    out = _kiln(store, "models", "register", cached, "demo", "--if-changed")
    assert out.exit_code == 0, out.output
    assert "models:/demo/1, the latest version of 'demo', is already this model" in out.output

    # a retrained model is a new version; going back to the first one is one more
    pipe.run(overrides={"train.C": 0.1})
    retrained = _newest_train(store)
    out = _kiln(store, "models", "register", retrained, "demo", "--if-changed")
    assert out.output == f"Registered models:/demo/2 from runs:/{retrained}/model\n"
    pipe.run()  # C back to 1.0: a cache hit on the first model
    out = _kiln(store, "models", "register", _newest_train(store), "demo", "--if-changed")
    assert out.output == f"Registered models:/demo/3 from runs:/{first}/model\n"

    # without --if-changed every call registers, as before; so do other tags
    out = _kiln(store, "models", "register", first, "demo")
    assert out.output == f"Registered models:/demo/4 from runs:/{first}/model\n"
    out = _kiln(store, "models", "register", first, "demo", "--if-changed", "-t", "by=ci")
    assert out.output == f"Registered models:/demo/5 from runs:/{first}/model\n"
    versions = kiln.registry.RegistryClient(store).list_versions("demo")
    assert [v.source for v in versions] == [
        f"runs:/{r}/model" for r in [first, retrained] + [first] * 3
    ]


def test_register_if_changed_through_the_python_api(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    kiln.configure(store)
    folder = train(tmp_path / "model")
    first = kiln.registry.register(folder, "local", if_changed=True)
    again = kiln.registry.register(folder, "local", if_changed=True)
    assert (first.version, again.version, again.created_at) == (1, 1, first.created_at)
    # the folder's files changed: a new model under the same path
    shutil.rmtree(folder)
    train(tmp_path / "model", C=0.1)
    assert kiln.registry.register(folder, "local", if_changed=True).version == 2


def test_a_cached_step_run_whose_model_is_gone_says_how_to_get_one(
    tmp_path: Path, pipe: kiln.Pipeline
) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    kiln.configure(store)
    pipe.run()
    first = _newest_train(store)
    pipe.run()
    cached = _newest_train(store)
    kiln.tracking.TrackingClient(store).delete_runs([first])
    with pytest.raises(kiln.RegistryError, match=r"reused a cached output.*--force"):
        kiln.registry.register(cached, "demo")


def test_a_cached_step_runs_model_uri_serves_the_model_its_output_came_from(
    tmp_path: Path, pipe: kiln.Pipeline
) -> None:
    """`kiln serve runs:/<train run>/model` on the newest train run: after a `kiln run`
    with nothing changed that run is a cache hit and logged nothing itself, and its URI
    stands for the model saved by the run that computed the output."""
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    kiln.configure(store)
    pipe.run()
    first = _newest_train(store)
    assert pipe.run().steps["train"].status == "cached"
    cached = _newest_train(store)
    assert cached != first
    rows = breast_cancer()[0].iloc[:5, :4]
    rows.to_csv(tmp_path / "rows.csv", index=False)

    loaded = kiln.load_model(f"runs:/{cached}/model", store=store)
    direct = kiln.load_model(f"runs:/{first}/model", store=store)
    assert loaded.predict_proba(rows).tolist() == direct.predict_proba(rows).tolist()

    for run in (first, cached):
        out = _kiln(
            store, "predict", f"runs:/{run}/model", str(tmp_path / "rows.csv"),
            "-o", str(tmp_path / f"{run}.csv"),
        )  # fmt: skip
        assert out.exit_code == 0, out.output
    assert (tmp_path / f"{cached}.csv").read_text() == (tmp_path / f"{first}.csv").read_text()

    with running([f"runs:/{cached[:12]}/model"], server_env(tmp_path), store=store) as (url, _):
        import httpx

        answer = httpx.post(f"{url}/predict", json=rows.iloc[0].to_dict(), timeout=30)
    assert answer.status_code == 200, answer.text

    # the run that computed it is gone: what to do instead
    kiln.tracking.TrackingClient(store).delete_runs([first])
    with pytest.raises(kiln.NotFoundError, match=r"reused a cached output.*--force train"):
        kiln.load_model(f"runs:/{cached}/model", store=store)


def test_a_runs_uri_without_a_model_names_the_runs_models_or_how_to_save_one(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'kiln.db'}"
    kiln.configure(store)
    with kiln.start_run(experiment="churn") as plain:
        kiln.log_artifact({"threshold": 0.4}, name="config.json")
    with kiln.start_run(experiment="churn") as trained:
        kiln.log_artifact(train(tmp_path / "model"), name="model")
    with pytest.raises(kiln.NotFoundError, match=r"It holds no saved model: .*model\.save\(\)"):
        kiln.load_model(f"runs:/{plain.id}/model", store=store)
    breast_cancer()[0].iloc[:2, :4].to_csv(tmp_path / "x.csv", index=False)
    out = _kiln(
        store, "predict", f"runs:/{trained.id[:12]}/modle", str(tmp_path / "x.csv"),
        "-o", str(tmp_path / "out.csv"),
    )  # fmt: skip
    assert isinstance(out.exception, kiln.NotFoundError), out.output  # main() prints it
    assert str(out.exception).endswith(f"Its saved models: runs:/{trained.id}/model.")
