"""The background writer: logging calls enqueue, one transaction per batch writes them.

`log_metric` and friends append to a bounded queue and return. A writer thread commits
what is queued at most `interval` seconds after it was queued (sooner when a batch
fills). `flush()` writes everything queued so far in the calling thread, so a run's end,
an exception in a run, `kiln.flush()` and reads of the store never wait for a thread
switch. Interpreter exit flushes (atexit), and so does a multiprocessing worker's exit,
which skips atexit. A full queue makes the caller wait; nothing is dropped. So does a
queue whose oldest record has waited a quarter of the interval: a producer faster than
the store writes small batches itself, so that a killed process loses at most about one
interval.

What cannot be written by interpreter exit is not dropped either: the queued records go
to a recovery file (`kiln store recover` replays it) and the process exits with status 1.

Before `fork`, the parent writes what it has queued, so that a child (a process-pool
worker, say) finds the runs it inherits in the store; the child starts with an empty
queue of its own.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["Op", "Writer", "flush_all"]

#: A queued write: (kind, payload). The client that owns the writer defines the kinds.
Op = tuple[str, Any]

_writers: weakref.WeakSet[Writer] = weakref.WeakSet()
_MAX_FAILURES = 3
_MARK = "_mark"  # a queue entry that records when it was queued (see Writer._check_age)
_exiting: list[bool] = []  # non-empty once interpreter exit began
_refused_at_exit: list[str] = []  # refusals raised while exit ended the open runs
_CATCH_UP = 4096  # the batch a producer writes when the queue is too old
EXIT_STATUS = 1  # the exit status of a process that leaves records unwritten


def short_error(exc: BaseException | None) -> str:
    """The first line of a store error: not the statement and its thousands of parameters."""
    if exc is None:
        return ""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Writer:
    """Batches writes for one store.

    Args:
        write: Commits a list of ops in one transaction (raises on failure).
        interval: Longest time (seconds) an op waits in the queue.
        tick: Called by the writer thread at every wake-up; returns ops to queue
            (heartbeats).
        max_queue: Ops queued before callers wait.
        batch: Most ops committed in one transaction.
        key: Names the store written to, for `flush_all(key=...)`.
        recovery: Called with the ops left unwritten at exit; saves them and returns
            where (a recovery file), or raises `OSError`.
    """

    def __init__(
        self,
        write: Callable[[list[Op]], None],
        *,
        interval: float = 0.5,
        tick: Callable[[], list[Op]] | None = None,
        max_queue: int = 200_000,
        batch: int = 20_000,
        key: str = "",
        recovery: Callable[[list[Op]], str] | None = None,
    ) -> None:
        self._write = write
        self.key = key
        self._recovery = recovery
        self._tick = tick
        self.interval = interval
        self.max_queue = max_queue
        self.batch = batch
        self._room = min(batch, max_queue)  # queue length at which producers hand over
        self._init_state()
        _writers.add(self)

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._write_lock = threading.Lock()  # one writer at a time keeps ops in order
        self._queue: collections.deque[Op] = collections.deque()
        self._in_flight = 0  # ops taken from the queue and not yet committed
        self._error: BaseException | None = None
        self._failures = 0
        self._thread: threading.Thread | None = None
        self._kicked = False
        # Queue times of the _MARK entries still queued, oldest first.
        self._marks: collections.deque[float] = collections.deque()
        #: Records the store refused for good (dropped, each reported once by `flush`).
        self.refused: list[str] = []

    # ------------------------------------------------------------ producers
    def submit(self, op: Op) -> None:
        """Queue one op; waits while the queue is full.

        The common case takes no lock: `deque.append` is atomic, and the writer thread
        polls the queue's length. Every 1,024th queued op also checks the queue's age.
        """
        queue = self._queue
        n = len(queue)
        if n & 1023 == 1023:
            self._check_age()
        if n >= self._room:
            self._make_room()
        queue.append(op)
        if self._thread is None:
            with self._cond:
                if self._thread is None:
                    self._start()

    def _make_room(self) -> None:
        with self._cond:
            self._kicked = True
            self._cond.notify_all()
            while len(self._queue) >= self.max_queue:
                self._cond.wait(0.05)

    def _check_age(self) -> None:
        """Queue a time mark; when the oldest mark still queued is a quarter interval
        old, write small batches in this thread until it is not.

        Every op queued before a mark is older than it, so once the writer falls behind
        a fast producer (hundreds of thousands of ops a second), the producer waits for
        the store instead of letting unwritten ops pile up for seconds, which a killed
        process would lose. While the store fails, the queue is bounded by size alone.
        """
        now = time.monotonic()
        marks = self._marks
        marks.append(now)  # before the queue entry: the writer pops a time per entry
        self._queue.append((_MARK, now))
        # A quarter of the interval, and small batches (a 20,000-op batch can take a
        # few tenths of a second on a busy machine): what waits longest is committed
        # within the interval.
        limit = self.interval / 4
        while marks and marks[0] < time.monotonic() - limit and not self._failures:
            with self._write_lock:
                if not self._drain(_CATCH_UP):
                    return

    def kick(self) -> None:
        """Ask the writer thread to write what is queued now, without waiting for it."""
        with self._cond:
            self._kicked = True
            if self._thread is None:
                self._start()
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Ops queued or being written, not yet committed."""
        return len(self._queue) + self._in_flight

    @property
    def failing(self) -> bool:
        """Whether the last attempt to write failed."""
        return bool(self._failures)

    @property
    def pending_records(self) -> int:
        """`pending`, less the writer's own time marks."""
        return max(0, self.pending - len(self._marks))

    def flush(self) -> None:
        """Write everything submitted so far, in this thread.

        Raises:
            TrackingError: The store refused the writes several times in a row (they
                stay queued and are retried), or refused some records for good (they
                were dropped; the message says which).
        """
        from kiln._exceptions import TrackingError

        self._flush()
        if self.refused:
            refused, self.refused = self.refused, []
            exc = TrackingError(
                f"The store refused {len(refused)} record(s), which were dropped: "
                f"{'; '.join(refused[:3])}"
            )
            if _exiting:
                _refused_at_exit.append(str(exc))
            raise exc

    def _flush(self) -> None:
        from kiln._exceptions import TrackingError

        # Everything queued now is written when the queue has been drained of as many ops
        # (later ones may be written too); the write lock waits out a batch in flight.
        owed = len(self._queue)
        while True:
            with self._write_lock:
                written = self._drain()
            owed -= written
            if (owed <= 0 or not self._queue) and not self._failures:
                return
            if self._failures >= _MAX_FAILURES:
                raise TrackingError(
                    f"kiln could not write {self.pending_records} queued record(s) to the "
                    f"store: {short_error(self._error)}. They stay queued and will be "
                    "retried; what is still unwritten at exit is saved to a recovery file."
                ) from self._error
            if self._failures:
                time.sleep(0.05 * 2**self._failures)

    # --------------------------------------------------------------- writing
    def _drain(self, most: int = 0) -> int:
        """Write one batch (of at most `most` ops, if given); the caller holds
        `_write_lock`. Returns the ops written."""
        queue = self._queue
        n = min(len(queue), most or self.batch)
        if not n:
            return 0
        # Counted in flight before they leave the queue: `pending` (queue, then in
        # flight) must never read 0 while these ops are uncommitted, or a reader skips
        # the flush that would wait for them.
        self._in_flight = n
        ops = [queue.popleft() for _ in range(n)]
        marks = 0
        real = ops
        if self._marks:
            real = [op for op in ops if op[0] != _MARK]
            marks = n - len(real)
        try:
            if real:
                self._write(real)
        except BaseException as exc:  # noqa: BLE001 - keep the ops; flush() reports
            queue.extendleft(reversed(ops))
            self._in_flight = 0
            with self._cond:
                self._error = exc
                self._failures += 1
                self._cond.notify_all()
            return 0
        for _ in range(marks):
            self._marks.popleft()
        self._in_flight = 0
        with self._cond:
            self._error = None
            self._failures = 0
            self._cond.notify_all()
        return len(ops)

    def _start(self) -> None:
        # The thread holds the writer weakly: a writer nobody uses any more is collected
        # and its thread ends.
        self._thread = threading.Thread(
            target=_loop, args=(weakref.ref(self),), name="kiln-writer", daemon=True
        )
        self._thread.start()
        if "multiprocessing" in sys.modules:
            # Worker processes leave through os._exit, which skips atexit; this does not.
            from multiprocessing import util

            util.Finalize(self, _flush_quietly, args=(weakref.ref(self),), exitpriority=100)

    def _step(self) -> None:
        """One wake-up of the writer thread: heartbeats, then a batch if one is due."""
        if self._tick is not None:
            try:
                extra = self._tick()
            except Exception:  # noqa: BLE001 - a failed heartbeat must not stop writing
                extra = []
            self._queue.extend(extra)
        if self._queue:
            with self._write_lock:
                self._drain()


