"""`kiln evaluate`: a saved model on a data file, as users call it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

import kiln
from kiln.cli import cli


@pytest.fixture
def saved(tracked: str, tmp_path: Path) -> tuple[str, Path]:
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=600), "b": rng.normal(size=600)})
    y = (X["a"] > 0).astype(int)
    with kiln.start_run():
        uri = kiln.Model(LogisticRegression(), validation="off").fit(X[:400], y[:400]).save()
    data = tmp_path / "test.parquet"
    X[400:].assign(label=y[400:], region=np.where(X["b"][400:] > 0, "n", "s")).to_parquet(data)
    return uri, data


def test_evaluate_prints_metrics_logs_and_writes_a_report(
    tracked: str, saved: tuple[str, Path], tmp_path: Path
) -> None:
    uri, data = saved
    report = tmp_path / "out" / "eval.html"
    args = ["--store", tracked, "evaluate", uri, "--data", str(data), "--target", "label"]
    done = CliRunner().invoke(
        cli,
        [*args, "--segments", "region", "--report", str(report), "--experiment", "ev", "--json"],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    out = json.loads(done.output)
    assert out["task"] == "binary"
    assert 0.9 < out["metrics"]["roc_auc"] <= 1.0
    assert "demographic_parity_difference" in out["metrics"]
    assert "Fairness by region" in report.read_text(encoding="utf-8")
    stored = kiln.get_run(out["run_id"])
    assert stored.metrics["roc_auc"] == pytest.approx(out["metrics"]["roc_auc"])
    assert stored.tags["evaluated_model"] == uri

    table = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert table.exit_code == 0, table.output
    assert "roc_auc" in table.output
    assert "binary evaluation of" in table.output


def test_evaluate_names_a_wrong_target(tracked: str, saved: tuple[str, Path]) -> None:
    # A wrong column is a usage error, as in `kiln models compare` (it was a
    # ValidationError, which is for data against a model's signature).
    uri, data = saved
    for option in ("--target", "--segments"):
        args = ["--target", "label"] if option == "--segments" else []
        done = CliRunner().invoke(
            cli,
            ["--store", tracked, "evaluate", uri, "--data", str(data), *args, option, "lable"],
        )
        assert done.exit_code == 2, done.output
        assert f"Invalid value for {option}: 'lable' is not a column of" in done.output
        assert "Did you mean 'label'?" in done.output
