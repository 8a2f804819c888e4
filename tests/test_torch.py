"""The PyTorch flavor: an nn.Module trained, saved with safetensors and loaded like any model.

torch is an optional extra (`kiln-ml[torch]`); `make test` installs the CPU build when the
machine has it on disk, and CI (KILN_REQUIRE_SERVICES=1) fails rather than skip without it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REQUIRE_SERVICES

try:
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    if REQUIRE_SERVICES:
        raise
    pytest.skip(
        "torch is not installed (pip install 'kiln-ml[torch]'); the PyTorch flavor is untested",
        allow_module_level=True,
    )

import kiln
from kiln import KilnError
from kiln.models import TorchEstimator, load_model
from test_models import TESTS, _predict_in_fresh_process

sys.path.insert(0, str(TESTS))
from torch_nets import MLP


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = pd.Series(np.where(X["a"] + X["b"] > 0, "yes", "no"), name="label")
    return X, y


def test_a_module_round_trips_through_a_run_with_identical_predictions(tracked: str) -> None:
    X, y = _data()
    estimator = TorchEstimator(MLP, module_params={"n_in": 3, "hidden": 8}, epochs=15)
    with kiln.start_run(experiment="torch") as run:
        model = kiln.Model(estimator).fit(X, y)
        uri = model.save()
    assert model.flavor_ == "torch"
    assert model.task_ == "classification"
    assert model.classes_ == ["no", "yes"]
    assert (model.predict(X) == y).mean() > 0.9  # it learned
    logged = kiln.get_run(run.id)
    assert logged.params["module"] == "MLP"
    assert logged.params["module_params.hidden"] == "8"

    after = _predict_in_fresh_process(uri, X, tracked, proba=True)

    np.testing.assert_array_equal(after, model.predict_proba(X))
    loaded = load_model(uri)
    manifest = loaded.manifest_
    assert manifest["serialization"] == "safetensors"
    assert set(manifest["files"]) >= {"weights.safetensors", "torch.json"}
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_a_module_instance_trains_a_copy_and_regression_works(tmp_path: Path) -> None:
    X, _ = _data(200, 1)
    target = 2 * X["a"] - X["c"]
    net = MLP(n_in=3, hidden=16, n_out=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    model = kiln.Model(TorchEstimator(net, module_params={"n_in": 3, "n_out": 1}, epochs=60))
    model.fit(X, target)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched
    assert model.task_ == "regression"
    assert np.abs(model.predict(X) - target).mean() < 0.5
    folder = model.save(tmp_path / "reg")
    np.testing.assert_array_equal(load_model(folder).predict(X), model.predict(X))


def test_training_is_deterministic_under_a_seed() -> None:
    X, y = _data(150, 2)
    runs = [
        kiln.Model(TorchEstimator(MLP, epochs=5, seed=seed)).fit(X, y).predict_proba(X)
        for seed in (3, 3, 4)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_a_custom_training_function_replaces_the_loop() -> None:
    X, y = _data(100, 3)
    calls = []

    def train(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        calls.append((tuple(inputs.shape), labels.dtype))

    kiln.Model(TorchEstimator(MLP, train_fn=train)).fit(X, y)
    assert calls == [((100, 3), torch.long)]


def test_a_module_that_cannot_be_rebuilt_is_refused_at_save(tmp_path: Path) -> None:
    X, y = _data(80, 4)
    model = kiln.Model(MLP(n_in=3, hidden=4)).fit(X, y)  # module_params not given
    with pytest.raises(KilnError, match="module_params"):
        model.save(tmp_path / "m")
    spec_free = kiln.Model(TorchEstimator(MLP(n_in=3), epochs=1)).fit(X, y)
    folder = Path(spec_free.save(tmp_path / "ok"))  # defaults rebuild it: saved
    assert json.loads((folder / "torch.json").read_text())["module"] == "torch_nets:MLP"
