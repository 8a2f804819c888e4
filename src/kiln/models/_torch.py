"""PyTorch models: an `nn.Module` trained, saved (safetensors) and called like any other.

`kiln.Model(net)` wraps the module in a `TorchEstimator`, which gives it scikit-learn's
shape: `fit(X, y)` runs a small seeded training loop (or your own `train_fn`), `predict`
and `predict_proba` take a DataFrame of numeric columns. The weights are saved with
safetensors (no pickle); the architecture is rebuilt at load time from the module's
class, imported by reference, and `module_params` (the keyword arguments to build it).

```python
class Net(nn.Module):                    # defined at the top level of a module
    def __init__(self, n_in=4, hidden=16, n_out=2): ...

model = kiln.Model(TorchEstimator(Net, module_params={"n_in": 4}, epochs=30)).fit(X, y)
```

Devices: `device="auto"` (the default) trains where the given module instance's
parameters are, else on CUDA when it is available, else on the CPU; "cpu", "cuda",
"cuda:N" and "mps" name one. Inputs follow the module (wherever a `train_fn` left it),
predictions come back as CPU numpy arrays, and the weights are always saved as CPU
tensors, so a model trained on a GPU loads on a machine without one. Loading puts the
module on the CPU unless `load_model(uri, device=...)` asks for another device.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from kiln._exceptions import (
    ConfigurationError,
    ModelError,
    ModelFormatError,
    NotFittedError,
)

__all__ = ["TorchEstimator", "is_torch_module"]

_LOSSES = ("auto", "cross_entropy", "mse")
_DEVICES = "'auto', 'cpu', 'cuda', 'cuda:N' (a GPU's index) or 'mps'"


def is_torch_module(obj: Any) -> bool:
    """Whether `obj` is a `torch.nn.Module` (or its class), without importing torch."""
    cls = obj if isinstance(obj, type) else type(obj)
    return any(
        c.__module__ == "torch.nn.modules.module" and c.__name__ == "Module" for c in cls.__mro__
    )


class TorchEstimator:
    """A scikit-learn-shaped estimator around a PyTorch module.

    Args:
        module: The module's class, or an instance (its class and `module_params` must
            rebuild it: they are what loading uses).
        module_params: Keyword arguments for the module's class.
        loss: "cross_entropy" (classification: the module outputs one logit per class),
            "mse" (regression: one output), or "auto" (from the targets: integer, bool
            or text labels mean classification).
        epochs: Passes over the training data in the built-in loop.
        lr: Adam's learning rate.
        batch_size: Rows per optimisation step.
        seed: Seeds the weights' initialisation and the batch order.
        train_fn: Your own training, `train_fn(module, X, y)` with float32 tensors (y:
            class indices for classification) on the module's device; replaces the
            built-in loop. It may move the module: predictions follow it.
        device: Where to train: "auto" (where the instance's parameters are, else CUDA
            when available, else the CPU), "cpu", "cuda", "cuda:N" or "mps".

    Attributes:
        module_: The trained module (fitted).
        device_: The device the module's parameters are on after training, e.g. "cpu"
            or "cuda:0" (`to(device)` moves it).
        classes_: Class labels, for classification.
        n_features_in_: Input columns seen in `fit`.
    """

    def __init__(
        self,
        module: Any,
        *,
        module_params: dict[str, Any] | None = None,
        loss: str = "auto",
        epochs: int = 20,
        lr: float = 1e-2,
        batch_size: int = 64,
        seed: int = 0,
        train_fn: Any = None,
        device: Any = "auto",
    ) -> None:
        self.module = module
        self.module_params = module_params
        self.loss = loss
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.seed = seed
        self.train_fn = train_fn
        self.device = device

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor arguments (scikit-learn's convention)."""
        return {
            "module": self.module,
            "module_params": self.module_params,
            "loss": self.loss,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "train_fn": self.train_fn,
            "device": self.device,
        }

    @property
    def _estimator_type(self) -> str | None:
        loss = getattr(self, "loss_", self.loss)
        return {"cross_entropy": "classifier", "mse": "regressor"}.get(loss)

    def _build(self) -> Any:
        import torch

        params = dict(self.module_params or {})
        if isinstance(self.module, type):
            torch.manual_seed(self.seed)
            return self.module(**params)
        if is_torch_module(self.module):
            import copy

            return copy.deepcopy(self.module)
        raise ConfigurationError(
            f"TorchEstimator needs an nn.Module class or instance; got {type(self.module).__name__}."
        )

    def fit(self, X: Any, y: Any) -> TorchEstimator:
        """Train a fresh copy of the module on `X` (numeric columns) and `y`."""
        import numpy as np
        import torch

        if self.loss not in _LOSSES:
            raise ConfigurationError(f"loss={self.loss!r} is not one of {', '.join(_LOSSES)}.")
        features = _features(X)
        target = np.asarray(y)
        loss = self.loss
        if loss == "auto":
            loss = "cross_entropy" if target.dtype.kind in "biuOUS" else "mse"
        self.loss_ = loss
        self.n_features_in_ = features.shape[1]
        if loss == "cross_entropy":
            classes, codes = np.unique(target, return_inverse=True)
            self.classes_ = classes
            labels = torch.as_tensor(codes, dtype=torch.long)
        else:
            labels = torch.as_tensor(target.astype(np.float32).reshape(-1, 1))
        device = resolve_device(self.device, None if isinstance(self.module, type) else self.module)
        module = self._build().to(device)
        inputs = torch.as_tensor(features, device=device)
        labels = labels.to(device)
        if self.train_fn is not None:
            self.train_fn(module, inputs, labels)
        else:
            _train(module, inputs, labels, loss, self.epochs, self.lr, self.batch_size, self.seed)
        module.eval()
        self.module_ = module
        self.device_ = str(module_device(module) or device)
        return self

    def to(self, device: Any) -> TorchEstimator:
        """Move the fitted module to `device` ("auto": CUDA when available, else the CPU).

        Raises:
            ConfigurationError: The device is unknown or not available here.
        """
        if not hasattr(self, "module_"):
            raise NotFittedError("This TorchEstimator is not fitted: call fit(X, y) first.")
        target = resolve_device(device)
        self.module_.to(target)
        self.device_ = str(module_device(self.module_) or target)
        return self

    def _forward(self, X: Any) -> Any:
        import torch

        if not hasattr(self, "module_"):
            raise NotFittedError("This TorchEstimator is not fitted: call fit(X, y) first.")
        # The inputs go where the module is now (a train_fn may have moved it).
        device = module_device(self.module_) or getattr(self, "device_", "cpu")
        with torch.no_grad():
            return self.module_(torch.as_tensor(_features(X), device=device)).cpu()

    def predict(self, X: Any) -> Any:
        """Class labels (classification) or values (regression), as a numpy array."""
        out = self._forward(X)
        if self.loss_ == "cross_entropy":
            return self.classes_[out.argmax(dim=1).numpy()]
        return out.numpy().reshape(-1).astype("float64")

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities (softmax of the module's outputs), as a numpy array."""
        if self.loss_ != "cross_entropy":
            raise ModelError(
                "predict_proba is for classifiers; this module does regression. Call predict, "
                "or give the TorchEstimator a classification loss."
            )
        return self._forward(X).softmax(dim=1).numpy().astype("float64")


def module_device(module: Any) -> Any:
    """The device of the module's first parameter (or buffer); None when it has neither."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return None


def resolve_device(device: Any, module: Any = None) -> Any:
    """The `torch.device` that `device` names, checked to be usable here.

    "auto" is where `module`'s parameters are when it has any, else CUDA when it is
    available, else the CPU.

    Raises:
        ConfigurationError: Not a device name kiln trains on, or not available here.
    """
    import torch

    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ConfigurationError(
            f"device must be {_DEVICES}; got a {type(device).__name__} ({device!r})."
        )
    if device == "auto":
        found = None if module is None else module_device(module)
        if found is None:
            found = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if found.type not in ("cpu", "cuda", "mps"):
            raise ConfigurationError(
                f"device='auto' trains where the module's parameters are, and they are on "
                f"{str(found)!r}, where they hold no values to train. Build the module on a "
                f"real device, or pass device= as one of {_DEVICES}."
            )
        return found
    try:
        chosen = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ConfigurationError(
            f"device={device!r} is not a device: expected {_DEVICES}."
        ) from exc
    if chosen.type == "cpu":
        return chosen
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            why = (
                "this torch was built without CUDA"
                if torch.version.cuda is None
                else "no GPU is visible (check CUDA_VISIBLE_DEVICES and the driver)"
            )
            raise ConfigurationError(
                f"device={device!r}, but CUDA is not available here: {why} (torch "
                f"{torch.__version__}). Use device='cpu', or device='auto' to use CUDA "
                "only where it is available."
            )
        count = torch.cuda.device_count()
        if chosen.index is not None and chosen.index >= count:
            raise ConfigurationError(
                f"device={device!r}, but this machine has {count} CUDA device(s): "
                f"use 'cuda:0' to 'cuda:{count - 1}' (or 'cuda' for the current one)."
            )
        return chosen
    if chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigurationError(
                f"device={device!r}, but MPS (Apple's GPU) is not available here. "
                "Use device='cpu', or device='auto'."
            )
        return chosen
    raise ConfigurationError(f"device={device!r} is not supported: expected {_DEVICES}.")


def _features(X: Any) -> Any:
    import numpy as np

    values = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    try:
        return np.ascontiguousarray(values, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"A PyTorch model takes numeric columns only; encode text and categories first ({exc})."
        ) from exc


def _train(
    module: Any, X: Any, y: Any, loss: str, epochs: int, lr: float, batch_size: int, seed: int
) -> None:
    import torch

    generator = torch.Generator().manual_seed(seed)
    criterion = torch.nn.CrossEntropyLoss() if loss == "cross_entropy" else torch.nn.MSELoss()
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    module.train()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator)
        for start in range(0, len(X), batch_size):
            rows = order[start : start + batch_size].to(X.device)
            optimizer.zero_grad()
            criterion(module(X[rows]), y[rows]).backward()
            optimizer.step()


# ------------------------------------------------------------------ saving and loading


def save_torch(estimator: TorchEstimator, folder: Path) -> dict[str, Any]:
    """Write `weights.safetensors` and `torch.json`; return the manifest fields."""
    from safetensors.torch import save_file

    module = estimator.module_
    cls = type(module)
    ref = f"{cls.__module__}:{cls.__qualname__}"
    if cls.__module__ == "__main__" or "<locals>" in cls.__qualname__:
        raise ModelError(
            f"Cannot save {cls.__qualname__} by reference: define the module class at the top "
            "level of an importable module (not in __main__ or inside a function)."
        )
    params = dict(estimator.module_params or {})
    _check_rebuild(cls, params, module)
    state = {}
    for key, value in module.state_dict().items():
        if value.is_meta:
            raise ModelError(
                f"Cannot save {cls.__qualname__}: its {key!r} is on the 'meta' device, which "
                "holds no values. Load or train real weights before saving."
            )
        # Always CPU tensors: a model trained on a GPU loads where there is none.
        state[key] = value.detach().to("cpu").contiguous()
    save_file(state, str(folder / "weights.safetensors"))
    classes = getattr(estimator, "classes_", None)
    spec = {
        "module": ref,
        "module_params": params,
        "loss": estimator.loss_,
        "n_features_in": estimator.n_features_in_,
        "classes": None if classes is None else [_plain(c) for c in classes],
    }
    (folder / "torch.json").write_text(json.dumps(spec, indent=2), encoding="utf-8")
    return {"serialization": "safetensors", "model_file": "weights.safetensors"}


def load_torch(folder: Path, manifest: dict[str, Any]) -> TorchEstimator:
    """Rebuild the module from its class and parameters, then load the weights."""
    import numpy as np
    import torch
    from safetensors.torch import load_file

    spec = json.loads((folder / "torch.json").read_text(encoding="utf-8"))
    module_ref, _, qualname = spec["module"].partition(":")
    try:
        cls: Any = importlib.import_module(module_ref)
        for part in qualname.split("."):
            cls = getattr(cls, part)
    except (ImportError, AttributeError) as exc:
        raise ModelFormatError(
            f"Cannot import the module class {spec['module']} this model was saved with: {exc}. "
            "Install the package that defines it (or put it on PYTHONPATH)."
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelFormatError(
            f"This model's torch.json names {spec['module']}, which is not a torch.nn.Module "
            "class; kiln builds only module classes when loading. The folder was not "
            "written by kiln's torch flavor."
        )
    from kiln.models._format import model_file

    module = cls(**spec["module_params"])
    module.load_state_dict(load_file(str(folder / model_file(manifest)), device="cpu"))
    module.eval()
    estimator = TorchEstimator(cls, module_params=spec["module_params"], loss=spec["loss"])
    estimator.module_ = module
    estimator.device_ = "cpu"  # load_model(uri, device=...) moves it
    estimator.loss_ = spec["loss"]
    estimator.n_features_in_ = spec["n_features_in"]
    if spec["classes"] is not None:
        estimator.classes_ = np.asarray(spec["classes"])
    return estimator


def place_model(model: Any, device: Any) -> Any:
    """Put a loaded `kiln.Model` on `device`; return it.

    A PyTorch model's module moves there ("auto": CUDA when available, else the CPU);
    every other flavor runs on the CPU, so only "cpu" and "auto" are accepted for them.

    Raises:
        ConfigurationError: The device is unknown or unavailable, or a non-PyTorch model
            was asked to run on a GPU.
    """
    if model.flavor_ == "torch":
        model.estimator_.to(device)
        return model
    if device in ("cpu", "auto"):
        return model
    raise ConfigurationError(
        f"device={device!r} applies to PyTorch models; {model.source_uri_} is a "
        f"{model.flavor_} model, which kiln runs on the CPU. Leave device at 'cpu' (or 'auto')."
    )


def _check_rebuild(cls: Any, params: dict[str, Any], module: Any) -> None:
    try:
        json.dumps(params)
        rebuilt = cls(**params)
    except Exception as exc:
        raise ConfigurationError(
            f"{cls.__qualname__}(**module_params) cannot rebuild this module at load time "
            f"({exc}). Pass TorchEstimator(..., module_params={{...}}) with JSON values."
        ) from exc
    want = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in rebuilt.state_dict().items()}
    if want != got:
        raise ConfigurationError(
            f"{cls.__qualname__}(**{params}) builds a module whose weights differ from the "
            "trained one's; pass the module_params it was built with."
        )


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
