"""`kiln.monitor(model_uri, ...)`: a served model's inputs and outputs against its training.

One call reads three things and writes one tracked run:

- the **reference**: the saved model's `profile.json` (exact category counts, quantiles,
  ranges) and `reference_sample.parquet` (up to 10,000 seeded training rows), or a data
  file given as `reference=`;
- the **current** data: the model's prediction log over a time window (what `kiln serve`
  sampled), or a data file given as `current=`;
- optional **labels**, joined to the log on a request id, for performance over time.

It reports per-feature drift (`kiln.monitor.drift`), prediction drift (the model's
outputs on the reference sample against its outputs now), data-quality findings and,
with labels, performance and fairness; and it records a run in the `monitoring`
experiment, tagged with the model's name and version, with the figures as metrics and
the report as JSON and HTML artifacts, so drift can be queried over time.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, DataFileError
from kiln._jsonable import plain
from kiln._times import parse_duration, parse_time
from kiln.monitor._drift import DEFAULTS as DRIFT_DEFAULTS
from kiln.monitor._drift import TABLE_COLUMNS, DriftResult, drift
from kiln.monitor._performance import PerformanceResult, performance, reference_metrics
from kiln.monitor._quality import QUALITY_DEFAULTS, Finding, quality

if TYPE_CHECKING:
    import os

    import pandas as pd

__all__ = [
    "EXPERIMENT",
    "LOG_COLUMNS",
    "MonitorReport",
    "load_config",
    "monitor",
    "monitor_windows",
    "parse_duration",
    "parse_time",
]

EXPERIMENT = "monitoring"
"""The experiment monitoring runs are recorded in."""

LOG_COLUMNS = ("kiln_request_id", "kiln_time", "kiln_model_version", "kiln_prediction")
"""The prediction log's own columns (not model inputs)."""

PREDICTION = "prediction"
ROW = "kiln_row"

_CONFIG_KEYS = (*DRIFT_DEFAULTS, "columns", "prediction", "quality", "performance")
_MAX_CHARTS = 100


def load_config(config: Any) -> dict[str, Any]:
    """The monitoring config: a dict, or a YAML/JSON file's path; keys checked.

    Top-level keys: the drift options (`alpha`, `large_sample`, `thresholds`, `columns`),
    `prediction` (drift options for the model's outputs), `quality` and `performance`.

    Raises:
        ConfigurationError: The file cannot be read or parsed, or a key is unknown.
    """
    if config is None:
        return {}
    if isinstance(config, str | Path):
        path = Path(config)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"Cannot read the monitoring config {path}: {exc.strerror or exc}. "
                "Give the path of a YAML file such as monitor.yaml."
            ) from None
        import yaml

        try:
            config = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigurationError(
                f"The monitoring config {path} is not valid YAML: {exc}. Fix the file."
            ) from None
    if not isinstance(config, dict):
        raise ConfigurationError(
            f"The monitoring config is {type(config).__name__}; expected a mapping with keys "
            f"from {', '.join(_CONFIG_KEYS)}."
        )
    from kiln.monitor._drift import _bad_key

    for key in config:
        if key not in _CONFIG_KEYS:
            raise _bad_key("the monitoring config", key, _CONFIG_KEYS)
    for key in ("prediction", "quality", "performance"):
        if config.get(key) is not None and not isinstance(config[key], dict):
            raise ConfigurationError(
                f"config[{key!r}] is {config[key]!r}; expected a mapping of options."
            )
    return dict(config)


