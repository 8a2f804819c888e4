"""Adaptive micro-batching with a bounded queue.

Requests are validated one by one on the event loop; their frames wait here and a single
task hands them to the model in one vectorised predict, on a worker thread so the loop
keeps reading requests meanwhile (a lone request to a model that predicts in under
10 ms is predicted on the loop). It waits for more requests (at most `max_wait`) only
while requests are arriving concurrently: a lone client is answered at once. Past
`max_queue` waiting requests, `submit` raises `Overloaded` (the server answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    from kiln.serving._runtime import Entry

Outcome = tuple[Any, Any]
"""(predictions, probabilities or None) for one request."""
Predict = Callable[["Entry", "pd.DataFrame", bool], Outcome]
"""`predict(entry, frame, proba) -> (predictions, probabilities or None)`."""
Item = tuple["Entry", "pd.DataFrame", bool, "asyncio.Future[Outcome]"]
"""A waiting request: its entry, validated frame, whether it wants probabilities, and
the future its answer is set on."""

__all__ = ["Batcher", "Overloaded"]

_INLINE = 0.01  # a lone request is predicted on the event loop when predicts take less


class Overloaded(Exception):
    """The queue is full: the request was refused and should be retried later."""


class Batcher:
    """Gathers concurrent requests into batches for one predict call each.

    Args:
        predict: `predict(entry, frame, proba) -> (predictions, probabilities or None)`,
            run on a worker thread.
        max_batch: Most rows in one predict call.
        max_wait: Longest time (seconds) the first request of a batch waits for others.
        max_queue: Most requests waiting; more are refused with `Overloaded`.
        observe: Called with (batch size in requests, queue depth) after each batch.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch: int = 64,
        max_wait: float = 0.002,
        max_queue: int = 256,
        observe: Callable[[int, int], None] | None = None,
    ) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait
        self.max_queue = max_queue
        self.observe = observe
        self._queue: deque[Item] = deque()
        self._ready: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._busy = 0
        self._last_predict = 1.0  # seconds the last predict took: the first one uses the thread

    @property
    def depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    @property
    def full(self) -> bool:
        """Whether a new request would be refused."""
        return len(self._queue) >= self.max_queue

    @property
    def busy(self) -> int:
        """Requests waiting or being predicted."""
        return self._busy

    def start(self) -> None:
        """Start the batching task on the running loop."""
        from concurrent.futures import ThreadPoolExecutor

        self._ready = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="kiln-predict")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish the queued requests, then stop."""
        while self._busy:
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, entry: Entry, frame: pd.DataFrame, proba: bool) -> Outcome:
        """Predict `frame` with `entry`'s model in the next batch; raise `Overloaded` when full."""
        if len(self._queue) >= self.max_queue:
            raise Overloaded(f"{len(self._queue)} requests are already waiting")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append((entry, frame, proba, future))
        self._busy += 1
        assert self._ready is not None
        self._ready.set()
        try:
            return await future
        finally:
            self._busy -= 1

    async def _run(self) -> None:
        assert self._ready is not None
        loop = asyncio.get_running_loop()
        last = 1
        while True:
            if not self._queue:
                self._ready.clear()
                await self._ready.wait()
            if last > 1 and len(self._queue) < self.max_batch and self.max_wait > 0:
                # Requests are arriving together: give the others a moment to join.
                deadline = time.perf_counter() + self.max_wait
                while len(self._queue) < self.max_batch:
                    left = deadline - time.perf_counter()
                    if left <= 0:
                        break
                    self._ready.clear()
                    try:
                        await asyncio.wait_for(self._ready.wait(), left)
                    except TimeoutError:
                        break
            batch: list[Item] = []
            rows = 0
            while self._queue and (not batch or rows + len(self._queue[0][1]) <= self.max_batch):
                item = self._queue.popleft()
                rows += len(item[1])
                batch.append(item)
            last = len(batch)
            await self._predict(loop, batch)
            if self.observe is not None:
                self.observe(len(batch), len(self._queue))

    async def _predict(self, loop: asyncio.AbstractEventLoop, batch: list[Item]) -> None:
        groups: dict[int, list[Item]] = {}
        for item in batch:
            groups.setdefault(id(item[0]), []).append(item)
        for items in groups.values():
            entry = items[0][0]
            proba = any(i[2] for i in items)
            try:
                started = time.perf_counter()
                if len(batch) == 1 and not self._queue and self._last_predict < _INLINE:
                    # A lone request to a fast model: predict here, sparing the hop to
                    # the worker thread (a context switch, slow on a busy machine).
                    preds, probs = _predict_group(self.predict, entry, items, proba)
                else:
                    preds, probs = await loop.run_in_executor(
                        self._executor, _predict_group, self.predict, entry, items, proba
                    )
                self._last_predict = time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 - handed to the failing request only
                if len(items) == 1:
                    if not items[0][3].done():
                        items[0][3].set_exception(exc)
                    continue
                # One bad request must not fail the others: predict them one by one.
                for item in items:
                    await self._predict(loop, [item])
                continue
            start = 0
            for item in items:
                n = len(item[1])
                if not item[3].done():
                    item[3].set_result(
                        (
                            preds[start : start + n],
                            None if probs is None or not item[2] else probs[start : start + n],
                        )
                    )
                start += n


def _predict_group(predict: Predict, entry: Entry, items: list[Item], proba: bool) -> Outcome:
    frames = [i[1] for i in items]
    frame = frames[0] if len(frames) == 1 else concat_frames(frames)
    return predict(entry, frame, proba)


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Stack validated frames (same columns and dtypes) into one, fast for numeric ones."""
    import numpy as np
    import pandas as pd

    first = frames[0]
    dtypes = first.dtypes
    if len(set(dtypes)) == 1 and isinstance(dtypes.iloc[0], np.dtype):
        values = np.concatenate([f.to_numpy() for f in frames])
        return pd.DataFrame(values, columns=first.columns, copy=False)
    return pd.concat(frames, ignore_index=True)
