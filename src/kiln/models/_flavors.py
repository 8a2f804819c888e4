"""Flavors: how each library's models are saved, loaded and called.

Every flavor saves in its library's own safe format: skops for scikit-learn, LightGBM's
text format, XGBoost's UBJSON, an import reference for a Python function. Pickle is used
only when the safe format cannot hold the object, and then the manifest records it and
a warning says so.

Loading never runs code from the files unless the caller trusts them: a pickled model
is refused without `trust_pickle=True`, and a skops file may only name classes from
kiln's own allow-list (`TRUSTED_LIBRARIES`), never types listed by the folder itself.
"""

from __future__ import annotations

import abc
import importlib
import json
import pickle
import warnings
from pathlib import Path
from typing import Any, ClassVar

from kiln._exceptions import (
    ConfigurationError,
    KilnWarning,
    ModelError,
    ModelFormatError,
    UntrustedCodeError,
)
from kiln.models._format import model_file

__all__ = [
    "FLAVORS",
    "TRUSTED_LIBRARIES",
    "Flavor",
    "UnsafeSerializationWarning",
    "flavor_for",
    "flavor_named",
    "require_trust",
]

# The libraries whose classes a skops file may name without the caller's trust.
TRUSTED_LIBRARIES = ("sklearn", "numpy", "scipy", "lightgbm", "xgboost", "kiln")
# Parts of those libraries that read or write files or run code: never trusted.
_UNTRUSTED_PARTS = frozenset(
    {"testing", "distutils", "f2py", "ctypeslib", "_datasource", "memmap", "npyio", "cli"}
)


class UnsafeSerializationWarning(KilnWarning):
    """A model had to be saved with pickle, which runs code when it is loaded."""


def _version(dist: str) -> str | None:
    """The installed version of distribution `dist`, or None.

    Read from the `<name>-<version>.dist-info` folder name where there is one:
    importing `importlib.metadata` costs a fresh process more than loading the model.
    """
    import os
    import sys

    wanted = dist.lower().replace("-", "_").replace(".", "_")
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                project, _, found = name[: -len(".dist-info")].partition("-")
                if project.lower().replace(".", "_") == wanted and found:
                    return found
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


class Flavor(abc.ABC):
    """How one library's models are saved, loaded and called."""

    name: ClassVar[str]
    distribution: ClassVar[str]  # the PyPI name whose version is recorded

    @classmethod
    @abc.abstractmethod
    def matches(cls, estimator: Any) -> bool:
        """Whether this flavor handles `estimator`."""

    @abc.abstractmethod
    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        """Write the model into `folder`; return manifest fields (serialization, ...)."""

    @abc.abstractmethod
    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        """Read the model back from `folder` (code in it runs only with `trust_pickle`)."""

    def predict(self, estimator: Any, X: Any) -> Any:
        """Predictions for a validated frame."""
        return estimator.predict(X)

    def predict_proba(self, estimator: Any, X: Any) -> Any:
        """Class probabilities for a validated frame."""
        return estimator.predict_proba(X)

    def params(self, estimator: Any) -> dict[str, Any]:
        """The estimator's hyper-parameters, flattened for logging."""
        get = getattr(estimator, "get_params", None)
        if get is None:
            return {}
        out = {}
        for key, value in get(deep=True).items():
            if isinstance(value, (str, int, float, bool, type(None))):
                out[key] = value
        return out

    def library_version(self) -> str | None:
        """The installed version of the flavor's library."""
        return _version(self.distribution)

    def prepare(self, estimator: Any) -> Any:
        """What `Model.fit` fits for `estimator` (a flavor may wrap it)."""
        return estimator


