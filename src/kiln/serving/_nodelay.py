"""uvicorn's httptools protocol with TCP_NODELAY set on every accepted socket.

uvicorn's multi-worker mode leaves Nagle's algorithm on, which stalls keep-alive
responses by ~40 ms. Named by import string (`kiln.serving._nodelay:NoDelayProtocol`) so
that worker processes can load it.
"""

from __future__ import annotations

import contextlib
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["NoDelayProtocol"]


class NoDelayProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` that sets TCP_NODELAY when a connection is made."""

    def connection_made(self, transport: Any) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):  # not a TCP socket (a Unix socket, say)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
