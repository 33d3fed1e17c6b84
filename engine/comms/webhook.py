"""Outbound HTTP for webhooks and plugin actions: SSRF guard, pinned connections, HMAC signatures.

``check_url`` refuses, before anything is sent, a URL whose scheme is not http(s), that
carries credentials, or whose host is written as a number in a non-standard form
(``2130706433``, ``0177.0.0.1``, ``0x7f.1``). ``resolve`` looks the host up and refuses it
when ANY of its addresses is not a public unicast one: loopback, private (RFC 1918, ULA),
link-local (including the cloud metadata address 169.254.169.254), CGNAT (100.64/10),
multicast, unspecified, reserved, or an IPv6 address mapping one of those (IPv4-mapped,
6to4). The admin lets a host through explicitly with ``allow_hosts``. ``post_json``
then connects to the validated address itself (the name is not looked up again, so DNS
rebinding cannot swap it), sends the original host name in ``Host`` and TLS SNI, and
never follows redirects. Errors say what happened without echoing the upstream body.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import re
import socket
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

MAX_BODY = 64 * 1024
EXCERPT = 200
SIGNATURE_HEADER = "X-Routecard-Signature"
TIMESTAMP_HEADER = "X-Routecard-Timestamp"
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be called (SSRF guard); the message says why, without secrets."""


@dataclass(frozen=True)
class Target:
    """A URL checked by the guard, with the address it will be sent to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str


@dataclass(frozen=True)
class Response:
    """What the receiver answered: status and a short, printable excerpt of its body."""

    status: int
    excerpt: str
    body: bytes = b""
    """The answer's first MAX_BODY bytes, for a plugin that reads it (never shown as is)."""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _allowed(host: str, allow_hosts: Collection[str]) -> bool:
    return host in {h.strip().lower().rstrip(".") for h in allow_hosts}


def forbidden_address(ip: IPAddress) -> str | None:
    """Why a request must not go to ``ip``, or ``None`` for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = ip.ipv4_mapped or ip.sixtofour
        if inner is not None:
            problem = forbidden_address(inner)
            return f"{problem} (inside the IPv6 address {ip})" if problem else None
    if ip.is_loopback:
        return f"{ip} is a loopback address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (cloud metadata lives here)"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address (shared, reserved or documentation range)"
    return None


def check_url(url: str, allow_hosts: Collection[str] = ()) -> tuple[str, str, int]:
    """(scheme, host, port) of ``url``; ``Refused`` if its form alone rules it out."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"only http and https URLs may be called, not {scheme or 'a URL without scheme'}")
    if parts.username is not None or parts.password is not None:
        raise Refused("the URL may not carry a user name or password")
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        raise Refused("the URL has no host")
    port = port or (443 if scheme == "https" else 80)
    if _allowed(host, allow_hosts):
        return scheme, host, port
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if all(_NUMERIC_LABEL.match(label) for label in host.split(".")):
            raise Refused(f"the host {host} is a number in a non-standard form; write a name or a dotted address")
        return scheme, host, port
    problem = forbidden_address(ip)
    if problem:
        raise Refused(f"{problem}; allow the host explicitly to call it")
    return scheme, host, port


async def resolve(url: str, allow_hosts: Collection[str] = ()) -> Target:
    """Check ``url`` and pick the address to connect to; ``Refused`` if any address is forbidden."""
    scheme, host, port = check_url(url, allow_hosts)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise Refused(f"the host {host} could not be resolved ({exc.strerror})") from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not addresses:
        raise Refused(f"the host {host} has no address")
    if not _allowed(host, allow_hosts):
        for ip in addresses:
            problem = forbidden_address(ip)
            if problem:
                raise Refused(f"{host} resolves to {ip}: {problem}; allow the host explicitly to call it")
    return Target(url=url.strip(), scheme=scheme, host=host, port=port, address=str(addresses[0]))


def sign(secret: str, body: bytes, timestamp: str) -> str:
    """The signature header's value: ``sha256=`` HMAC-SHA256 of ``timestamp.body`` under ``secret``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, body: bytes, timestamp: str, signature: str) -> bool:
    """Whether ``signature`` is ``sign(secret, body, timestamp)`` (constant time), for receivers."""
    return hmac.compare_digest(sign(secret, body, timestamp), signature)


def signed_headers(secret: str | None, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers of ``body`` (none without a secret)."""
    if not secret:
        return {}
    timestamp = str(int(time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, body, timestamp)}


def _excerpt(body: bytes) -> str:
    text = body[:EXCERPT * 4].decode("utf-8", "replace")
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:EXCERPT]


async def post_json(url: str, body: bytes, *, headers: Mapping[str, str] | None = None,
                    allow_hosts: Collection[str] = (), timeout: float = 10.0) -> Response:
    """POST ``body`` (JSON) to ``url`` through the guard, connected to the pinned address.

    Raises ``Refused`` (guard), ``httpx.HTTPError`` (connection, timeout). A redirect is
    returned as it is, never followed.
    """
    target = await resolve(url, allow_hosts)
    parts = urlsplit(target.url)
    address = f"[{target.address}]" if ":" in target.address else target.address
    pinned = f"{target.scheme}://{address}:{target.port}{parts.path or '/'}{'?' + parts.query if parts.query else ''}"
    default_port = 443 if target.scheme == "https" else 80
    host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
    sent = {"Content-Type": "application/json", "User-Agent": "Routecard-Webhook/1", **(headers or {}),
            "Host": host_header}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False) as client:
        async with client.stream("POST", pinned, content=body, headers=sent, extensions=extensions) as answer:
            data = b""
            async for chunk in answer.aiter_bytes():
                data += chunk
                if len(data) >= MAX_BODY:
                    break
            return Response(status=answer.status_code, excerpt=_excerpt(data), body=data[:MAX_BODY])


def describe_failure(exc: BaseException) -> str:
    """A connection failure in words, without upstream bodies or environment values."""
    if isinstance(exc, Refused):
        return f"refused: {exc}"
    if isinstance(exc, httpx.TimeoutException):
        return "the receiver did not answer in time"
    if isinstance(exc, httpx.HTTPError):
        return f"could not reach the receiver ({type(exc).__name__})"
    return f"{type(exc).__name__}"


def status_outcome(response: Response) -> tuple[str | None, bool]:
    """(error or ``None``, permanent) for a receiver's answer: 2xx fine, 5xx/408/429 retried."""
    if response.ok:
        return None, False
    if 300 <= response.status < 400:
        return f"the receiver answered {response.status} (a redirect, not followed)", True
    temporary = response.status >= 500 or response.status in (408, 425, 429)
    return f"the receiver answered {response.status}", not temporary