@dataclass
class MonitorReport:
    """What `kiln.monitor` found: drift, prediction drift, data quality, performance.

    Attributes:
        model_uri: The model URI monitored.
        model: `name`, `version`, `run_id` (the run the model came from), `task` and
            `classes`, where known.
        since: The window's start (None: from the first logged request).
        until: The window's end.
        n_reference: Reference rows compared.
        n_current: Current rows compared.
        drift: Per-feature drift (`DriftResult`), None when there was nothing to compare.
        prediction: Drift of the model's outputs, None when it could not be computed
            (`notes` says why).
        quality: Data-quality findings (`Finding`s), most severe first.
        performance: With labels, metrics per window and by group (`PerformanceResult`).
        distributions: Per feature, the reference and current shares per bin or category
            (what the HTML report draws).
        notes: What was skipped, and why.
        run_id: The tracked monitoring run, when one was recorded.
    """

    model_uri: str
    model: dict[str, Any]
    since: datetime | None
    until: datetime | None
    n_reference: int
    n_current: int
    drift: DriftResult | None
    prediction: DriftResult | None
    quality: list[Finding]
    performance: PerformanceResult | None = None
    distributions: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None

    def __repr__(self) -> str:
        state = "drifted" if self.drifted else "no drift"
        return (
            f"<MonitorReport {self.model_uri}: {state}, {len(self.drifted_columns)} drifted "
            f"columns, {len(self.alerts)} alerts, {self.n_current:,} current rows>"
        )

    @property
    def table(self) -> pd.DataFrame:
        """One row per feature: column, kind, test, statistic, p_value, adjusted_p_value,
        distance, threshold, drifted, rule, reason, psi, n_reference, n_current."""
        if self.drift is not None:
            return self.drift.table
        import pandas as pd

        return pd.DataFrame(columns=TABLE_COLUMNS)

    @property
    def drifted(self) -> bool:
        """Whether any feature has drifted."""
        return self.drift is not None and self.drift.drifted

    @property
    def drifted_columns(self) -> list[str]:
        """The features that drifted, in table order."""
        return [] if self.drift is None else self.drift.drifted_columns

    @property
    def alerts(self) -> list[str]:
        """One line per breached threshold: drifted features, drifted predictions, quality
        findings of severity "error" or "warning", metrics that fell too far."""
        lines = []
        if self.drift is not None:
            for row in self.drift.table.itertuples():
                if row.drifted:
                    lines.append(f"drift: {row.column}: {row.reason}")
        if self.prediction is not None and self.prediction.drifted:
            for row in self.prediction.table.itertuples():
                if row.drifted:
                    lines.append(f"prediction drift: {row.column}: {row.reason}")
        for finding in self.quality:
            if finding.severity in ("error", "warning"):
                lines.append(f"quality ({finding.severity}): {finding.message}")
        if self.performance is not None:
            for flag in self.performance.flagged:
                where = (
                    f" in the window from {flag['window_start']}"
                    if flag.get("window_start")
                    else ""
                )
                lines.append(
                    f"performance: {flag['metric']} fell to {flag['value']:.4g}{where} "
                    f"(reference {flag['reference']:.4g}, allowed drop {flag['max_drop']:.3g})"
                )
        return lines

    @property
    def breached(self) -> bool:
        """Whether any threshold was breached (`kiln monitor` then exits with status 1)."""
        return bool(self.alerts)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values (NaN and infinity as None)."""
        return plain(
            {
                "model_uri": self.model_uri,
                "model": self.model,
                "since": self.since,
                "until": self.until,
                "n_reference": self.n_reference,
                "n_current": self.n_current,
                "drifted": self.drifted,
                "breached": self.breached,
                "alerts": self.alerts,
                "drift": None if self.drift is None else self.drift.to_dict(),
                "prediction": None if self.prediction is None else self.prediction.to_dict(),
                "quality": [f.to_dict() for f in self.quality],
                "performance": None if self.performance is None else self.performance.to_dict(),
                "distributions": self.distributions,
                "notes": self.notes,
                "run_id": self.run_id,
            }
        )

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON text (see `to_dict`)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_report(self) -> Any:
        """The report as a `kiln.report.Report` (see `save_report`)."""
        from kiln.monitor._html import build_report

        return build_report(self)

    def save_report(self, path: str | os.PathLike[str]) -> Path:
        """Write a self-contained HTML report: drift scores, one chart per feature
        (reference against current), quality findings, performance over time.

        Returns:
            The path written.
        """
        return Path(self.to_report().save(path))


# ----------------------------------------------------------------------------- reading


def _read(data: Any, role: str) -> pd.DataFrame:
    """A DataFrame from a frame, or from a .parquet/.csv path."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, str | Path):
        from kiln._datafile import read_data_file

        path = Path(data)
        if not path.is_file():
            raise DataFileError(
                f"The {role} data file {path} does not exist; expected a .parquet or .csv "
                "file. Check the path."
            )
        frame: pd.DataFrame = read_data_file(path)
        return frame
    from kiln._frames import as_frame

    frame, _ = as_frame(data, role=role, error=DataFileError)
    return frame


