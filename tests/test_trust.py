"""Nothing kiln loads runs code unless the caller trusts it; no stored path escapes its folder.

Each test plants something that writes a marker file when its code runs (a pickle whose
`__reduce__` calls `exec`, a skops type whose `__setstate__` writes) in a model folder,
a registered model or the pipeline cache, and checks that the marker is never written
without the explicit trust flag, and that the error names the flag.
"""

from __future__ import annotations

import functools
import hashlib
import json
import pickle
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

import kiln
from kiln import UntrustedCodeError
from kiln.models import Model, load_model
from kiln.models._flavors import UnsafeSerializationWarning
from serve_helpers import KILN, child_env, running, stop
from trust_fns import MarkerScaler, Plant

HERE = Path(__file__).resolve().parent


def _frame() -> tuple[pd.DataFrame, list[float]]:
    X = pd.DataFrame({"price": [1.0, 2.0, 3.0, 4.0], "qty": [1.0, 0.0, 2.0, 1.0]})
    return X, [2.0, 2.4, 5.6, 5.8]


def _rehash(folder: Path) -> None:
    """Rewrite the manifest's file hashes, as someone crafting a folder would."""
    path = folder / "kiln-model.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"] = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != "kiln-model.json"
    }
    path.write_text(json.dumps(manifest), encoding="utf-8")


def plant_pickle(folder: Path, marker: Path, *, compiled: bool = False) -> Path:
    """A real saved model whose model file is replaced by a malicious pickle."""
    from sklearn.linear_model import LinearRegression

    X, y = _frame()
    Model(LinearRegression()).fit(X, y).save(folder)
    manifest_path = folder / "kiln-model.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    (folder / manifest["model_file"]).unlink()
    (folder / "model.pkl").write_bytes(pickle.dumps(Plant(marker)))
    manifest.update(serialization="pickle", model_file="model.pkl", pickle_reason="planted")
    if compiled:
        assert manifest.get("inference"), "the planted model needs compiled inference"
    else:
        manifest.pop("inference", None)
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    _rehash(folder)
    return folder


def _read_estimator(model: Model) -> object:
    """A compiled model unpickles its estimator on first read."""
    return model.estimator_


def _env(tmp_path: Path) -> dict[str, str]:
    import os

    path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p)
    return child_env(
        dict(os.environ),
        KILN_HOME=str(tmp_path / "home" / ".kiln"),
        KILN_CAPTURE_PACKAGES="0",
        PYTHONPATH=path,
    )


# ------------------------------------------------------------------ pickled models
@pytest.mark.parametrize("compiled", [False, True], ids=["library", "compiled"])
def test_a_pickled_model_folder_is_refused_without_trust_pickle(
    tmp_path: Path, compiled: bool
) -> None:
    marker = tmp_path / "marker"
    folder = plant_pickle(tmp_path / "evil", marker, compiled=compiled)

    with pytest.raises(UntrustedCodeError, match=r"saved with pickle.*trust_pickle=True"):
        load_model(folder)
    assert not marker.exists()

    # The plant works: a caller who trusts the folder runs it.
    with pytest.warns(UnsafeSerializationWarning, match="planted"):
        _read_estimator(load_model(folder, trust_pickle=True))
    assert marker.read_text() == "ran"


def test_a_registered_pickled_model_is_refused_without_trust_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = plant_pickle(tmp_path / "evil", marker)
    with kiln.start_run(experiment="shared") as run:
        kiln.log_artifact(folder, name="model")
    from kiln.registry import RegistryClient

    kiln.register(f"runs:/{run.id}/model", "churn")
    RegistryClient().set_alias("churn", "production", 1)

    for uri in ("models:/churn/1", "models:/churn@production", f"runs:/{run.id}/model"):
        with pytest.raises(UntrustedCodeError, match=r"trust_pickle=True.*--trust-pickle"):
            load_model(uri)
    from kiln.serving._runtime import load_entry

    with pytest.raises(UntrustedCodeError, match=r"--trust-pickle"):
        load_entry("models:/churn@production")
    assert not marker.exists()

    with pytest.warns(UnsafeSerializationWarning, match="planted"):
        load_model("models:/churn@production", trust_pickle=True)
    assert marker.exists()


