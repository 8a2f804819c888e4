"""m. The floor: plain numpy and pyarrow, no tool, one thread.

Timed, per column: read it from both Parquet files with pyarrow, then for a numeric
column sort each side once, merge by sorting the two sorted runs together, the two
empirical CDFs by binary search (as scipy does), the KS statistic and the Wasserstein-1
distance over the merged values, divided by the reference standard deviation; for a
categorical column the counts per category (pyarrow) and the Jensen-Shannon distance.
A column has drifted at a distance of 0.1 or more.

Usage: numpy_monitor.py WORKDIR REFERENCE CURRENT
"""

import sys
import time

t_start = time.perf_counter()
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from _child import emit  # noqa: E402


def numeric(a: np.ndarray, b: np.ndarray) -> float:
    u, v = np.sort(a), np.sort(b)
    both = np.sort(np.concatenate([u, v]))
    diffs = np.searchsorted(u, both, "right") / len(u) - np.searchsorted(v, both, "right") / len(v)
    ks = float(np.abs(diffs).max())
    wasserstein = float(np.sum(np.abs(diffs[:-1]) * np.diff(both)))
    assert 0 <= ks <= 1
    return wasserstein / float(u.std())


def categorical(a: pa.ChunkedArray, b: pa.ChunkedArray) -> float:
    counts: dict[str, list[float]] = {}
    for side, column in enumerate((a, b)):
        for item in pc.value_counts(column).to_pylist():
            counts.setdefault(item["values"], [0.0, 0.0])[side] = item["counts"]
    table = np.array(list(counts.values())).T
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    m = (p + q) / 2
    kl = lambda x: np.sum(np.where(x > 0, x * np.log2(np.where(x > 0, x, 1) / m), 0.0))  # noqa: E731
    return float(np.sqrt((kl(p) + kl(q)) / 2))


t_setup = time.perf_counter()
ref, cur = pq.ParquetFile(sys.argv[2]), pq.ParquetFile(sys.argv[3])
drifted = []
for name in ref.schema_arrow.names:
    a, b = ref.read(columns=[name]).column(0), cur.read(columns=[name]).column(0)
    if pa.types.is_floating(a.type):
        distance = numeric(a.to_numpy(), b.to_numpy())
    else:
        distance = categorical(a, b)
    if distance >= 0.1:
        drifted.append(name)
t_end = time.perf_counter()
emit(seconds=t_end - t_setup, setup=t_setup - t_start, drifted=drifted)
