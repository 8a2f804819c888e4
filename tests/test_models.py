"""kiln.Model: fit, save, load in a fresh process, and the checks made on the way.

Every flavor round-trips through the store and through a folder, and predictions after
loading in a new process equal those before saving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.ensemble import RandomForestRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import kiln
from kiln import ArtifactIntegrityError, KilnError, NoActiveRunError
from kiln.models import Model, NotFittedError, load_model
from kiln.models._format import MANIFEST, ModelFormatError

TESTS = Path(__file__).resolve().parent


def _data(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "tenure": rng.integers(1, 60, n),
            "spend": rng.normal(50, 10, n),
            "plan": rng.choice(["basic", "pro", "team"], n),
        }
    )
    y = pd.Series(((X["spend"] > 50) ^ (X["plan"] == "team")).astype(int), name="churned")
    return X, y


def _pipeline() -> Any:
    return make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["tenure", "spend"]), (OneHotEncoder(), ["plan"])
        ),
        LogisticRegression(),
    )


def _tolerant_pipeline() -> Any:
    """Like `_pipeline`, but unseen plans are encoded as zeros instead of refused."""
    return make_pipeline(
        make_column_transformer(
            (StandardScaler(), ["tenure", "spend"]),
            (OneHotEncoder(handle_unknown="ignore"), ["plan"]),
        ),
        LogisticRegression(),
    )


def _predict_in_fresh_process(
    uri: str, X: pd.DataFrame, env_store: str | None, proba: bool = False
) -> Any:
    """Load `uri` in a new Python process and predict there (inputs and outputs exact)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        X.to_parquet(Path(tmp) / "X.parquet")
        code = (
            "import sys, numpy as np, pandas as pd, kiln\n"
            "X = pd.read_parquet(sys.argv[1] + '/X.parquet')\n"
            f"m = kiln.load_model({uri!r})\n"
            f"np.save(sys.argv[1] + '/out.npy', np.asarray(m.{'predict_proba' if proba else 'predict'}(X)))\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_")}
        if env_store:
            env["KILN_STORE"] = env_store
        env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
        env["PYTHONPYCACHEPREFIX"] = str(TESTS.parent / ".pytest_cache" / "d" / "kiln-pycache")
        done = subprocess.run(
            [sys.executable, "-c", code, tmp],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        return np.load(Path(tmp) / "out.npy", allow_pickle=False)


@pytest.mark.slow
def test_sklearn_pipeline_round_trip_through_a_run(tracked: str) -> None:
    X, y = _data()
    with kiln.start_run(experiment="models") as run:
        model = Model(_pipeline()).fit(X, y)
        uri = model.save()
    assert uri == f"runs:/{run.id}/model"
    before = model.predict_proba(X)

    after = _predict_in_fresh_process(uri, X, tracked, proba=True)

    np.testing.assert_array_equal(before, after)
    loaded = load_model(uri)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.flavor_ == "sklearn"
    assert loaded.task_ == "classification"
    assert loaded.classes_ == [0, 1]


def test_fit_in_a_run_logs_params_fit_time_and_the_training_data(tracked: str) -> None:
    X, y = _data()
    with kiln.start_run(experiment="models") as run:
        Model(LogisticRegression(C=0.5, max_iter=300)).fit(X[["tenure", "spend"]], y)

    got = kiln.get_run(run.id)
    assert got.params["C"] == "0.5"
    assert got.params["max_iter"] == "300"
    assert got.metrics["fit_seconds"] > 0
    [train] = got.datasets
    assert (train.role, train.n_rows, train.n_cols) == ("train", 200, 3)
    assert [c["name"] for c in train.schema] == ["tenure", "spend", "churned"]


def test_manifest_lists_every_file_with_its_hash(tmp_path: Path) -> None:
    from kiln.artifacts import sha256_file

    X, y = _data()
    folder = Path(Model(_pipeline()).fit(X, y).save(tmp_path / "m"))

    manifest = json.loads((folder / MANIFEST).read_text())
    on_disk = {p.name for p in folder.iterdir() if p.name != MANIFEST}
    assert set(manifest["files"]) == on_disk
    assert on_disk >= {"model.skops", "signature.json", "profile.json", "reference_sample.parquet"}
    for name, sha in manifest["files"].items():
        assert sha256_file(folder / name)[0] == sha
    assert manifest["flavor"] == "sklearn"
    assert manifest["serialization"] == "skops"
    assert manifest["library"]["name"] == "scikit-learn"
    assert any(r.startswith("scikit-learn==") for r in manifest["requirements"])


@pytest.mark.slow
def test_folder_round_trip_in_a_fresh_process(tmp_path: Path) -> None:
    X, _ = _data()
    model = Model(RandomForestRegressor(n_estimators=20, random_state=0)).fit(
        X[["tenure", "spend"]], X["spend"] * 2
    )
    folder = model.save(tmp_path / "rf")

    after = _predict_in_fresh_process(folder, X[["tenure", "spend"]], None)

    np.testing.assert_array_equal(model.predict(X[["tenure", "spend"]]), after.ravel())
    assert load_model(folder).task_ == "regression"


def test_a_changed_byte_refuses_to_load_and_names_the_file(tracked: str) -> None:
    X, y = _data()
    with kiln.start_run(experiment="models") as run:
        uri = Model(_pipeline()).fit(X, y).save()
    client = kiln.get_client()
    for art in kiln.get_run(run.id).artifacts:
        if art.path == "model/model.skops":
            blob = Path(client.artifacts.location(art.sha256))
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))

    with pytest.raises(ArtifactIntegrityError, match=r"'model/model\.skops' of run"):
        load_model(uri)


