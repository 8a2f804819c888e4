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

__all__ = ["MAX_POINTS", "Series", "downsample"]

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


# SQLite: buckets [a, b) of steps from a recursive CTE; per bucket one index range scan
# for the minimum and one for the maximum. SQLite gives a bare column (`step`) the value
# of the row that holds the query's single min() or max(), so each scan also says where
# the extreme was logged; the value comes through the text to 16 significant digits.
_SQLITE = """
WITH RECURSIVE r AS (
  SELECT min(step) AS lo, max(step) + 1 - min(step) AS span, count(*) AS n
  FROM metrics WHERE run_id = :run AND "key" = :key
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


def _generic(conn: Any, run_id: str, key: str, points: int) -> Series:
    """Other databases (PostgreSQL): each bucket's extremes by a window function."""
    from sqlalchemy import Integer, cast, func, literal, or_, select

    from kiln.store import schema as s

    m = s.metrics
    mine = (m.c.run_id == run_id, m.c.key == key)
    r = (
        select(
            func.min(m.c.step).label("lo"),
            (func.max(m.c.step) + 1 - func.min(m.c.step)).label("span"),
            func.count().label("n"),
        )
        .where(*mine)
        .cte("r")
    )
    bucket = cast(func.floor((m.c.step - r.c.lo) * literal(float(points)) / r.c.span), Integer)
    ranked = (
        select(
            m.c.step,
            m.c.value,
            r.c.n,
            func.row_number()
            .over(partition_by=bucket, order_by=(m.c.value, m.c.step))
            .label("low"),
            func.row_number()
            .over(partition_by=bucket, order_by=(m.c.value.desc(), m.c.step))
            .label("high"),
        )
        .select_from(m.join(r, literal(True)))
        .where(*mine)
        .subquery()
    )
    rows = conn.execute(
        select(ranked.c.step, ranked.c.value, ranked.c.n)
        .where(or_(ranked.c.low == 1, ranked.c.high == 1))
        .order_by(ranked.c.step, ranked.c.value)
    ).all()
    if not rows:
        return Series(key, 0)
    return Series(
        key, int(rows[0][2]), [int(row[0]) for row in rows], [float(row[1]) for row in rows]
    )
