"""One model interface: train, save, load, validate and call any model the same way.

`kiln.Model` wraps scikit-learn, LightGBM, XGBoost, PyTorch modules (through
`TorchEstimator`) and plain functions; `save()` writes
the saved-model folder (see `kiln.models._format`) with its signature and reference
profile; `kiln.load_model(uri)` reads it back after checking every file's hash.
"""

from kiln.models._flavors import UnsafeSerializationWarning
from kiln.models._format import ModelFormatError
from kiln.models._model import Model, ModelVersionWarning, NotFittedError
from kiln.models._torch import TorchEstimator
from kiln.models._uri import load_model
from kiln.models._validator import DataDriftWarning, quiet_drift

__all__ = [
    "DataDriftWarning",
    "Model",
    "ModelFormatError",
    "ModelVersionWarning",
    "NotFittedError",
    "TorchEstimator",
    "UnsafeSerializationWarning",
    "load_model",
    "quiet_drift",
]