def _loop(ref: weakref.ref[Writer]) -> None:
    while True:
        writer = ref()
        if writer is None:
            return
        cond, interval = writer._cond, writer.interval
        with cond:
            cond.wait_for(
                lambda w=writer: w._kicked or len(w._queue) >= w.batch,  # type: ignore[misc]
                interval,
            )
            writer._kicked = False
        writer._step()
        failures = writer._failures
        del writer
        if failures:
            time.sleep(min(2.0, 0.05 * 2**failures))


def _flush_quietly(ref: weakref.ref[Writer], save: bool = True) -> bool:
    """Write what `ref` has queued; report what cannot be written (and with `save`, move
    it to a recovery file). True when everything was written."""
    writer = ref()
    if writer is None or not (writer.pending or writer.refused):
        return True
    try:
        writer.flush()
    except Exception as exc:  # noqa: BLE001 - at exit, report rather than raise
        print(f"kiln: {exc}", file=sys.stderr)
        if save:
            _save_unwritten(writer)
        return False
    return True


def _save_unwritten(writer: Writer) -> None:
    """Move what `writer` still has queued to its recovery file, and say where."""
    # Under the write lock: no batch is in flight, and the writer thread (still running,
    # a daemon) cannot take one out of the queue while it is saved.
    with writer._write_lock:
        ops = [op for op in writer._queue if op[0] != _MARK]
        writer._queue.clear()
        writer._marks.clear()
    if not ops:
        return
    n = len(ops)
    try:
        if writer._recovery is None:
            raise OSError("no recovery file for this store")
        where = writer._recovery(ops)
    except Exception as exc:  # noqa: BLE001 - nothing else can be done at exit
        print(
            f"kiln: {n} record(s) could not be saved for recovery and are lost: {exc}",
            file=sys.stderr,
        )
    else:
        print(
            f"kiln: {n} unwritten record(s) were saved to {where}. Once the store can be "
            f"written, replay them with:  kiln store recover '{where}'",
            file=sys.stderr,
        )


