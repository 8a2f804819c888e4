"""Prometheus metrics of one server, in their own registry (`GET /metrics`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Requests, latency, batch sizes, queue depth, errors by kind, and the model version.

    Names: `kiln_requests_total{endpoint,status}`, `kiln_request_seconds{endpoint}`
    (histogram), `kiln_batch_size` (requests per predict call, histogram),
    `kiln_queue_depth` (requests waiting), `kiln_errors_total{kind}` (error codes of
    the JSON error body), `kiln_predictions_total` (rows predicted),
    `kiln_model_swaps_total` and `kiln_model_info{version}`.
    """

    def __init__(self, depth: Callable[[], int]) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "kiln_requests", "HTTP requests answered.", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "kiln_request_seconds",
            "Time to answer a request.",
            ["endpoint"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch = Histogram(
            "kiln_batch_size", "Requests per predict call.", buckets=_BATCH_BUCKETS, registry=r
        )
        self.queue = Gauge("kiln_queue_depth", "Requests waiting for a batch.", registry=r)
        self.queue.set_function(depth)
        self.errors = Counter("kiln_errors", "Error answers by kind.", ["kind"], registry=r)
        self.predictions = Counter("kiln_predictions", "Rows predicted.", registry=r)
        self.swaps = Counter("kiln_model_swaps", "Model versions swapped in.", registry=r)
        self.info = Gauge("kiln_model_info", "The version served (1).", ["version"], registry=r)
        self.pools = Gauge(
            "kiln_model_threads",
            "Threads the model may use in this process, read back: its n_jobs, and "
            "threadpoolctl's OpenMP and BLAS pools.",
            ["pool"],
            registry=r,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def request(self, endpoint: str, status: int, seconds: float) -> None:
        """Count one answered request and its time."""
        key = (endpoint, status)
        pair = self._children.get(key)
        if pair is None:
            pair = self._children[key] = (
                self.requests.labels(endpoint, str(status)),
                self.latency.labels(endpoint),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    def version(self, old: str | None, new: str) -> None:
        """Record the version now served."""
        if old is not None:
            self.info.remove(old)
        self.info.labels(new).set(1)

    def threads(self, sizes: dict[str, int]) -> None:
        """Record the threads in effect (`kiln.serving._threads.pool_sizes`)."""
        for pool, count in sizes.items():
            self.pools.labels(pool).set(count)

    def render(self) -> bytes:
        """The text exposition format."""
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))