@dataclass
class _Reference:
    """What the saved model brings: its profile, sample, predictions and identity."""

    profile: dict[str, Any]
    sample: pd.DataFrame
    features: list[str]
    model: Any
    info: dict[str, Any]
    notes: list[str]


def _model_info(model_uri: str) -> dict[str, Any]:
    """The registered name and version (and source run) a `models:/` URI stands for."""
    if not str(model_uri).startswith("models:/"):
        return {"name": None, "version": None, "run_id": None}
    from kiln.registry import get_model_version, parse_models_uri

    name, ref = parse_models_uri(str(model_uri))
    version = get_model_version(name, ref)
    return {"name": name, "version": version.version, "run_id": version.run_id}


def _load_reference(model_uri: str, reference: Any, trust_pickle: bool) -> _Reference:
    import pandas as pd

    from kiln.models import load_model, model_folder, reference_profile

    info = _model_info(model_uri)
    notes: list[str] = []
    model: Any = None
    with model_folder(model_uri) as folder:
        profile_path = folder / "profile.json"
        sample_path = folder / "reference_sample.parquet"
        profile = (
            json.loads(profile_path.read_text(encoding="utf-8")) if profile_path.is_file() else None
        )
        sample = pd.read_parquet(sample_path) if sample_path.is_file() else None
        try:
            model = load_model(folder, trust_pickle=trust_pickle)
        except Exception as exc:  # noqa: BLE001 - reported as a note, drift still runs
            notes.append(f"prediction drift skipped: the model could not be loaded ({exc})")
    if model is not None:
        info.update(task=model.task_, classes=model.classes_)
        if info.get("run_id") is None and str(model_uri).startswith("runs:/"):
            info["run_id"] = str(model_uri)[len("runs:/") :].split("/")[0]
    if reference is not None:
        sample = _read(reference, "reference")
        profile, _ = reference_profile(sample, sample_size=0)
    if profile is None or sample is None:
        raise DataFileError(
            f"The model {model_uri} has no reference profile or sample (profile.json, "
            "reference_sample.parquet): it was saved without training data (from_function "
            "with a Signature, or an old kiln). Pass the training data as reference=... "
            "(--reference data.parquet)."
        )
    features = list(profile["columns"])
    return _Reference(profile, sample, features, model, info, notes)


def _predict(model: Any, frame: pd.DataFrame) -> Any:
    """The model's predictions on rows (warnings about unseen values silenced)."""
    from kiln.models import DataDriftWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataDriftWarning)
        return model.predict(frame)


def _prediction_drift(
    ref: _Reference, current: pd.DataFrame, config: dict[str, Any], notes: list[str]
) -> tuple[DriftResult, pd.DataFrame, pd.DataFrame] | None:
    """Drift of the model's outputs: on the reference sample, and now (the log's
    predictions, or the model's on the current data); with both frames compared."""
    import pandas as pd

    if ref.model is None or len(current) == 0:
        return None
    features = [c for c in ref.features if c in ref.sample.columns]
    try:
        before = pd.Series(_predict(ref.model, ref.sample[features]))
        if "kiln_prediction" in current.columns:
            now = pd.Series(current["kiln_prediction"].to_numpy())
        else:
            missing = [c for c in features if c not in current.columns]
            if missing:
                notes.append(
                    f"prediction drift skipped: the current data lacks {missing[:5]} and "
                    "has no kiln_prediction column"
                )
                return None
            now = pd.Series(_predict(ref.model, current[features]))
    except Exception as exc:  # noqa: BLE001 - a note, never a crash of monitoring
        notes.append(f"prediction drift skipped: predicting failed ({exc})")
        return None
    kind = "numeric" if ref.info.get("task") == "regression" else "categorical"
    if kind == "categorical":  # the log may hold labels as text: compare as text
        before, now = before.astype(str), now.where(now.isna(), now.astype(str))
    options = dict(config.get("prediction") or {})
    columns = dict(options.pop("columns", None) or {})
    columns.setdefault(PREDICTION, {})
    columns[PREDICTION] = {"kind": kind, **columns[PREDICTION]}
    before_frame = pd.DataFrame({PREDICTION: before})
    now_frame = pd.DataFrame({PREDICTION: now})
    if kind == "categorical" and "kiln_prediction" not in current.columns:
        # From data (not the log, which keeps labels only): the probabilities too.
        for name, (then, today) in _probabilities(ref, features, current, notes).items():
            before_frame[name], now_frame[name] = then, today
            columns[name] = {"kind": "numeric"}
    result = drift(before_frame, now_frame, config={**options, "columns": columns})
    return result, before_frame, now_frame


