"""Library errors reach the user of the `kiln` command as one clear line, never a
traceback (issue 14, item 5). Each test runs the real `kiln` command in a subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import kiln
from kiln import PredictionError

KILN = str(Path(sys.executable).parent / "kiln")

pytestmark = pytest.mark.slow


def _model() -> kiln.Model:
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    X = pd.DataFrame({"tenure": [1, 5, 12, 30, 2, 40, 7, 22], "plan": list("abacbcab")})
    est = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["plan"]), remainder="passthrough"),
        LogisticRegression(),
    )
    return kiln.Model(est).fit(X, [1, 0, 0, 1, 1, 0, 1, 0])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A project folder with a saved model that one-hot encodes `plan` (a, b, c)."""
    work = tmp_path / "project"
    work.mkdir()
    _model().save(work / "model")
    (work / "unseen.csv").write_text("tenure,plan\n3,a\n4,zzz\n")
    (work / "empty.csv").write_text("")
    (work / "junk.parquet").write_text("tenure,plan\n3,a\n")
    return work


def kiln_cli(folder: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILN, *args], cwd=folder, capture_output=True, text=True, env=env, timeout=120
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stdout
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("Error: "), done.stderr
    return done.stderr


def test_predict_on_an_unseen_category_names_the_library_error_and_the_fix(
    folder: Path, subprocess_env: dict[str, str]
) -> None:
    err = one_error_line(
        kiln_cli(folder, subprocess_env, "predict", "model", "unseen.csv", "-o", "out.csv")
    )
    assert "The sklearn model raised in predict: ValueError: Found unknown categories" in err
    assert "validation='strict'" in err
    assert "handle_unknown='ignore'" in err
    assert not (folder / "out.csv").exists()


def test_predict_through_the_api_raises_prediction_error() -> None:
    model = _model()
    with pytest.warns(kiln.models.DataDriftWarning, match="plan"):  # noqa: SIM117
        with pytest.raises(PredictionError, match=r"sklearn model raised in predict.*zzz"):
            model.predict(pd.DataFrame({"tenure": [3], "plan": ["zzz"]}))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("predict", "model", "empty.csv", "-o", "out.csv"), "'empty.csv': it is empty"),
        (
            ("predict", "model", "junk.parquet", "-o", "out.csv"),
            "'junk.parquet': it is not a readable Parquet file",
        ),
        (
            ("models", "compare", "model", "model", "--data", "empty.csv", "--target", "y"),
            "'empty.csv': it is empty",
        ),
        (("evaluate", "model", "--data", "empty.csv", "--target", "y"), "'empty.csv': it is empty"),
    ],
    ids=["predict-empty", "predict-not-parquet", "compare-empty", "evaluate-empty"],
)
def test_an_unreadable_data_file_is_one_line_with_what_was_expected(
    folder: Path, subprocess_env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    err = one_error_line(kiln_cli(folder, subprocess_env, *args))
    assert f"Error: Cannot read the data file {message}" in err
    assert "Expected a " in err
