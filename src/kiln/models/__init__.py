"""One model interface: train, save, load, validate and call any model the same way.

`kiln.Model` wraps scikit-learn, LightGBM, XGBoost, PyTorch modules (through
`TorchEstimator`) and plain functions; `save()` writes
the saved-model folder (see `kiln.models._format`) with its signature and reference
profile; `kiln.load_model(uri)` reads it back after checking every file's hash.

Signatures: `infer_signature(X, y)` describes training data as a `Signature` of
`ColumnSpec` columns; a `Validator` checks new data against one (`Model.check` and
`Model.predict` use it; serving validates each request with it, then calls
`Model.predict_validated`). `model_folder(uri)` and `resolve_model_uri(uri)` are the
one place a model URI (`models:/`, `runs:/` or a folder) becomes a local folder.
"""

from kiln.models._flavors import UnsafeSerializationWarning
from kiln.models._format import ModelFormatError, read_manifest
from kiln.models._infer import infer_signature
from kiln.models._model import Model, ModelVersionWarning, NotFittedError
from kiln.models._profile import reference_profile
from kiln.models._signature import ColumnSpec, Signature
from kiln.models._torch import TorchEstimator, resolve_device
from kiln.models._uri import load_model, model_folder, resolve_model_uri
from kiln.models._validator import (
    DataDriftWarning,
    ValidationResult,
    Validator,
    quiet_drift,
)

__all__ = [
    "ColumnSpec",
    "DataDriftWarning",
    "Model",
    "ModelFormatError",
    "ModelVersionWarning",
    "NotFittedError",
    "Signature",
    "TorchEstimator",
    "UnsafeSerializationWarning",
    "ValidationResult",
    "Validator",
    "infer_signature",
    "load_model",
    "model_folder",
    "quiet_drift",
    "read_manifest",
    "reference_profile",
    "resolve_device",
    "resolve_model_uri",
]
