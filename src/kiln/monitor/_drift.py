"""Per-column drift between a reference and a current sample, and the decision rule.

The decision rule (defaults; all configurable):

- **Small samples** (fewer than `large_sample` = 10,000 non-null values on the smaller
  side): a p-value test per column, Kolmogorov-Smirnov for numeric columns and a
  two-sample chi-square on the 2 x K table of counts for categorical ones, with Holm's
  correction across all tested columns; a column has drifted when its Holm-adjusted
  p-value is below `alpha` = 0.05. Holm keeps the family-wise error (the chance of flagging
  any column when none drifted) at or below `alpha` whatever the dependence between
  columns, and is uniformly more powerful than Bonferroni. The chi-square compares two
  samples: the reference counts are a sample too, not exact proportions, so a small
  reference does not make every column look drifted.
- **Large samples**: any tiny, harmless shift becomes "significant" when there are enough
  rows, so the p-value stops measuring what matters. A distance with a threshold decides
  instead: the Wasserstein-1 distance divided by the reference standard deviation
  (>= 0.1: the distributions are a tenth of a standard deviation apart) for numeric
  columns, the Jensen-Shannon distance (base 2, >= 0.1) for categorical ones.

Each column's row says which rule decided it (`rule`) and why (`reason`). Nulls are
dropped before the tests (the missing rate is a matter of data quality). A categorical
column may use the G-test (`{"test": "g"}`, a log-likelihood ratio on the same 2 x K
table) instead of Pearson's chi-square.

Holm's family is the columns the p-value rule decides. Their p-values are always
computed, and equal scipy's; a column a distance decides reports its test statistic but
a p-value of NaN unless `config={"p_values": "all"}`: above 10,000 values per side
scipy's asymptotic KS p-value (`kstwo.sf`) takes time linear in the sample size for
moderate drifts (0.3-0.5 s per column at a million rows per side), which would be most
of the cost of a drift check that does not use it.

Speed and memory: each side may be a Parquet file, read one column at a time with
pyarrow, and the columns are compared on up to two threads (numpy's sorts and binary
searches release the GIL), so what is held at once is about two columns' data per
worker whatever the number of columns; results keep the column order. Numeric columns
are sorted once per side and the sorted arrays shared by KS, Wasserstein and PSI
(`kiln.monitor._stats`).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError, DataFileError
from kiln._extras import require
from kiln.monitor._columns import Side, open_side
from kiln.monitor._stats import categorical_stats, numeric_stats

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULTS", "TESTS", "DriftResult", "drift"]

DEFAULTS: dict[str, Any] = {
    "alpha": 0.05,
    "large_sample": 10_000,
    "thresholds": {"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2},
    "p_values": "decisive",
}
"""The global options of `drift`'s `config`, with their default values."""

TESTS: dict[str, tuple[str, ...]] = {
    "numeric": ("auto", "ks", "wasserstein", "psi"),
    "categorical": ("auto", "chi2", "g", "jensenshannon", "psi"),
}
"""The tests each kind of column accepts: "auto" follows the sample size; a p-value test
("ks", "chi2", "g") or a distance ("wasserstein", "jensenshannon", "psi") forces that
rule."""

_COLUMN_KEYS = ("kind", "test", "threshold")
_P_VALUE_TESTS = ("ks", "chi2", "g")
# The tests "auto" picks for each kind: at small samples, at large samples.
_AUTO = {"numeric": ("ks", "wasserstein"), "categorical": ("chi2", "jensenshannon")}
_P_VALUES = ("decisive", "all")

TABLE_COLUMNS = [
    "column",
    "kind",
    "test",
    "statistic",
    "p_value",
    "adjusted_p_value",
    "distance",
    "threshold",
    "drifted",
    "rule",
    "reason",
    "psi",
    "n_reference",
    "n_current",
]


