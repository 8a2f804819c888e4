"""How a server is configured: `ServeConfig`, the HTTP `Limits`, and `serve`'s defaults.

This module is the one place each default is written. `kiln serve` builds its options
from `ServeConfig`'s fields: a field whose metadata has `help` becomes an option
(`--field-name`, or the `option` given), with the field's default, a type and range
from `min`/`max`/`min_open`/`choices`, and `envvar` where given. It imports nothing but the standard library and kiln's settings
table, so `kiln serve --help` stays cheap and works without the
`serve` extra.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from kiln._settings import find_setting

__all__ = [
    "GRACEFUL_SECONDS",
    "HOST",
    "LOG_LEVEL",
    "PORT",
    "WORKERS",
    "Limits",
    "ServeConfig",
]

_TOKEN = find_setting("token")

HOST = "127.0.0.1"
PORT = 8000
WORKERS = 1
LOG_LEVEL = "warning"
GRACEFUL_SECONDS = 30.0


def _option(default: Any, help: str, **cli: Any) -> Any:
    """A dataclass field that `kiln serve` offers as an option (see the module doc)."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


@dataclass(frozen=True)
class Limits:
    """How long a server waits for clients, and how many it holds at once.

    Attributes:
        header_timeout: Seconds for a request's headers to arrive, in all.
        body_timeout: Seconds for a request's body to arrive after its headers, in all.
        keepalive_timeout: Seconds an idle kept-alive connection stays open.
        max_connections: Most open connections per process (lowered to fit the
            open-file limit).
    """

    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 5.0
    max_connections: int = 1000

    def check(self) -> None:
        """Raise `ConfigurationError` for a limit that is not positive."""
        from kiln._exceptions import ConfigurationError

        for name in ("header_timeout", "body_timeout", "keepalive_timeout", "max_connections"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(
                    f"{name} must be a positive number; got {value!r}. Pass a value above 0 "
                    f"(the default is {getattr(Limits, name)!r})."
                )


_DEVICE_HELP = "Where a PyTorch model runs: cpu, cuda, cuda:N, mps, or auto (CUDA when available)."


@dataclass
class ServeConfig:
    """How a server batches, protects itself, logs and watches its model.

    Attributes:
        max_batch: Most rows in one predict call.
        max_wait_ms: Longest a request waits for others to join its batch.
        max_queue: Requests waiting past which new ones get 503 with Retry-After.
        max_body: Largest request body in bytes (413 past it).
        log_rate: Share of requests written to the prediction log (0 turns it off).
        log_flush_seconds: Longest a logged prediction waits in memory.
        reload_interval: Seconds between checks of a registry alias for a new version.
        token: Bearer token required on every endpoint but the health ones.
        validation: Validation mode ("strict", "warn", "off"); default: the model's own.
        store: The store to load models from and write the prediction log to.
        trust_pickle: Load a model whose files run code when loaded (pickle, skops types
            outside kiln's allow-list); refused without it (`--trust-pickle`).
        device: Where a PyTorch model runs ("cpu", "cuda", "cuda:N", "mps", "auto"); other
            flavors accept only "cpu" and "auto".
        header_timeout: Seconds for a request's headers to arrive, in all (408 past it).
        body_timeout: Seconds for a request's body to arrive after its headers, in all.
        keepalive_timeout: Seconds an idle kept-alive connection stays open.
        max_connections: Most open connections per worker process (lowered to fit the
            open-file limit); past it the connection waiting longest for a request is
            closed to make room, or the new one gets 503 when all are busy.
        model_threads: Threads the model itself uses per worker process: `n_jobs` of
            its estimators and the process's OpenMP/BLAS pools (0: every core; None: as
            saved). Micro-batching and worker processes do the parallel work, so 1.
    """

    max_batch: int = _option(64, "Most rows per predict call.", min=1)
    max_wait_ms: float = _option(2.0, "Longest wait for a batch to fill.", min=0)
    max_queue: int = _option(256, "Waiting requests past which 503 is answered.", min=1)
    max_body: int = _option(2**20, "Largest body in bytes.", min=1)
    log_rate: float = _option(0.0, "Share of requests kept in the prediction log.", min=0, max=1)
    log_flush_seconds: float = _option(
        5.0, "Seconds between prediction-log writes.", option="--log-flush", min=0.01
    )
    reload_interval: float = _option(
        5.0, "Seconds between checks of an alias for a new version (0: never).", min=0
    )
    token: str | None = _option(
        None, "Bearer token required off loopback [env: KILN_TOKEN].", envvar=_TOKEN.env
    )
    validation: str | None = _option(
        None,
        "Validation mode (default: the model's own).",
        choices=("strict", "warn", "off"),
    )
    store: str | None = None  # `kiln --store`, the CLI's global option
    trust_pickle: bool = _option(
        False,
        "Load a model whose files run code when loaded (pickle, unlisted skops types); "
        "only for a model you trust as your own code.",
    )
    device: str = _option("cpu", _DEVICE_HELP)
    header_timeout: float = _option(
        Limits.header_timeout,
        "Seconds for a request's headers to arrive (408 past it).",
        min=0,
        min_open=True,
    )
    body_timeout: float = _option(
        Limits.body_timeout,
        "Seconds for a request's body to arrive after its headers.",
        min=0,
        min_open=True,
    )
    keepalive_timeout: float = _option(
        Limits.keepalive_timeout,
        "Seconds an idle kept-alive connection stays open.",
        min=0,
        min_open=True,
    )
    max_connections: int = _option(
        Limits.max_connections,
        "Most open connections per worker (lowered to fit `ulimit -n`).",
        min=1,
    )
    model_threads: int | None = _option(
        1,
        "Threads the model itself uses per worker: n_jobs and OpenMP/BLAS pools "
        "(0: every core). Batching and --workers do the parallel work.",
        min=0,
    )

    def limits(self) -> Limits:
        """The HTTP protocol's timeouts and connection cap (checked)."""
        limits = Limits(
            self.header_timeout, self.body_timeout, self.keepalive_timeout, self.max_connections
        )
        limits.check()
        return limits
