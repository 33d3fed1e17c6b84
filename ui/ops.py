"""What operators and load balancers ask of a server: liveness, readiness, metrics, request logs.

- ``GET /healthz``: the process answers (no database needed) — for restarts.
- ``GET /readyz``: the database answers within a second and is at the definition
  version served — for taking a server in and out of a load balancer (503 otherwise).
- ``GET /metrics``: Prometheus text: requests and latencies by route, rule firings,
  SLA sweeps and escalations, jobs, mail deliveries, and, measured at each scrape,
  open work orders per queue, the outbox backlog and due jobs. Open to loopback
  clients; others need ``Authorization: Bearer $ROUTECARD_METRICS_TOKEN``.
- Every request gets an id (a sane ``X-Request-ID`` from the proxy is kept, else a
  new one), echoed in the response and written with one log record per request.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import re
import secrets
import time
from typing import Any

from litestar import Request, Response, get
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from engine import metrics
from engine.runtime import Runtime
from engine.runtime.state import FINAL, now

from .auth import PUBLIC_OPT
from .deps import RuntimeDep

log = logging.getLogger("routecard.request")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
METRICS_TOKEN_ENV = "ROUTECARD_METRICS_TOKEN"
READY_TIMEOUT = 1.0


class RequestLog:
    """ASGI middleware: gives each routed HTTP request its id and start time (``before_send`` logs it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            _begin(scope)
        await self.app(scope, receive, send)


def _begin(scope: Scope) -> dict[str, Any]:
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        state["request_id"] = sent if REQUEST_ID.match(sent) else secrets.token_hex(8)
        state["request_started"] = time.perf_counter()
    return state


async def log_response(message: Message, scope: Scope) -> None:
    """``before_send`` hook: when a response starts (errors included), echo the id, count it and log it."""
    if message["type"] != "http.response.start" or scope["type"] != ScopeType.HTTP:
        return
    state = _begin(scope)
    request_id = state["request_id"]
    MutableScopeHeaders.from_message(message)["x-request-id"] = request_id
    elapsed = time.perf_counter() - state["request_started"]
    route = str(scope.get("path_template") or "(unrouted)")
    method = scope.get("method", "GET")
    status = message["status"]
    metrics.REQUESTS.inc(method, route, str(status))
    metrics.LATENCY.observe(elapsed, method, route)
    log.info("%s %s %s %.1f ms", method, scope["path"], status, elapsed * 1000,
             extra={"request_id": request_id, "method": method, "route": route, "status": status,
                    "ms": round(elapsed * 1000, 2)})


@get("/healthz", opt={PUBLIC_OPT: True}, tags=["operations"], summary="Is the process alive?")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", opt={PUBLIC_OPT: True}, tags=["operations"],
     summary="Can this server take requests: is its database reachable and at the served definitions?")
async def readyz(runtime: RuntimeDep) -> Response[dict[str, Any]]:
    try:
        applied = await asyncio.wait_for(runtime.applied_version(), READY_TIMEOUT)
    except Exception as exc:  # any database trouble means "not ready", never a 500
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        return Response({"status": "unavailable", "detail": f"the database does not answer ({reason})"},
                        status_code=503)
    if applied != runtime.workspace.fingerprint:
        return Response({"status": "unavailable", "detail": "the database is at other definitions than served",
                         "served": runtime.workspace.fingerprint[:12], "applied": (applied or "none")[:12]},
                        status_code=503)
    return Response({"status": "ready", "definition_version": runtime.workspace.fingerprint[:12]})


def _may_scrape(request: Request[Any, Any, Any]) -> bool:
    token = os.environ.get(METRICS_TOKEN_ENV)
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return request.client is not None and request.client.host in LOOPBACK


async def measured(runtime: Runtime) -> list[str]:
    """Gauges read from the database at scrape time: open work per queue, outbox backlog, due jobs."""
    db = runtime.db
    finals = sorted(FINAL)
    open_rows = await db.fetch(
        "SELECT queue, COUNT(*) AS n FROM rc_work_order WHERE status NOT IN ({}, {}) GROUP BY queue", *finals)
    counts = {str(r["queue"]): int(r["n"]) for r in open_rows}
    backlog = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_outbox WHERE state = 'pending'")
    due = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_job WHERE state = 'pending' AND run_at <= {}", now())
    return [
        *metrics.gauge("routecard_open_work_orders", "Work orders not completed or cancelled, by queue.",
                       (({"queue": q}, counts.get(q, 0)) for q in sorted(runtime.workspace.queues))),
        *metrics.gauge("routecard_outbox_backlog", "Mails and webhooks waiting in the outbox.", [({}, backlog or 0)]),
        *metrics.gauge("routecard_jobs_due", "Scheduled jobs whose time has come.", [({}, due or 0)]),
    ]


@get("/metrics", opt={PUBLIC_OPT: True}, tags=["operations"], include_in_schema=False)
async def metrics_page(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[str]:
    if not _may_scrape(request):
        return Response("metrics are served to loopback clients, or with the metrics token\n", status_code=403,
                        media_type="text/plain")
    return Response(metrics.render(await measured(runtime)), media_type="text/plain; version=0.0.4")


OPS_HANDLERS = (healthz, readyz, metrics_page)
