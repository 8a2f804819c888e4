"""Compiled inference: saved scikit-learn pipelines predict through numpy alone, with
exactly the estimator's answers, and fall back to the estimator for anything unusual."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import ElasticNet, LinearRegression, LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, OneHotEncoder, StandardScaler

import kiln
from kiln.models import load_model

NUM = ["age", "income", "visits"]


def _frame(n: int, seed: int, *, nulls: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 15_000, n),
            "visits": rng.poisson(3, n).astype(float),
            "plan": rng.choice(["basic", "pro", "team"], n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )
    if nulls:
        X.loc[rng.random(n) < 0.1, "visits"] = np.nan
        X.loc[rng.random(n) < 0.1, "plan"] = None
    return X


def _labels(X: pd.DataFrame, classes: int) -> Any:
    score = X["age"] / 30 + (X["plan"] == "pro") + X["income"] / 40_000
    if classes == 0:
        return score * 10 + 3
    bins = np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1])
    return np.digitize(score, bins)


def _ct(num: Any, cat: Any, remainder: str = "drop") -> ColumnTransformer:
    return ColumnTransformer(
        [("num", num, NUM), ("cat", cat, ["plan", "region"])], remainder=remainder
    )


CASES: dict[str, tuple[Any, int, bool]] = {
    "binary": (
        make_pipeline(
            _ct(StandardScaler(), OneHotEncoder(handle_unknown="ignore")), LogisticRegression()
        ),
        2,
        False,
    ),
    "multiclass": (
        make_pipeline(
            _ct(StandardScaler(), OneHotEncoder(handle_unknown="ignore")), LogisticRegression(C=0.5)
        ),
        4,
        False,
    ),
    "imputed": (
        make_pipeline(
            _ct(
                make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                make_pipeline(
                    SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")
                ),
            ),
            LogisticRegression(),
        ),
        2,
        True,
    ),
    "drop_first": (
        make_pipeline(
            _ct(MinMaxScaler(clip=True), OneHotEncoder(drop="first")), LogisticRegression()
        ),
        3,
        False,
    ),
    "ridge": (
        make_pipeline(_ct(MaxAbsScaler(), OneHotEncoder(handle_unknown="ignore")), Ridge()),
        0,
        False,
    ),
    "linear_scaled_after": (
        make_pipeline(
            _ct("passthrough", OneHotEncoder(handle_unknown="ignore", sparse_output=False)),
            StandardScaler(),
            LinearRegression(),
        ),
        0,
        False,
    ),
    "numeric_only": (make_pipeline(StandardScaler(), ElasticNet(alpha=0.1)), 0, False),
}


def _fit(case: str) -> tuple[kiln.Model, pd.DataFrame]:
    estimator, classes, nulls = CASES[case]
    X = _frame(600, 1, nulls=nulls)
    y = _labels(X, classes)
    if case == "numeric_only":
        X = X[NUM]
    return kiln.Model(estimator).fit(X, y), X


@pytest.fixture(scope="module", params=sorted(CASES))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    model, X = _fit(request.param)
    folder = tmp_path_factory.mktemp(request.param) / "model"
    model.save(folder)
    return model, X, folder


def test_common_pipelines_compile_and_agree_bit_for_bit(saved: Any) -> None:
    model, X, folder = saved
    manifest = json.loads((folder / "kiln-model.json").read_text())
    assert manifest["inference"]["checked_rows"] >= len(X)
    assert "inference.npz" in manifest["files"]
    fast, slow = load_model(folder), load_model(folder, compiled=False)
    assert fast._compiled_ is not None
    assert slow._compiled_ is None
    new = _frame(300, 7, nulls="imputed" in str(folder))[list(X.columns)]
    assert np.array_equal(fast.predict(new), slow.predict(new))
    assert fast.predict(new).dtype == slow.predict(new).dtype
    if model.task_ == "classification":
        assert np.array_equal(fast.predict_proba(new), slow.predict_proba(new))
    for i in range(5):  # the one-record serving path
        record = new.iloc[i].to_dict()
        assert np.array_equal(fast.predict(record), slow.predict(record))


def test_unseen_categories_and_nulls_match_the_estimator(saved: Any) -> None:
    _, X, folder = saved
    fast, slow = load_model(folder), load_model(folder, compiled=False)
    new = _frame(40, 3)[list(X.columns)]
    new.loc[10:12, "visits"] = np.nan  # a null where training had none
    new.loc[13:15, "income"] = 1e12  # far outside the training range
    if "plan" in X.columns:
        new.loc[:5, "plan"] = "enterprise"  # never seen in training
        new.loc[6:9, "region"] = None

    def outcome(m: kiln.Model) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return m.predict(new)
            except Exception as exc:  # noqa: BLE001 - the estimator's own error is expected
                return type(exc).__name__

    a, b = outcome(fast), outcome(slow)
    assert np.array_equal(a, b) if isinstance(b, np.ndarray) else a == b


def test_a_compiled_model_loads_without_importing_scikit_learn(tmp_path: Path) -> None:
    model, X = _fit("binary")
    folder = model.save(tmp_path / "m")
    record = json.dumps(X.iloc[0].to_dict(), default=float)
    code = f"""
