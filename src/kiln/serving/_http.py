"""The HTTP protocol under every kiln server: uvicorn's httptools protocol, made safe.

- **Timeouts**: a request's headers must arrive within `header_timeout` seconds of the
  connection (or of the request's first byte on a kept-alive connection), and its body
  within `body_timeout` seconds of the headers; both are totals, so a client that sends
  one byte every few seconds is cut off too. An idle kept-alive connection is closed after
  `keepalive_timeout` seconds (uvicorn's own timer). A timed-out request is answered 408
  in kiln's JSON error shape, then closed (a connection that sent nothing is just closed).
- **A connection cap**: at most `max_connections` open connections per process, lowered
  to fit the process's open-file limit (`RLIMIT_NOFILE`) with room to spare. Past the cap
  a new connection takes the place of the one that has waited longest for a request
  (a half-sent one, answered 503, or an idle one, closed); when every connection is busy,
  the new one is answered 503.
  So slow or idle clients cannot exhaust file descriptors, and a client that sends a
  whole request at once is always served.
- **JSON errors**: a request that is not valid HTTP gets 400 in kiln's error shape.
- `TCP_NODELAY` on every accepted socket (uvicorn's multi-worker mode leaves Nagle's
  algorithm on, which stalls keep-alive responses by ~40 ms).

Servers pass `Limits` to uvicorn as `uvicorn.Config(..., http=PROTOCOL)` with
`config.kiln_limits = limits` (`uvicorn_config` does both); worker processes get the same
config, so the protocol needs nothing else.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kiln.serving._config import Limits

if TYPE_CHECKING:
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState
from kiln.serving._errors import error_bytes

__all__ = ["PROTOCOL", "KilnHttpProtocol", "Limits", "connection_cap", "uvicorn_config"]

PROTOCOL = "kiln.serving._http:KilnHttpProtocol"
log = logging.getLogger("kiln.serving")


def _open_files() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 64


def connection_cap(wanted: int) -> int:
    """`wanted`, lowered so that this process's open files plus a margin stay under the
    soft `RLIMIT_NOFILE` (the margin is a sixth of the limit, at least 32)."""
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):
        return wanted
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return wanted
    room = soft - _open_files() - max(32, soft // 6)
    return max(1, min(wanted, room))


def uvicorn_config(app: Any, limits: Limits, **options: Any) -> uvicorn.Config:
    """A `uvicorn.Config` that runs `app` with kiln's protocol and `limits`."""
    import uvicorn

    # uvicorn types timeout_keep_alive as int but only hands it to call_later.
    keepalive: Any = limits.keepalive_timeout
    config = uvicorn.Config(app, http=PROTOCOL, timeout_keep_alive=keepalive, **options)
    config.kiln_limits = limits  # type: ignore[attr-defined]
    return config


class KilnHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with read timeouts, a connection cap, JSON 400s and TCP_NODELAY."""

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits: Limits = getattr(config, "kiln_limits", None) or Limits()
        cap = getattr(config, "kiln_cap", None)
        if cap is None:  # first connection: the app is loaded, its files are open
            cap = connection_cap(self.limits.max_connections)
            config.kiln_cap = cap  # type: ignore[attr-defined]
            if cap < self.limits.max_connections:
                log.warning(
                    "At most %d connections (not %d): the open-file limit is lower. "
                    "Raise it with `ulimit -n` to allow more.",
                    cap,
                    self.limits.max_connections,
                )
        self.cap: int = cap
        self.waiting_since: float | None = None  # waiting for a request (not busy)
        self.partial = False  # bytes of a request arrived while waiting
        self.closing = False
        self._deadline: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------ connections
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket (a Unix socket, say)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self.waiting_since = time.monotonic()
        self._arm(self.limits.header_timeout, "headers")
        if len(self.connections) > self.cap:
            self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self.waiting_since = None
        self.closing = True
        super().connection_lost(exc)

    def _make_room(self) -> None:
        waiting = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, KilnHttpProtocol)
            and not c.closing
            and c.waiting_since is not None
        ]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since or 0.0)
            # A half-sent request is told why; an idle connection is just closed.
            status = 503 if oldest.partial else None
            oldest.close_with(status, "The server is at its connection cap; retry.")
        else:
            log.warning("Refused a connection: all %d connections are busy.", self.cap)
            self.close_with(503, "The server is at its connection cap; retry shortly.")

    def close_with(self, status: int | None, message: str = "") -> None:
        """Answer `status` (unless a response is being sent) and close the connection."""
        if self.closing:
            return
        self.closing = True
        self._disarm()
        cycle = self.cycle
        sending = cycle is not None and cycle.response_started and not cycle.response_complete
        if status is not None and not sending and not self.transport.is_closing():
            self.transport.write(error_bytes(status, message))
        self.transport.close()

    # --------------------------------------------------------------- timeouts
    def _arm(self, seconds: float, phase: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired, phase, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self, phase: str, seconds: float) -> None:
        self._deadline = None
        if phase == "headers" and not self.partial:  # not one byte: nobody to answer
            self.close_with(None)
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning(
            "Closed the connection from %s: the request %s did not arrive within %g s.",
            client,
            phase,
            seconds,
        )
        answered = phase == "body" and self.cycle is not None and self.cycle.response_started
        status = None if answered else 408  # answered early (413, say): just close
        self.close_with(status, f"The request {phase} did not arrive within {seconds:g} seconds.")

    # ---------------------------------------------------------- parser hooks
    def data_received(self, data: bytes) -> None:
        if data and self.waiting_since is not None:
            self.partial = True
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a new request on a kept-alive connection
            self._arm(self.limits.header_timeout, "headers")

    def on_headers_complete(self) -> None:
        self.waiting_since = None
        self.partial = False
        self._arm(self.limits.body_timeout, "body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self._deadline is None:
            self.waiting_since = time.monotonic()  # idle, kept alive
            self.partial = False

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a request that is not valid HTTP, in kiln's error shape."""
        self.closing = True
        self._disarm()
        self.transport.write(error_bytes(400, f"The request is not valid HTTP/1.1 ({msg})"))
        self.transport.close()
