"""`kiln.record` in a notebook, `kiln.notebook_results` after it ran.

A recorded value is an artifact of the run under `results/`: JSON for numbers, strings,
lists and dicts (numpy scalars and arrays are converted), Parquet for a DataFrame.
"""

from __future__ import annotations

import json
import math
from typing import Any

from kiln._exceptions import TrackingError

__all__ = ["notebook_results", "record"]

_PREFIX = "results/"


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def record(name: str, value: Any) -> None:
    """Store a value with the active run (in a notebook run by kiln: that run).

    `kiln.notebook_results(run_id)[name]` reads it back.

    Args:
        name: A name made of letters, digits, `_`, `-` and `.`.
        value: A number, string, bool, None, list, dict, numpy value or pandas DataFrame.

    Raises:
        TrackingError: A bad name or a value that cannot be stored.
        NoActiveRunError: No run is active.
    """
    from kiln.tracking import active_run, start_run

    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "_-." for c in name):
        raise TrackingError(
            f"A recorded value's name is letters, digits, '_', '-' and '.'; got {name!r}."
        )
    run = active_run()
    if run is None:  # as the logging calls do: a run in the default experiment
        run = start_run()
    if type(value).__module__.startswith("pandas") and type(value).__name__ == "DataFrame":
        run.client.log_artifact(run.id, value, f"{_PREFIX}{name}.parquet")
        return
    try:
        text = json.dumps(_plain(value), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TrackingError(
            f"kiln.record({name!r}, ...) cannot store a {type(value).__name__}: expected a "
            "number, string, bool, None, list, dict, numpy value or pandas DataFrame. "
            "Save other objects with kiln.log_artifact."
        ) from exc
    run.client.log_text(run.id, text, f"{_PREFIX}{name}.json")


def notebook_results(run_id: str, *, store: str | None = None) -> dict[str, Any]:
    """The values a run recorded with `kiln.record`, by name.

    Args:
        run_id: The run id (or a unique prefix), such as `NotebookResult.run_id`.
        store: The store URL or path (default: as `kiln.get_client()`).
    """
    from kiln.notebooks._run import _client

    client = _client(store)
    run = client.get_run(run_id)
    found: dict[str, Any] = {}
    for art in sorted(run.artifacts, key=lambda a: a.path):
        if not art.path.startswith(_PREFIX):
            continue
        stem, _, ext = art.path[len(_PREFIX) :].rpartition(".")
        data = client.read_artifact(run.id, art.path)
        if ext == "json":
            found[stem] = json.loads(data)
        elif ext == "parquet":
            import io

            import pandas as pd

            found[stem] = pd.read_parquet(io.BytesIO(data))
    return found