def _suggest(key: str, choices: Any) -> str:
    close = difflib.get_close_matches(str(key), [str(c) for c in choices], n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def _bad_key(where: str, key: str, choices: Any) -> ConfigurationError:
    listed = ", ".join(repr(c) for c in choices)
    return ConfigurationError(
        f"Unknown key {key!r} in {where}; expected one of {listed}.{_suggest(key, choices)}"
    )


def _number(where: str, value: Any, low: float, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"{where} is {value!r}; expected a number.")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigurationError(f"{where} is {value!r}; expected a number {bound}.")
    return float(value)


@dataclass(frozen=True)
class _Options:
    alpha: float
    large_sample: int
    thresholds: dict[str, float]
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    p_values: str = "decisive"


def _options(config: dict[str, Any] | None) -> _Options:
    config = dict(config or {})
    allowed = [*DEFAULTS, "columns"]
    for key in config:
        if key not in allowed:
            raise _bad_key("the drift config", key, allowed)
    alpha = _number("config['alpha']", config.get("alpha", DEFAULTS["alpha"]), 0.0, 1.0)
    large = _number(
        "config['large_sample']", config.get("large_sample", DEFAULTS["large_sample"]), 1
    )
    thresholds = dict(DEFAULTS["thresholds"])
    given = config.get("thresholds") or {}
    if not isinstance(given, dict):
        raise ConfigurationError(
            f"config['thresholds'] is {given!r}; expected a dict such as "
            "{'wasserstein': 0.1, 'jensenshannon': 0.1, 'psi': 0.2}."
        )
    for key, value in given.items():
        if key not in thresholds:
            raise _bad_key("config['thresholds']", key, list(thresholds))
        thresholds[key] = _number(f"config['thresholds'][{key!r}]", value, 0.0)
    columns = config.get("columns") or {}
    if not isinstance(columns, dict):
        raise ConfigurationError(
            f"config['columns'] is {columns!r}; expected a dict of column name to "
            "{'kind': ..., 'test': ..., 'threshold': ...}."
        )
    for name, spec in columns.items():
        where = f"config['columns'][{name!r}]"
        if not isinstance(spec, dict):
            raise ConfigurationError(
                f"{where} is {spec!r}; expected a dict with keys from {list(_COLUMN_KEYS)}."
            )
        for key in spec:
            if key not in _COLUMN_KEYS:
                raise _bad_key(where, key, _COLUMN_KEYS)
        kind = spec.get("kind")
        if kind is not None and kind not in TESTS:
            raise ConfigurationError(
                f"{where}['kind'] is {kind!r}; expected 'numeric' or 'categorical'."
                + _suggest(kind, TESTS)
            )
        test = spec.get("test")
        if test is not None:
            choices = TESTS[kind] if kind else tuple(dict.fromkeys(sum(TESTS.values(), ())))
            if test not in choices:
                raise ConfigurationError(
                    f"{where}['test'] is {test!r}; expected one of "
                    f"{', '.join(repr(c) for c in choices)}.{_suggest(test, choices)}"
                )
        if spec.get("threshold") is not None:
            _number(f"{where}['threshold']", spec["threshold"], 0.0)
    p_values = config.get("p_values", DEFAULTS["p_values"])
    if p_values not in _P_VALUES:
        raise ConfigurationError(
            f"config['p_values'] is {p_values!r}; expected 'decisive' (p-values where the "
            "p-value rule decides) or 'all'." + _suggest(p_values, _P_VALUES)
        )
    return _Options(alpha, int(large), thresholds, columns, p_values)


def _infer_kind(name: str, series: pd.Series) -> str:
    import pandas as pd
    from pandas.api import types

    if types.is_bool_dtype(series.dtype):
        return "categorical"
    if types.is_numeric_dtype(series.dtype):
        return "numeric"
    if (
        types.is_object_dtype(series.dtype)
        or types.is_string_dtype(series.dtype)
        or isinstance(series.dtype, pd.CategoricalDtype)
    ):
        return "categorical"
    raise ConfigurationError(
        f"Column {name!r} has dtype {series.dtype}; expected a numeric, bool, string, "
        "object or category column. Give its kind with "
        f"config={{'columns': {{{name!r}: {{'kind': 'numeric'}}}}}} (or 'categorical'), "
        "or leave it out with columns=[...]."
    )


def _as_numbers(name: str, side: str, series: pd.Series) -> Any:
    import pandas as pd

    try:
        return pd.to_numeric(series, errors="raise").to_numpy(dtype="float64")
    except (TypeError, ValueError) as exc:
        raise DataFileError(
            f"Column {name!r} of the {side} data is numeric on the reference side but has "
            f"values that are not numbers ({exc}). Fix the data, or give the column "
            f"config={{'columns': {{{name!r}: {{'kind': 'categorical'}}}}}}."
        ) from None


@dataclass
class DriftResult:
    """The drift of each column between a reference and a current sample.

    Attributes:
        table: One row per column: column, kind, test (what decided), statistic and
            p_value (KS, chi-square or G; the p-value is NaN where a distance decided,
            unless config "p_values" is "all"), adjusted_p_value (Holm, across the
            columns the p-value rule decides), distance (normalised Wasserstein or
            Jensen-Shannon), threshold,
            drifted, rule ("p_value", "distance" or "skipped"), reason (a short text),
            psi, n_reference and n_current (non-null values used).
        alpha: The family-wise error rate of the p-value rule.
        large_sample: The size of the smaller side from which the distance rule decides.
    """

    table: pd.DataFrame
    alpha: float
    large_sample: int

    @property
    def drifted(self) -> bool:
        """Whether any column has drifted."""
        return bool(self.table["drifted"].any())

    @property
    def drifted_columns(self) -> list[str]:
        """The names of the columns that have drifted, in table order."""
        return [str(c) for c in self.table.loc[self.table["drifted"], "column"]]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain Python values (NaN and infinity become None).

        Returns:
            A dict with `drifted`, `drifted_columns`, `alpha`, `large_sample` and
            `columns` (one dict per table row).
        """
        rows = []
        for record in self.table.to_dict(orient="records"):
            row = {}
            for key, value in record.items():
                if hasattr(value, "item"):
                    value = value.item()
                if isinstance(value, float) and not math.isfinite(value):
                    value = None
                row[str(key)] = value
            rows.append(row)
        return {
            "drifted": self.drifted,
            "drifted_columns": self.drifted_columns,
            "alpha": self.alpha,
            "large_sample": self.large_sample,
            "columns": rows,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text (see `to_dict`).

        Args:
            indent: Indentation of the JSON text; None for one line.

        Returns:
            The JSON text.
        """
        return json.dumps(self.to_dict(), indent=indent)


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def _column_row(name: Any, ref_side: Side, cur_side: Side, options: _Options) -> dict[str, Any]:
    """Read one column of each side, compute its statistics and the rule that decides it.

    Only this column's arrays are held, and each is let go as soon as it is used, so a
    worker holds a few times one column's data at most.
    """
    import numpy as np

    ref, cur = ref_side.column(name), cur_side.column(name)
    spec = options.columns.get(name, {})
    kind = spec.get("kind") or _infer_kind(name, ref)
    test = spec.get("test") or "auto"
    if test not in TESTS[kind]:
        raise ConfigurationError(
            f"config['columns'][{name!r}]['test'] is {test!r}, which is not a test for "
            f"a {kind} column; expected one of {', '.join(map(repr, TESTS[kind]))}."
        )
    r, c = ref.dropna(), cur.dropna()
    del ref, cur
    row: dict[str, Any] = {"column": name, "kind": kind, "n_reference": len(r)}
    row["n_current"] = len(c)
    if len(r) == 0 or len(c) == 0:
        side = "reference" if len(r) == 0 else "current"
        row.update(rule="skipped", drifted=False, reason=f"no non-null values on the {side} side")
        return row
    configured = test != "auto"
    if not configured:
        small = min(len(r), len(c)) < options.large_sample
        test = _AUTO[kind][0 if small else 1]
    rule = "p_value" if test in _P_VALUE_TESTS else "distance"
    want_p = rule == "p_value" or options.p_values == "all"
    if kind == "numeric":
        u = np.sort(_as_numbers(name, "reference", r))
        del r
        v = np.sort(_as_numbers(name, "current", c))
        del c
        stats = numeric_stats(u, v, p_value=want_p, assume_sorted=True)
    else:
        p_test = test if test in _P_VALUE_TESTS else _AUTO[kind][0]
        stats = categorical_stats(r, c, test=p_test, p_value=want_p)
    threshold = spec.get("threshold")
    if threshold is None:
        threshold = options.thresholds["psi" if test == "psi" else stats.distance_name]
    row.update(
        test=test,
        statistic=stats.statistic,
        p_value=stats.p_value,
        distance=stats.psi if test == "psi" else stats.distance,
        threshold=float(threshold),
        psi=stats.psi,
        rule=rule,
        configured=configured,
    )
    return row


def _decide(rows: list[dict[str, Any]], options: _Options) -> None:
    """Holm-adjust the p-values the p-value rule decides by, then decide each and say why."""
    family = [row for row in rows if row["rule"] == "p_value"]
    for row, adj in zip(family, _holm([row["p_value"] for row in family]), strict=True):
        row["adjusted_p_value"] = adj
    for row in rows:
        if row["rule"] == "skipped":
            continue
        adj = row.get("adjusted_p_value", float("nan"))
        n = min(row["n_reference"], row["n_current"])
        configured = row.pop("configured")
        if row["rule"] == "p_value":
            row["drifted"] = adj < options.alpha
            why = f"{n:,} values on the smaller side (fewer than {options.large_sample:,})"
            sign = "<" if row["drifted"] else ">="
            decided = f"Holm-adjusted p = {adj:.3g} {sign} alpha {options.alpha}"
        else:
            row["drifted"] = bool(row["distance"] >= row["threshold"])
            why = f"{n:,} values on the smaller side (at least {options.large_sample:,})"
            sign = ">=" if row["drifted"] else "<"
            decided = f"distance {row['distance']:.3g} {sign} threshold {row['threshold']:.3g}"
        if configured:
            why = f"test {row['test']!r} configured"
        row["reason"] = f"{why}: {row['test']} {decided}"


def _progress(progress: bool | None, total: int) -> Any:
    """A transient Rich progress bar over the columns, on stderr, or None."""
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    bar = Progress(
        "drift",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    bar.add_task("columns", total=total)
    return bar


def _workers(workers: int | None) -> int:
    if workers is None:
        return min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigurationError(
            f"workers is {workers!r}; expected a whole number of threads, at least 1 "
            "(or None for up to 2)."
        )
    return workers


def _names(ref: Side, cur: Side, columns: list[str] | None, options: _Options) -> list[Any]:
    """The columns to compare, checked against both sides and the config."""
    if columns is None:
        shared = set(cur.columns)
        names = [c for c in ref.columns if c in shared]
        if not names:
            raise DataFileError(
                "The reference and current data have no column in common (reference: "
                f"{ref.columns[:10]}, current: {cur.columns[:10]}); expected the same "
                "column names on both sides. Rename the columns to match."
            )
    else:
        names = list(columns)
        for side in (ref, cur):
            present = set(side.columns)
            for name in names:
                if name not in present:
                    raise DataFileError(
                        f"Column {name!r} is missing from the {side.role} data; expected "
                        "every column in columns= on both sides."
                        f"{_suggest(name, side.columns)} Add it, or leave it out of columns=."
                    )
    for name in options.columns:
        if name not in names:
            raise ConfigurationError(
                f"config['columns'] names {name!r}, which is not a compared column; "
                f"expected one of {names[:20]}.{_suggest(name, names)}"
            )
    return names


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    config: dict[str, Any] | None = None,
    progress: bool | None = None,
    workers: int | None = None,
) -> DriftResult:
    """Compare each column of `current` with the same column of `reference`.

    See the module docstring of `kiln.monitor` for the decision rule. A Parquet file is
    read one column at a time (never the whole table), and at most `workers` columns are
    in memory at once, so wide files need no more memory than narrow ones; a CSV file is
    read whole (CSV has no column index), as is a DataFrame already in memory.

    Args:
        reference: The reference data (what the model was trained on): a pandas DataFrame
            (or anything `kiln.log_dataset` accepts: a dict of columns, a 2-D array, ...),
            or the path (str or `pathlib.Path`) of a Parquet or CSV file.
        current: The current data, of the same kinds.
        columns: The columns to compare (default: every column the two have in common).
        config: Global options `alpha` (0.05), `large_sample` (10000), `thresholds`
            ({"wasserstein": 0.1, "jensenshannon": 0.1, "psi": 0.2}) and `p_values`
            ("decisive": only where the p-value rule decides; "all": everywhere, which
            costs up to about 0.5 s per numeric column at a million rows), and
            `columns`: a dict of column name to {"kind": "numeric" | "categorical",
            "test": ..., "threshold": ...} (see `TESTS`).
        progress: Show a transient progress bar over the columns on stderr (default:
            when stderr is a terminal).
        workers: Threads comparing columns at once (default: up to 2, the cores there
            are). Results are the same, in the same order, for any number.

    Returns:
        A `DriftResult`.

    Raises:
        ConfigurationError: The config has an unknown key or a bad value (the message
            names the key), or a column's kind cannot be inferred.
        DataFileError: A side has no rows, a file is missing or unreadable, the two have
            no column in common, a column asked for is missing on one side, or a numeric
            column has values that are not numbers.
    """
    import pandas as pd

    options = _options(config)
    threads = _workers(workers)
    ref = open_side(reference, "reference")
    cur = open_side(current, "current")
    for side in (ref, cur):
        if side.num_rows == 0:
            raise DataFileError(
                f"The {side.role} data has no rows; expected at least one row per side. "
                f"Pass a non-empty {side.role} sample (check the time window or the file)."
            )
    names = _names(ref, cur, columns, options)
    # Imported once here, not by the first threads at the same time.
    require("scipy.stats", "monitor", "Drift monitoring")
    require("scipy.spatial.distance", "monitor", "Drift monitoring")

    bar = _progress(progress, len(names))
    rows: list[dict[str, Any]] = []
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = [pool.submit(_column_row, name, ref, cur, options) for name in names]
        try:
            if bar is not None:
                bar.start()
            for future in futures:  # in column order
                rows.append(future.result())
                if bar is not None:
                    bar.advance(bar.task_ids[0])
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.stop()
    _decide(rows, options)
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    table["drifted"] = table["drifted"].astype(bool)
    return DriftResult(table=table, alpha=options.alpha, large_sample=options.large_sample)
