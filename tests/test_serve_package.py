"""`kiln package` (a wheel that installs into a fresh venv and serves) and `kiln predict`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kiln.cli import cli
from serve_helpers import KILN, breast_cancer, register, serving, set_alias, stop, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return train(tmp_path_factory.mktemp("pkg") / "bc")


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    if not Path(found).exists():
        pytest.fail("uv is needed to build and install wheels (make env-dev installs it)")
    return found


@pytest.mark.slow
def test_the_wheel_installs_offline_into_a_fresh_venv_and_serves(
    model_dir: str, tmp_path: Path, subprocess_env: dict[str, str]
) -> None:
    # Issue 14 items 3, 23 and 18: `kiln package models:/bc@production` in a fresh folder
    # puts kiln-ml's wheel beside the model's (kiln-ml is on no package index), versions
    # the wheel from the registry, and the packaged command describes itself.
    store = f"sqlite:///{tmp_path / 'kiln.db'}"
    register(store, model_dir, "bc")
    version = register(store, model_dir, "bc")
    set_alias(store, "bc", "production", version)
    assert version == 2
    work = tmp_path / "project"
    work.mkdir()
    env = {**subprocess_env, "UV_LINK_MODE": "copy", "UV_PYTHON_DOWNLOADS": "never"}
    env.pop("VIRTUAL_ENV", None)
    done = subprocess.run(
        [KILN, "--store", store, "package", "models:/bc@production", "-o", "dist"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    out = work / "dist"
    wheel = out / "kiln_model_bc-2-py3-none-any.whl"
    assert wheel.exists(), sorted(p.name for p in out.iterdir())
    from kiln._version import __version__

    assert [p.name for p in out.glob("kiln_ml-*.whl")] == [
        f"kiln_ml-{__version__}-py3-none-any.whl"
    ]
    assert "version 2 (aliases: production)" in done.stdout
    dockerfile = (out / "Dockerfile").read_text()
    assert "kiln-model-bc" in dockerfile
    assert "--find-links /tmp/wheels /tmp/wheels/kiln_model_bc-2-py3-none-any.whl" in dockerfile
    assert "EXPOSE 8000" in dockerfile
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read("kiln_model_bc-2.dist-info/METADATA").decode()
    assert "Version: 2\n" in metadata
    assert "aliases: production" in metadata
    uv = _uv()
    venv = tmp_path / "fresh"
    subprocess.run(
        [uv, "venv", "-q", "--python", "python3.11", str(venv)], env=env, check=True, timeout=120
    )
    python = venv / "bin" / "python"
    # Dependencies come from the package registry (as in the Dockerfile), pinned to the
    # versions this test env has, so they are usually served from uv's cache; kiln-ml itself
    # is on no index and comes only from its wheel file in dist/.
    frozen = subprocess.run(
        [uv, "pip", "freeze", "--python", sys.executable, "--exclude-editable"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    (work / "pins.txt").write_text(frozen)
    # kiln-ml installed from its wheel file: `kiln package` there copies that wheel.
    kiln_wheel = f"dist/kiln_ml-{__version__}-py3-none-any.whl"
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--offline",
            "-c",
            "pins.txt",
            "--python",
            str(python),
            kiln_wheel,
        ],
        cwd=work,
        env=env,
        check=True,
        timeout=600,
    )
    repackaged = subprocess.run(
        [str(venv / "bin" / "kiln"), "package", model_dir, "-o", "again", "--name", "m"],
        cwd=work,
        env={**env, "PATH": str(venv / "bin")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert repackaged.returncode == 0, repackaged.stderr
    assert (work / "again" / Path(kiln_wheel).name).read_bytes() == (work / kiln_wheel).read_bytes()
    # The dependencies (kiln-ml[serve]'s, the model library's) from the registry, then what
    # a user runs: the model's wheel resolves kiln-ml from dist/ with no package index at all.
    requires, extras = [], {"serve"}
    for line in metadata.splitlines():
        if line.startswith("Requires-Dist: kiln-ml["):
            extras |= set(line.split("[", 1)[1].split("]", 1)[0].split(","))
        elif line.startswith("Requires-Dist: "):
            requires.append(line.removeprefix("Requires-Dist: "))
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "-c",
            "pins.txt",
            "--python",
            str(python),
            f"{kiln_wheel}[{','.join(sorted(extras))}]",
            *requires,
        ],
        cwd=work,
        env=env,
        check=True,
        timeout=600,
    )
    subprocess.run(
        [
            uv,
            "pip",
            "install",
            "-q",
            "--no-index",
            "--compile-bytecode",
            "--python",
            str(python),
            "--find-links",
            "dist",
            "dist/kiln_model_bc-2-py3-none-any.whl",
        ],
        cwd=work,
        env=env,
        check=True,
        timeout=600,
    )
    command = str(venv / "bin" / "kiln-model-bc")
    run_env = {k: v for k, v in env.items() if not k.startswith("KILN_STORE")}
    run_env["KILN_HOME"] = str(tmp_path / "home")
    helped = subprocess.run(
        [command, "--help"], env=run_env, capture_output=True, text=True, timeout=120
    )
    assert helped.returncode == 0, helped.stderr
    assert "models:/bc version 2 (aliases: production)" in helped.stdout
    assert "kiln-model-bc 2" in helped.stdout
    assert "MODEL_URI" not in helped.stdout
    assert "alias is watched" not in helped.stdout
    assert "--reload-interval" not in helped.stdout
    assert "--port" in helped.stdout
    with serving([command], run_env, timeout=180) as (url, proc):
        X, _ = breast_cancer()
        r = httpx.post(f"{url}/invocations", json={"instances": X.head(3).to_numpy().tolist()})
        assert r.status_code == 200, r.text
        import kiln

        assert r.json() == {"predictions": kiln.load_model(model_dir).predict(X.head(3)).tolist()}
        assert stop(proc) == 0
    if (
        subprocess.run(["docker", "info"], capture_output=True).returncode == 0
        if shutil.which("docker")
        else False
    ):
        built = subprocess.run(
            ["docker", "build", "-t", "kiln-model-bc-test", str(out)],
            capture_output=True,
            timeout=900,
        )
        assert built.returncode == 0, built.stderr.decode()[-2000:]


def test_package_copies_a_given_kiln_wheel_and_refuses_another_version(
    model_dir: str, tmp_path: Path
) -> None:
    from kiln import ConfigurationError
    from kiln._version import __version__
    from kiln.serving import build_package

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    given = wheels / f"kiln_ml-{__version__}-py3-none-any.whl"
    given.write_bytes(b"a wheel")
    result = build_package(model_dir, tmp_path / "dist", kiln_wheel=wheels)
    assert result["kiln_wheel"] == str(tmp_path / "dist" / given.name)
    assert (tmp_path / "dist" / given.name).read_bytes() == b"a wheel"
    assert result["wheel"].endswith("-1.0.0-py3-none-any.whl")
    old = wheels / "kiln_ml-0.0.1-py3-none-any.whl"
    old.write_bytes(b"old")
    with pytest.raises(ConfigurationError, match=rf"not a kiln-ml {__version__} wheel"):
        build_package(model_dir, tmp_path / "other", kiln_wheel=old)


def test_package_names_must_be_usable(model_dir: str, tmp_path: Path) -> None:
    from kiln import ConfigurationError
    from kiln.serving import build_package

    with pytest.raises(ConfigurationError, match="cannot be a package name"):
        build_package(model_dir, tmp_path, name="1-model")
    with pytest.raises(ConfigurationError, match=r"expected numbers like 1\.0\.0"):
        build_package(model_dir, tmp_path, version="latest")


def test_package_checks_the_model_files(model_dir: str, tmp_path: Path) -> None:
    from kiln import KilnError
    from kiln.serving import build_package

    broken = tmp_path / "broken"
    shutil.copytree(model_dir, broken)
    (broken / "signature.json").write_text("{}")
    with pytest.raises(KilnError, match=r"signature\.json"):
        build_package(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.whl"))


# --------------------------------------------------------------- batch scoring


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Any]:
    X, _ = breast_cancer()
    frame = X.assign(customer=[f"c{i}" for i in range(len(X))])
    path = tmp_path / "in.parquet"
    frame.to_parquet(path)
    return path, frame


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_predict_scores_a_file_in_chunks(
    model_dir: str, data: tuple[Path, Any], tmp_path: Path, suffix: str
) -> None:
    import kiln

    src, frame = data
    out = tmp_path / f"out{suffix}"
    result = CliRunner().invoke(
        cli,
        [
            "predict",
            model_dir,
            str(src),
            "-o",
            str(out),
            "--chunk-size",
            "100",
            "--proba",
            "--keep",
            "customer",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"Wrote {len(frame)} predictions" in result.output
    scored = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
    model = kiln.load_model(model_dir)
    features = frame.drop(columns="customer")
    assert list(scored.columns) == ["customer", "prediction", "proba_0", "proba_1"]
    assert scored["customer"].tolist() == frame["customer"].tolist()
    assert scored["prediction"].tolist() == model.predict(features).tolist()
    assert np.allclose(scored[["proba_0", "proba_1"]].to_numpy(), model.predict_proba(features))


def test_predict_reads_csv(model_dir: str, data: tuple[Path, Any], tmp_path: Path) -> None:
    from kiln.serving import predict_file

    _, frame = data
    src = tmp_path / "in.csv"
    frame.head(50).to_csv(src, index=False)
    assert predict_file(model_dir, src, tmp_path / "out.parquet", chunk_size=7) == 50
    assert len(pd.read_parquet(tmp_path / "out.parquet")) == 50


def test_a_bad_chunk_names_file_rows_and_leaves_no_output(
    model_dir: str, data: tuple[Path, Any], tmp_path: Path
) -> None:
    from kiln import ValidationError
    from kiln.serving import predict_file

    _, frame = data
    bad = frame.astype({"mean radius": object})
    bad.loc[250, "mean radius"] = "oops"
    src = tmp_path / "bad.csv"  # read in chunks, the third one has text in a number column
    bad.to_csv(src, index=False)
    out = tmp_path / "out.parquet"
    with pytest.raises(ValidationError, match=r"Rows 200 to 299") as info:
        predict_file(model_dir, src, out, chunk_size=100)
    assert info.value.errors[0]["column"] == "mean radius"
    assert info.value.errors[0]["rows"][0] >= 200
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet*"))


def test_predict_refuses_unknown_formats_and_missing_keep_columns(
    model_dir: str, data: tuple[Path, Any], tmp_path: Path
) -> None:
    from kiln import ConfigurationError
    from kiln.serving import predict_file

    src, _ = data
    with pytest.raises(ConfigurationError, match="neither Parquet nor CSV"):
        predict_file(model_dir, src, tmp_path / "out.json")
    with pytest.raises(ConfigurationError, match="lacks: nope"):
        predict_file(model_dir, src, tmp_path / "out.parquet", keep=["nope"])


def test_batch_scoring_and_the_log_reader_do_not_import_the_server() -> None:
    code = (
        "import sys, kiln, kiln.serving; kiln.prediction_log; kiln.serving.predict_file; "
        "print(sorted(m for m in ('starlette', 'uvicorn', 'orjson') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
