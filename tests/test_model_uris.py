"""One way to read model URIs and training data, shared by models, registry and serving.

Regression tests for issue 15: `kiln.Model.fit` on lists inside a run, `runs:/` URIs that
`load_model` accepted and `register` refused, and the pieces kiln.models now exports for
serving (`model_folder`, `resolve_model_uri`, `predict_validated`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import kiln
import kiln.registry as registry
from kiln import (
    ConfigurationError,
    KilnError,
    KilnWarning,
    ModelError,
    NotFittedError,
    RegistryError,
    SignatureError,
)
from kiln.models import (
    ColumnSpec,
    DataDriftWarning,
    Model,
    ModelVersionWarning,
    Signature,
    UnsafeSerializationWarning,
    Validator,
    infer_signature,
    load_model,
    model_folder,
    resolve_model_uri,
)

ROWS = [[1.0, 2.0], [2.0, 1.0], [0.5, 0.5], [3.0, 1.0]]
LABELS = [0, 1, 0, 1]


def _saved_run() -> tuple[Model, str, str]:
    """A model fitted on plain lists inside a run and saved with it: (model, run id, uri)."""
    with kiln.start_run() as run:
        model = Model(LogisticRegression()).fit(ROWS, LABELS)
        uri = model.save()
    return model, run.id, uri


# ------------------------------------------------------------------ data as lists


def test_fit_on_lists_inside_a_run_logs_the_dataset() -> None:
    with kiln.start_run() as run:
        model = Model(LogisticRegression()).fit(ROWS, LABELS)

    assert [s.name for s in model.signature_.inputs] == ["x0", "x1"]
    (dataset,) = kiln.get_run(run.id).datasets
    assert (dataset.role, dataset.n_rows, dataset.n_cols) == ("train", 4, 3)
    assert [c["name"] for c in dataset.schema] == ["x0", "x1", "target"]
    assert list(model.predict(ROWS)) == list(model.predict(np.asarray(ROWS)))


def test_log_dataset_reads_lists_like_signature_inference() -> None:
    with kiln.start_run():
        logged = kiln.log_dataset(ROWS, role="rows")
        same = kiln.log_dataset(np.asarray(ROWS), role="array")

    signature = infer_signature(ROWS)
    assert [c["name"] for c in logged.schema] == [s.name for s in signature.inputs]
    assert logged.fingerprint == same.fingerprint


def test_three_dimensional_training_data_is_refused_with_the_shape() -> None:
    with pytest.raises(SignatureError, match=r"X is a 3-dimensional array; expected 1 or 2"):
        Model(LogisticRegression()).fit(np.zeros((2, 2, 2)), [0, 1])


# ------------------------------------------------------------------ runs:/ URIs


def test_register_accepts_every_runs_uri_that_load_model_accepts() -> None:
    model, run_id, _ = _saved_run()
    expected = model.predict(ROWS)

    for uri in (f"runs:/{run_id}", f"runs:/{run_id}/model", f"runs:/{run_id[:10]}/model"):
        loaded = load_model(uri)
        assert list(loaded.predict(ROWS)) == list(expected), uri
        version = registry.register(uri, "churn")
        assert version.source == f"runs:/{run_id}/model", uri
        assert version.run_id == run_id


def test_load_model_and_register_refuse_the_same_malformed_uris() -> None:
    for uri, message in [
        ("runs:/", r"1 to 32 hexadecimal characters; got ''"),
        ("runs:/not-a-run/model", r"1 to 32 hexadecimal characters; got 'not-a-run'"),
        ("runs:/abc123/../secrets", r"has an empty, '\.' or '\.\.' part"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            load_model(uri)
        with pytest.raises(RegistryError, match=message):
            registry.register(uri, "churn")


def test_model_folder_downloads_a_run_model_and_removes_it_after() -> None:
    _, run_id, uri = _saved_run()
    version = registry.register(uri, "churn")
    registry.set_alias("churn", "production", version.version)

    assert resolve_model_uri("models:/churn@production") == f"runs:/{run_id}/model"
    with model_folder("models:/churn@production") as folder:
        manifest = json.loads((folder / "kiln-model.json").read_text(encoding="utf-8"))
        assert manifest["flavor"] == "sklearn"
        assert sorted(manifest["files"]) == sorted(
            p.relative_to(folder).as_posix()
            for p in folder.rglob("*")
            if p.is_file() and p.name != "kiln-model.json"
        )
    assert not folder.exists()


def test_a_folder_is_used_in_place_and_registers_with_every_file_hashed(tmp_path: Path) -> None:
    model = Model(LogisticRegression()).fit(ROWS, LABELS)
    saved = Path(model.save(tmp_path / "m"))

    assert resolve_model_uri(saved) == str(saved)
    with model_folder(saved) as folder:
        assert folder == saved
    version = registry.register(str(saved), "local")
    manifest = json.loads((saved / "kiln-model.json").read_text(encoding="utf-8"))
    files = version.lineage["model_files"]
    # The registry hashes the manifest too; the manifest hashes every other file.
    assert {k: v for k, v in files.items() if k != "kiln-model.json"} == manifest["files"]
    assert "kiln-model.json" in files


def test_loading_a_run_model_in_a_fresh_process_needs_no_sqlalchemy(
    subprocess_env: dict[str, str],
) -> None:
    model, run_id, _ = _saved_run()
    kiln.flush()
    code = (
        "import sys, kiln\n"
        f"m = kiln.load_model('runs:/{run_id}')\n"
        "print(int(m.predict([[1.0, 2.0]])[0]), 'sqlalchemy' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(int(model.predict([[1.0, 2.0]])[0])), "False"]


# ------------------------------------------------------------------ predicting validated frames


def test_predict_validated_skips_validation_for_a_checked_frame() -> None:
    model = Model(LogisticRegression()).fit(ROWS, LABELS)
    frame = Validator(model.signature_, mode="strict").validate(ROWS)

    assert list(model.predict_validated(frame)) == list(model.predict(ROWS))
    assert np.allclose(model.predict_validated(frame, proba=True), model.predict_proba(ROWS))


def test_predict_validated_refuses_probabilities_for_regression_and_unfitted_models() -> None:
    model = Model(LinearRegression()).fit(ROWS, [0.5, 1.5, 0.2, 2.0])
    frame = Validator(model.signature_).validate(ROWS)

    with pytest.raises(ModelError, match=r"Probabilities were asked for, but this model does"):
        model.predict_validated(frame, proba=True)
    with pytest.raises(NotFittedError, match=r"not fitted yet"):
        Model(LogisticRegression()).predict_validated(frame)


# ------------------------------------------------------------------ public API and errors


def test_signatures_are_built_from_public_names() -> None:
    signature = Signature(
        inputs=(ColumnSpec("x0", "float", "float64"), ColumnSpec("x1", "float", "float64"))
    )
    model = Model.from_function(_first_column, signature=signature)

    assert list(model.predict(pd.DataFrame({"x0": [1.0], "x1": [2.0]}))) == [1.0]
    with pytest.raises(SignatureError, match=r"ColumnSpec.kind must be one of bool, int"):
        ColumnSpec("x", "complex", "complex128")
    with pytest.raises(SignatureError, match=r"input column 'x0' appears twice"):
        Signature(inputs=(signature.inputs[0], signature.inputs[0]))
    with pytest.raises(SignatureError, match=r"Cannot read the model signature: .*'inputs'"):
        Signature.from_dict({"outputs": []})


def _first_column(frame: pd.DataFrame) -> np.ndarray:
    return frame["x0"].to_numpy()


def test_model_warnings_are_kiln_warnings() -> None:
    for warning in (DataDriftWarning, ModelVersionWarning, UnsafeSerializationWarning):
        assert issubclass(warning, KilnWarning)


def test_bad_arguments_raise_specific_errors(tmp_path: Path) -> None:
    model = Model(LogisticRegression()).fit(ROWS, LABELS)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")

    with pytest.raises(ConfigurationError, match=r"it exists and is not an empty folder"):
        model.save(tmp_path / "full")
    with pytest.raises(ConfigurationError, match=r"A function is not fitted"):
        Model(_first_column).fit(ROWS, LABELS)
    with pytest.raises(ConfigurationError, match=r"kiln cannot wrap a builtins.int"):
        Model(3).fit(ROWS, LABELS)
    with pytest.raises(ConfigurationError, match=r"mode must be one of strict, warn, off"):
        Validator(model.signature_, mode="lenient")
    with pytest.raises(ModelError, match=r"predict_proba is for classifiers"):
        Model(LinearRegression()).fit(ROWS, [0.1, 0.2, 0.3, 0.4]).predict_proba(ROWS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(KilnError, match=r"A function model has no predict_proba"):
            Model.from_function(_first_column, signature=model.signature_).predict_proba(ROWS)
