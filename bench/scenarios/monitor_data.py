"""m. The drift benchmark's data: seeded Parquet files, written one row group at a time.

22 columns per side, as issue 16 specifies: 10 normal(0, 1), 5 lognormal(0, 0.5), 5
uniform(0, 1), a 10-category column with uniform shares and one with Zipf shares
(exponent 1.5). The current side has drift injected exactly so: the means of normal0,
normal1, lognormal0, uniform0 and uniform1 shifted by +0.5 of their standard deviation,
and category c0 of cat_uniform raised from 10% to 30% (the other nine share 70%).
The wide case repeats the numeric pattern to `columns` numeric columns (every 22nd of
them drifted the same way) with the two categoricals last.

Usage: monitor_data.py OUTDIR ROWS [COLUMNS]    (numpy and pyarrow: kiln's env)
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

CATS = np.array([f"c{k}" for k in range(10)])
ZIPF = 1 / np.arange(1, 11) ** 1.5
ZIPF /= ZIPF.sum()
SD = {
    "normal": 1.0,
    "lognormal": math.sqrt((math.exp(0.25) - 1) * math.exp(0.25)),
    "uniform": math.sqrt(1 / 12),
}
NUMERIC = [f"normal{i}" for i in range(10)] + [f"lognormal{i}" for i in range(5)]
NUMERIC += [f"uniform{i}" for i in range(5)]
DRIFTED_NUMERIC = ("normal0", "normal1", "lognormal0", "uniform0", "uniform1")
DRIFTED = [*DRIFTED_NUMERIC, "cat_uniform"]
ROW_GROUP = 50_000


def names(columns: int = 22) -> list[str]:
    """The column names of a file with `columns` columns (22: the issue's set)."""
    if columns == 22:
        return [*NUMERIC, "cat_uniform", "cat_zipf"]
    numeric = [f"{NUMERIC[i % 20]}_{i // 20}" for i in range(columns - 2)]
    return [*numeric, "cat_uniform", "cat_zipf"]


def drifted(columns: int = 22) -> list[str]:
    """The columns with drift injected, in file order."""
    return [n for n in names(columns) if n.split("_")[0] in DRIFTED_NUMERIC or n == "cat_uniform"]


def _column(name: str, n: int, rng: np.random.Generator, current: bool) -> pa.Array:
    base = name.split("_")[0] if not name.startswith("cat_") else name
    if base == "cat_uniform":
        p = np.array([0.3] + [0.7 / 9] * 9) if current else np.full(10, 0.1)
        return pa.array(CATS[rng.choice(10, n, p=p)])
    if base == "cat_zipf":
        return pa.array(CATS[rng.choice(10, n, p=ZIPF)])
    kind = base.rstrip("0123456789")
    if kind == "normal":
        values = rng.normal(0, 1, n)
    elif kind == "lognormal":
        values = rng.lognormal(0, 0.5, n)
    else:
        values = rng.uniform(0, 1, n)
    if current and base in DRIFTED_NUMERIC:
        values += 0.5 * SD[kind]
    return pa.array(values)


def write(path: str, rows: int, columns: int, *, current: bool, seed: int) -> None:
    """One side's Parquet file, `ROW_GROUP` rows at a time (bounded memory)."""
    rng = np.random.default_rng([seed, rows, columns, int(current)])
    cols = names(columns)
    writer = None
    for start in range(0, rows, ROW_GROUP):
        n = min(ROW_GROUP, rows - start)
        batch = pa.table({c: _column(c, n, rng, current) for c in cols})
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema)
        writer.write_table(batch)
    assert writer is not None
    writer.close()


if __name__ == "__main__":
    import json
    import os
    import sys

    out, rows = sys.argv[1], int(sys.argv[2])
    columns = int(sys.argv[3]) if len(sys.argv) > 3 else 22
    paths = {}
    for side, current in (("reference", False), ("current", True)):
        paths[side] = os.path.join(out, f"{side}-{rows}x{columns}.parquet")
        write(paths[side], rows, columns, current=current, seed=16)
    print(json.dumps({**paths, "drifted": drifted(columns)}))