def flush_all(key: str | None = None) -> None:
    """Write everything queued by every writer in this process (or only those of `key`)."""
    for writer in list(_writers):
        if (writer.pending or writer.refused) and (key is None or writer.key == key):
            writer.flush()


def _flush_before_fork() -> None:
    for writer in list(_writers):
        _flush_quietly(weakref.ref(writer), save=False)


def _after_fork_in_child() -> None:
    for writer in list(_writers):
        writer._init_state()


def _flush_at_exit() -> bool:
    """Write what every writer has queued, reporting (not raising) what fails; True when
    everything was written. The test suite calls it between tests."""
    ok = True
    for writer in list(_writers):
        ok = _flush_quietly(weakref.ref(writer), save=False) and ok
    return ok


@atexit.register
def _at_exit() -> None:
    """Interpreter exit: end the module-level API's open runs, write what every writer
    has queued; if anything cannot be written, save it to a recovery file and end the
    process with status 1 instead of 0.

    `os._exit` skips the exit handlers registered before this module was imported
    (rarely any that matter); standard output and error are flushed first.
    """
    _exiting.append(True)
    fluent = sys.modules.get("kiln.tracking._fluent")
    if fluent is not None:
        fluent._end_runs_at_exit()
    # Ending a run raises what the store refused; nobody saw it there, so say it here.
    ok = not _refused_at_exit
    for message in _refused_at_exit:
        print(f"kiln: {message}", file=sys.stderr)
    _refused_at_exit.clear()
    for writer in list(_writers):
        ok = _flush_quietly(weakref.ref(writer)) and ok
    if not ok:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing to flush
                stream.flush()
        os._exit(EXIT_STATUS)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_before_fork, after_in_child=_after_fork_in_child)
