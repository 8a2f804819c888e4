"""The runs table's view: its query-string state, columns, sort links and cells.

Everything a reader chose (experiment, filter, order, page, page size, columns, child
runs) lives in the query string, so a view is a link to share. Columns are written as
the filter language names them: `params.alpha`, `metrics.acc`, `tags.note`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from starlette.datastructures import QueryParams

    from kiln.tracking import Run

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Column",
    "RunsView",
    "cell",
    "default_columns",
    "field_ref",
    "parse_columns",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*(\.[A-Za-z_][A-Za-z0-9_\-]*)*")
_KINDS = ("params", "metrics", "tags")
# kiln's own bookkeeping, left out of the default columns (still choosable).
_OWN = ("kiln.", "system/")


@dataclass(frozen=True)
class Column:
    """A chosen column: `kind` params, metrics or tags, and the key."""

    kind: str
    key: str

    @property
    def name(self) -> str:
        """As the URL writes it: `metrics.acc`."""
        return f"{self.kind}.{self.key}"

    @property
    def ref(self) -> str:
        """As the filter language writes it (key back-quoted when it must be)."""
        return field_ref(self.kind, self.key)


def field_ref(kind: str, key: str) -> str:
    """`metrics.acc`, or ``metrics.`val loss` `` when the key needs quoting."""
    if _PLAIN.fullmatch(key):
        return f"{kind}.{key}"
    return f"{kind}.`{key}`"


def parse_columns(values: list[str]) -> list[Column] | None:
    """Columns from `?columns=a,b` (repeated or comma-separated); None when not given."""
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        return None
    out: list[Column] = []
    for name in names:
        kind, _, key = name.partition(".")
        column = Column(kind, key.strip("`"))
        if kind in _KINDS and column.key and column not in out:
            out.append(column)
    return out


def default_columns(runs: list[Run], n_params: int = 5, n_metrics: int = 6) -> list[Column]:
    """The params and metrics most of the page's runs have (kiln's own keys left out)."""
    params = Counter(k for r in runs for k in r.params)
    metrics = Counter(k for r in runs for k in r.metrics if not k.startswith(_OWN))
    return [Column("params", k) for k, _ in _top(params, n_params)] + [
        Column("metrics", k) for k, _ in _top(metrics, n_metrics)
    ]


def _top(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


def available_columns(runs: list[Run]) -> list[Column]:
    """Every key the page's runs have, params then metrics then tags, sorted."""
    out: list[Column] = []
    for kind in _KINDS:
        keys = sorted({k for r in runs for k in getattr(r, kind)})
        out.extend(Column(kind, k) for k in keys)
    return out


def cell(run: Run, column: Column) -> Any:
    """The run's value in `column` (None when it has none)."""
    return getattr(run, column.kind).get(column.key)


@dataclass
class RunsView:
    """The state of a runs table, read from (and written back to) the query string."""

    experiment: str = ""
    filter: str = ""
    order: str = ""
    after: str = ""
    limit: int = DEFAULT_LIMIT
    children: bool = False
    columns: list[Column] | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def from_query(cls, query: QueryParams) -> RunsView:
        """The view a request's query string asks for (a bad page size is said, not fatal)."""
        errors = []
        raw = query.get("limit", "")
        limit = DEFAULT_LIMIT
        if raw:
            try:
                limit = int(raw)
                if not 1 <= limit <= MAX_LIMIT:
                    raise ValueError
            except ValueError:
                errors.append(f"limit is a whole number from 1 to {MAX_LIMIT}; got {raw!r}.")
                limit = DEFAULT_LIMIT
        return cls(
            experiment=query.get("experiment", "").strip(),
            filter=query.get("filter", "").strip(),
            order=query.get("order", "").strip(),
            after=query.get("after", "").strip(),
            limit=limit,
            children=query.get("children", "") in ("1", "true", "on", "yes"),
            columns=parse_columns(query.getlist("columns")),
            errors=errors,
        )

    def params(self, **changes: Any) -> dict[str, str]:
        """The query string's items (empty ones left out), with `changes` applied."""
        state: dict[str, Any] = {
            "experiment": self.experiment,
            "filter": self.filter,
            "order": self.order,
            "columns": ",".join(c.name for c in self.columns) if self.columns is not None else "",
            "children": "1" if self.children else "",
            "limit": str(self.limit) if self.limit != DEFAULT_LIMIT else "",
            "after": self.after,
        }
        state.update(changes)
        return {k: str(v) for k, v in state.items() if v not in (None, "")}

    def link(self, path: str = "/runs", **changes: Any) -> str:
        """A URL of this view with `changes` (a new filter or order starts at page 1)."""
        if {"filter", "order", "experiment", "children", "limit"} & changes.keys():
            changes.setdefault("after", "")
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path

    def sort_link(self, ref: str) -> tuple[str, str]:
        """The link a column header sorts by (best first, then the other way) and the
        arrow that marks the current order ('' when the table is not sorted by it)."""
        if self.order == f"{ref} desc":
            return self.link(order=f"{ref} asc"), "▼"
        if self.order in (ref, f"{ref} asc"):
            return self.link(order=f"{ref} desc"), "▲"
        return self.link(order=f"{ref} desc"), ""