class SklearnFlavor(Flavor):
    """scikit-learn estimators and Pipelines (and anything with their API), via skops."""

    name = "sklearn"
    distribution = "scikit-learn"

    @classmethod
    def matches(cls, estimator: Any) -> bool:
        return hasattr(estimator, "fit") and hasattr(estimator, "get_params")

    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        try:
            import skops.io as sio
        except ImportError:
            sio = None
        if sio is not None:
            path = folder / "model.skops"
            try:
                sio.dump(estimator, path)
                trusted = sio.get_untrusted_types(file=path)
                return {"serialization": "skops", "model_file": path.name, "skops_trusted": trusted}
            except Exception as exc:  # noqa: BLE001 - skops cannot hold every object
                path.unlink(missing_ok=True)
                reason = f"skops could not save {type(estimator).__name__}: {exc}"
        else:
            reason = "skops is not installed (pip install 'kiln-ml[sklearn]')"
        return _pickle_fallback(estimator, folder, reason)

    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        data = (folder / model_file(manifest)).read_bytes()
        return self.load_bytes(data, manifest, trust_pickle=trust_pickle)

    def load_bytes(
        self, data: bytes, manifest: dict[str, Any], *, trust_pickle: bool = False
    ) -> Any:
        """Load from the model file's bytes (already checked against their sha256).

        Raises:
            UntrustedCodeError: The file is a pickle, or names skops types outside
                kiln's allow-list, and `trust_pickle` is False.
        """
        if manifest.get("serialization") == "pickle":
            require_trust(manifest, trust_pickle)
            _pickle_warning(manifest)
            # The caller trusts this file; its bytes were checked against their hashes.
            return _unpickle(lambda: pickle.loads(data))
        from kiln._extras import require

        sio = require("skops.io", "sklearn", "Loading a scikit-learn model")
        found = sorted(sio.get_untrusted_types(data=data))
        refused = [name for name in found if not _allowed_type(name)]
        if refused and not trust_pickle:
            raise UntrustedCodeError(
                f"{model_file(manifest)} asks skops to build types that are not on kiln's "
                f"allow-list (classes from {', '.join(TRUSTED_LIBRARIES)}): "
                f"{', '.join(refused)}. Building them can run their code, so kiln refused to "
                "load the model. If you trust where this model came from, load it with "
                "kiln.load_model(uri, trust_pickle=True) (--trust-pickle on kiln serve and "
                "kiln predict)."
            )
        return sio.loads(data, trusted=found)


class LightGBMFlavor(Flavor):
    """LightGBM models through their scikit-learn API, saved in LightGBM's text format."""

    name = "lightgbm"
    distribution = "lightgbm"

    @classmethod
    def matches(cls, estimator: Any) -> bool:
        return any(c.__module__.startswith("lightgbm") for c in type(estimator).__mro__)

    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        booster = getattr(estimator, "booster_", estimator)
        booster.save_model(str(folder / "model.txt"))
        classes = getattr(estimator, "classes_", None)
        return {
            "serialization": "lightgbm-text",
            "model_file": "model.txt",
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__name__}",
            "classes": None if classes is None else [_py(c) for c in classes],
        }

    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        from kiln._extras import require

        lgb = require("lightgbm", "lightgbm", "Loading a LightGBM model")
        booster = lgb.Booster(model_file=str(folder / model_file(manifest)))
        return _BoosterModel(booster, manifest.get("classes"))


class _BoosterModel:
    """A LightGBM booster answering like its scikit-learn wrapper."""

    def __init__(self, booster: Any, classes: list[Any] | None) -> None:
        self.booster = booster
        self.classes_ = None if classes is None else __import__("numpy").asarray(classes)

    def predict_proba(self, X: Any) -> Any:
        import numpy as np

        raw = self.booster.predict(X)
        if raw.ndim == 1:
            return np.column_stack([1 - raw, raw])
        return raw

    def predict(self, X: Any) -> Any:
        if self.classes_ is None:
            return self.booster.predict(X)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class XGBoostFlavor(Flavor):
    """XGBoost models through their scikit-learn API, saved as UBJSON."""

    name = "xgboost"
    distribution = "xgboost"

    @classmethod
    def matches(cls, estimator: Any) -> bool:
        return any(c.__module__.startswith("xgboost") for c in type(estimator).__mro__)

    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        estimator.save_model(str(folder / "model.ubj"))
        return {
            "serialization": "xgboost-ubj",
            "model_file": "model.ubj",
            "estimator_class": f"{type(estimator).__module__}.{type(estimator).__name__}",
        }

    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        from kiln._extras import require

        xgb = require("xgboost", "xgboost", "Loading an XGBoost model")
        name = manifest.get("estimator_class", "xgboost.sklearn.XGBRegressor").rsplit(".", 1)[-1]
        cls = getattr(xgb, name, None)
        if not isinstance(cls, type) or not issubclass(cls, xgb.XGBModel):
            cls = xgb.XGBRegressor  # the manifest names no XGBoost model class
        estimator = cls()
        estimator.load_model(str(folder / model_file(manifest)))
        return estimator

    def library_version(self) -> str | None:
        return _version("xgboost") or _version("xgboost-cpu")


