"""Sampling CPU, memory and GPU utilisation into a run as `system/*` metrics."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SystemSampler"]


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


class SystemSampler:
    """Samples the process's and machine's resource use every `every` seconds.

    The first sample is taken after `delay` seconds, so short runs record nothing.
    Metrics: system/cpu_percent (this process, 100 = one core), system/memory_mb (this
    process's RSS), system/memory_percent (the machine), and per GPU where NVML is present.
    """

    def __init__(
        self,
        emit: Callable[[dict[str, float], int], None],
        *,
        every: float = 10.0,
        delay: float = 5.0,
    ) -> None:
        self._emit = emit
        self.every = every
        self.delay = delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start sampling in a daemon thread."""
        self._thread = threading.Thread(target=self._run, name="kiln-system-metrics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling (returns at once; the thread ends at its next wake-up)."""
        self._stop.set()

    def _run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        proc: Any = psutil.Process()
        proc.cpu_percent(None)  # prime the counter
        gpu = _gpu_reader()
        step = 0
        if self._stop.wait(self.delay):
            return
        while True:
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
            try:
                self._emit(values, step)
            except Exception:  # noqa: BLE001 - the run ended meanwhile
                return
            step += 1
            if self._stop.wait(self.every):
                return
