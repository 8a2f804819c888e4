"""The evaluation's HTML report, built with `kiln.report`."""

from __future__ import annotations

from typing import Any

from kiln.evaluate._estimator import model_name

__all__ = ["build_report"]

_CURVES = ("roc", "precision_recall", "calibration", "gain", "lift")
_ERRORS = ("confusion_matrix", "confusion_matrix_normalized", "predicted_vs_actual", "residuals")


def build_report(result: Any, model: Any, n_rows: int, title: str | None, interactive: bool) -> Any:
    """A report with the metrics, the plots, feature importance and fairness by group."""
    from kiln.report import Report

    name = model_name(model)
    report = Report(
        title or f"Evaluation of {name}",
        subtitle=f"{result.task} task, {n_rows:,} rows",
        interactive=interactive,
    )
    summary = report.section("Metrics", "Computed on every row of the evaluation data.")
    summary.metrics({k: v for k, v in result.metrics.items() if k not in result.fairness})
    for group, names in (("Curves", _CURVES), ("Errors", _ERRORS)):
        figures = [result.figures[n] for n in names if n in result.figures]
        if figures:
            section = report.section(group)
            for figure in figures:
                section.figure(figure)
    if result.importance:
        section = report.section("Feature importance", result.importance_kind)
        if "feature_importance" in result.figures:
            section.figure(result.figures["feature_importance"])
    if result.groups is not None:
        column = result.groups.index.name
        section = report.section(
            f"Fairness by {column}",
            "Metrics per group. Demographic parity difference: the largest gap in the share "
            "predicted positive; equalized odds difference: the larger of the gaps in true "
            "and false positive rates.",
        )
        section.metrics(result.fairness)
        section.table(result.groups)
        if "fairness" in result.figures:
            section.figure(result.figures["fairness"])
    return report
