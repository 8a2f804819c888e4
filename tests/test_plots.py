"""kiln.plots: each plot is checked for what it shows, in the PNG's figure and in Plotly."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm

import kiln
from kiln import plots
from kiln.plots._classification import thin


@pytest.fixture(scope="module")
def binary() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 4000)
    score = np.clip(y * 0.35 + rng.random(4000) * 0.65, 0, 1)
    return y, score


def _legend(fig: plots.Figure) -> list[str]:
    ax = fig.to_matplotlib().axes[0]
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_roc_shows_the_exact_auc_in_both_renderings(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    fig = plots.roc(y, score, max_points=200)
    expected = skm.roc_auc_score(y, score)
    assert fig.values["auc"] == pytest.approx(expected, abs=1e-12)

    mpl = fig.to_matplotlib()
    ax = mpl.axes[0]
    assert ax.get_xlabel() == "False positive rate"
    assert ax.get_ylabel() == "True positive rate"
    assert len(ax.get_lines()) == 2  # the curve and the chance diagonal
    assert _legend(fig) == [f"AUC = {expected:.3f}", "chance"]
    x, yy = ax.get_lines()[0].get_data()
    assert len(x) <= 200
    assert (x[0], yy[0]) == (0.0, 0.0)
    assert (x[-1], yy[-1]) == (1.0, 1.0)
    # Every drawn point is a point of the exact curve.
    fpr, tpr, _ = skm.roc_curve(y, score)
    exact = set(zip(fpr.tolist(), tpr.tolist(), strict=True))
    assert set(zip(x.tolist(), yy.tolist(), strict=True)) <= exact

    plotly = fig.to_plotly()
    assert [t["name"] for t in plotly["data"]] == [f"AUC = {expected:.3f}", "chance"]
    assert plotly["layout"]["xaxis"]["title"]["text"] == "False positive rate"
    assert plotly["data"][0]["x"] == x.tolist()
    assert json.loads(fig.to_json())["data"][0]["y"] == yy.tolist()


def test_multiclass_roc_draws_one_curve_per_class() -> None:
    rng = np.random.default_rng(1)
    y = rng.choice(["a", "b", "c"], 900)
    proba = rng.dirichlet([1, 1, 1], 900)
    proba[np.arange(900), np.searchsorted(["a", "b", "c"], y)] += 0.5
    proba /= proba.sum(axis=1, keepdims=True)
    fig = plots.roc(y, proba, classes=["a", "b", "c"])
    names = [t.name for t in fig.traces]
    assert len(names) == 4
    for i, label in enumerate("abc"):
        auc = skm.roc_auc_score(y == label, proba[:, i])
        assert fig.values[f"auc_{label}"] == pytest.approx(auc)
        assert names[i] == f"{label} (AUC = {auc:.3f})"
    with pytest.raises(kiln.PlotError, match="pass `classes` in the column order"):
        plots.roc(y, proba, classes=["a", "b"])


def test_precision_recall_shows_average_precision_and_base_rate(
    binary: tuple[np.ndarray, np.ndarray],
) -> None:
    y, score = binary
    fig = plots.precision_recall(y, score)
    ap = skm.average_precision_score(y, score)
    assert fig.values["average_precision"] == pytest.approx(ap)
    assert fig.values["base_rate"] == pytest.approx(y.mean())
    assert _legend(fig) == [f"AP = {ap:.3f}", "base rate"]
    ax = fig.to_matplotlib().axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Recall", "Precision")
    assert list(ax.get_lines()[1].get_ydata()) == [y.mean(), y.mean()]


def test_confusion_matrix_cells_are_the_counts_and_the_row_shares() -> None:
    y = np.array(["cat", "dog", "dog", "cat", "bird", "dog", "bird"])
    p = np.array(["cat", "dog", "cat", "cat", "dog", "dog", "bird"])
    expected = skm.confusion_matrix(y, p, labels=["bird", "cat", "dog"])
    fig = plots.confusion_matrix(y, p)
    (heat,) = fig.traces
    assert heat.x == heat.y == ["bird", "cat", "dog"]
    assert np.array_equal(np.array(heat.z), expected)
    ax = fig.to_matplotlib().axes[0]
    cells = sorted(t.get_text() for t in ax.texts)
    assert cells == sorted(str(v) for v in expected.ravel())
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Predicted label", "True label")
    assert fig.values["accuracy"] == pytest.approx(skm.accuracy_score(y, p))

    norm = plots.confusion_matrix(y, p, normalize=True)
    shares = np.array(norm.traces[0].z)
    assert np.allclose(shares.sum(axis=1), 1.0)
    assert np.allclose(shares, expected / expected.sum(axis=1, keepdims=True))
    assert norm.traces[0].text[1] == ["0.00", "1.00", "0.00"]
    plotly = norm.to_plotly()["data"][0]
    assert plotly["type"] == "heatmap"
    assert plotly["z"] == norm.traces[0].z


def test_calibration_bins_and_brier(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    fig = plots.calibration(y, score, n_bins=5)
    assert fig.values["brier"] == pytest.approx(skm.brier_score_loss(y, score))
    line = fig.traces[0]
    bins = np.minimum((score * 5).astype(int), 4)
    for b, (mean_p, rate) in enumerate(zip(line.x, line.y, strict=True)):
        assert mean_p == pytest.approx(score[bins == b].mean())
        assert rate == pytest.approx(y[bins == b].mean())
    with pytest.raises(kiln.PlotError, match=r"probabilities in \[0, 1\]"):
        plots.calibration(y, score * 3)


def test_gain_and_lift(binary: tuple[np.ndarray, np.ndarray]) -> None:
    y, score = binary
    gain = plots.gain(y, score)
    x, g = gain.traces[0].x, gain.traces[0].y
    assert (x[0], g[0], x[-1], g[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert all(b >= a for a, b in itertools.pairwise(g))  # cumulative
    top = np.argsort(-score, kind="stable")[: len(y) // 10]
    assert gain.values["gain_at_10pct"] == pytest.approx(y[top].sum() / y.sum(), abs=1e-3)
    lift = plots.lift(y, score)
    assert lift.values["lift_at_10pct"] == pytest.approx(
        gain.values["gain_at_10pct"] / 0.1, rel=1e-2
    )
    assert lift.traces[0].y[-1] == pytest.approx(1.0)  # everyone targeted: no lift
    with pytest.raises(kiln.PlotError, match="needs both positive and negative rows"):
        plots.gain(np.ones(5), np.linspace(0, 1, 5))


def test_regression_plots() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=5000)
    p = y + rng.normal(scale=0.3, size=5000)
    fig = plots.predicted_vs_actual(y, p, max_points=1000)
    assert fig.values["r2"] == pytest.approx(skm.r2_score(y, p))
    assert len(fig.traces[0].x) == 1000
    ax = fig.to_matplotlib().axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("Actual value", "Predicted value")
    res = plots.residuals(y, p)
    assert res.values["mean"] == pytest.approx(np.mean(y - p))
    drawn_x = np.array(res.traces[0].x)
    drawn_r = np.array(res.traces[0].y)
    assert np.allclose(np.sort(drawn_x + drawn_r), np.sort(y[np.isin(p, drawn_x)]))
    with pytest.raises(kiln.PlotError, match="y_true has 3 rows but y_pred has 2"):
        plots.residuals([1, 2, 3], [1, 2])


def test_feature_importance_orders_and_limits() -> None:
    fig = plots.feature_importance({"a": 0.1, "b": -0.5, "c": 0.3, "d": 0.0}, top=3)
    (bars,) = fig.traces
    assert bars.y == ["b", "c", "a"]
    assert bars.x == [-0.5, 0.3, 0.1]
    ax = fig.to_matplotlib().axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "c", "a"]
    assert sorted(p.get_width() for p in ax.patches) == sorted(bars.x)
    with pytest.raises(kiln.PlotError, match="2 feature names for 3 importances"):
        plots.feature_importance([1.0, 2.0, 3.0], ["a", "b"])


def test_fairness_plot_has_a_bar_group_per_metric() -> None:
    groups = {"north": {"selection_rate": 0.3, "tpr": 0.8, "fpr": 0.1, "count": 10}}
    groups["south"] = {"selection_rate": 0.5, "tpr": 0.6, "fpr": 0.2, "count": 12}
    fig = plots.fairness(groups)
    assert [t.name for t in fig.traces] == ["selection_rate", "tpr", "fpr"]
    assert fig.traces[1].y == [0.8, 0.6]
    assert fig.values["tpr_gap"] == pytest.approx(0.2)
    assert len(fig.to_matplotlib().axes[0].patches) == 6
    with pytest.raises(kiln.PlotError, match="Nothing to plot: the group table has no groups"):
        plots.fairness({})
    with pytest.raises(kiln.PlotError, match="No column 'auc'"):
        plots.fairness(groups, metrics=["auc"])
    with pytest.raises(kiln.PlotError, match="Trace kind 'pie' is not one of"):
        plots.Trace("pie", [1], [2])


def test_save_formats(tmp_path: Path, binary: tuple[np.ndarray, np.ndarray]) -> None:
    fig = plots.roc(*binary)
    png = fig.save(tmp_path / "roc.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert fig._repr_png_()[:4] == b"\x89PNG"
    assert json.loads(fig.save(tmp_path / "roc.json").read_text())["layout"]["title"]["text"]
    html = fig.save(tmp_path / "roc.html").read_text()
    assert "ROC curve" in html
    assert "Plotly.newPlot" in html
    with pytest.raises(kiln.ConfigurationError, match=r"use a \.png, \.json or \.html"):
        fig.save(tmp_path / "roc.gif")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=2, max_size=400),
    st.integers(min_value=3, max_value=50),
)
def test_thin_keeps_ends_and_only_real_points(values: list[float], max_points: int) -> None:
    x = np.sort(np.array(values))
    y = np.sqrt(x)
    tx, ty = thin(x, y, max_points)
    assert len(tx) <= max(max_points, len(x))
    assert len(tx) <= max_points + 2
    assert (tx[0], tx[-1]) == (x[0], x[-1])
    assert set(zip(tx, ty, strict=True)) <= set(zip(x.tolist(), y.tolist(), strict=True))
