"""The drift statistics of one column: numpy and scipy, imported when called.

Numeric columns are sorted once per side. The two sorted arrays are merged by one
binary search per current value into the reference (not by sorting their
concatenation), and cumulative counts over the merge give both empirical CDFs at every
value: the two-sample Kolmogorov-Smirnov statistic and the Wasserstein-1 distance come
from that one pass, the PSI counts from binary searches of the reference deciles, so no
column is sorted twice. Categorical columns are counted once per side.

The KS p-value is computed only when asked (`p_value=True`): above 10,000 values per
side scipy's asymptotic `kstwo.sf` costs time linear in the sample size for moderate
drifts (0.3-0.5 s at a million rows per side), and where a distance decides it is
not needed. When computed it is scipy's own function, so it equals scipy's.

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


def _ks_wasserstein(u: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """The KS statistic and the Wasserstein-1 distance of two sorted arrays, by one merge.

    One binary search per value of `v` places it in `u` (after equal values of `u`);
    cumulative counts over the merge give F_u - F_v at every merged value. Inside a run
    of equal values the differences are partial, but such positions are followed by a
    gap of 0 (no weight in Wasserstein) and are left out of the KS maximum. The values
    (count / n, differences, products) are the ones scipy computes, element by element,
    so both figures equal scipy's; the work is done in place to hold few arrays at once.
    """
    import numpy as np

    n1, n2 = len(u), len(v)
    at = np.searchsorted(u, v, side="right")
    at += np.arange(n2)
    from_v = np.zeros(n1 + n2, dtype=bool)
    from_v[at] = True
    both = np.empty(n1 + n2, dtype=np.float64)
    both[at] = v
    del at
    np.logical_not(from_v, out=from_v)
    both[from_v] = u
    np.logical_not(from_v, out=from_v)
    diffs = np.cumsum(from_v, dtype=np.float64)  # values of v up to here (exact integers)
    del from_v
    count_u = np.arange(1, n1 + n2 + 1, dtype=np.float64)
    count_u -= diffs
    count_u /= n1
    diffs /= n2
    np.subtract(count_u, diffs, out=diffs)  # F_u - F_v
    del count_u
    np.abs(diffs, out=diffs)
    last = np.empty(n1 + n2, dtype=bool)  # the last position of each run of equal values
    np.not_equal(both[1:], both[:-1], out=last[:-1])
    last[-1] = True
    d = float(np.max(diffs, where=last, initial=0.0))
    del last
    gaps = np.diff(both)
    del both
    gaps *= diffs[:-1]
    return d, float(np.sum(gaps))


def numeric_stats(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    p_value: bool = True,
    assume_sorted: bool = False,
) -> ColumnStats:
    """KS, Wasserstein-1 / reference std and PSI of two non-empty float arrays (no NaN).

    Args:
        reference: The reference values.
        current: The current values.
        p_value: Compute the KS p-value (NaN otherwise). Above 10,000 values scipy's
            asymptotic p-value (`scipy.stats.kstwo.sf`) takes time linear in the sample
            size for moderate drifts (about 0.5 s at a million rows), so it is computed
            only where it decides.
        assume_sorted: The arrays are already sorted (float64): they are used as given.

    Returns:
        The column's statistics: `statistic` and `p_value` equal
        `scipy.stats.ks_2samp(reference, current)`; `distance` equals
        `scipy.stats.wasserstein_distance(reference, current) / reference.std()` (0 when
        both are 0, infinite when only the standard deviation is 0).
    """
    import numpy as np

    stats = require("scipy.stats", "monitor", "Drift monitoring")
    if assume_sorted:
        u, v = reference, current
    else:
        u = np.sort(np.asarray(reference, dtype=np.float64))
        v = np.sort(np.asarray(current, dtype=np.float64))
    n1, n2 = len(u), len(v)
    d, wasserstein = _ks_wasserstein(u, v)
    p = float("nan")
    if p_value and max(n1, n2) <= _KS_EXACT_MAX:
        # The exact distribution, as scipy computes it (cheap at these sizes). Where the
        # exact computation fails, scipy falls back to the asymptotic one and warns:
        # that is its documented behaviour, not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = stats.ks_2samp(u, v)
        d, p = float(result.statistic), float(result.pvalue)
    elif p_value:
        m, n = max(n1, n2), min(n1, n2)
        en = m * n / (m + n)
        p = float(np.clip(stats.kstwo.sf(d, np.round(en)), 0, 1))
    std = float(u.std())
    # A constant reference: no distance when equal, infinitely far otherwise.
    flat = 0.0 if wasserstein == 0 else float("inf")
    distance = wasserstein / std if std > 0 else flat
    # Reference-quantile bins, counted by binary search in the sorted arrays.
    edges = np.unique(np.quantile(u, np.linspace(0, 1, PSI_BINS + 1)[1:-1]))
    ref_counts = np.diff(np.concatenate([[0], np.searchsorted(u, edges, "right"), [n1]]))
    cur_counts = np.diff(np.concatenate([[0], np.searchsorted(v, edges, "right"), [n2]]))
    return ColumnStats("ks", d, p, "wasserstein", distance, _psi(ref_counts, cur_counts), n1, n2)


def categorical_stats(
    reference: Any, current: Any, *, test: str = "chi2", p_value: bool = True
) -> ColumnStats:
    """Chi-square or G-test (2 x K), Jensen-Shannon distance and PSI of two samples.

    Args:
        reference: The reference values (a pandas Series without nulls, not empty).
        current: The current values (a pandas Series without nulls, not empty).
        test: "chi2" (Pearson's chi-square) or "g" (the G-test, a log-likelihood ratio).
        p_value: Report the test's p-value (NaN otherwise; the statistic is reported
            either way).

    Returns:
        The column's statistics: `statistic` and `p_value` equal
        `scipy.stats.chi2_contingency(table, correction=False)` on the 2 x K table of
        counts (categories seen on one side only included), with
        `lambda_="log-likelihood"` for the G-test; `distance` equals
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
        lambda_ = "log-likelihood" if test == "g" else None
        result = stats.chi2_contingency(table, correction=False, lambda_=lambda_)
        statistic, p = float(result.statistic), float(result.pvalue)
    js = float(distance_mod.jensenshannon(table[0], table[1], base=2))
    return ColumnStats(
        test,
        statistic,
        p if p_value else float("nan"),
        "jensenshannon",
        js,
        _psi(table[0], table[1]),
        int(table[0].sum()),
        int(table[1].sum()),
    )
