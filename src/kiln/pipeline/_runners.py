"""Where steps run: this process, a process pool (spawn or forkserver), or Ray.

Each runner takes tasks (plain data, see `_exec.execute_step`) and hands back
outcomes as they finish; the scheduling (what is ready, what is cached) stays in
`Pipeline.run`. No home-made scheduler: the pool is `concurrent.futures`, and Ray is
Ray.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from kiln._exceptions import ConfigurationError
from kiln.pipeline._exec import execute_step

__all__ = ["RUNNERS", "Runner", "make_runner"]

RUNNERS = ("inprocess", "processes", "ray")
Work = Callable[..., dict[str, Any]]


class Runner(abc.ABC):
    """Runs tasks; `submit` starts one, `wait` returns those that finished."""

    jobs: int = 1

    @abc.abstractmethod
    def submit(self, key: str, task: dict[str, Any], fn: Callable[..., Any]) -> None:
        """Start a task; `key` identifies it in `wait`'s answer."""

    @abc.abstractmethod
    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        """Block until at least one task finished; return (key, outcome) pairs."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release workers."""


class InProcessRunner(Runner):
    """Runs each task at once, here (the default)."""

    def __init__(self, work: Work = execute_step) -> None:
        self._work = work
        self._done: list[tuple[str, dict[str, Any]]] = []
        self.memo: dict[str, Any] = {}  # output sha -> value, for dependants here

    def submit(self, key: str, task: dict[str, Any], fn: Callable[..., Any]) -> None:
        self._done.append((key, self._work(task, fn, self.memo)))

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        done, self._done = self._done, []
        return done


class ProcessRunner(Runner):
    """A `concurrent.futures` process pool started with forkserver (or spawn)."""

    def __init__(
        self, jobs: int, start_method: str = "forkserver", work: Work = execute_step
    ) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if start_method not in ("spawn", "forkserver"):
            raise ConfigurationError(
                f"The process runner starts workers with 'spawn' or 'forkserver'; got "
                f"{start_method!r} (fork is unsafe with the threads kiln and your libraries run)."
            )
        self.jobs = jobs
        self._work = work
        context = multiprocessing.get_context(start_method)
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context)
        self._futures: dict[Any, str] = {}

    def submit(self, key: str, task: dict[str, Any], fn: Callable[..., Any]) -> None:
        self._futures[self._pool.submit(self._work, task)] = key

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        return [(self._futures.pop(f), _outcome(f)) for f in done]

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _outcome(future: Any) -> dict[str, Any]:
    try:
        return dict(future.result())
    except Exception as exc:  # noqa: BLE001 - a worker died: report it as the step's failure
        return {"status": "failed", "error": f"The worker running the step died: {exc!r}"}


class RayRunner(Runner):
    """Ray tasks: joins a running Ray (or `address`), else starts a local one."""

    def __init__(self, jobs: int, address: str | None = None, work: Work = execute_step) -> None:
        from kiln._extras import require

        self.ray = require("ray", "ray", "The Ray runner")
        self.jobs = jobs
        self._started = False
        if not self.ray.is_initialized():
            self.ray.init(
                address=address,
                num_cpus=None if address else jobs,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started = True
        self._remote = self.ray.remote(work)
        self._refs: dict[Any, str] = {}

    def submit(self, key: str, task: dict[str, Any], fn: Callable[..., Any]) -> None:
        self._refs[self._remote.remote(task)] = key

    def wait(self) -> list[tuple[str, dict[str, Any]]]:
        ready, _ = self.ray.wait(list(self._refs), num_returns=1)
        out = []
        for ref in ready:
            key = self._refs.pop(ref)
            try:
                out.append((key, dict(self.ray.get(ref))))
            except Exception as exc:  # noqa: BLE001 - a lost task is the step's failure
                out.append((key, {"status": "failed", "error": f"The Ray task failed: {exc!r}"}))
        return out

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


def make_runner(
    runner: str,
    jobs: int = 1,
    address: str | None = None,
    start_method: str = "forkserver",
    work: Work = execute_step,
) -> Runner:
    """A runner by name: `inprocess`, `processes` or `ray`; `work` runs one task."""
    if jobs < 1:
        raise ConfigurationError(f"jobs must be 1 or more; got {jobs}.")
    if runner == "inprocess":
        return InProcessRunner(work)
    if runner == "processes":
        return ProcessRunner(jobs, start_method, work)
    if runner == "ray":
        return RayRunner(jobs, address, work)
    from kiln._exceptions import did_you_mean

    raise ConfigurationError(
        f"Unknown runner {runner!r}; expected one of {', '.join(RUNNERS)}."
        + did_you_mean(runner, RUNNERS)
    )
