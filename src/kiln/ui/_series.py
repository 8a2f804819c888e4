"""A metric's history, downsampled in the database so a long series charts at once.

A run that logged 1,000,000 values of a loss is drawn from at most about `2 * points`
of them: the steps are cut into `points` buckets of equal width, and each bucket keeps
its smallest and its largest value (each at the step where it was logged). A single
spike stays visible, which an average or a stride would hide. One SQL statement reads
it: on SQLite each bucket is an index range scan (no sort of the series), elsewhere a
window function picks each bucket's extremes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_POINTS", "Series", "downsample", "keys_with_history"]

MAX_POINTS = 5000
"""The most buckets a request may ask for (each gives at most two points)."""


@dataclass(frozen=True)
class Series:
    """A metric's (downsampled) history: `steps` and `values` in step order.

    Attributes:
        key: The metric's key.
        total: How many values the run logged for it.
        steps: The steps of the points kept.
        values: Their values.
    """

    key: str
    total: int
    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    @property
    def downsampled(self) -> bool:
        """Whether some logged values were left out."""
        return len(self.steps) < self.total

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "key": self.key,
            "total": self.total,
            "points": len(self.steps),
            "downsampled": self.downsampled,
            "step": self.steps,
            "value": self.values,
        }


# SQLite: buckets [a, b) of steps from a recursive CTE (the first and last step are two
# index searches, the count an index-only scan); per bucket one index range scan
# for the minimum and one for the maximum. SQLite gives a bare column (`step`) the value
# of the row that holds the query's single min() or max(), so each scan also says where
# the extreme was logged; the value comes through the text to 16 significant digits.
_SQLITE = """
WITH RECURSIVE r AS (
  SELECT lo, hi + 1 - lo AS span, n FROM (SELECT
    (SELECT step FROM metrics WHERE run_id = :run AND "key" = :key ORDER BY step LIMIT 1) AS lo,
    (SELECT step FROM metrics WHERE run_id = :run AND "key" = :key ORDER BY step DESC LIMIT 1)
      AS hi,
    (SELECT count(*) FROM metrics WHERE run_id = :run AND "key" = :key) AS n)
),
k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i + 1 < :buckets),
e AS (
  SELECT lo + CAST(span * 1.0 * i / :buckets AS INTEGER) AS a,
         lo + CAST(span * 1.0 * (i + 1) / :buckets AS INTEGER) AS b, n
  FROM k, r WHERE r.n > 0
)
SELECT n,
  (SELECT printf('%d %.17g', step, min(value)) FROM metrics
   WHERE run_id = :run AND "key" = :key AND step >= a AND step < b),
  (SELECT printf('%d %.17g', step, max(value)) FROM metrics
   WHERE run_id = :run AND "key" = :key AND step >= a AND step < b)
FROM e WHERE a < b
"""


def downsample(store: Any, run_id: str, key: str, points: int = 1000) -> Series:
    """The history of metric `key` of run `run_id` in at most about `2 * points` points.

    Args:
        store: A `kiln.store` Store (a TrackingClient's `.store`).
        run_id: The run's full id.
        key: The metric's key.
        points: How many buckets the steps are cut into (1 to `MAX_POINTS`).

    Returns:
        The points kept, in step order, and how many values were logged.
    """
    points = max(1, min(int(points), MAX_POINTS))
    with store.read() as conn:
        if store.dialect == "sqlite":
            from sqlalchemy import text

            rows = conn.execute(text(_SQLITE), {"run": run_id, "key": key, "buckets": points}).all()
            return _from_sqlite(key, rows)
        return _generic(conn, run_id, key, points)


def _from_sqlite(key: str, rows: list[Any]) -> Series:
    if not rows:
        return Series(key, 0)
    kept: dict[int, float] = {}
    steps: list[int] = []
    values: list[float] = []
    for _n, low, high in rows:
        if low is None:
            continue
        pair = [_point(low), _point(high)]
        pair.sort()
        for step, value in pair if pair[0] != pair[1] else pair[:1]:
            if kept.get(step) != value:
                kept[step] = value
                steps.append(step)
                values.append(value)
    return Series(key, int(rows[0][0]), steps, values)


def _point(text: str) -> tuple[int, float]:
    step, value = text.split(" ", 1)
    return int(step), float(value)


# Other databases (PostgreSQL): the series' span first, then each bucket's extremes picked
# by window functions over integer buckets. Two statements, not one: with the span in a
# CTE, a planner whose statistics say "one row" (a table never analyzed) re-ran the
# span's aggregate for every point, which took minutes at 200,000 points.
_SPAN = """
SELECT min(step), max(step) + 1 - min(step), count(*)
FROM metrics WHERE run_id = :run AND "key" = :key
"""
_GENERIC = """
SELECT step, value FROM (
  SELECT step, value,
         row_number() OVER (PARTITION BY bucket ORDER BY value, step) AS low,
         row_number() OVER (PARTITION BY bucket ORDER BY value DESC, step) AS high
  FROM (
    SELECT step, value, ((step - :lo) * :buckets) / :span AS bucket
    FROM metrics WHERE run_id = :run AND "key" = :key
  ) AS b
) AS k
WHERE low = 1 OR high = 1 ORDER BY step, value
"""


def _generic(conn: Any, run_id: str, key: str, points: int) -> Series:
    """Other databases (PostgreSQL): each bucket's extremes by a window function."""
    from sqlalchemy import text

    lo, span, n = conn.execute(text(_SPAN), {"run": run_id, "key": key}).one()
    if not n:
        return Series(key, 0)
    params = {"run": run_id, "key": key, "lo": int(lo), "span": int(span), "buckets": points}
    rows = conn.execute(text(_GENERIC), params).all()
    return Series(key, int(n), [int(row[0]) for row in rows], [float(row[1]) for row in rows])


def keys_with_history(store: Any, run_id: str) -> set[str]:
    """The metrics of run `run_id` that have more than one value: those a chart is for.

    Per key one index search for its second value, however long the history: counting
    every value instead took a second for a run with 1,000,000 of them.
    """
    from sqlalchemy import text

    with store.read() as conn:
        rows = conn.execute(
            text(
                'SELECT k."key" FROM latest_metrics k WHERE k.run_id = :run AND ('
                '  SELECT m.id FROM metrics m WHERE m.run_id = :run AND m."key" = k."key"'
                "  LIMIT 1 OFFSET 1"
                ") IS NOT NULL"
            ),
            {"run": run_id},
        ).all()
    return {str(key) for (key,) in rows}