def _probabilities(
    ref: _Reference, features: list[str], current: pd.DataFrame, notes: list[str]
) -> dict[str, tuple[Any, Any]]:
    """Per class (the positive one for a binary model), its probability on the reference
    sample and on the current rows; empty when the model gives no probabilities."""
    import numpy as np

    if not hasattr(ref.model, "predict_proba"):
        return {}
    from kiln.models import DataDriftWarning

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataDriftWarning)
            then = np.asarray(ref.model.predict_proba(ref.sample[features]), dtype=np.float64)
            today = np.asarray(ref.model.predict_proba(current[features]), dtype=np.float64)
    except Exception as exc:  # noqa: BLE001 - a model without probabilities, say
        notes.append(f"probability drift skipped: predict_proba failed ({exc})")
        return {}
    if then.ndim != 2 or then.shape[1] != today.shape[1]:
        return {}
    classes = list(ref.info.get("classes") or range(then.shape[1]))
    if len(classes) != then.shape[1]:
        classes = list(range(then.shape[1]))
    wanted = [len(classes) - 1] if len(classes) == 2 else range(len(classes))
    return {f"probability[{classes[i]}]": (then[:, i], today[:, i]) for i in wanted}


def _distributions(
    reference: pd.DataFrame, current: pd.DataFrame, table: pd.DataFrame, bins: int = 20
) -> dict[str, dict[str, Any]]:
    """Shares per bin (numeric) or category (the 20 most common) on each side."""
    import numpy as np
    import pandas as pd

    out: dict[str, dict[str, Any]] = {}
    for row in table.itertuples():
        name = str(row.column)
        if row.rule == "skipped" or name not in reference.columns or name not in current.columns:
            continue
        r, c = reference[name].dropna(), current[name].dropna()
        if row.kind == "numeric":
            rv = pd.to_numeric(r, errors="coerce").to_numpy(np.float64)
            cv = pd.to_numeric(c, errors="coerce").to_numpy(np.float64)
            rv, cv = rv[np.isfinite(rv)], cv[np.isfinite(cv)]
            if len(rv) == 0 or len(cv) == 0:
                continue
            lo, hi = float(min(rv.min(), cv.min())), float(max(rv.max(), cv.max()))
            if lo == hi:
                lo, hi = lo - 0.5, hi + 0.5
            edges = np.linspace(lo, hi, bins + 1)
            out[name] = {
                "kind": "numeric",
                "edges": edges.tolist(),
                "reference": (np.histogram(rv, edges)[0] / len(rv)).tolist(),
                "current": (np.histogram(cv, edges)[0] / len(cv)).tolist(),
            }
        else:
            rc = r.astype(str).value_counts()
            cc = c.astype(str).value_counts()
            both = rc.add(cc, fill_value=0).sort_values(ascending=False)
            top = [str(k) for k in both.index[:bins]]
            ref_share = [float(rc.get(k, 0) / max(len(r), 1)) for k in top]
            cur_share = [float(cc.get(k, 0) / max(len(c), 1)) for k in top]
            if len(both) > bins:
                top.append("(other)")
                ref_share.append(max(0.0, 1 - sum(ref_share)))
                cur_share.append(max(0.0, 1 - sum(cur_share)))
            out[name] = {
                "kind": "categorical",
                "categories": top,
                "reference": ref_share,
                "current": cur_share,
            }
    return out


# ----------------------------------------------------------------------------- monitoring