class FunctionFlavor(Flavor):
    """Any Python callable `fn(frame) -> predictions`, saved as an import reference."""

    name = "function"
    distribution = "kiln-ml"

    @classmethod
    def matches(cls, estimator: Any) -> bool:
        return callable(estimator) and not hasattr(estimator, "fit")

    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        module = getattr(estimator, "__module__", None)
        qualname = getattr(estimator, "__qualname__", "")
        importable = module not in (None, "__main__") and "<" not in qualname
        if importable:
            try:
                found = _import(f"{module}:{qualname}")
            except (ImportError, AttributeError):
                found = None
            if found is estimator:
                ref = {"callable": f"{module}:{qualname}"}
                (folder / "function.json").write_text(json.dumps(ref), encoding="utf-8")
                return {"serialization": "import", "model_file": "function.json"}
        return _pickle_fallback(
            estimator,
            folder,
            f"{qualname or estimator!r} cannot be imported by name (define it at the top "
            "level of an importable module to save it safely)",
        )

    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        if manifest.get("serialization") == "pickle":
            require_trust(manifest, trust_pickle)
            return _pickle_load(folder, manifest)
        ref = json.loads((folder / model_file(manifest)).read_text(encoding="utf-8"))
        try:
            return _import(ref["callable"])
        except (ImportError, AttributeError) as exc:
            raise ModelError(
                f"The saved model calls {ref['callable']}, which cannot be imported here: "
                f"{exc}. Install the package that defines it."
            ) from exc

    def predict(self, estimator: Any, X: Any) -> Any:
        return estimator(X)

    def predict_proba(self, estimator: Any, X: Any) -> Any:
        raise ModelError(
            "A function model has no predict_proba; call predict, or wrap a classifier "
            "with kiln.Model(estimator) instead."
        )