import json, sys
import kiln
m = kiln.load_model({folder!r})
print(m.predict(json.loads({record!r}))[0])
print("sklearn" in sys.modules)
m.estimator_
print("sklearn" in sys.modules, type(m.estimator_).__name__)
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out[0] == str(model.predict(X.head(1))[0])
    assert out[1:] == ["False", "True", "Pipeline"]


def test_unsupported_estimators_save_without_compiled_inference(tmp_path: Path) -> None:
    X = _frame(200, 2)[NUM]
    model = kiln.Model(RandomForestClassifier(n_estimators=5, random_state=0))
    model.fit(X, X["age"] > 50)
    folder = Path(model.save(tmp_path / "rf"))
    manifest = json.loads((folder / "kiln-model.json").read_text())
    assert manifest["inference"] is None
    assert "RandomForestClassifier is not compiled" in manifest["inference_skipped"]
    assert load_model(folder)._compiled_ is None


def test_a_changed_compiled_file_refuses_to_load(tmp_path: Path) -> None:
    model, _ = _fit("binary")
    folder = Path(model.save(tmp_path / "m"))
    data = bytearray((folder / "inference.npz").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "inference.npz").write_bytes(bytes(data))
    with pytest.raises(kiln.ArtifactIntegrityError, match=r"inference\.npz"):
        load_model(folder)


def test_a_loaded_compiled_model_pickles_with_its_estimator(tmp_path: Path) -> None:
    import pickle

    model, X = _fit("multiclass")
    loaded = load_model(model.save(tmp_path / "m"))
    copy = pickle.loads(pickle.dumps(loaded))
    assert type(copy.estimator_).__name__ == "Pipeline"
    assert np.array_equal(copy.predict(X.head(20)), model.predict(X.head(20)))


@pytest.fixture(scope="module")
def binary_pair(tmp_path_factory: pytest.TempPathFactory) -> Any:
    model, X = _fit("imputed")
    folder = model.save(tmp_path_factory.mktemp("pair") / "m")
    return load_model(folder), load_model(folder, compiled=False), X


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "age": st.integers(0, 120),
                "income": st.floats(-1e6, 1e6, allow_nan=False),
                "visits": st.one_of(st.none(), st.floats(0, 50, allow_nan=False)),
                "plan": st.one_of(st.none(), st.sampled_from(["basic", "pro", "team"])),
                "region": st.sampled_from(["north", "south", "east", "west"]),
            }
        ),
        min_size=1,
        max_size=8,
    )
)
def test_property_compiled_equals_library_on_any_valid_rows(binary_pair: Any, rows: list) -> None:
    fast, slow, _ = binary_pair
    frame = pd.DataFrame(rows).astype({"visits": float})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # out-of-range values warn as drift
        assert np.array_equal(fast.predict(frame), slow.predict(frame))
        assert np.array_equal(fast.predict_proba(frame), slow.predict_proba(frame))


def test_a_fresh_process_loads_from_the_store_with_only_what_it_needs(
    tracked: str, subprocess_env: dict[str, str]
) -> None:
    """An embedded store is read with sqlite3 alone (no SQLAlchemy, no scikit-learn), a
    team store through the client; both verify every file against the metadata store."""
    model, X = _fit("binary")
    with kiln.start_run():
        uri = model.save()
    code = f"""
import json, sys
import pandas as pd
import kiln
kiln.configure(store={tracked!r})
m = kiln.load_model({uri!r})
print(json.dumps([m.predict(pd.read_json(sys.stdin, orient="split")).tolist(),
                  sorted(k for k in ("sqlalchemy", "sklearn", "fsspec") if k in sys.modules)]))
"""

    def child() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code],
            input=X.head(20).to_json(orient="split"),
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )

    done = child()
    assert done.returncode == 0, done.stderr
    predictions, imported = json.loads(done.stdout)
    assert predictions == model.predict(X.head(20)).tolist()
    if tracked.startswith("sqlite"):
        assert imported == []
        client = kiln.get_client()
        logged = client.get_run(uri.split("/")[1]).artifacts
        sha = next(a.sha256 for a in logged if a.path == "model/inference.npz")
        blob = Path(client.artifacts.location(sha))
        blob.write_bytes(blob.read_bytes()[:-1])
        done = child()
        assert done.returncode != 0
        assert "'model/inference.npz'" in done.stderr
        assert "has been changed or truncated" in done.stderr


def test_a_validated_frame_predicts_through_compiled_inference(saved: Any) -> None:
    """Serving validates requests once and predicts batches of validated frames."""
    from kiln.models import Validator

    model, X, folder = saved
    fast = load_model(folder)
    frame = Validator(fast.signature_, mode="off").validate(X.head(50))
    assert np.array_equal(fast.predict_validated(frame), model.predict(X.head(50)))
    if model.task_ == "classification":
        got = fast.predict_validated(frame, proba=True)
        assert np.array_equal(got, model.predict_proba(X.head(50)))
