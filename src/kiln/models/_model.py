"""`kiln.Model`: one interface to train, save, load and call any model."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import (
    ConfigurationError,
    KilnError,
    KilnWarning,
    ModelError,
    NoActiveRunError,
    NotFittedError,
    ParamConflictError,
    PredictionError,
    ValidationError,
)

if TYPE_CHECKING:
    import pandas as pd

    from kiln.models._compiled import CompiledPredictor
    from kiln.models._signature import Signature
    from kiln.models._validator import ValidationResult, Validator

__all__ = ["Model", "NotFittedError"]

_MODES = ("strict", "warn", "off")


class Model:
    """One interface over scikit-learn, LightGBM, XGBoost, PyTorch and plain functions.

    Follows scikit-learn's conventions: constructor arguments are stored as given and
    checked in `fit`; learned state ends in `_`; `fit` returns `self`.

    ```python
    model = kiln.Model(RandomForestClassifier(n_estimators=200)).fit(X_train, y_train)
    uri = model.save()                  # into the active run: runs:/<run id>/model
    kiln.load_model(uri).predict(X_new)  # validated against the training signature
    ```

    Args:
        estimator: The model to wrap: a scikit-learn estimator or Pipeline, a LightGBM or
            XGBoost scikit-learn model, or a PyTorch `nn.Module` (wrapped in a
            `kiln.models.TorchEstimator` with its defaults; pass your own to choose the
            loss, epochs or a training function). For a plain function use
            `Model.from_function`.
        validation: How `predict` treats values outside what training saw (unseen
            categories, out-of-range numbers, unseen nulls): "warn" (the default) lets
            them through and warns once per model and process with a `DataDriftWarning`
            summarising the columns with unseen nulls or categories (out-of-range numbers
            are normal on held-out data and left to `kiln monitor`; `check(X)` reports
            everything), "strict" refuses them, "off" does not look. Missing columns and
            wrong types are always refused.
        task: "classification" or "regression"; detected from the estimator when None.

    Attributes:
        estimator_: The fitted estimator (a fitted copy of `estimator`).
        signature_: The input and output schema seen in training (`Signature`).
        profile_: The training data's reference profile, for monitoring.
        flavor_: The flavor name: sklearn, lightgbm, xgboost, torch or function.
        task_: "classification", "regression" or None.
        classes_: Class labels, for classifiers.
        source_uri_: Where a loaded model came from.
    """

    # Learned state, set by fit, from_function or loading (absent before).
    estimator_: Any
    signature_: Signature
    profile_: dict[str, Any] | None
    reference_sample_: pd.DataFrame | None
    flavor_: str
    task_: str | None
    classes_: list[Any] | None
    fit_seconds_: float | None
    manifest_: dict[str, Any]
    source_uri_: str
    _validator_: Validator | None
    _compiled_: CompiledPredictor | None
    _load_estimator: Any

    def __init__(
        self, estimator: Any = None, *, validation: str = "warn", task: str | None = None
    ) -> None:
        self.estimator = estimator
        self.validation = validation
        self.task = task

    def __repr__(self) -> str:
        state = self.__dict__
        if "estimator" in state:
            inner = type(state["estimator"]).__name__ if state["estimator"] is not None else "None"
        else:  # loaded, library estimator not read yet
            inner = str(getattr(self, "manifest_", {}).get("estimator", "?")).rpartition(".")[2]
        fitted = " fitted" if "flavor_" in state else ""
        return f"<kiln.Model {inner}{fitted}>"

    def __getattr__(self, name: str) -> Any:
        # A model loaded with compiled inference reads its library estimator (importing
        # the library) only when something asks for it.
        if name in ("estimator", "estimator_"):
            load = self.__dict__.get("_load_estimator")
            if load is not None:
                estimator = load()
                self.__dict__.update(estimator=estimator, estimator_=estimator)
                del self.__dict__["_load_estimator"]
                return estimator
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __getstate__(self) -> dict[str, Any]:
        if "_load_estimator" in self.__dict__:
            self.estimator_  # noqa: B018 - read it: the loader is not picklable
        return self.__dict__

    # ------------------------------------------------------------------ fitting
    def _check_params(self) -> None:
        if self.validation not in _MODES:
            raise ConfigurationError(
                f"validation={self.validation!r} is not one of {', '.join(_MODES)}."
            )
        if self.task not in (None, "classification", "regression"):
            raise ConfigurationError(
                f"task={self.task!r}: expected 'classification', 'regression' or None."
            )
        if self.estimator is None:
            raise ConfigurationError(
                "kiln.Model() needs an estimator to fit, e.g. kiln.Model(LogisticRegression())."
            )

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Model:
        """Fit a copy of the estimator, record the signature and reference profile.

        Inside a run, the estimator's parameters, the fit time and the training
        dataset's fingerprint are logged to it.

        Returns:
            self
        """
        from kiln.models._flavors import FunctionFlavor, flavor_for
        from kiln.models._infer import infer_signature
        from kiln.models._profile import reference_profile

        self._check_params()
        flavor = flavor_for(self.estimator)
        if isinstance(flavor, FunctionFlavor):
            raise ConfigurationError(
                "A function is not fitted: use kiln.Model.from_function(fn, signature=...)."
            )
        # Read the data first: what kiln cannot describe is refused before a long fit.
        signature = infer_signature(X, y)
        estimator = _clone(flavor.prepare(self.estimator))
        start = time.perf_counter()
        estimator.fit(X, y, **fit_params) if y is not None else estimator.fit(X, **fit_params)
        self.fit_seconds_ = time.perf_counter() - start
        self.estimator_ = estimator
        self.flavor_ = flavor.name
        self.task_ = self.task or _detect_task(estimator)
        classes = getattr(estimator, "classes_", None)
        self.classes_ = None if classes is None else list(classes)
        self.signature_ = signature
        self.profile_, self.reference_sample_ = reference_profile(X)
        self._validator_ = None
        self._compiled_ = None
        self._log_fit(flavor, X, y)
        return self

    def _log_fit(self, flavor: Any, X: Any, y: Any) -> None:
        from kiln.tracking import active_run

        run = active_run()
        if run is None:
            return
        for key, value in flavor.params(self.estimator_).items():
            try:
                run.log_param(key, value)
            except ParamConflictError:
                warnings.warn(
                    f"Param {key!r} was already logged with another value; kept the first.",
                    stacklevel=3,
                )
        run.log_metric("fit_seconds", self.fit_seconds_ or 0.0)
        data = X
        if y is not None:
            from kiln._exceptions import TrackingError
            from kiln._frames import as_frame

            # The conversion log_dataset makes, so lists and arrays are logged the same way.
            data = as_frame(X, single="value", role="X", error=TrackingError)[0].copy()
            target = getattr(y, "name", None) or "target"
            data[target if target not in data.columns else f"{target}_y"] = list(y)
        run.log_dataset(data, role="train")

    @classmethod
    def from_function(
        cls,
        fn: Any,
        *,
        signature: Any,
        task: str | None = None,
        validation: str = "warn",
    ) -> Model:
        """Wrap a function `fn(frame) -> predictions` as a ready model.

        Args:
            fn: A callable taking a pandas DataFrame. Define it at the top level of an
                importable module so it is saved by reference, not pickled.
            signature: A `Signature`, or an example input (DataFrame) to infer one from.
            task: "classification" or "regression", if known.
            validation: See `Model`.
        """
        from kiln.models._flavors import FunctionFlavor
        from kiln.models._infer import infer_signature
        from kiln.models._signature import Signature

        if not callable(fn):
            raise ConfigurationError(f"from_function needs a callable; got {type(fn).__name__}.")
        model = cls(fn, validation=validation, task=task)
        model._check_params()
        model.estimator_ = fn
        model.flavor_ = FunctionFlavor.name
        model.task_ = task
        model.classes_ = None
        model.fit_seconds_ = 0.0
        if isinstance(signature, Signature):
            model.signature_ = signature
            model.profile_, model.reference_sample_ = None, None
        else:
            from kiln.models._profile import reference_profile

            model.signature_ = infer_signature(signature)
            model.profile_, model.reference_sample_ = reference_profile(signature)
        model._validator_ = None
        model._compiled_ = None
        return model

    # --------------------------------------------------------------- predicting
    def _fitted(self) -> None:
        if "flavor_" not in self.__dict__:
            raise NotFittedError(
                "This kiln.Model is not fitted yet: call fit(X, y) first, or load one with "
                "kiln.load_model(uri)."
            )

    def _validator(self) -> Validator:
        self._fitted()
        validator = self._validator_
        if validator is None:
            from kiln.models._validator import ColumnValidator, Validator

            kind = Validator if self._compiled_ is None else ColumnValidator
            validator = self._validator_ = kind(self.signature_, mode=self.validation)
        return validator

    def _validated(self, X: Any) -> Any:
        """The validated input: a DataFrame, or `Columns` when compiled inference is on."""
        result = self._validator().check(X)
        if result.frame is None:
            raise ValidationError.from_errors(result.errors)
        if result.warnings:
            self._warn_drift(result.warnings)
        return result.frame

    def _warn_drift(self, problems: list[dict[str, Any]]) -> None:
        """One `DataDriftWarning` per model in a process, for unseen nulls and categories.

        Values outside the training range are normal on held-out data: they are left to
        monitoring (`kiln monitor`), not warned of. kiln's own predictions (evaluate,
        importance, compare) run in `quiet_drift()` and warn of nothing.
        """
        from kiln.models._validator import DataDriftWarning, describe, drift_quiet

        if self.__dict__.get("_drift_warned_") or drift_quiet():
            return
        shown = [p for p in problems if p["problem"] in ("null", "category")]
        if not shown:
            return
        self._drift_warned_ = True
        message = describe(shown, "The input differs from the training data") + (
            "\nThis model warns of drift once per process; check(X) reports it for any input, "
            'and validation="strict" refuses such rows.'
        )
        warnings.warn(DataDriftWarning(message, shown), stacklevel=5)

    def check(self, X: Any) -> ValidationResult:
        """Validate `X` against the training signature without predicting.

        Returns:
            A `ValidationResult` (see `kiln.models._validator`): `errors` that would make
            `predict` refuse the input, drift `warnings` (unseen nulls and categories,
            out-of-range values) it would let through, and `notes`.
        """
        return self._validator().check(X)

    def _call(self, method: str, X: Any) -> Any:
        from kiln.models._flavors import flavor_named

        data = self._validated(X)
        if method == "predict_proba" and self.task_ == "regression":
            raise ModelError(
                "predict_proba is for classifiers; this model does regression. Call predict."
            )
        if self._compiled_ is not None:
            from kiln.models._compiled import Fallback

            try:
                return getattr(self._compiled_, method)(data.outs)
            except Fallback:  # the library estimator decides (and raises its own errors)
                data = data.frame()
        try:
            return getattr(flavor_named(self.flavor_), method)(self.estimator_, self._fed(data))
        except KilnError:
            raise
        except (ValueError, TypeError) as exc:
            raise _prediction_error(self, method, exc) from exc

    def predict_validated(self, frame: Any, *, proba: bool = False) -> Any:
        """Predict on a frame already validated against this model's signature.

        `predict` validates its input each time. A caller that validated the rows
        itself (serving validates each request once with a `Validator`, then predicts
        a batch of them) passes the frame `Validator.check(X).frame` returned, and
        nothing is checked again. Models saved with compiled inference predict through
        it (numpy only).

        Args:
            frame: The DataFrame a `Validator` for `signature_` returned for the input.
            proba: Return class probabilities (`predict_proba`) instead of predictions.

        Raises:
            NotFittedError: The model is not fitted or loaded.
            ModelError: `proba` for a model that does regression.
        """
        from kiln.models._flavors import flavor_named

        self._fitted()
        method = "predict_proba" if proba else "predict"
        if proba and self.task_ == "regression":
            raise ModelError(
                "Probabilities were asked for, but this model does regression. Call "
                "predict_validated(frame) without proba."
            )
        if self._compiled_ is not None:
            from kiln.models._compiled import Fallback, frame_columns

            try:
                return getattr(self._compiled_, method)(frame_columns(frame))
            except Fallback:
                pass
        return getattr(flavor_named(self.flavor_), method)(self.estimator_, self._fed(frame))

    def _fed(self, frame: Any) -> Any:
        """The validated frame in the shape the estimator was trained on: a 2-D array for
        a model fitted on an array or a list of rows (scikit-learn warns when a model
        fitted without feature names is given a DataFrame), else the frame."""
        if self.signature_.input_type == "ndarray" and self.flavor_ != "function":
            return frame.to_numpy()
        return frame

    def _predict_validated(self, method: str, frame: Any) -> Any:
        # The former private name (serving called it); use `predict_validated`.
        return self.predict_validated(frame, proba=method == "predict_proba")

    def predict(self, X: Any) -> Any:
        """Predictions for `X`, after validating it against the training signature.

        Raises:
            ValidationError: Names each bad column, what was expected and what was found.
        """
        return self._call("predict", X)

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities for `X` (classifiers only), after validation."""
        return self._call("predict_proba", X)

    # ------------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike[str] | None = None, *, name: str = "model") -> str:
        """Save the model; return a URI that `kiln.load_model` and `kiln.register` accept.

        Args:
            path: A folder to write (it must not exist, or be empty). Without it the model
                is stored with the active run, as its artifact folder `name`.
            name: The artifact folder's name within the run.

        Returns:
            `runs:/<run id>/<name>`, or the folder's absolute path.
        """
        from kiln.tracking import active_run

        self._fitted()
        run = active_run() if path is None else None
        if path is None and run is None:
            raise NoActiveRunError(
                "model.save() without a path stores the model with the active run, and no run "
                "is active. Use `with kiln.start_run(): model.save()`, or model.save('folder')."
            )
        with tempfile.TemporaryDirectory(prefix="kiln-model-") as tmp:
            folder = Path(tmp) / "model"
            folder.mkdir()
            self._write(folder)
            if run is not None:
                run.log_artifact(folder, name=name)
                uri = f"runs:/{run.id}/{name}"
                self.__dict__.setdefault("_saved_uris_", []).append(uri)
                return uri
            target = Path(path).expanduser().resolve()  # type: ignore[arg-type]
            if target.exists() and (not target.is_dir() or any(target.iterdir())):
                raise ConfigurationError(
                    f"Cannot save the model to {target}: it exists and is not an empty folder. "
                    "Give a new or empty folder, or remove this one first."
                )
            shutil.copytree(folder, target, dirs_exist_ok=True)
            return str(target)

    def _write(self, folder: Path) -> None:
        from kiln._version import __version__
        from kiln.models._flavors import flavor_named
        from kiln.models._format import write_manifest

        flavor = flavor_named(self.flavor_)
        fields = flavor.save(self.estimator_, folder)
        if flavor.name == "sklearn" and fields.get("serialization") != "pickle":
            from kiln.models._compiled import write_compiled

            fields.update(write_compiled(self, folder))
        (folder / "signature.json").write_text(
            json.dumps(self.signature_.to_dict(), indent=2), encoding="utf-8"
        )
        if self.profile_ is not None:
            (folder / "profile.json").write_text(json.dumps(self.profile_), encoding="utf-8")
        if self.reference_sample_ is not None:
            self.reference_sample_.to_parquet(folder / "reference_sample.parquet")
        library = flavor.library_version()
        requirements = [f"kiln-ml=={__version__}"]
        if library and flavor.distribution != "kiln-ml":
            requirements.append(f"{flavor.distribution}=={library}")
        write_manifest(
            folder,
            {
                "flavor": flavor.name,
                "library": {"name": flavor.distribution, "version": library},
                "task": self.task_,
                "classes": None if self.classes_ is None else [_plain(c) for c in self.classes_],
                "validation": self.validation,
                "estimator": f"{type(self.estimator_).__module__}.{getattr(type(self.estimator_), '__qualname__', '')}",
                "requirements": requirements,
                **fields,
            },
        )

    @classmethod
    def _from_folder(
        cls,
        folder: Path,
        manifest: dict[str, Any],
        source: str,
        *,
        compiled: bool = True,
        trust_pickle: bool = False,
    ) -> Model:
        from kiln.models._flavors import flavor_named, require_trust
        from kiln.models._format import model_file
        from kiln.models._signature import Signature

        require_trust(manifest, trust_pickle, source)  # before anything reads the model file
        flavor = flavor_named(manifest["flavor"])
        saved, installed = (manifest.get("library") or {}).get("version"), flavor.library_version()
        if saved and installed and saved != installed:
            warnings.warn(
                f"{source} was saved with {flavor.distribution} {saved}; {installed} is "
                "installed here. Predictions may differ; pin the saved version to be sure.",
                ModelVersionWarning,
                stacklevel=3,
            )
        model = cls.__new__(cls)
        model.validation = manifest.get("validation", "warn")
        model.task = manifest.get("task")
        inference = manifest.get("inference") if compiled else None
        if inference and hasattr(flavor, "load_bytes"):
            from kiln.models._compiled import read_compiled

            model._compiled_ = read_compiled(folder, inference)
            data = (folder / model_file(manifest)).read_bytes()
            # The folder may be temporary: keep the (verified) bytes, load them on demand.
            model._load_estimator = lambda: flavor.load_bytes(
                data, manifest, trust_pickle=trust_pickle
            )
        else:
            model._compiled_ = None
            estimator = flavor.load(folder, manifest, trust_pickle=trust_pickle)
            model.estimator = estimator
            model.estimator_ = estimator
        model.flavor_ = flavor.name
        model.task_ = manifest.get("task")
        classes = manifest.get("classes")
        if classes is None and model._compiled_ is None:
            found = getattr(model.estimator_, "classes_", None)
            classes = None if found is None else list(found)
        model.classes_ = classes
        model.signature_ = Signature.from_dict(
            json.loads((folder / "signature.json").read_text(encoding="utf-8"))
        )
        profile = folder / "profile.json"
        model.profile_ = (
            json.loads(profile.read_text(encoding="utf-8")) if profile.exists() else None
        )
        model.reference_sample_ = None  # read on demand from the source: it can be large
        model.manifest_ = manifest
        model.source_uri_ = source
        model.fit_seconds_ = None
        model._validator_ = None
        return model


