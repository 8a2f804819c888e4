"""The drift statistics of one column: numpy and scipy, imported when called.

Numeric columns are sorted once per side; the two sorted arrays give the two-sample
Kolmogorov-Smirnov statistic, the Wasserstein-1 distance and the PSI counts (by binary
search), so no column is sorted twice. Categorical columns are counted once per side.

PSI puts a proportion of `PSI_EPSILON` (1e-4) in place of an empty bin's 0, on either
side, so that the logarithm stays finite; an empty bin on both sides adds nothing.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln._extras import require

if TYPE_CHECKING:
    import numpy as np

__all__ = ["PSI_BINS", "PSI_EPSILON", "ColumnStats", "categorical_stats", "numeric_stats"]

PSI_BINS = 10
PSI_EPSILON = 1e-4
# scipy.stats.ks_2samp(method="auto") computes the exact p-value up to this size.
_KS_EXACT_MAX = 10_000


@dataclass(frozen=True)
class ColumnStats:
    """The statistics of one column: a p-value test, a distance and the PSI."""

    test: str
    statistic: float
    p_value: float
    distance_name: str
    distance: float
    psi: float
    n_reference: int
    n_current: int


def _psi(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    import numpy as np

    ref = ref_counts / ref_counts.sum()
    cur = cur_counts / cur_counts.sum()
    both_empty = (ref == 0) & (cur == 0)
    ref = np.where(ref == 0, PSI_EPSILON, ref)[~both_empty]
    cur = np.where(cur == 0, PSI_EPSILON, cur)[~both_empty]
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_stats(reference: np.ndarray, current: np.ndarray) -> ColumnStats:
    """KS, Wasserstein-1 / reference std and PSI of two non-empty float arrays (no NaN).

    Args:
        reference: The reference values.
        current: The current values.

    Returns:
        The column's statistics: `statistic` and `p_value` equal
        `scipy.stats.ks_2samp(reference, current)`; `distance` equals
        `scipy.stats.wasserstein_distance(reference, current) / reference.std()` (0 when
        both are 0, infinite when only the standard deviation is 0).
    """
    import numpy as np

    stats = require("scipy.stats", "monitor", "Drift monitoring")
    u = np.sort(np.asarray(reference, dtype=np.float64))
    v = np.sort(np.asarray(current, dtype=np.float64))
    n1, n2 = len(u), len(v)
    # Two sorted runs: the stable sort (timsort) merges them in linear time.
    both = np.sort(np.concatenate([u, v]), kind="stable")
    cdf_u = np.searchsorted(u, both, side="right") / n1
    cdf_v = np.searchsorted(v, both, side="right") / n2
    diffs = cdf_u - cdf_v
    d = float(max(np.clip(-diffs.min(), 0, 1), diffs.max()))
    if max(n1, n2) <= _KS_EXACT_MAX:
        # The exact distribution, as scipy computes it (cheap at these sizes). Where the
        # exact computation fails, scipy falls back to the asymptotic one and warns:
        # that is its documented behaviour, not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ks_2samp(u, v)
        d, p = float(result.statistic), float(result.pvalue)
    else:
        m, n = max(n1, n2), min(n1, n2)
        en = m * n / (m + n)
        p = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))
    wasserstein = float(np.sum(np.abs(diffs[:-1]) * np.diff(both)))
    std = float(u.std())
    # A constant reference: no distance when equal, infinitely far otherwise.
    flat = 0.0 if wasserstein == 0 else float("inf")
    distance = wasserstein / std if std > 0 else flat
    # Reference-quantile bins, counted by binary search in the sorted arrays.
    edges = np.unique(np.quantile(u, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    ref_counts = np.diff(np.concatenate([[0], np.searchsorted(u, edges, "right"), [n1]]))
    cur_counts = np.diff(np.concatenate([[0], np.searchsorted(v, edges, "right"), [n2]]))
    return ColumnStats("ks", d, p, "wasserstein", distance, _psi(ref_counts, cur_counts), n1, n2)


def categorical_stats(reference: Any, current: Any) -> ColumnStats:
    """Chi-square (2 x K), Jensen-Shannon distance and PSI of two non-empty samples.

    Args:
        reference: The reference values (a pandas Series without nulls).
        current: The current values (a pandas Series without nulls).

    Returns:
        The column's statistics: `statistic` and `p_value` equal
        `scipy.stats.chi2_contingency(table, correction=False)` on the 2 x K table of
        counts (categories seen on one side only included); `distance` equals
        `scipy.spatial.distance.jensenshannon(p, q, base=2)`.
    """
    import numpy as np
    import pandas as pd

    stats = require("scipy.stats", "monitor", "Drift monitoring")
    distance_mod = require("scipy.spatial.distance", "monitor", "Drift monitoring")
    ref_counts = pd.Series(reference).value_counts(sort=False)
    cur_counts = pd.Series(current).value_counts(sort=False)
    table = pd.concat([ref_counts, cur_counts], axis=1).fillna(0).to_numpy(np.float64).T
    # A category dtype counts its unused categories too: a category seen on neither side
    # is no evidence either way (and would make the chi-square's expected count 0).
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        statistic, p = 0.0, 1.0  # one category on both sides: nothing can differ
    else:
        result = stats.chi2_contingency(table, correction=False)
        statistic, p = float(result.statistic), float(result.pvalue)
    js = float(distance_mod.jensenshannon(table[0], table[1], base=2))
    return ColumnStats(
        "chi2",
        statistic,
        p,
        "jensenshannon",
        js,
        _psi(table[0], table[1]),
        int(table[0].sum()),
        int(table[1].sum()),
    )
