"""The PyTorch flavor: an nn.Module trained, saved with safetensors and loaded like any model.

torch is an optional extra (`kiln-ml[torch]`); `make test` installs the CPU build when the
machine has it on disk, and CI (KILN_REQUIRE_SERVICES=1) fails rather than skip without it.

Devices: every test runs with device="cpu" and "auto"; the tests marked `gpu` need CUDA
and skip, saying so, without it (KILN_REQUIRE_GPU=1 makes them run and fail instead).
On a GPU machine: `bench/gpu_check.sh` (which runs `pytest -m gpu tests/test_torch.py`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

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

import httpx
from click.testing import CliRunner

import kiln
from kiln import ConfigurationError, KilnError
from kiln.cli import cli
from kiln.models import TorchEstimator, load_model
from serve_helpers import KILN, child_env, running
from test_models import TESTS, _predict_in_fresh_process

sys.path.insert(0, str(TESTS))
from torch_nets import MLP

CUDA = torch.cuda.is_available()
gpu = pytest.mark.skipif(
    not CUDA and os.environ.get("KILN_REQUIRE_GPU") != "1",
    reason=f"no CUDA GPU here (torch {torch.__version__}, built for CUDA "
    f"{torch.version.cuda}): the CUDA path is untested; run bench/gpu_check.sh on a GPU machine",
)
no_gpu = pytest.mark.skipif(CUDA, reason="checks the error where CUDA is missing; CUDA is here")
DEVICES = ["cpu", "auto"]


def _same(a: Any, b: Any, device: str) -> None:
    """Identical on the CPU; equal to float32 rounding across devices."""
    if device == "cpu":
        np.testing.assert_array_equal(a, b)
    else:
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _data(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = pd.Series(np.where(X["a"] + X["b"] > 0, "yes", "no"), name="label")
    return X, y


@pytest.mark.parametrize("device", DEVICES)
def test_a_module_round_trips_through_a_run_with_identical_predictions(
    tracked: str, device: str
) -> None:
    X, y = _data()
    estimator = TorchEstimator(
        MLP, module_params={"n_in": 3, "hidden": 8}, epochs=15, device=device
    )
    with kiln.start_run(experiment="torch") as run:
        model = kiln.Model(estimator).fit(X, y)
        uri = model.save()
    trained_on = model.estimator_.device_
    assert trained_on == ("cuda:0" if device == "auto" and CUDA else "cpu")
    assert model.flavor_ == "torch"
    assert model.task_ == "classification"
    assert model.classes_ == ["no", "yes"]
    assert (model.predict(X) == y).mean() > 0.9  # it learned
    logged = kiln.get_run(run.id)
    assert logged.params["module"] == "MLP"
    assert logged.params["module_params.hidden"] == "8"

    assert logged.params["device"] == device

    after = _predict_in_fresh_process(uri, X, tracked, proba=True)  # loads on the CPU

    _same(after, model.predict_proba(X), trained_on)
    loaded = load_model(uri, device=device)
    manifest = loaded.manifest_
    assert manifest["serialization"] == "safetensors"
    assert set(manifest["files"]) >= {"weights.safetensors", "torch.json"}
    assert loaded.estimator_.device_ == trained_on
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


@pytest.mark.parametrize("device", DEVICES)
def test_a_custom_training_function_replaces_the_loop(device: str) -> None:
    X, y = _data(100, 3)
    calls = []

    def train(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        calls.append((tuple(inputs.shape), labels.dtype, inputs.device, labels.device))

    model = kiln.Model(TorchEstimator(MLP, train_fn=train, device=device)).fit(X, y)
    where = torch.device(model.estimator_.device_)
    assert calls == [((100, 3), torch.long, where, where)]
    assert next(model.estimator_.module_.parameters()).device == where
    assert isinstance(model.predict_proba(X), np.ndarray)


def test_a_module_that_cannot_be_rebuilt_is_refused_at_save(tmp_path: Path) -> None:
    X, y = _data(80, 4)
    model = kiln.Model(MLP(n_in=3, hidden=4)).fit(X, y)  # module_params not given
    with pytest.raises(KilnError, match="module_params"):
        model.save(tmp_path / "m")
    spec_free = kiln.Model(TorchEstimator(MLP(n_in=3), epochs=1)).fit(X, y)
    folder = Path(spec_free.save(tmp_path / "ok"))  # defaults rebuild it: saved
    assert json.loads((folder / "torch.json").read_text())["module"] == "torch_nets:MLP"


# ------------------------------------------------------------------ devices


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("gpu", r"device='gpu' is not a device: expected 'auto', 'cpu', 'cuda', 'cuda:N'"),
        (3, r"device must be .*; got a int \(3\)"),
        ("xla", r"device='xla' is not supported: expected 'auto', 'cpu'"),
        pytest.param("cuda", r"CUDA is not available here: .*Use device='cpu'", marks=no_gpu),
        pytest.param("cuda:1", r"CUDA is not available here", marks=no_gpu),
    ],
)
def test_an_unknown_or_unavailable_device_is_refused_at_fit(device: Any, message: str) -> None:
    X, y = _data(40, 5)
    with pytest.raises(ConfigurationError, match=message):
        kiln.Model(TorchEstimator(MLP, epochs=1, device=device)).fit(X, y)


def test_auto_trains_where_the_instance_parameters_are() -> None:
    X, y = _data(40, 6)
    on_meta = MLP(n_in=3).to("meta")  # parameters with no values: auto must not train there
    with pytest.raises(ConfigurationError, match=r"parameters are, and they are on 'meta'"):
        kiln.Model(TorchEstimator(on_meta, epochs=1)).fit(X, y)
    on_cpu = kiln.Model(TorchEstimator(MLP(n_in=3), epochs=1)).fit(X, y)
    assert on_cpu.estimator_.device_ == "cpu"  # an instance on the CPU stays there


def test_saving_copies_every_weight_to_the_cpu(tmp_path: Path) -> None:
    """A module trained on a GPU must be saved as CPU tensors, so it loads without one.

    No GPU here: watch the tensors saving hands on, and check each was copied to the CPU.
    """
    from torch.overrides import TorchFunctionMode

    X, y = _data(60, 7)
    model = kiln.Model(TorchEstimator(MLP, epochs=1, device="cpu")).fit(X, y)
    moved: list[str] = []

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            kwargs = kwargs or {}
            if func is torch.Tensor.cpu or (
                func is torch.Tensor.to and "cpu" in [str(a) for a in (*args[1:], *kwargs.values())]
            ):
                moved.append(func.__name__)
            return func(*args, **kwargs)

    with Watch():
        folder = model.save(tmp_path / "m")
    assert len(moved) == len(model.estimator_.module_.state_dict())

    on_meta = kiln.Model(TorchEstimator(MLP, epochs=1, device="cpu")).fit(X, y)
    on_meta.estimator_.module_.to("meta")
    with pytest.raises(KilnError, match=r"'body.0.weight' is on the 'meta' device"):
        on_meta.save(tmp_path / "meta")
    np.testing.assert_array_equal(load_model(folder).predict(X), model.predict(X))


def test_load_model_puts_the_module_on_the_device_asked(tmp_path: Path) -> None:
    X, y = _data(60, 8)
    folder = kiln.Model(TorchEstimator(MLP, epochs=2, device="cpu")).fit(X, y).save(tmp_path / "m")
    assert load_model(folder).estimator_.device_ == "cpu"  # the default
    auto = load_model(folder, device="auto").estimator_
    assert auto.device_ == ("cuda:0" if CUDA else "cpu")
    assert next(auto.module_.parameters()).device == torch.device(auto.device_)
    with pytest.raises(ConfigurationError, match=r"device='tpu' is not a device"):
        load_model(folder, device="tpu")
    if not CUDA:
        with pytest.raises(ConfigurationError, match=r"device='cuda', but CUDA is not available"):
            load_model(folder, device="cuda")


def test_a_model_of_another_flavor_runs_on_the_cpu_only(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = _data(60, 9)
    folder = kiln.Model(LogisticRegression()).fit(X, y).save(tmp_path / "lr")
    assert load_model(folder, device="auto").flavor_ == "sklearn"
    with pytest.raises(ConfigurationError, match=r"applies to PyTorch models; .* is a sklearn"):
        load_model(folder, device="cuda")


def _saved_torch(tmp_path: Path, device: str = "cpu") -> tuple[str, Any, pd.DataFrame]:
    X, y = _data(120, 10)
    model = kiln.Model(TorchEstimator(MLP, epochs=5, device=device)).fit(X, y)
    return model.save(tmp_path / "m"), model, X


def _env(tmp_path: Path) -> dict[str, str]:
    pythonpath = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    return child_env(dict(os.environ), KILN_HOME=str(tmp_path / "home"), PYTHONPATH=pythonpath)


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_kiln_serve_and_kiln_predict_take_a_device(tmp_path: Path, device: str) -> None:
    folder, model, X = _saved_torch(tmp_path)
    rows = X.head(5)
    with running([folder, "--device", device], _env(tmp_path), timeout=120) as (url, _proc):
        r = httpx.post(f"{url}/predict", json=rows.to_dict(orient="records"), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model.predict(rows).tolist()

    X.to_parquet(tmp_path / "in.parquet")
    args = ["predict", folder, str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet")]
    done = CliRunner().invoke(cli, [*args, "--device", device, "--proba"])
    assert done.exit_code == 0, done.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["prediction"].tolist() == model.predict(X).tolist()
    _same(out[["proba_no", "proba_yes"]].to_numpy(), model.predict_proba(X), device)


@pytest.mark.slow
@no_gpu
def test_kiln_serve_and_predict_refuse_cuda_where_there_is_none(tmp_path: Path) -> None:
    folder, _model, X = _saved_torch(tmp_path)
    for workers in ("1", "2"):  # several workers: refused once, before any worker starts
        done = subprocess.run(
            [KILN, "serve", folder, "--device", "cuda", "--port", "0", "--workers", workers],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr
        assert "device='cuda', but CUDA is not available here" in done.stderr
        assert "Traceback" not in done.stderr
    X.to_parquet(tmp_path / "in.parquet")
    args = ["predict", folder, str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet")]
    result = CliRunner().invoke(cli, [*args, "--device", "cuda"])
    assert isinstance(result.exception, ConfigurationError)
    assert "CUDA is not available here" in str(result.exception)
    assert not (tmp_path / "out.parquet").exists()


# ------------------------------------------------------------------ CUDA (marked gpu)


def _predict_without_gpu(folder: str, X: pd.DataFrame, tmp_path: Path) -> Any:
    """Load and predict in a fresh process that sees no GPU (CUDA_VISIBLE_DEVICES='')."""
    X.to_parquet(tmp_path / "X.parquet")
    code = (
        "import sys, numpy as np, pandas as pd, torch, kiln\n"
        "assert not torch.cuda.is_available()\n"
        "X = pd.read_parquet(sys.argv[2])\n"
        "m = kiln.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], m.predict_proba(X))\n"
    )
    env = {**_env(tmp_path), "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "cpu.npy"
    done = subprocess.run(
        [sys.executable, "-c", code, folder, str(tmp_path / "X.parquet"), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    return np.load(out, allow_pickle=False)


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("device", ["cuda", "cuda:0", "auto"])
def test_gpu_a_module_trains_on_cuda_and_loads_on_a_machine_without_one(
    tmp_path: Path, device: str
) -> None:
    X, y = _data(300, 11)
    model = kiln.Model(TorchEstimator(MLP, epochs=10, device=device)).fit(X, y)
    estimator = model.estimator_
    assert estimator.device_ == "cuda:0"
    assert next(estimator.module_.parameters()).is_cuda
    proba = model.predict_proba(X)
    assert isinstance(proba, np.ndarray)
    assert (model.predict(X) == y).mean() > 0.85
    folder = model.save(tmp_path / "m")
    _same(_predict_without_gpu(folder, X, tmp_path), proba, "cuda")
    on_cpu = load_model(folder)
    assert on_cpu.estimator_.device_ == "cpu"
    on_gpu = load_model(folder, device="cuda")
    assert next(on_gpu.estimator_.module_.parameters()).is_cuda
    np.testing.assert_allclose(on_gpu.predict_proba(X), proba, rtol=1e-5, atol=1e-7)
    _same(on_cpu.predict_proba(X), proba, "cuda")


@pytest.mark.gpu
@gpu
def test_gpu_a_module_instance_on_cuda_trains_there() -> None:
    X, y = _data(200, 12)
    net = MLP(n_in=3).cuda()
    model = kiln.Model(TorchEstimator(net, epochs=5)).fit(X, y)  # device="auto"
    assert model.estimator_.device_ == "cuda:0"
    assert model.predict(X).shape == (200,)
    assert next(net.parameters()).is_cuda  # the given instance is untouched, and stays there


@pytest.mark.gpu
@gpu
def test_gpu_a_train_fn_that_moves_the_module_to_cuda_can_predict() -> None:
    X, y = _data(200, 13)

    def train(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        module.to("cuda")
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
        for _ in range(50):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(module(inputs.cuda()), labels.cuda())
            loss.backward()
            optimizer.step()

    model = kiln.Model(TorchEstimator(MLP, train_fn=train, device="cpu")).fit(X, y)
    assert model.estimator_.device_ == "cuda:0"
    assert (model.predict(X) == y).mean() > 0.8
    assert model.predict_proba(X).dtype == np.float64


@pytest.mark.gpu
@gpu
def test_gpu_a_device_index_past_the_last_gpu_is_refused() -> None:
    X, y = _data(40, 14)
    count = torch.cuda.device_count()
    with pytest.raises(ConfigurationError, match=rf"this machine has {count} CUDA device"):
        kiln.Model(TorchEstimator(MLP, epochs=1, device=f"cuda:{count}")).fit(X, y)


@pytest.mark.gpu
@gpu
@pytest.mark.slow
def test_gpu_kiln_serve_and_kiln_predict_run_a_model_on_cuda(tmp_path: Path) -> None:
    folder, model, X = _saved_torch(tmp_path, device="cuda")
    rows = X.head(5)
    with running([folder, "--device", "cuda"], _env(tmp_path), timeout=120) as (url, _proc):
        r = httpx.post(f"{url}/predict?proba=true", json=rows.to_dict(orient="records"))
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model.predict(rows).tolist()
    X.to_parquet(tmp_path / "in.parquet")
    args = ["predict", folder, str(tmp_path / "in.parquet"), "-o", str(tmp_path / "out.parquet")]
    done = CliRunner().invoke(cli, [*args, "--device", "cuda", "--proba"])
    assert done.exit_code == 0, done.output
    out = pd.read_parquet(tmp_path / "out.parquet")
    _same(out[["proba_no", "proba_yes"]].to_numpy(), model.predict_proba(X), "cuda")
