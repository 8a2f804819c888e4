"""The job queue of `kiln notebook app`: at most `workers` executions at once, in order.

A submit becomes a `Job` (queued); `workers` threads take jobs in order and run each
with its notebook's `WarmRunner`, as a tracked run. A job can be cancelled while queued
(it never runs) or running (its cell is interrupted, its kernel killed if it lingers);
one that runs past `timeout` seconds is stopped the same way and fails saying so. A
job's state, queue position and progress (code cells done of all) are what the page
polls.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kiln.notebooks import RunControl

if TYPE_CHECKING:
    from kiln.notebooks import WarmRunner

__all__ = ["Job", "JobQueue"]

#: Finished jobs kept for their pages to poll (the oldest are forgotten first).
KEEP_JOBS = 1000


@dataclass
class Job:
    """One submitted execution.

    Attributes:
        id: The job's id (in /j/<id> and /api/jobs/<id>).
        slug: The notebook's name in the app's URLs.
        parameters: The validated parameters.
        key: The cache key (notebook code and parameters).
        state: `queued`, `running`, `finished`, `failed` or `cancelled`.
        done: Code cells executed so far.
        total: Code cells in all (0 until the notebook is prepared).
        run_id: The tracked run, once it exists.
        error: Why a failed or cancelled job did not finish, for the viewer.
        failed_cell: The index of the code cell that failed, when one did.
    """

    id: str
    slug: str
    parameters: dict[str, Any]
    key: str
    state: str = "queued"
    done: int = 0
    total: int = 0
    run_id: str | None = None
    error: str | None = None
    failed_cell: int | None = None
    tags: dict[str, str] = field(default_factory=dict)
    submitted: float = field(default_factory=time.time)
    control: RunControl = field(default_factory=RunControl, repr=False)


class JobQueue:
    """Runs submitted jobs, at most `workers` at a time, each stopped after `timeout` s.

    Args:
        runners: The `WarmRunner` of each notebook, by slug.
        workers: Executions at once.
        timeout: Seconds one execution may run before it is stopped (None: no limit).
    """

    def __init__(
        self, runners: dict[str, WarmRunner], *, workers: int = 1, timeout: float | None = 600
    ) -> None:
        self.runners = runners
        self.workers = workers
        self.timeout = timeout
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, daemon=True, name=f"kiln-app-worker-{i}")
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, slug: str, parameters: dict[str, Any], key: str, tags: dict[str, str]) -> Job:
        """Queue an execution of notebook `slug`; returns its job at once."""
        job = Job(uuid.uuid4().hex, slug, parameters, key, tags=dict(tags))
        with self._cond:
            self._jobs[job.id] = job
            self._queue.append(job)
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs.values()))
                if oldest.state in ("queued", "running"):
                    break
                del self._jobs[oldest.id]
            self._cond.notify()
        return job

    def active(self, key: str) -> Job | None:
        """A queued or running job with this cache key (the same values submitted twice
        while the first is not done share its execution)."""
        with self._cond:
            for job in self._jobs.values():
                if job.key == key and job.state in ("queued", "running"):
                    return job
            return None

    def get(self, job_id: str) -> Job | None:
        """The job with this id, or None (unknown, or forgotten long ago)."""
        with self._cond:
            return self._jobs.get(job_id)

    def position(self, job: Job) -> int:
        """1 for the next job to run, 2 for the one after...; 0 when not queued."""
        with self._cond:
            for index, queued in enumerate(self._queue):
                if queued is job:
                    return index + 1
            return 0

    def snapshot(self, job: Job) -> dict[str, Any]:
        """The job as the page polls it."""
        return {
            "id": job.id,
            "notebook": job.slug,
            "state": job.state,
            "position": self.position(job),
            "done": job.done,
            "total": job.total,
            "run_id": job.run_id,
            "error": job.error,
            "failed_cell": job.failed_cell,
            "parameters": job.parameters,
        }

    def cancel(self, job: Job) -> None:
        """Cancel a queued job (it never runs) or stop a running one."""
        with self._cond:
            if job.state == "queued":
                with contextlib.suppress(ValueError):
                    self._queue.remove(job)
                job.state = "cancelled"
                job.error = "Cancelled before it ran."
                return
        if job.state == "running":
            job.control.stop("cancelled")

    def close(self) -> None:
        """Stop taking jobs; stop the running ones."""
        with self._cond:
            self._closed = True
            running = [j for j in self._jobs.values() if j.state == "running"]
            self._cond.notify_all()
        for job in running:
            job.control.stop("the app stopped")

    def _take(self) -> Job | None:
        with self._cond:
            while not self._queue and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            job = self._queue.popleft()
            job.state = "running"
            return job

    def _work(self) -> None:
        while True:
            job = self._take()
            if job is None:
                return
            self._run(job)

    def _run(self, job: Job) -> None:
        runner = self.runners[job.slug]
        timer = None
        if self.timeout:
            timer = threading.Timer(self.timeout, job.control.stop, args=("timeout",))
            timer.daemon = True
            timer.start()

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            result = runner.run(
                job.parameters,
                tags=job.tags,
                progress=progress,
                control=job.control,
            )
        except Exception as exc:  # noqa: BLE001 - shown to the viewer, the app goes on
            job.state, job.error = "failed", f"The notebook could not be run: {exc}"
            return
        finally:
            if timer is not None:
                timer.cancel()
        job.run_id = result.run_id
        reason = job.control.reason
        error = result.error
        if error is None and reason is None:
            job.state = "finished"
            return
        job.failed_cell = error.cell_index if error is not None else None
        where = (
            f"code cell {error.cell_index}"
            if error is not None and error.cell_index is not None
            else "the parameters cell"
        )
        if reason == "timeout":
            job.state = "failed"
            job.error = (
                f"Stopped: the run took longer than the app's time limit of "
                f"{self.timeout:g} seconds (kiln notebook app --timeout), at {where}."
            )
        elif reason is not None:
            job.state = "cancelled"
            job.error = f"Stopped ({reason}) at {where}."
        else:
            job.state = "failed"
            assert error is not None
            job.error = f"The notebook failed at {where}: {error.ename}: {error.evalue}"