def _check_options(config: dict[str, Any]) -> None:
    """Fail early on a bad quality or performance option, before any data is read."""
    for key in config.get("quality") or {}:
        if key not in QUALITY_DEFAULTS:
            from kiln.monitor._drift import _bad_key

            raise _bad_key("config['quality']", key, list(QUALITY_DEFAULTS))


def _drift_config(config: dict[str, Any], compared: list[str]) -> dict[str, Any]:
    out = {k: config[k] for k in DRIFT_DEFAULTS if k in config}
    columns = config.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigurationError(
            f"config['columns'] is {columns!r}; expected a mapping of column name to "
            "{'kind': ..., 'test': ..., 'threshold': ...}."
        )
    unknown = [c for c in columns if c not in compared]
    if unknown:
        from kiln._exceptions import did_you_mean

        raise ConfigurationError(
            f"config['columns'] names {unknown[0]!r}, which is not a feature of the model "
            f"present in the current data; expected one of {compared[:20]}."
            f"{did_you_mean(str(unknown[0]), compared)}"
        )
    out["columns"] = columns
    return out


def _as_profiled(frame: pd.DataFrame, profile: dict[str, Any]) -> pd.DataFrame:
    """Numeric training columns as numbers: values that do not parse become nulls.

    The quality check has already reported them (`wrong_type`, with counts and
    examples); drift is measured on the values that parse instead of failing.
    """
    import pandas as pd
    from pandas.api import types

    out = frame
    for name in frame.columns:
        kind = profile["columns"].get(str(name), {}).get("kind")
        series = frame[name]
        if kind in ("int", "float") and not types.is_numeric_dtype(series.dtype):
            if out is frame:
                out = frame.copy()
            out[name] = pd.to_numeric(series, errors="coerce")
    return out


def _eval_task(info: dict[str, Any]) -> str | None:
    """The model's task as kiln.evaluate names it (binary, multiclass, regression)."""
    if info.get("task") == "regression":
        return "regression"
    classes = info.get("classes")
    if info.get("task") == "classification" and classes:
        return "binary" if len(classes) == 2 else "multiclass"
    return None


def _analyse(
    model_uri: str,
    ref: _Reference,
    current: pd.DataFrame,
    *,
    since: datetime | None,
    until: datetime | None,
    labels: pd.DataFrame | None,
    on: str | list[str],
    segment: str | None,
    every: Any,
    config: dict[str, Any],
    progress: bool | None,
) -> MonitorReport:
    notes = list(ref.notes)
    keys = [on] if isinstance(on, str) else list(on)
    if "kiln_request_id" in current.columns and ROW not in current.columns:
        # The row's place in its request: labels for a request of several rows join on
        # on=["kiln_request_id", "kiln_row"].
        current = current.assign(**{ROW: current.groupby("kiln_request_id").cumcount()})
    findings = quality(
        current,
        ref.profile,
        key=keys[0] if keys[0] in current.columns else None,
        ignore=(*LOG_COLUMNS, ROW),
        config=config.get("quality"),
    )
    order = {"error": 0, "warning": 1, "info": 2}
    findings.sort(key=lambda f: order.get(f.severity, 3))
    compared = [c for c in ref.features if c in current.columns and c in ref.sample.columns]
    result: DriftResult | None = None
    distributions: dict[str, dict[str, Any]] = {}
    if len(current) and compared:
        drift_config = _drift_config(config, compared)
        result = drift(
            ref.sample[compared],
            _as_profiled(current[compared], ref.profile),
            config=drift_config,
            progress=progress,
        )
        distributions = _distributions(ref.sample, current, result.table)
    elif not compared and len(current):
        notes.append("drift skipped: the current data has none of the model's features")
    predicted = _prediction_drift(ref, current, config, notes)
    if predicted is not None:
        result_p, before, now = predicted
        for key, value in _distributions(before, now, result_p.table).items():
            distributions[f"{key} (model output)"] = value
    perf: PerformanceResult | None = None
    if labels is not None:
        reference = None
        run_id = ref.info.get("run_id")
        if run_id:
            from kiln.tracking import get_client

            try:
                metrics = get_client().get_run(run_id).metrics
            except Exception:  # noqa: BLE001 - the model's run may live in another store
                notes.append(f"performance reference skipped: run {run_id} is not in this store")
            else:
                task = _eval_task(ref.info)
                reference = reference_metrics(metrics, task) if task else None
        perf = performance(
            current,
            labels,
            on=on,
            task=_eval_task(ref.info),
            classes=ref.info.get("classes"),
            every=every,
            segment=segment,
            reference=reference,
            config=config.get("performance"),
        )
    return MonitorReport(
        model_uri=str(model_uri),
        model=dict(ref.info),
        since=since,
        until=until,
        n_reference=len(ref.sample),
        n_current=len(current),
        drift=result,
        prediction=None if predicted is None else predicted[0],
        quality=findings,
        performance=perf,
        distributions=distributions,
        notes=notes,
    )


