"""Which runs a listing shows: top-level runs by default, child runs on request.

Pipeline steps, sweep trials and grid-search candidates are child runs; listings
(`kiln runs list`, `kiln.runs()`) show the runs people started, with their steps'
metrics rolled up (`TrackingClient.with_step_metrics`), unless asked for every run. A
filter that names `parent_id` asks for child runs itself and is left alone.
"""

from __future__ import annotations

import re

__all__ = ["scoped_filter"]

_NAMES_PARENT = re.compile(r"\bparent_id\b", re.IGNORECASE)


def scoped_filter(filter: str | None, children: bool) -> str | None:
    """`filter`, limited to top-level runs unless `children` or it names `parent_id`."""
    if children or (filter and _NAMES_PARENT.search(filter)):
        return filter
    if not filter or not filter.strip():
        return "parent_id is null"
    from kiln.tracking._filter import parse_filter

    parse_filter(filter)  # a mistake is reported at its position in the user's own text
    return f"({filter}) and parent_id is null"
