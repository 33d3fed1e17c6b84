"""Host headers: a request must name the host it is for, and may not claim another one.

Links in mail are built from the workspace's ``base_url``, never from a request, but
pages and redirects use the request's own address. So a request without ``Host`` is
refused (400), and a ``X-Forwarded-Host`` (or ``Forwarded: host=``) header, which a
reverse proxy sets to the public name, must name the ``base_url``'s host or the
request's own ``Host``; anything else is a spoofing attempt and gets 400 before any
handler runs.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPResponseBodyEvent, HTTPResponseStartEvent, Receive, Scope, Send


def forwarded_hosts(headers: dict[str, str]) -> list[str]:
    """The hosts named by ``X-Forwarded-Host`` and ``Forwarded: host=...``, lower-cased."""
    hosts = [h.strip() for h in headers.get("x-forwarded-host", "").split(",") if h.strip()]
    for element in headers.get("forwarded", "").split(","):
        for pair in element.split(";"):
            key, _, value = pair.strip().partition("=")
            if key.strip().lower() == "host" and value.strip():
                hosts.append(value.strip().strip('"'))
    return [h.lower() for h in hosts]


def host_problem(headers: dict[str, str], base_url: str) -> str | None:
    """Why a request with ``headers`` (lower-cased names) is refused, or ``None``."""
    host = headers.get("host", "").strip().lower()
    if not host:
        return "the request has no Host header"
    allowed = {host, urlsplit(base_url).netloc.lower()}
    for claimed in forwarded_hosts(headers):
        if claimed not in allowed:
            return f"the forwarded host {claimed[:100]!r} is neither this server's host nor the configured base_url's"
    return None


class HostGuard:
    """ASGI middleware refusing requests whose host headers are missing or spoofed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            runtime: Any = scope["app"].state.get("runtime")
            base_url = runtime.workspace.settings.base_url if runtime is not None else ""
            problem = host_problem(headers, base_url)
            if problem is not None:
                body = msgspec.json.encode({"error": "bad_host", "detail": problem})
                start: HTTPResponseStartEvent = {
                    "type": "http.response.start", "status": 400,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]}
                end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
                await send(start)
                await send(end)
                return
        await self.app(scope, receive, send)
