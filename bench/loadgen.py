"""A small HTTP/1.1 load generator: N keep-alive connections, each sending requests back to back
(``run``: the most a server does) or at a set pace (``run_paced``: its latency at a given load).

Used by the API benchmarks and the load-and-fault harness so that they need nothing
beyond Python, and so that the clients take little of the CPU the servers are measured
on (a general client such as httpx costs several times more per request). It measures
requests per second and latency percentiles; it is not a general HTTP client (it speaks
just enough HTTP/1.1 for requests to a local server).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Result:
    requests: int = 0
    errors: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def summary(self) -> str:
        errors = ", ".join(f"{code}: {n}" for code, n in sorted(self.errors.items())) or "none"
        return (f"{self.rate:8.0f} req/s  p50 {self.percentile(0.5) * 1000:6.1f} ms  "
                f"p99 {self.percentile(0.99) * 1000:6.1f} ms  ({self.requests} requests, non-2xx: {errors})")


Request = tuple[str, str, bytes, dict[str, str]]
"""method, path, body, extra headers"""


class Connection:
    """One keep-alive HTTP/1.1 connection to a local server."""

    def __init__(self, host: str, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.host, self.port = host, port
        self.reader, self.writer = reader, writer
        self.used = time.monotonic()
        self.closing = False
        """The server said it closes the connection after this answer."""

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(host, port, reader, writer)

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """Send one request and read its answer: (status, body). ``OSError`` or
        ``asyncio.IncompleteReadError`` when the connection breaks."""
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}",
                f"Content-Type: {content_type}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        chunked = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name.lower() == "connection" and "close" in value.lower():
                self.closing = True
        data = b""
        if chunked:
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                data += (await self.reader.readexactly(size + 2))[:size]
                if size == 0:
                    break
        elif length:
            data = await self.reader.readexactly(length)
        self.used = time.monotonic()
        return status, data

    def close(self) -> None:
        self.writer.close()


class Pool:
    """Keep-alive connections to one server, opened as needed; a broken one is dropped."""

    IDLE = 3.0
    """A connection idle longer may have been closed by the server (uvicorn: after 5 s): not reused."""

    def __init__(self, host: str, port: int, timeout: float = 15.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._idle: list[Connection] = []

    async def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        connection = None
        while self._idle:
            candidate = self._idle.pop()
            if time.monotonic() - candidate.used < self.IDLE:
                connection = candidate
                break
            candidate.close()
        try:
            if connection is None:
                connection = await asyncio.wait_for(Connection.open(self.host, self.port), self.timeout)
            answer = await asyncio.wait_for(connection.request(method, path, body, headers, content_type),
                                            self.timeout)
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        if connection.closing:
            connection.close()
        else:
            self._idle.append(connection)
        return answer

    def close(self) -> None:
        for connection in self._idle:
            connection.close()
        self._idle.clear()


async def _connection(host: str, port: int, next_request: Callable[[int], Request | None], worker: int,
                      result: Result, deadline: float) -> None:
    connection = await Connection.open(host, port)
    try:
        while time.perf_counter() < deadline:
            request = next_request(worker)
            if request is None:
                return
            method, path, body, headers = request
            started = time.perf_counter()
            status, _ = await connection.request(method, path, body, headers)
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            if not 200 <= status < 300:
                result.errors[status] = result.errors.get(status, 0) + 1
    finally:
        connection.close()


async def run(host: str, port: int, next_request: Callable[[int], Request | None], *, connections: int = 32,
              seconds: float = 10.0) -> Result:
    """Send requests from ``connections`` connections for ``seconds`` (or until ``next_request`` returns None)."""
    result = Result()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(host, port, next_request, i, result, deadline) for i in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


async def run_paced(host: str, port: int, next_request: Callable[[int], Request | None], *, rate: float,
                    connections: int = 32, seconds: float = 10.0) -> Result:
    """Send ``rate`` requests per second in all, spread evenly over ``connections`` connections.

    Each request has a time it is due; its latency counts from then, not from when it was
    sent, so a slow answer that delays the next request of its connection counts against
    that request too (no "coordinated omission": a server cannot look fast by being slow).
    """
    result = Result()
    opened = [await Connection.open(host, port) for _ in range(connections)]
    started = time.perf_counter()
    deadline = started + seconds
    period = connections / rate

    async def paced(worker: int, connection: Connection) -> None:
        due = started + worker / rate
        try:
            while due < deadline:
                if (wait := due - time.perf_counter()) > 0:
                    await asyncio.sleep(wait)
                request = next_request(worker)
                if request is None:
                    return
                method, path, body, headers = request
                status, _ = await connection.request(method, path, body, headers)
                result.latencies.append(time.perf_counter() - due)
                result.requests += 1
                if not 200 <= status < 300:
                    result.errors[status] = result.errors.get(status, 0) + 1
                due += period
        finally:
            connection.close()

    await asyncio.gather(*(paced(i, connection) for i, connection in enumerate(opened)))
    result.seconds = time.perf_counter() - started
    return result


def merged(results: list[Result]) -> Result:
    """Several runs of the same load as one."""
    out = Result()
    for result in results:
        out.requests += result.requests
        out.seconds += result.seconds
        out.latencies += result.latencies
        for status, count in result.errors.items():
            out.errors[status] = out.errors.get(status, 0) + count
    return out


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