def _record(report: MonitorReport, experiment: str) -> str:
    """Record the report as a run of `experiment`, linked to the model version by tags."""
    import tempfile

    from kiln.tracking import active_run, start_run

    info = report.model
    name = info.get("name") or Path(str(report.model_uri).rstrip("/")).name or "model"
    version = info.get("version")
    tags = {
        "kiln.monitor.model_uri": report.model_uri,
        "kiln.monitor.drifted": str(report.drifted).lower(),
        "kiln.monitor.breached": str(report.breached).lower(),
    }
    if info.get("name"):
        tags["kiln.monitor.model"] = str(info["name"])
    if version is not None:
        tags["kiln.monitor.version"] = str(version)
    if info.get("run_id"):
        tags["kiln.monitor.model_run"] = str(info["run_id"])
    if report.since is not None:
        tags["kiln.monitor.since"] = report.since.isoformat()
    if report.until is not None:
        tags["kiln.monitor.until"] = report.until.isoformat()
    metrics: dict[str, float] = {
        "n_current": float(report.n_current),
        "n_reference": float(report.n_reference),
        "drifted_columns": float(len(report.drifted_columns)),
        "quality_errors": float(sum(f.severity == "error" for f in report.quality)),
        "quality_warnings": float(sum(f.severity == "warning" for f in report.quality)),
        "alerts": float(len(report.alerts)),
    }
    if report.drift is not None and len(report.drift.table):
        table = report.drift.table
        tested = table[table["rule"] != "skipped"]
        metrics["drift_share"] = float(tested["drifted"].mean()) if len(tested) else 0.0
        for row in tested.itertuples():
            if isinstance(row.distance, float) and math.isfinite(row.distance):
                metrics[f"drift/{row.column}"[:250]] = row.distance
    if report.prediction is not None:
        for row in report.prediction.table.itertuples():
            if isinstance(row.distance, float) and math.isfinite(row.distance):
                metrics["prediction_drift"] = row.distance
    if report.performance is not None:
        for key, value in report.performance.overall.items():
            if isinstance(value, float) and math.isfinite(value):
                metrics[f"performance/{key}"[:250]] = value
    version_text = f" v{version}" if version is not None else ""
    parent = active_run()
    with start_run(
        f"monitor {name}{version_text}",
        experiment=experiment,
        tags=tags,
        parent=parent.id if parent is not None else None,
        system_metrics=False,
    ) as run:
        report.run_id = run.id
        run.log_metrics(metrics)
        run.log_text(report.to_json(), "monitor.json")
        try:
            html = report.to_report().to_html()
        except ImportError as exc:  # jinja2 missing: the JSON still says everything
            report.notes.append(f"HTML report skipped: {exc}")
        else:
            with tempfile.TemporaryDirectory(prefix="kiln-monitor-") as tmp:
                path = Path(tmp) / "monitor.html"
                path.write_text(html, encoding="utf-8")
                run.log_artifact(path, "monitor.html")
    return run.id


