"""The prediction log's writing side: sampled requests with their inputs, outputs and
model version.

A request is in the sample when the hash of its id falls under the rate (`in_sample`),
so the same id is always in or out, whichever server answered it. Sampled rows wait in
memory and a background thread writes them, off the request path, through
`kiln.tracking.PredictionLogWriter`: Parquet chunks of one tracking run per server
process, so the metadata store indexes them. The format, and the reader
`kiln.tracking.prediction_log(model_uri)`, live in `kiln.tracking`, so whatever reads
the log never imports the server; `kiln.serving.prediction_log` is the same function.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING, Any

from kiln._exceptions import ConfigurationError
from kiln.tracking import LoggedRequest, PredictionLogWriter, prediction_log

if TYPE_CHECKING:
    from collections.abc import Iterable

    import pandas as pd

__all__ = ["PredictionLog", "in_sample", "prediction_log"]


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
        self._rows: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._writer = PredictionLogWriter(model_uri, store=store, rate=rate)
        self.written = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (nothing is written for a rate of 0)."""
        if self.rate <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="kiln-predlog", daemon=True)
        self._thread.start()

    def add(
        self, request_id: str, version: str, frame: pd.DataFrame, predictions: Iterable[Any]
    ) -> None:
        """Keep a request's rows when its id is in the sample (cheap when it is not)."""
        if not in_sample(request_id, self.rate):
            return
        stamp = time.time_ns() // 1_000_000
        with self._lock:
            self._rows.append(LoggedRequest(request_id, stamp, version, frame, predictions))
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
        self._writer.close()

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
        self.written += self._writer.write(rows)
