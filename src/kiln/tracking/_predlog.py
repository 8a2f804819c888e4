"""The prediction log's format, written by a server and read back here.

A server (`kiln serve`) keeps a sample of its requests; each server process writes them
to one tracking run of the experiment `kiln-serving`, tagged `kiln.serving.model_uri`
with the URI it serves, as Parquet artifacts `predictions/<first ms>-<last ms>-<n>.parquet`
(the times are those of the first and last request in the chunk, in milliseconds since
the epoch, zero-padded to 13 digits; `n` counts the chunks of the run). Each chunk has
the columns `kiln_request_id`, `kiln_time` (a UTC timestamp), `kiln_model_version`,
`kiln_prediction`, then the model's input columns by name.

Serving buffers and samples (`kiln.serving`), and writes each chunk through
`PredictionLogWriter`; everything else reads with `prediction_log`, so nothing that
reads the log needs the server. Both sides share the names below, so the format is
written down once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ExperimentNotFoundError

if TYPE_CHECKING:
    import pandas as pd

    from kiln.tracking._client import TrackingClient

__all__ = [
    "COLUMNS",
    "EXPERIMENT",
    "PREFIX",
    "RATE_TAG",
    "URI_TAG",
    "LoggedRequest",
    "PredictionLogWriter",
    "chunk_name",
    "chunk_span",
    "prediction_log",
]

EXPERIMENT = "kiln-serving"
URI_TAG = "kiln.serving.model_uri"
RATE_TAG = "kiln.serving.rate"
PREFIX = "predictions/"
COLUMNS = ("kiln_request_id", "kiln_time", "kiln_model_version", "kiln_prediction")


@dataclass(frozen=True)
class LoggedRequest:
    """One sampled request: what `PredictionLogWriter.write` takes.

    Attributes:
        request_id: The request's id (`x-request-id`, or the V2 body's `id`).
        time_ms: When it was answered, in milliseconds since the epoch.
        model_version: The version that answered it.
        inputs: Its validated input rows (a DataFrame).
        predictions: One prediction per input row.
    """

    request_id: str
    time_ms: int
    model_version: str
    inputs: pd.DataFrame
    predictions: Iterable[Any]


def chunk_name(first_ms: int, last_ms: int, seq: int) -> str:
    """The artifact path of a run's `seq`-th chunk, spanning `first_ms` to `last_ms`."""
    return f"{PREFIX}{first_ms:013d}-{last_ms:013d}-{seq:06d}.parquet"


def chunk_span(path: str) -> tuple[int, int] | None:
    """(first ms, last ms) of a chunk's artifact path; None for any other artifact."""
    if not path.startswith(PREFIX):
        return None
    parts = path[len(PREFIX) :].split("-")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


class PredictionLogWriter:
    """Writes chunks of a served model's sampled requests to one tracking run.

    The run (experiment `kiln-serving`, tagged with the model URI) is created with the
    first chunk, so a server that logs nothing leaves no run behind.

    Args:
        model_uri: The URI being served; `prediction_log(model_uri)` finds the chunks.
        store: The store to write to (default: the configured one).
        rate: The share of requests sampled, recorded as a tag.
    """

    def __init__(self, model_uri: str, *, store: str | None = None, rate: float = 1.0) -> None:
        self.model_uri = model_uri
        self.store = store
        self.rate = rate
        self.run_id: str | None = None
        self._client: TrackingClient | None = None
        self._seq = 0

    def write(self, requests: Sequence[LoggedRequest]) -> int:
        """Write the requests (oldest first) as one chunk; return the rows written."""
        if not requests:
            return 0
        import pandas as pd

        parts = []
        for req in requests:
            part = req.inputs.reset_index(drop=True).copy()
            part.columns = [str(c) for c in part.columns]
            meta = pd.DataFrame(
                {
                    COLUMNS[0]: req.request_id,
                    COLUMNS[1]: pd.to_datetime([req.time_ms] * len(part), unit="ms", utc=True),
                    COLUMNS[2]: req.model_version,
                    COLUMNS[3]: list(req.predictions),
                }
            )
            parts.append(pd.concat([meta, part], axis=1))
        chunk = pd.concat(parts, ignore_index=True)
        client, run_id = self._run()
        self._seq += 1
        name = chunk_name(requests[0].time_ms, requests[-1].time_ms, self._seq)
        client.log_artifact(run_id, chunk, name=name)
        return len(chunk)

    def close(self) -> None:
        """End the run (when one was started) and wait until everything is written."""
        if self._client is not None and self.run_id is not None:
            self._client.end_run(self.run_id)
            self._client.flush()

    def _run(self) -> tuple[TrackingClient, str]:
        if self._client is None or self.run_id is None:
            from kiln.tracking._client import TrackingClient

            self._client = TrackingClient(self.store)
            self.run_id = self._client.create_run(
                experiment=EXPERIMENT,
                name=f"serve {self.model_uri}"[:255],
                tags={URI_TAG: self.model_uri, RATE_TAG: str(self.rate)},
            )
        return self._client, self.run_id


def _ms(value: Any, what: str) -> int | None:
    """A time as `kiln.monitor` reads it (ISO 8601, "7d" ago, datetime, ms), in ms."""
    from kiln._times import parse_time

    when = parse_time(value, what)
    return None if when is None else int(when.timestamp() * 1000)


def prediction_log(
    model_uri: str, *, since: Any = None, until: Any = None, store: str | None = None
) -> pd.DataFrame:
    """The logged predictions of a served model URI, oldest first.

    ```python
    log = kiln.prediction_log("models:/churn@production", since="2026-11-01")
    ```

    Args:
        model_uri: The URI exactly as given to `kiln serve`.
        since: Keep rows logged at or after this time: a datetime, an ISO 8601 string,
            milliseconds since the epoch, or a duration ago such as "7d" or "12h".
        until: Keep rows logged before this time (the same forms).
        store: The store to read (default: the one `kiln.configure` chose, else the
            default store).

    Returns:
        One row per logged input row: `kiln_request_id`, `kiln_time`,
        `kiln_model_version`, `kiln_prediction` and the input columns (empty when
        nothing was logged).

    Raises:
        ConfigurationError: `since` or `until` is not a time.
    """
    import io

    import pandas as pd

    from kiln.tracking._client import TrackingClient

    lo, hi = _ms(since, "since"), _ms(until, "until")
    if store is None:
        from kiln.tracking._fluent import configured_store

        store = configured_store()  # what kiln.configure() chose, else the default
    client = TrackingClient(store)
    quoted = model_uri.replace("'", "''")
    try:
        runs = client.search_runs(experiment=EXPERIMENT, filter=f"tags.`{URI_TAG}` = '{quoted}'")
    except ExperimentNotFoundError:
        runs = []
    frames = []
    for run in runs:
        for art in client.get_run(run.id).artifacts:
            span = chunk_span(art.path)
            if span is None:
                continue
            first, last = span
            if (lo is not None and last < lo) or (hi is not None and first >= hi):
                continue
            frames.append(pd.read_parquet(io.BytesIO(client.read_artifact(run.id, art.path))))
    if not frames:
        return pd.DataFrame({c: [] for c in COLUMNS})
    log = pd.concat(frames, ignore_index=True).sort_values(COLUMNS[1], kind="stable")
    if lo is not None:
        log = log[log[COLUMNS[1]] >= pd.Timestamp(lo, unit="ms", tz="UTC")]
    if hi is not None:
        log = log[log[COLUMNS[1]] < pd.Timestamp(hi, unit="ms", tz="UTC")]
    return log.reset_index(drop=True)