def _nothing_logged(
    empty: Finding, model_uri: str, since: datetime | None, until: datetime | None
) -> Finding:
    """The `empty` finding of a prediction-log window without rows: no predictions were
    logged there; how to log some, or where else to look."""
    from dataclasses import replace

    if since is None:
        window = "yet"
    else:
        end = f"{until:%Y-%m-%d %H:%M}" if until is not None else "now"
        window = f"between {since:%Y-%m-%d %H:%M} and {end} UTC"
    served = [uri for uri in _served_uris() if uri != model_uri]
    others = (
        f" The log holds predictions of {', '.join(repr(u) for u in served[:5])}: monitor "
        "the URI exactly as it was given to kiln serve."
        if served
        else ""
    )
    widen = " or widen the window (--since, since=)" if since is not None else ""
    return replace(
        empty,
        message=(
            f"No predictions of {model_uri!r} were logged {window}, so there is nothing to "
            f"check.{others} Serve it with prediction logging on (kiln serve {model_uri} "
            f"--log-rate 1; the default, 0, logs nothing) and send it requests{widen}, or "
            "give the data to check with --current FILE (current=)."
        ),
        details={**empty.details, "source": "prediction log"},
    )


def _served_uris() -> list[str]:
    """The model URIs the prediction log has requests of, newest served first."""
    from kiln._exceptions import ExperimentNotFoundError
    from kiln.tracking import SERVING_EXPERIMENT, SERVING_URI_TAG, get_client

    try:
        runs = get_client().search_runs(SERVING_EXPERIMENT, limit=100)
    except ExperimentNotFoundError:
        return []
    uris = (r.tags.get(SERVING_URI_TAG) for r in runs)
    return list(dict.fromkeys(u for u in uris if u))


def _current_from_log(
    model_uri: str, since: datetime | None, until: datetime | None
) -> pd.DataFrame:
    from kiln.tracking import prediction_log

    return prediction_log(str(model_uri), since=since, until=until)


def monitor(
    model_uri: str | os.PathLike[str],
    current: Any = None,
    *,
    since: Any = None,
    until: Any = None,
    reference: Any = None,
    labels: Any = None,
    on: str | list[str] = "kiln_request_id",
    segment: str | None = None,
    config: Any = None,
    every: Any = None,
    experiment: str | None = EXPERIMENT,
    trust_pickle: bool = False,
    progress: bool | None = None,
) -> MonitorReport:
    """Compare what a model sees now with what it was trained on; record the result.

    ```python
    report = kiln.monitor("models:/churn@production", since="7d")
    report.drifted_columns  # ["age", "plan"]
    report.alerts  # one line per breached threshold
    report.save_report("monitor.html")
    ```

    Args:
        model_uri: The model: `models:/name@alias`, `models:/name/3`, `runs:/...`, or a
            saved-model folder. For the prediction log, the URI exactly as given to
            `kiln serve`.
        current: The current data (a DataFrame, or a .parquet/.csv path). Default: the
            model's prediction log between `since` and `until`.
        since: Start of the window: a datetime, an ISO 8601 time, ms since the epoch, or
            a duration ago ("7d", "12h").
        until: End of the window (default: now).
        reference: Reference data instead of the model's saved reference sample (a
            DataFrame or a .parquet/.csv path); it is profiled on the fly.
        labels: True labels (a DataFrame or file) with the `on` key column and a label
            column, for performance and fairness over time.
        on: The key joining labels to the current rows: a column, or a list of columns.
            Every logged row also has `kiln_row`, its place in its request, so labels
            for requests of several rows join on `["kiln_request_id", "kiln_row"]`.
        segment: A column to compute metrics and fairness gaps per group by.
        config: A dict, or a YAML file's path: the drift options (`alpha`,
            `large_sample`, `thresholds`, `columns`: per-feature `kind`, `test`,
            `threshold`), and `prediction`, `quality`, `performance` sections.
        every: With labels, the window of the performance table ("1h", "1d"); see
            `monitor_windows` for drift per window.
        experiment: The experiment to record the monitoring run in (None: record
            nothing).
        trust_pickle: Load a pickled model (for prediction drift); only for a model you
            trust as your own code.
        progress: Show a progress bar over the columns (default: when stderr is a
            terminal).

    Returns:
        A `MonitorReport`; its `run_id` is the recorded run.

    Raises:
        ConfigurationError: A bad option or config key (named), or a time that is not one.
        DataFileError: A data file that cannot be read, or a model without a reference.
        NotFoundError: The model, version or alias does not exist.
    """
    options = load_config(config)
    _check_options(options)
    now = datetime.now(UTC)
    start = parse_time(since, "since", now=now)
    end = parse_time(until, "until", now=now)
    if start is not None and end is not None and start >= end:
        raise ConfigurationError(
            f"since ({start.isoformat()}) is not before until ({end.isoformat()}); expected "
            "a window that starts before it ends."
        )
    ref = _load_reference(str(model_uri), reference, trust_pickle)
    if current is None:
        frame = _current_from_log(str(model_uri), start, end)
        if end is None:
            end = now
    else:
        if since is not None or until is not None:
            raise ConfigurationError(
                "since/until choose a window of the prediction log; they cannot be used with "
                "current=... data. Filter the data before passing it, or leave out current."
            )
        frame = _read(current, "current")
    label_frame = None if labels is None else _read(labels, "labels")
    report = _analyse(
        str(model_uri),
        ref,
        frame,
        since=start,
        until=end,
        labels=label_frame,
        on=on,
        segment=segment,
        every=every,
        config=options,
        progress=progress,
    )
    if current is None and not len(frame):  # the log's window is empty: say why, and what to do
        report.quality = [
            _nothing_logged(f, str(model_uri), start, end) if f.check == "empty" else f
            for f in report.quality
        ]
    if experiment is not None:
        _record(report, experiment)
    return report