def _prediction_error(model: Model, method: str, exc: BaseException) -> PredictionError:
    """What to tell a user whose input passed validation but the model's library refused."""
    text = str(exc).strip()
    found = f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"
    unseen = "unknown categor" in text.lower() or "unseen" in text.lower()
    fix = (
        "The input holds a category the model never saw in training. Refuse such rows "
        "with a clear error first with validation='strict' (model.validation = 'strict', "
        "kiln serve --validation strict), or train with an encoder that accepts them "
        "(OneHotEncoder(handle_unknown='ignore'))."
        if unseen
        else f"The input passed validation (mode {model.validation!r}) but the model "
        "cannot score it; validation='strict' refuses more such input before it reaches "
        "the model."
    )
    return PredictionError(f"The {model.flavor_} model raised in {method}: {found}\n{fix}")


class ModelVersionWarning(KilnWarning):
    """A model was saved with another version of its library than the one installed."""


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _clone(estimator: Any) -> Any:
    try:
        from sklearn.base import clone

        return clone(estimator)
    except Exception:  # noqa: BLE001 - not a scikit-learn estimator: copy it
        return copy.deepcopy(estimator)


def _detect_task(estimator: Any) -> str | None:
    kind = getattr(estimator, "_estimator_type", None)
    try:
        from sklearn.base import is_classifier, is_regressor

        if is_classifier(estimator):
            return "classification"
        if is_regressor(estimator):
            return "regression"
    except Exception:  # noqa: BLE001 - tags API differs across versions
        pass
    if kind == "classifier" or hasattr(estimator, "classes_"):
        return "classification"
    if kind == "regressor":
        return "regression"
    return None