def test_kiln_predict_refuses_a_pickled_model_and_names_the_flag(
    tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    marker = tmp_path / "marker"
    folder = plant_pickle(tmp_path / "evil", marker)
    X, _ = _frame()
    X.to_parquet(tmp_path / "in.parquet")

    out = subprocess.run(
        [KILN, "predict", str(folder), str(tmp_path / "in.parquet"), "-o", str(tmp_path / "o.csv")],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert out.returncode == 1, out.stderr
    assert "--trust-pickle" in out.stderr
    assert not marker.exists()
    assert not (tmp_path / "o.csv").exists()


def test_kiln_serve_refuses_a_pickled_model_and_names_the_flag(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = plant_pickle(tmp_path / "evil", marker)
    cmd = [KILN, "serve", str(folder), "--port", "0"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.wait(120)
        err = proc.stderr.read().decode() if proc.stderr else ""
    finally:
        stop(proc)

    assert proc.returncode != 0
    assert "--trust-pickle" in err
    assert not marker.exists()


def _fallback_model(folder: Path) -> Path:
    """A model kiln itself saves with pickle: a function it cannot import by name."""
    from model_fns import price_with_tax

    X, _ = _frame()
    model = Model.from_function(functools.partial(price_with_tax), signature=X, task="regression")
    with pytest.warns(UnsafeSerializationWarning, match="Saving with pickle"):
        model.save(folder)
    return folder


def test_a_model_kiln_pickled_still_loads_when_the_caller_trusts_it(tmp_path: Path) -> None:
    folder = _fallback_model(tmp_path / "fallback")
    X, _ = _frame()

    with pytest.raises(UntrustedCodeError, match=r"cannot be imported by name.*trust_pickle"):
        load_model(folder)
    with pytest.warns(UnsafeSerializationWarning, match="Loading a model saved with pickle"):
        model = load_model(folder, trust_pickle=True)
    assert model.predict(X).tolist() == pytest.approx([2.2, 2.4, 5.6, 5.8])


def test_kiln_predict_and_serve_load_a_trusted_pickled_model(
    tmp_path: Path,
) -> None:
    import httpx

    folder = _fallback_model(tmp_path / "fallback")
    X, _ = _frame()
    X.to_parquet(tmp_path / "in.parquet")
    env = _env(tmp_path) | {"PYTHONWARNINGS": "ignore::UserWarning"}

    out = subprocess.run(
        [
            KILN,
            "predict",
            str(folder),
            str(tmp_path / "in.parquet"),
            "-o",
            str(tmp_path / "o.csv"),
            "--trust-pickle",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(tmp_path / "o.csv")["prediction"].tolist() == pytest.approx(
        [2.2, 2.4, 5.6, 5.8]
    )

    with running([str(folder), "--trust-pickle"], env) as (url, _proc):
        body = {"dataframe_records": X.to_dict("records")}
        answer = httpx.post(f"{url}/invocations", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.json()["predictions"] == pytest.approx([2.2, 2.4, 5.6, 5.8])


def test_a_trusted_pickle_whose_code_is_not_importable_says_how_to_make_it_so(
    tmp_path: Path,
) -> None:
    folder = _fallback_model(tmp_path / "fallback")
    X, _ = _frame()
    X.to_parquet(tmp_path / "in.parquet")
    env = _env(tmp_path) | {"PYTHONPATH": ""}  # model_fns, which defines it, is not on it

    out = subprocess.run(
        [
            KILN,
            "predict",
            str(folder),
            str(tmp_path / "in.parquet"),
            "-o",
            "o.csv",
            "--trust-pickle",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )

    assert out.returncode == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert "cannot be imported here (model_fns" in out.stderr
    assert "add its folder to PYTHONPATH" in out.stderr


# ------------------------------------------------------------------ skops types
def _skops_model(folder: Path, marker: Path) -> Path:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import make_pipeline

    X, y = _frame()
    pipe = make_pipeline(MarkerScaler(marker=str(marker)), LinearRegression())
    Model(pipe).fit(X, y).save(folder)
    manifest = json.loads((folder / "kiln-model.json").read_text(encoding="utf-8"))
    assert manifest["serialization"] == "skops"
    # Today's manifest lists the type as trusted; the loader must not believe it.
    assert "trust_fns.MarkerScaler" in manifest["skops_trusted"]
    return folder


def test_skops_types_come_from_kilns_allow_list_not_the_manifest(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    folder = _skops_model(tmp_path / "m", marker)

    with pytest.raises(
        UntrustedCodeError, match=r"trust_fns\.MarkerScaler.*trust_pickle=True.*--trust-pickle"
    ):
        load_model(folder).estimator_  # noqa: B018
    assert not marker.exists()

    model = load_model(folder, trust_pickle=True)
    model.estimator_  # noqa: B018
    assert marker.exists()


def test_models_of_the_allowed_libraries_load_without_trust(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor, RandomForestRegressor

    X, y = _frame()
    for i, est in enumerate(
        [RandomForestRegressor(n_estimators=3, random_state=0), HistGradientBoostingRegressor()]
    ):
        folder = Model(est).fit(X, y).save(tmp_path / f"m{i}")
        manifest = json.loads((Path(folder) / "kiln-model.json").read_text(encoding="utf-8"))
        assert manifest["skops_trusted"]  # skops itself does not trust these types
        loaded = load_model(folder, compiled=False)
        assert len(loaded.predict(X)) == 4


def test_functions_are_never_on_the_allow_list() -> None:
    from kiln.models._flavors import _allowed_type

    assert _allowed_type("sklearn.tree._tree.Tree")
    assert not _allowed_type("numpy.testing._private.utils.runstring")  # calls exec
    assert not _allowed_type("numpy.load")
    assert not _allowed_type("builtins.exec")
    assert not _allowed_type("os.system")


def test_a_torch_manifest_may_only_name_a_module_class(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from kiln.models import TorchEstimator
    from torch_nets import MLP

    X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0], "c": [0.0] * 4})
    est = TorchEstimator(MLP, module_params={"n_in": 3, "hidden": 4}, epochs=1)
    folder = Path(Model(est).fit(X, [0, 1, 0, 1]).save(tmp_path / "net"))
    marker = tmp_path / "marker"
    spec = json.loads((folder / "torch.json").read_text(encoding="utf-8"))
    spec["module"] = "subprocess:Popen"
    spec["module_params"] = {"args": ["touch", str(marker)]}
    (folder / "torch.json").write_text(json.dumps(spec), encoding="utf-8")
    _rehash(folder)

    with pytest.raises(kiln.ModelFormatError, match=r"subprocess:Popen, which is not a torch"):
        load_model(folder)
    assert not marker.exists()


# ------------------------------------------------------------------ artifact paths
def _tamper_paths(store_url: str, run_id: str, new_paths: dict[str, str]) -> None:
    """Rewrite artifact rows as someone with write access to a shared store could."""
    import sqlalchemy as sa

    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            for old, new in new_paths.items():
                conn.execute(
                    sa.text("UPDATE artifacts SET path = :new WHERE run_id = :run AND path = :old"),
                    {"new": new, "old": old, "run": run_id},
                )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "bad", ["model/../../../escaped.txt", "/ABS/escaped.txt", "model/..\\..\\escaped.txt"]
)
def test_download_artifacts_refuses_a_stored_path_outside_the_destination(
    tmp_path: Path, store_url: str, bad: str
) -> None:
    from kiln import ArtifactPathError
    from kiln.tracking import TrackingClient

    bad = bad.replace("/ABS", str(tmp_path))
    client = TrackingClient(store_url)
    run_id = client.create_run(experiment="shared")
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("a")
    (src / "b.txt").write_text("b")
    client.log_artifact(run_id, src, name="model")
    client.flush()
    _tamper_paths(store_url, run_id, {"model/b.txt": bad})
    dest = tmp_path / "deep" / "er" / "dest"

    with pytest.raises(ArtifactPathError, match=re.escape(repr(bad))):
        client.download_artifacts(run_id, "", dest)
    assert not list(tmp_path.rglob("escaped.txt"))
    assert not dest.exists() or not any(dest.rglob("*.txt"))  # checked before any write
    if bad.startswith("model/"):
        with pytest.raises(ArtifactPathError, match=r"not a relative path inside its folder"):
            client.download_artifacts(run_id, "model", dest)
        assert not list(tmp_path.rglob("escaped.txt"))


def test_load_model_refuses_a_stored_path_outside_its_folder(
    tmp_path: Path, store_url: str
) -> None:
    from sklearn.linear_model import LinearRegression

    from kiln import ArtifactPathError
    from kiln.tracking import TrackingClient

    X, y = _frame()
    folder = Model(LinearRegression()).fit(X, y).save(tmp_path / "m")
    client = TrackingClient(store_url)
    run_id = client.create_run(experiment="shared")
    client.log_artifact(run_id, folder, name="model")
    client.flush()
    _tamper_paths(store_url, run_id, {"model/signature.json": "model/../../../escaped.json"})

    # An embedded store is read with sqlite3 alone; PostgreSQL through the client.
    with pytest.raises(ArtifactPathError, match=r"'model/\.\./\.\./\.\./escaped\.json'"):
        load_model(f"runs:/{run_id}/model", store=store_url)
    assert not list(Path("/tmp").glob("escaped.json"))
    assert not list(tmp_path.rglob("escaped.json"))


def test_a_manifest_may_not_list_files_outside_the_model_folder(tmp_path: Path) -> None:
    from sklearn.linear_model import LinearRegression

    from kiln import ArtifactPathError

    X, y = _frame()
    folder = Path(Model(LinearRegression()).fit(X, y).save(tmp_path / "m"))
    (tmp_path / "outside.txt").write_text("x")
    path = folder / "kiln-model.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest["files"]["../outside.txt"] = hashlib.sha256(b"x").hexdigest()
    path.write_text(json.dumps(manifest), encoding="utf-8")

    with pytest.raises(ArtifactPathError, match=r"Saved model file '\.\./outside\.txt'"):
        load_model(folder)


# ------------------------------------------------------------------ pipeline cache
def _produce() -> set[int]:
    return {1, 2, 3}


def _consume(produce: set[int]) -> int:
    return len(produce)


def _index(root: Path) -> Path:
    from kiln.pipeline._state import state_dir

    return state_dir(root) / "cache" / "index.jsonl"


def test_a_planted_pickle_in_the_pipeline_cache_is_never_unpickled(tmp_path: Path) -> None:
    from kiln.pipeline import PickledOutputWarning, Pipeline
    from kiln.pipeline._outputs import load_output

    def produce() -> set[int]:
        return _produce()

    def consume(produce: set[int]) -> int:
        return _consume(produce)

    with pytest.warns(PickledOutputWarning, match="stored with pickle"):
        first = Pipeline([produce, consume], root=tmp_path).run()
    assert first["consume"] == 3
    assert first.steps["produce"].output["hmac"]

    # Someone edits the cache index to point the entry at their own pickle.
    marker = tmp_path / "marker"
    artifacts = kiln.get_client().artifacts
    evil_sha, _ = artifacts.put_bytes(pickle.dumps(Plant(marker)))
    lines = _index(tmp_path).read_text(encoding="utf-8").splitlines()
    forged = []
    for line in lines:
        entry = json.loads(line)
        if entry["step"] == "produce":
            entry["output"]["sha"] = evil_sha  # the old signature stays: it cannot match
        forged.append(json.dumps(entry))
    _index(tmp_path).write_text("\n".join(forged) + "\n", encoding="utf-8")
    evil = {"format": "pickle", "sha": evil_sha, "size": 1, "hmac": "0" * 64}

    with pytest.warns(PickledOutputWarning, match="stored with pickle"):
        second = Pipeline([produce, consume], root=tmp_path).run()

    assert second.steps["produce"].status == "done"
    assert second.steps["produce"].reason == "its cached output has no valid kiln signature"
    assert second["consume"] == 3
    with pytest.raises(UntrustedCodeError, match=r"no valid kiln signature.*kiln run --force"):
        load_output(artifacts, evil, tmp_path / "models")
    with pytest.raises(UntrustedCodeError, match=r"no valid kiln signature"):
        load_output(artifacts, {"format": "tuple", "items": [evil]}, tmp_path / "models")
    assert not marker.exists()


def test_a_pickled_model_output_of_a_step_loads_because_kiln_signed_it(tmp_path: Path) -> None:
    from kiln.pipeline import Pipeline
    from model_fns import price_with_tax

    X, _ = _frame()

    def fit() -> Model:
        return Model.from_function(functools.partial(price_with_tax), signature=X)

    def predict(fit: Model) -> list[float]:
        return [float(v) for v in fit.predict(X)]

    with pytest.warns(UnsafeSerializationWarning):
        result = Pipeline([fit, predict], root=tmp_path).run()
    assert result["predict"] == pytest.approx([2.2, 2.4, 5.6, 5.8])
    assert result.steps["fit"].output["format"] == "kiln-model"

    with pytest.warns(UnsafeSerializationWarning, match="cannot be imported by name"):
        loaded = result["fit"]  # materialized from the store, trusted: kiln signed it
    assert loaded.predict(X).tolist() == pytest.approx([2.2, 2.4, 5.6, 5.8])

    # A planted folder in the materialized models cache is replaced, never trusted.
    sha = result.steps["fit"].output["sha"]
    marker = tmp_path / "marker"
    from kiln.pipeline._state import state_dir

    folder = state_dir(tmp_path) / "models" / sha
    plant = plant_pickle(tmp_path / "evil", marker)
    for file in folder.iterdir():
        file.unlink()
    for file in plant.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    with pytest.warns(UnsafeSerializationWarning, match="cannot be imported by name"):
        again = result["fit"]
    assert again.predict(X).tolist() == pytest.approx([2.2, 2.4, 5.6, 5.8])
    assert not marker.exists()


# ------------------------------------------------------------------ other load paths
def test_evaluate_and_compare_pass_the_trust_flag_on(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from kiln.cli import cli
    from kiln.registry import compare

    folder = str(_fallback_model(tmp_path / "fallback"))
    X, y = _frame()
    data = tmp_path / "test.csv"
    X.assign(target=y).to_csv(data, index=False)

    with pytest.raises(UntrustedCodeError, match=r"trust_pickle=True"):
        kiln.evaluate(folder, X, y, plots=False, report=False)
    with pytest.raises(UntrustedCodeError, match=r"trust_pickle=True"):
        compare(folder, folder, X, y)
    for args in (
        ["evaluate", folder, "--data", str(data), "--target", "target"],
        ["models", "compare", folder, folder, "--data", str(data), "--target", "target"],
    ):
        refused = CliRunner().invoke(cli, args)
        assert isinstance(refused.exception, UntrustedCodeError)
        assert "--trust-pickle" in str(refused.exception)

    with pytest.warns(UnsafeSerializationWarning, match="Loading a model saved with pickle"):
        result = kiln.evaluate(folder, X, y, plots=False, report=False, trust_pickle=True)
    assert result.metrics["r2"] > 0.99
    with pytest.warns(UnsafeSerializationWarning, match="Loading a model saved with pickle"):
        assert compare(folder, folder, X, y, trust_pickle=True).verdict
    for args in (
        ["evaluate", folder, "--data", str(data), "--target", "target", "--trust-pickle"],
        [
            "models",
            "compare",
            folder,
            folder,
            "--data",
            str(data),
            "--target",
            "target",
            "--trust-pickle",
        ],
    ):
        with pytest.warns(UnsafeSerializationWarning, match="Loading a model saved with pickle"):
            done = CliRunner().invoke(cli, args, catch_exceptions=False)
        assert done.exit_code == 0, done.output