def monitor_windows(
    model_uri: str | os.PathLike[str],
    *,
    since: Any,
    every: Any,
    until: Any = None,
    reference: Any = None,
    labels: Any = None,
    on: str | list[str] = "kiln_request_id",
    segment: str | None = None,
    config: Any = None,
    experiment: str | None = EXPERIMENT,
    trust_pickle: bool = False,
    progress: bool | None = None,
) -> list[MonitorReport]:
    """One `MonitorReport` (and one recorded run) per window of the prediction log.

    ```python
    reports = kiln.monitor.monitor_windows("models:/churn@production", since="7d", every="1d")
    [r.drifted for r in reports]
    ```

    Windows run from `since` to `until` (default: now) in steps of `every`; a window
    with no logged request is left out (a quiet night is no alert).

    Args:
        model_uri: As for `monitor`.
        since: The first window's start (required).
        every: The window length: "1h", "1d", a timedelta.
        until: The last window's end (default: now).
        reference: As for `monitor`.
        labels: As for `monitor`; each window's performance uses its labelled rows.
        on: As for `monitor`.
        segment: As for `monitor`.
        config: As for `monitor`.
        experiment: As for `monitor`.
        trust_pickle: As for `monitor`.
        progress: As for `monitor`.

    Returns:
        The reports, oldest window first.

    Raises:
        ConfigurationError: `since` is missing, a time or duration is not one, or a
            bad config.
    """
    import pandas as pd

    options = load_config(config)
    _check_options(options)
    now = datetime.now(UTC)
    if since is None:
        raise ConfigurationError(
            "every= needs since=: the windows run from since to until. Give since='7d' "
            "(--since 7d) or a time."
        )
    step = parse_duration(every)
    start = parse_time(since, "since", now=now)
    end = parse_time(until, "until", now=now) or now
    assert start is not None
    if start >= end:
        raise ConfigurationError(
            f"since ({start.isoformat()}) is not before until ({end.isoformat()})."
        )
    if (end - start) / step > 10_000:
        raise ConfigurationError(
            f"every={every!r} from {start.isoformat()} to {end.isoformat()} makes more than "
            "10,000 windows; expected a longer window or a shorter span."
        )
    ref = _load_reference(str(model_uri), reference, trust_pickle)
    log = _current_from_log(str(model_uri), start, end)
    label_frame = None if labels is None else _read(labels, "labels")
    reports = []
    times = pd.to_datetime(log["kiln_time"], utc=True) if len(log) else None
    lo = start
    while lo < end:
        hi = min(lo + step, end)
        if times is not None:
            rows = log[(times >= pd.Timestamp(lo)) & (times < pd.Timestamp(hi))]
            if len(rows):
                report = _analyse(
                    str(model_uri),
                    ref,
                    rows.reset_index(drop=True),
                    since=lo,
                    until=hi,
                    labels=label_frame,
                    on=on,
                    segment=segment,
                    every=None,
                    config=options,
                    progress=progress,
                )
                if experiment is not None:
                    _record(report, experiment)
                reports.append(report)
        lo = hi
    return reports