def test_an_edited_manifest_cannot_vouch_for_an_edited_file_in_the_store(tracked: str) -> None:
    X, y = _data()
    with kiln.start_run(experiment="models") as run:
        uri = Model(_pipeline()).fit(X, y).save()
    client = kiln.get_client()
    blobs = {
        a.path: Path(client.artifacts.location(a.sha256)) for a in kiln.get_run(run.id).artifacts
    }
    manifest = json.loads(blobs[f"model/{MANIFEST}"].read_text())
    manifest["validation"] = "off"
    blobs[f"model/{MANIFEST}"].write_text(json.dumps(manifest))

    with pytest.raises(ArtifactIntegrityError, match=rf"'model/{MANIFEST}' of run"):
        load_model(uri)


def test_a_changed_file_in_a_folder_is_named(tmp_path: Path) -> None:
    X, y = _data()
    folder = Path(Model(_pipeline()).fit(X, y).save(tmp_path / "m"))
    (folder / "signature.json").write_text((folder / "signature.json").read_text() + " ")

    with pytest.raises(ArtifactIntegrityError, match=r"'signature\.json' .* has been changed"):
        load_model(folder)


def test_function_models_are_saved_by_reference(tmp_path: Path) -> None:
    sys.path.insert(0, str(TESTS))
    try:
        from model_fns import price_with_tax

        example = pd.DataFrame({"price": [10.0, 20.0], "qty": [1, 2]})
        model = Model.from_function(price_with_tax, signature=example, task="regression")
        folder = Path(model.save(tmp_path / "fn"))
        manifest = json.loads((folder / MANIFEST).read_text())
        assert manifest["serialization"] == "import"
        assert json.loads((folder / "function.json").read_text()) == {
            "callable": "model_fns:price_with_tax"
        }
        after = _predict_in_fresh_process(str(folder), example, None)
        np.testing.assert_array_equal(after.ravel(), [13.0, 26.0])
    finally:
        sys.path.remove(str(TESTS))