def _import(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def _pickle_fallback(obj: Any, folder: Path, reason: str) -> dict[str, Any]:
    warnings.warn(
        f"Saving with pickle, which runs code when loaded: {reason}. The manifest records "
        "this; load the model only from a store you trust.",
        UnsafeSerializationWarning,
        stacklevel=4,
    )
    with open(folder / "model.pkl", "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"serialization": "pickle", "model_file": "model.pkl", "pickle_reason": reason}


def _pickle_warning(manifest: dict[str, Any]) -> None:
    warnings.warn(
        f"Loading a model saved with pickle ({manifest.get('pickle_reason', 'no reason recorded')}).",
        UnsafeSerializationWarning,
        stacklevel=5,
    )


def _pickle_load(folder: Path, manifest: dict[str, Any]) -> Any:
    _pickle_warning(manifest)
    with open(folder / model_file(manifest), "rb") as fh:
        # The caller trusts this file; the files were checked against their hashes first.
        return _unpickle(lambda: pickle.load(fh))


def _unpickle(load: Any) -> Any:
    """`load()`, with a pickle that names a class this process cannot import said plainly."""
    try:
        return load()
    except (ModuleNotFoundError, AttributeError) as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise ModelError(
            f"The pickled model needs code that cannot be imported here ({missing!s}: {exc}). "
            "Run from the folder that holds that module, add its folder to PYTHONPATH, or "
            "install the package that defines it, then load again."
        ) from exc


def require_trust(manifest: dict[str, Any], trust_pickle: bool, source: str = "") -> None:
    """Refuse a pickled model unless the caller trusts it (never the manifest's say-so).

    Raises:
        UntrustedCodeError: The model is a pickle and `trust_pickle` is False; the
            message names the flag.
    """
    if manifest.get("serialization") != "pickle" or trust_pickle:
        return
    where = f"{source} " if source else "This model "
    raise UntrustedCodeError(
        f"{where}was saved with pickle ({manifest.get('pickle_reason', 'no reason recorded')}), "
        "and unpickling runs any code the file holds, so kiln refused to load it. If you "
        "trust where this model came from, load it with kiln.load_model(uri, "
        "trust_pickle=True), or pass --trust-pickle to kiln serve or kiln predict. To avoid "
        "pickle, save the model again in a safe format (see docs/security.md)."
    )


def _allowed_type(name: str) -> bool:
    """Whether `name` (module.qualname, as skops reports it) is a class of a trusted library.

    Only modules of `TRUSTED_LIBRARIES` are imported to check; functions are never trusted
    (skops would call them while loading).
    """
    parts = name.split(".")
    if parts[0] not in TRUSTED_LIBRARIES or _UNTRUSTED_PARTS.intersection(parts):
        return False
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr, None)
        return isinstance(obj, type)
    return False


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class TorchFlavor(Flavor):
    """PyTorch modules, through `TorchEstimator`; weights in safetensors."""

    name = "torch"
    distribution = "torch"

    @classmethod
    def matches(cls, estimator: Any) -> bool:
        from kiln.models._torch import TorchEstimator, is_torch_module

        return isinstance(estimator, TorchEstimator) or is_torch_module(estimator)

    def prepare(self, estimator: Any) -> Any:
        from kiln.models._torch import TorchEstimator

        return estimator if isinstance(estimator, TorchEstimator) else TorchEstimator(estimator)

    def save(self, estimator: Any, folder: Path) -> dict[str, Any]:
        from kiln._extras import require
        from kiln.models._torch import save_torch

        require("safetensors", "torch", "Saving a PyTorch model")
        return save_torch(estimator, folder)

    def load(self, folder: Path, manifest: dict[str, Any], *, trust_pickle: bool = False) -> Any:
        from kiln._extras import require
        from kiln.models._torch import load_torch

        require("torch", "torch", "Loading a PyTorch model")
        require("safetensors", "torch", "Loading a PyTorch model")
        return load_torch(folder, manifest)

    def params(self, estimator: Any) -> dict[str, Any]:
        out = super().params(estimator)
        out.pop("module", None)
        module = estimator.module
        out["module"] = (module if isinstance(module, type) else type(module)).__qualname__
        for key, value in (estimator.module_params or {}).items():
            if isinstance(value, (str, int, float, bool, type(None))):
                out[f"module_params.{key}"] = value
        return out


# Most specific first: LightGBM and XGBoost models also look like scikit-learn's.
FLAVORS: tuple[type[Flavor], ...] = (
    TorchFlavor,
    LightGBMFlavor,
    XGBoostFlavor,
    SklearnFlavor,
    FunctionFlavor,
)


def flavor_for(estimator: Any) -> Flavor:
    """The flavor that handles `estimator`.

    Raises:
        ConfigurationError: No flavor does; the message lists what kiln supports.
    """
    for flavor in FLAVORS:
        if flavor.matches(estimator):
            return flavor()
    raise ConfigurationError(
        f"kiln cannot wrap a {type(estimator).__module__}.{type(estimator).__name__}: expected a "
        "scikit-learn-compatible estimator (fit/predict/get_params), a LightGBM or XGBoost "
        "model, or a callable (kiln.Model.from_function)."
    )


def flavor_named(name: str) -> Flavor:
    """The flavor recorded in a manifest under `name`.

    Raises:
        ModelFormatError: This kiln knows no flavor of that name.
    """
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor()
    raise ModelFormatError(
        f"This kiln cannot load models of flavor {name!r} (it knows "
        f"{', '.join(f.name for f in FLAVORS)}). Upgrade kiln or install the flavor's extra."
    )
