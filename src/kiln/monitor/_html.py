"""The monitoring report as HTML, built with `kiln.report` and `kiln.plots` figures."""

from __future__ import annotations

import itertools
from typing import Any

from kiln.monitor._drift import TABLE_COLUMNS
from kiln.plots import Figure, Trace

__all__ = ["MAX_CHARTS", "build_report", "distribution_figure"]

MAX_CHARTS = 200
"""The most per-feature charts in one report (drifted features first)."""

# The drift table without the counts and PSI (kept in the JSON): what a reader scans.
_DRIFT_COLUMNS = [c for c in TABLE_COLUMNS if c not in ("psi", "n_reference", "n_current")]
_REFERENCE = "#8c8c8c"
_CURRENT = "#d62728"


def distribution_figure(name: str, dist: dict[str, Any], drifted: bool) -> Figure:
    """Reference against current shares of one feature, per bin or category."""
    if dist["kind"] == "numeric":
        edges = dist["edges"]
        labels = [f"{(a + b) / 2:.4g}" for a, b in itertools.pairwise(edges)]
        x_label = f"{name} (bin centre)"
    else:
        labels = [str(c) for c in dist["categories"]]
        x_label = name
    flag = " (drifted)" if drifted else ""
    return Figure(
        kind="distribution",
        title=f"{name}{flag}",
        x_label=x_label,
        y_label="share of rows",
        traces=[
            Trace("bar", labels, list(dist["reference"]), name="reference", color=_REFERENCE),
            Trace("bar", labels, list(dist["current"]), name="current", color=_CURRENT),
        ],
    )


def _drift_scores(table: Any) -> Figure | None:
    tested = table[table["rule"] != "skipped"]
    if not len(tested):
        return None
    # distance / threshold for the distance rule, alpha-scaled evidence otherwise: one
    # scale where 1 is the line a feature crosses to count as drifted.
    scores = []
    for row in tested.itertuples():
        if row.rule == "distance":
            score = row.distance / row.threshold if row.threshold else float("inf")
        else:
            score = 0.05 / max(row.adjusted_p_value, 1e-300)
        scores.append(min(float(score), 10.0))
    names = [str(c) for c in tested["column"]]
    order = sorted(range(len(names)), key=lambda i: scores[i])[-60:]
    return Figure(
        kind="drift_scores",
        title="Drift score per feature (1 = the drift line)",
        x_label="score (distance / threshold, or alpha / adjusted p), capped at 10",
        y_label="feature",
        traces=[Trace("barh", [scores[i] for i in order], [names[i] for i in order])],
    )


def _section_drift(report: Any, out: Any) -> None:
    drift = report.drift
    if drift is None:
        out.section("Drift by feature", "Nothing compared: " + "; ".join(report.notes))
        return
    section = out.section(
        "Drift by feature",
        f"{len(drift.drifted_columns)} of {len(drift.table)} features drifted. Fewer than "
        f"{drift.large_sample:,} values on the smaller side: Holm-adjusted p-values against "
        f"alpha {drift.alpha}; from that size on: distances against thresholds.",
    )
    figure = _drift_scores(drift.table)
    if figure is not None:
        section.figure(figure)
    section.table(drift.table[_DRIFT_COLUMNS])


def _section_distributions(report: Any, out: Any) -> None:
    if not report.distributions:
        return
    drifted = set(report.drifted_columns)
    if report.prediction is not None and report.prediction.drifted:
        drifted.update(f"{c} (model output)" for c in report.prediction.drifted_columns)
    names = sorted(report.distributions, key=lambda n: (n not in drifted,))
    shown = names[:MAX_CHARTS]
    text = "Share of rows per bin (numeric) or category, reference against current."
    if len(names) > len(shown):
        text += f" The first {len(shown)} of {len(names)} features, drifted ones first."
    section = out.section("Distributions", text)
    for name in shown:
        section.figure(distribution_figure(name, report.distributions[name], name in drifted))


def _section_prediction(report: Any, out: Any) -> None:
    if report.prediction is None:
        return
    section = out.section(
        "Prediction drift",
        "The model's outputs on the reference sample against its outputs now.",
    )
    section.table(report.prediction.table[_DRIFT_COLUMNS])


def _section_quality(report: Any, out: Any) -> None:
    section = out.section("Data quality", None if report.quality else "No findings.")
    if report.quality:
        section.table(
            [
                {
                    "severity": f.severity,
                    "check": f.check,
                    "column": f.column or "",
                    "message": f.message,
                }
                for f in report.quality
            ]
        )


def _section_performance(report: Any, out: Any) -> None:
    perf = report.performance
    if perf is None:
        return
    section = out.section(
        "Performance over time", f"{perf.task} metrics of the labelled rows, per window."
    )
    section.metrics(perf.overall)
    windows = perf.windows
    metric_names = [c for c in windows.columns if c not in ("window_start", "window_end", "n")]
    if len(windows) > 1:
        x = [str(v) for v in windows["window_start"]]
        for metric in metric_names[:6]:
            traces = [Trace("line", x, [float(v) for v in windows[metric]], name=metric)]
            if perf.reference and metric in perf.reference:
                value = float(perf.reference[metric])
                traces.append(
                    Trace("line", [x[0], x[-1]], [value, value], name="reference", dash=True)
                )
            section.figure(
                Figure(
                    kind="performance",
                    title=f"{metric} per window",
                    x_label="window start",
                    y_label=metric,
                    traces=traces,
                )
            )
    section.table(windows)
    if perf.flagged:
        out.section("Performance alerts").table(list(perf.flagged))
    if perf.groups is not None:
        groups = out.section("Fairness by group", "Metrics per group and the gaps between them.")
        if perf.gaps:
            groups.metrics(perf.gaps)
        groups.table(perf.groups)


def build_report(report: Any) -> Any:
    """A `kiln.report.Report` of a `MonitorReport`: summary, drift, distributions,
    prediction drift, data quality, performance."""
    from kiln.report import Report

    window = ""
    if report.since is not None or report.until is not None:
        start = report.since.isoformat(timespec="seconds") if report.since else "the start"
        end = report.until.isoformat(timespec="seconds") if report.until else "now"
        window = f", {start} to {end}"
    out = Report(
        f"Monitoring {report.model_uri}",
        subtitle=f"{report.n_current:,} current rows against {report.n_reference:,} "
        f"reference rows{window}",
    )
    summary = out.section(
        "Summary",
        "Thresholds breached: " + str(len(report.alerts)) if report.alerts else "No alerts.",
    )
    summary.metrics(
        {
            "drifted features": len(report.drifted_columns),
            "alerts": len(report.alerts),
            "current rows": report.n_current,
            "reference rows": report.n_reference,
        },
        digits=0,
    )
    if report.alerts:
        summary.table([{"alert": line} for line in report.alerts])
    if report.notes:
        summary.text(" ".join(report.notes))
    _section_drift(report, out)
    _section_prediction(report, out)
    _section_distributions(report, out)
    _section_quality(report, out)
    _section_performance(report, out)
    return out
