"""The prediction log: sampled requests with their inputs, outputs and model version.

A request is in the sample when the hash of its id falls under the rate (`in_sample`),
so the same id is always in or out, whichever server answered it. Sampled rows wait in
memory and a background thread writes them, off the request path, as Parquet chunks:
artifacts `predictions/<first ms>-<last ms>-<n>.parquet` of one tracking run per server
process (experiment `kiln-serving`, tag `kiln.serving.model_uri`), so the metadata
store indexes them. `prediction_log(model_uri)` reads them back as one DataFrame.

Columns: `kiln_request_id`, `kiln_time` (a UTC timestamp), `kiln_model_version`,
`kiln_prediction`, then the model's input columns by name.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EXPERIMENT", "PredictionLog", "in_sample", "prediction_log"]

EXPERIMENT = "kiln-serving"
URI_TAG = "kiln.serving.model_uri"
_PREFIX = "predictions/"


def in_sample(request_id: str, rate: float) -> bool:
    """Whether a request id is in a sample of `rate` (0 to 1), by the sha256 of the id."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(request_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


class PredictionLog:
    """Buffers sampled predictions and writes them as Parquet chunks from a thread.

    Args:
        model_uri: The URI being served (the log is found by it).
        rate: The share of requests kept, 0 to 1.
        store: The store to write to (default: the configured one).
        flush_seconds: Longest time a row waits in memory.
        max_rows: Rows that trigger a write before `flush_seconds`.
    """

    def __init__(
        self,
        model_uri: str,
        rate: float,
        *,
        store: str | None = None,
        flush_seconds: float = 5.0,
        max_rows: int = 10_000,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ConfigurationError(
                f"The prediction log rate must be between 0 and 1; got {rate!r}."
            )
        self.model_uri = model_uri
        self.rate = rate
        self.store = store
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self._rows: list[tuple[str, int, str, Any, Any]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._client: Any = None
        self._run_id: str | None = None
        self._seq = 0
        self.written = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (nothing is written for a rate of 0)."""
        if self.rate <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="kiln-predlog", daemon=True)
        self._thread.start()

    def add(self, request_id: str, version: str, frame: Any, predictions: Any) -> None:
        """Keep a request's rows when its id is in the sample (cheap when it is not)."""
        if not in_sample(request_id, self.rate):
            return
        stamp = time.time_ns() // 1_000_000
        with self._lock:
            self._rows.append((request_id, stamp, version, frame, predictions))
            full = len(self._rows) >= self.max_rows
        if full:
            self._wake.set()

    def close(self) -> None:
        """Write what is buffered, end the log's run and stop the thread."""
        self._stop = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self._write()
        if self._client is not None and self._run_id is not None:
            self._client.end_run(self._run_id)
            self._client.flush()

    def _loop(self) -> None:
        while not self._stop:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            if self._stop:
                return
            try:
                self._write()
            except Exception:
                import logging

                logging.getLogger("kiln.serving").exception("Writing the prediction log failed")

    def _write(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows:
            return
        import pandas as pd

        parts = []
        for rid, stamp, version, frame, preds in rows:
            part = frame.reset_index(drop=True).copy()
            part.columns = [str(c) for c in part.columns]
            meta = pd.DataFrame(
                {
                    "kiln_request_id": rid,
                    "kiln_time": pd.to_datetime([stamp] * len(part), unit="ms", utc=True),
                    "kiln_model_version": version,
                    "kiln_prediction": list(preds),
                }
            )
            parts.append(pd.concat([meta, part], axis=1))
        chunk = pd.concat(parts, ignore_index=True)
        client = self._ensure_run()
        first, last = rows[0][1], rows[-1][1]
        self._seq += 1
        name = f"{_PREFIX}{first:013d}-{last:013d}-{self._seq:06d}.parquet"
        client.log_artifact(self._run_id, chunk, name=name)
        self.written += len(chunk)

    def _ensure_run(self) -> Any:
        if self._client is None:
            from kiln.tracking import TrackingClient

            self._client = TrackingClient(self.store)
            self._run_id = self._client.create_run(
                experiment=EXPERIMENT,
                name=f"serve {self.model_uri}"[:255],
                tags={URI_TAG: self.model_uri, "kiln.serving.rate": str(self.rate)},
            )
        return self._client


def _ms(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as exc:
            raise ConfigurationError(
                f"{what}={value!r} is not a time: give an ISO 8601 string such as "
                "'2026-11-22T10:00:00', a datetime, or milliseconds since the epoch."
            ) from exc
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return int(value.timestamp() * 1000)
    raise ConfigurationError(
        f"{what} must be a datetime, an ISO 8601 string or milliseconds; got "
        f"{type(value).__name__}."
    )


def prediction_log(
    model_uri: str, *, since: Any = None, until: Any = None, store: str | None = None
) -> pd.DataFrame:
    """The logged predictions of a served model URI, oldest first.

    ```python
    log = kiln.prediction_log("models:/churn@production", since="2026-11-01")
    ```

    Args:
        model_uri: The URI exactly as given to `kiln serve`.
        since: Keep rows logged at or after this time (datetime, ISO 8601 string, or ms).
        until: Keep rows logged before this time.
        store: The store to read (default: the configured one).

    Returns:
        One row per logged input row: `kiln_request_id`, `kiln_time`,
        `kiln_model_version`, `kiln_prediction` and the input columns (empty when
        nothing was logged).
    """
    import io

    import pandas as pd

    from kiln.tracking import TrackingClient

    lo, hi = _ms(since, "since"), _ms(until, "until")
    client = TrackingClient(store)
    try:
        runs = client.search_runs(
            experiment=EXPERIMENT,
            filter=f"tags.`{URI_TAG}` = '{model_uri.replace(chr(39), chr(39) * 2)}'",
        )
    except Exception as exc:
        from kiln._exceptions import ExperimentNotFoundError

        if isinstance(exc, ExperimentNotFoundError):
            runs = []
        else:
            raise
    frames = []
    for run in runs:
        for art in client.get_run(run.id).artifacts:
            if not art.path.startswith(_PREFIX):
                continue
            first, last = (int(x) for x in art.path[len(_PREFIX) :].split("-")[:2])
            if (lo is not None and last < lo) or (hi is not None and first >= hi):
                continue
            frames.append(pd.read_parquet(io.BytesIO(client.read_artifact(run.id, art.path))))
    columns = ["kiln_request_id", "kiln_time", "kiln_model_version", "kiln_prediction"]
    if not frames:
        return pd.DataFrame({c: [] for c in columns})
    log = pd.concat(frames, ignore_index=True).sort_values("kiln_time", kind="stable")
    if lo is not None:
        log = log[log["kiln_time"] >= pd.Timestamp(lo, unit="ms", tz="UTC")]
    if hi is not None:
        log = log[log["kiln_time"] < pd.Timestamp(hi, unit="ms", tz="UTC")]
    return log.reset_index(drop=True)
