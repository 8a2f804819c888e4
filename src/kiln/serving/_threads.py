"""The threads a served or batch-scored model may use.

A model runs with the parallelism it was saved with: a RandomForest fitted with
`n_jobs=-1` starts a pool of every core for a one-row request, and OpenMP models
(HistGradientBoosting, LightGBM, XGBoost) compete with the server's event loop for the
cores. `kiln serve` already works in parallel (micro-batches, worker processes), so it
sets each model's own parallelism explicitly: `n_jobs` on every estimator that has one,
and the OpenMP and BLAS pools through threadpoolctl (and their environment variables,
for libraries loaded later), `threads` per process (0: every core).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

__all__ = ["applied", "cores", "limit_pools", "pool_sizes", "set_n_jobs"]

_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _count(threads: int) -> int:
    if threads < 0:
        from kiln._exceptions import ConfigurationError

        raise ConfigurationError(
            f"model threads must be 0 (every core) or a positive number; got {threads}."
        )
    return threads or cores()


def set_n_jobs(model: Any, threads: int) -> dict[str, Any]:
    """Set `n_jobs` (and `thread_count` / `nthread`) on every estimator inside a
    `kiln.Model` that has one; return the old values by parameter name.

    A model loaded with compiled inference never reads its library estimator, so it has
    none to set.
    """
    if "_load_estimator" in getattr(model, "__dict__", {}):
        return {}
    estimator: Any = getattr(model, "estimator_", None)
    get_params = getattr(estimator, "get_params", None)
    if get_params is None or not hasattr(estimator, "set_params"):
        return {}
    try:
        params = get_params(deep=True)
    except Exception:  # noqa: BLE001 - not every estimator's get_params is well behaved
        return {}
    names = ("n_jobs", "thread_count", "nthread")
    old = {k: v for k, v in params.items() if k.rpartition("__")[2] in names}
    if old:
        estimator.set_params(**dict.fromkeys(old, _count(threads)))
    return old


def _threadpoolctl() -> Any:
    try:
        import threadpoolctl
    except ImportError:  # no scikit-learn: no OpenMP or BLAS pool it could size
        return None
    return threadpoolctl


def limit_pools(threads: int) -> Any:
    """Size the OpenMP and BLAS pools of this process (loaded libraries now, later ones
    through their environment variables); returns threadpoolctl's limiter or None."""
    count = str(_count(threads))
    for name in _ENV:
        os.environ[name] = count
    tpc = _threadpoolctl()
    return None if tpc is None else tpc.threadpool_limits(limits=int(count))


def pool_sizes(model: Any) -> dict[str, int]:
    """The threads in effect, read back: `n_jobs` of the model's estimators (the largest),
    and threadpoolctl's OpenMP and BLAS pools of this process."""
    out: dict[str, int] = {}
    estimator = None if "_load_estimator" in getattr(model, "__dict__", {}) else model
    get_params = getattr(getattr(estimator, "estimator_", None), "get_params", None)
    if get_params is not None:
        with contextlib.suppress(Exception):
            jobs = [
                v
                for k, v in get_params(deep=True).items()
                if k.rpartition("__")[2] == "n_jobs" and isinstance(v, int)
            ]
            if jobs:
                out["n_jobs"] = max(jobs)
    tpc = _threadpoolctl()
    if tpc is not None:
        for info in tpc.threadpool_info():
            api = str(info.get("user_api", ""))
            if api in ("openmp", "blas"):
                out[api] = max(out.get(api, 0), int(info.get("num_threads", 0)))
    return out


@contextlib.contextmanager
def applied(model: Any, threads: int | None) -> Iterator[None]:
    """Within the block, `model` and this process use `threads` (None: leave them be);
    `n_jobs`, the pools and the environment are restored afterwards."""
    if threads is None:
        yield
        return
    saved_env = {name: os.environ.get(name) for name in _ENV}
    old = set_n_jobs(model, threads)
    limiter = limit_pools(threads)
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if old:
            model.estimator_.set_params(**old)