@pytest.mark.slow
@pytest.mark.parametrize("library", ["lightgbm", "xgboost"])
def test_boosting_libraries_round_trip(library: str, tracked: str) -> None:
    X, y = _data(300)
    Xn = X[["tenure", "spend"]]
    if library == "lightgbm":
        import lightgbm

        estimator: Any = lightgbm.LGBMClassifier(n_estimators=20, verbose=-1)
    else:
        import xgboost

        estimator = xgboost.XGBClassifier(n_estimators=20)
    with kiln.start_run(experiment="models"):
        model = Model(estimator).fit(Xn, y)
        uri = model.save()

    after = _predict_in_fresh_process(uri, Xn, tracked, proba=True)

    np.testing.assert_array_equal(model.predict_proba(Xn), after)
    loaded = load_model(uri)
    assert loaded.flavor_ == library
    np.testing.assert_array_equal(loaded.predict(Xn), model.predict(Xn))
    manifest = loaded.manifest_
    assert (
        manifest["serialization"]
        == {"lightgbm": "lightgbm-text", "xgboost": "xgboost-ubj"}[library]
    )


def test_bad_use_gets_clear_errors(tmp_path: Path) -> None:
    X, y = _data()
    with pytest.raises(NotFittedError, match=r"not fitted yet: call fit"):
        Model(LogisticRegression()).predict(X)
    with pytest.raises(KilnError, match=r"validation='loud' is not one of strict, warn, off"):
        Model(LogisticRegression(), validation="loud").fit(X, y)
    with pytest.raises(KilnError, match=r"needs an estimator"):
        Model().fit(X, y)
    with pytest.raises(KilnError, match=r"cannot wrap a builtins\.int"):
        Model(3).fit(X, y)
    model = Model(_pipeline()).fit(X, y)
    with pytest.raises(NoActiveRunError, match=r"no run is active"):
        model.save()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(KilnError, match=r"exists and is not an empty folder"):
        model.save(tmp_path / "taken")
    with pytest.raises(ModelFormatError, match=r"is not a kiln saved model"):
        load_model(tmp_path / "taken")


def test_drift_warns_once_per_model_summarised_and_never_inside_kiln(tmp_path: Path) -> None:
    from kiln.models import DataDriftWarning, quiet_drift

    X, y = _data()
    model = Model(_tolerant_pipeline()).fit(X, y)
    far = X.assign(spend=X["spend"] * 100)  # out of range: normal on held-out data
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataDriftWarning)
        model.predict(far)
        assert [p["problem"] for p in model.check(far).warnings] == ["range"]
    unseen = X.assign(plan=["enterprise"] * 5 + list(X["plan"][5:]))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(50):  # a loop of predictions (or permutation importance)
            model.predict(unseen)
            model.predict_proba(unseen)
    drift = [w for w in seen if issubclass(w.category, DataDriftWarning)]
    assert len(drift) == 1, [str(w.message) for w in seen]
    assert "column 'plan' [category]" in str(drift[0].message)
    assert "(5 rows: 0, 1, 2, 3, 4)" in str(drift[0].message)
    assert drift[0].filename == __file__  # points at the caller's predict
    fresh = Model(_tolerant_pipeline()).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataDriftWarning)
        with quiet_drift():
            fresh.predict(unseen)
        kiln.evaluate(fresh, unseen, y, report=False, plots=False, importance="permutation")
    with pytest.warns(DataDriftWarning, match=r"plan"):
        fresh.predict(unseen)  # quiet blocks did not use up its one warning


def test_predict_validates_against_the_training_signature() -> None:
    from kiln.models._validator import DataDriftWarning, ValidationError

    X, y = _data()
    warns = Model(_tolerant_pipeline()).fit(X, y)  # the default, validation="warn"
    with pytest.warns(DataDriftWarning, match=r"column 'plan' \[category\]"):
        warns.predict(X.assign(plan=["enterprise"] * len(X)))
    with pytest.raises(ValidationError, match=r"tenure"):
        warns.predict(X.assign(tenure="three"))  # a wrong type is refused in every mode
    model = Model(_pipeline(), validation="strict").fit(X, y)
    shuffled = X[["plan", "spend", "tenure"]].assign(extra=1)
    np.testing.assert_array_equal(model.predict(shuffled), model.predict(X))
    with pytest.raises(ValidationError, match=r"spend"):
        model.predict(X.drop(columns=["spend"]))
    with pytest.raises(ValidationError, match=r"plan"):
        model.predict(X.assign(plan="enterprise"))
