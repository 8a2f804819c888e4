"""A small HTTP/1.1 load generator on raw asyncio sockets (keep-alive, TCP_NODELAY).

httpx's async pool spends more CPU per request than the servers it measures; this does
one `write` and one parse per request. Used by the serving tests and benchmark.

    python loadgen.py URL PATH BODY_JSON --clients 64 --seconds 10        # closed loop
    python loadgen.py URL PATH BODY_JSON --rate 300 --seconds 3            # open loop
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Result = tuple[int, float, dict[str, str]]  # status, seconds, headers (lower-case names)


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, _, v = line.partition(":")
                headers[k.strip().lower()] = v.strip()
        body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        self.writer.close()


def build(
    host: str, port: int, path: str, body: bytes, headers: dict[str, str] | None = None
) -> bytes:
    """The bytes of one POST request."""
    extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode("latin-1") + body


async def closed_loop(
    url: str,
    path: str,
    body: bytes,
    *,
    clients: int,
    seconds: float,
    headers: Callable[[int, int], dict[str, str]] | None = None,
) -> list[Result]:
    """`clients` connections, each sending its next request when the last is answered."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    fixed = build(host, port, path, body)
    out: list[Result] = []
    stop_at = time.perf_counter() + seconds

    async def worker(i: int) -> None:
        conn = await _Conn.open(host, port)
        n = 0
        try:
            while time.perf_counter() < stop_at:
                raw = fixed if headers is None else build(host, port, path, body, headers(i, n))
                start = time.perf_counter()
                status, hdrs, _ = await conn.request(raw)
                out.append((status, time.perf_counter() - start, hdrs))
                n += 1
        finally:
            conn.close()

    await asyncio.gather(*(worker(i) for i in range(clients)))
    return out


async def open_loop(
    url: str, path: str, body: bytes, *, rate: float, seconds: float
) -> list[Result]:
    """Requests at a fixed rate, whatever the answers take (idle connections are reused)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    raw = build(host, port, path, body)
    idle: list[_Conn] = []
    out: list[Result] = []

    async def one() -> None:
        conn = idle.pop() if idle else await _Conn.open(host, port)
        start = time.perf_counter()
        status, hdrs, _ = await conn.request(raw)
        out.append((status, time.perf_counter() - start, hdrs))
        idle.append(conn)

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for conn in idle:
        conn.close()
    return out


def summary(results: list[Result], seconds: float) -> dict[str, Any]:
    """Requests per second, latency percentiles (ms) and status counts."""
    import statistics

    lat = sorted(t for _, t, _ in results)
    statuses: dict[int, int] = {}
    for s, _, _ in results:
        statuses[s] = statuses.get(s, 0) + 1
    q = statistics.quantiles(lat, n=100) if len(lat) > 1 else lat * 99
    return {
        "requests": len(results),
        "rps": len(results) / seconds,
        "p50_ms": 1000 * statistics.median(lat),
        "p99_ms": 1000 * q[98],
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("path")
    parser.add_argument("body")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--rate", type=float)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    body = args.body.encode()
    if args.rate:
        results = asyncio.run(
            open_loop(args.url, args.path, body, rate=args.rate, seconds=args.seconds)
        )
    else:
        results = asyncio.run(
            closed_loop(args.url, args.path, body, clients=args.clients, seconds=args.seconds)
        )
    print(json.dumps(summary(results, args.seconds)))


if __name__ == "__main__":
    main()
