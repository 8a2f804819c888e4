"""Issue 14 item 24: a served or batch-scored model runs with the threads kiln gives it,
not with the ones it was saved with (`n_jobs=-1`, an OpenMP pool of every core)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from kiln.cli import cli
from serve_helpers import breast_cancer, child_env, running

HERE = Path(__file__).resolve().parent


def _env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k != "KILN_STORE"}
    base.pop("OMP_NUM_THREADS", None)
    path = os.pathsep.join(p for p in (str(HERE), base.get("PYTHONPATH", "")) if p)
    return child_env(
        base, KILN_HOME=str(tmp_path / "home"), KILN_CAPTURE_PACKAGES="0", PYTHONPATH=path
    )


@pytest.fixture(scope="module")
def forest(tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.ensemble import RandomForestClassifier

    import kiln

    X, y = breast_cancer()
    model = kiln.Model(RandomForestClassifier(n_estimators=5, n_jobs=-1, random_state=0))
    return model.fit(X, y).save(tmp_path_factory.mktemp("threads") / "forest")


def _threads(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = re.findall(r'^kiln_model_threads\{pool="(\w+)"\} ([0-9.]+)$', text, re.M)
    return {pool: float(value) for pool, value in found}


@pytest.mark.slow
@pytest.mark.parametrize(("args", "expected"), [([], 1.0), (["--model-threads", "2"], 2.0)])
def test_serve_runs_a_forest_saved_with_every_core_on_the_threads_it_is_given(
    forest: str, tmp_path: Path, args: list[str], expected: float
) -> None:
    import kiln

    assert kiln.load_model(forest).estimator_.n_jobs == -1
    with running([forest, *args], _env(tmp_path)) as (url, _proc):
        threads = _threads(url)
        assert threads["n_jobs"] == expected
        assert threads["openmp"] == expected  # scikit-learn's OpenMP pool, read back
        X, _ = breast_cancer()
        r = httpx.post(f"{url}/predict", json=X.head(3).to_dict(orient="list"), timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == kiln.load_model(forest).predict(X.head(3)).tolist()


@pytest.mark.slow
def test_kiln_predict_sizes_the_openmp_pool(tmp_path: Path) -> None:
    import subprocess

    import kiln
    from serve_fns import openmp_threads
    from serve_helpers import KILN

    example = pd.DataFrame({"a": [1.0, 2.0]})
    folder = kiln.Model.from_function(openmp_threads, signature=example, task="regression").save(
        tmp_path / "fn"
    )
    pd.DataFrame({"a": np.arange(10.0)}).to_parquet(tmp_path / "in.parquet")
    for args, expected in (
        (["--model-threads", "1"], 1.0),
        (["--model-threads", "3"], 3.0),
        ([], float(len(os.sched_getaffinity(0)))),
    ):
        done = subprocess.run(
            [KILN, "predict", folder, "in.parquet", "-o", "out.parquet", "--trust-pickle", *args],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        scored = pd.read_parquet(tmp_path / "out.parquet")
        assert scored["prediction"].tolist() == [expected] * 10, args


def test_predict_file_scores_with_n_jobs_and_gives_it_back(tmp_path: Path) -> None:
    import kiln
    from kiln.serving import predict_file
    from serve_fns import JobsSeen

    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    model: Any = kiln.Model(JobsSeen(n_jobs=-1), task="regression").fit(frame, [1.0, 2.0, 3.0])
    frame.to_parquet(tmp_path / "in.parquet")
    out = tmp_path / "out.parquet"
    assert predict_file(model, tmp_path / "in.parquet", out, model_threads=2) == 3
    assert pd.read_parquet(out)["prediction"].tolist() == [2.0, 2.0, 2.0]
    assert model.estimator_.n_jobs == -1  # the caller's model is given back as it was
    predict_file(model, tmp_path / "in.parquet", out, model_threads=None)
    assert pd.read_parquet(out)["prediction"].tolist() == [-1.0, -1.0, -1.0]


def test_model_threads_must_not_be_negative(tmp_path: Path) -> None:
    import kiln
    from kiln import ConfigurationError
    from kiln.serving import predict_file
    from serve_fns import JobsSeen

    src = tmp_path / "in.csv"
    src.write_text("a\n1\n")
    result = CliRunner().invoke(
        cli, ["predict", "nope", str(src), "-o", "x.parquet", "--model-threads", "-1"]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--model-threads': -1 is not in the range x>=0" in result.output
    model = kiln.Model(JobsSeen(), task="regression").fit(pd.DataFrame({"a": [1.0]}), [1.0])
    with pytest.raises(ConfigurationError, match=r"0 \(every core\) or a positive number"):
        predict_file(model, src, tmp_path / "out.parquet", model_threads=-1)
    assert not (tmp_path / "out.parquet").exists()
