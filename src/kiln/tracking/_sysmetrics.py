"""Sampling CPU, memory and GPU utilisation into runs as `system/*` metrics.

One daemon thread per process samples for every run that asked for it: starting a run
adds it to a table, ending it removes it, so short runs cost a dict insert, not a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["unwatch", "watch"]

Emit = Callable[[dict[str, float], int], None]

_lock = threading.Lock()
_watched: dict[str, tuple[Emit, float, list[int]]] = {}  # run id -> (emit, since, [step])
_wake = threading.Event()
_thread: threading.Thread | None = None
_every = 10.0
_delay = 5.0


def watch(run_id: str, emit: Emit, *, every: float = 10.0, delay: float | None = None) -> None:
    """Sample into `run_id` every `every` seconds, the first time after `delay` seconds.

    `delay` defaults to 5 seconds (or `every`, if shorter), so runs shorter than that
    record nothing. Metrics: system/cpu_percent (this process; 100 = one core),
    system/memory_mb (this process's RSS), system/memory_percent (the machine), and per
    GPU where NVML is present: system/gpu<i>_utilization_percent, system/gpu<i>_memory_mb.
    """
    global _thread, _every, _delay
    with _lock:
        _every = min(_every, every) if _watched else every
        _delay = min(5.0, every) if delay is None else delay
        _watched[run_id] = (emit, time.monotonic(), [0])
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="kiln-system-metrics", daemon=True)
            _thread.start()
    _wake.set()


def unwatch(run_id: str) -> None:
    """Stop sampling into `run_id`."""
    with _lock:
        _watched.pop(run_id, None)


def _gpu_reader() -> Callable[[], dict[str, float]] | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:  # noqa: BLE001 - no driver, no GPU
        return None
    if not handles:
        return None

    def read() -> dict[str, float]:
        out: dict[str, float] = {}
        for i, h in enumerate(handles):
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            out[f"system/gpu{i}_utilization_percent"] = float(util.gpu)
            out[f"system/gpu{i}_memory_mb"] = mem.used / 1e6
        return out

    return read


# The sampler imports psutil (and probes for a GPU) only this long before a run's first
# sample is due, then primes the CPU counter: starting the thread with every run made a
# short run's first write contend with that import for the GIL (its 5,000-metric flush
# took 3x longer), and most runs end before their first sample.
_PRIME = 1.0


def _first_due_in() -> float:
    """Seconds until some watched run is within `_PRIME` of its first sample."""
    now = time.monotonic()
    with _lock:
        starts = [w[1] for w in _watched.values()]
    return min((since + _delay - _PRIME - now for since in starts), default=_delay)


def _loop() -> None:
    while (wait := _first_due_in()) > 0:
        _wake.wait(wait)
        _wake.clear()
    try:
        import psutil
    except ImportError:
        return
    proc: Any = psutil.Process()
    proc.cpu_percent(None)  # prime the counter
    gpu = _gpu_reader()
    _wake.wait(min(_PRIME, _delay))
    _wake.clear()
    while True:
        now = time.monotonic()
        with _lock:
            due = [(rid, w) for rid, w in _watched.items() if now - w[1] >= _delay]
        if not due:
            _wake.wait(min(_every, _delay))
            _wake.clear()
            continue
        values = {
            "system/cpu_percent": float(proc.cpu_percent(None)),
            "system/memory_mb": proc.memory_info().rss / 1e6,
            "system/memory_percent": float(psutil.virtual_memory().percent),
        }
        if gpu is not None:
            try:
                values.update(gpu())
            except Exception:  # noqa: BLE001 - a GPU read failing must not stop sampling
                gpu = None
        for run_id, (emit, _since, step) in due:
            try:
                emit(values, step[0])
            except Exception:  # noqa: BLE001 - the run ended meanwhile
                unwatch(run_id)
                continue
            step[0] += 1
        time.sleep(max(0.0, _every - (time.monotonic() - now)))
        _wake.clear()
