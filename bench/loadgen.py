"""A small HTTP/1.1 load generator: N keep-alive connections, each sending requests back to back.

Used by the API benchmarks so they need nothing beyond Python. It measures
requests per second and latency percentiles; it is not a general HTTP client
(it speaks just enough HTTP/1.1 for JSON requests to a local server).
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


async def _connection(host: str, port: int, next_request: Callable[[int], Request | None], worker: int,
                      result: Result, deadline: float) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            request = next_request(worker)
            if request is None:
                return
            method, path, body, headers = request
            head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}",
                    "Content-Type: application/json"] + [f"{k}: {v}" for k, v in headers.items()]
            started = time.perf_counter()
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            chunked = False
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
                elif name.lower() == "transfer-encoding" and "chunked" in value:
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readline()).strip(), 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            elif length:
                await reader.readexactly(length)
            result.latencies.append(time.perf_counter() - started)
            result.requests += 1
            if not 200 <= status < 300:
                result.errors[status] = result.errors.get(status, 0) + 1
    finally:
        writer.close()


async def run(host: str, port: int, next_request: Callable[[int], Request | None], *, connections: int = 32,
              seconds: float = 10.0) -> Result:
    """Send requests from ``connections`` connections for ``seconds`` (or until ``next_request`` returns None)."""
    result = Result()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(host, port, next_request, i, result, deadline) for i in range(connections)))
    result.seconds = time.perf_counter() - started
    return result


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0
