"""Webhooks: signed outbound HTTP on work-order events (through the outbox) and as an order action.

Settings in routecard.yaml::

    plugins:
      webhook:
        secret_env: ROUTECARD_WEBHOOK_SECRET   # the HMAC key, read from this environment variable
        allow_hosts: [hooks.internal.example]  # hosts let through the SSRF guard explicitly
        timeout: 10
        endpoints:
          - {name: erp, url: "https://erp.example.com/routecard", events: [created, completed]}

Every event of a saved change whose kind an endpoint lists (all events when it lists
none) becomes an outbox row of kind ``webhook`` in the change's transaction; the
outbox worker POSTs the JSON payload with ``X-Routecard-Signature`` (HMAC-SHA256 of
``timestamp.body``) and ``X-Routecard-Timestamp``, retrying with backoff while the
receiver fails. The ``webhook.post`` action (``with: {endpoint: erp}``) posts the order
right away and records the receiver's status and a short excerpt of its answer.
The URL is checked by ``engine.comms.webhook`` when the workspace is checked and again
at every delivery (no internal addresses unless allowed, pinned address, no redirects).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from engine import hookimpl
from engine.comms.webhook import Refused, check_url, describe_failure, post_json, signed_headers, status_outcome
from engine.plugin_api import ActionContext, ActionResult, Channel, Delivery, Event, EventContext, OrderAction, Outcome

KIND = "webhook"

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "secret_env": {"type": "string", "pattern": "^[A-Z_][A-Z0-9_]*$",
                       "description": "Name of the environment variable holding the signing secret."},
        "allow_hosts": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 255},
                        "description": "Host names (or addresses) called even though they are internal."},
        "timeout": {"type": "number", "minimum": 1, "maximum": 60, "description": "Seconds per request (10)."},
        "endpoints": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "url"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$", "maxLength": 40},
                    "url": {"type": "string", "maxLength": 2048},
                    "events": {"type": "array", "items": {"type": "string", "pattern": "^[a-z_]+$"}},
                    "templates": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}


def _endpoint(settings: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    return next((e for e in settings.get("endpoints", ()) if e.get("name") == name), None)


def _secret(settings: Mapping[str, Any]) -> str | None:
    variable = settings.get("secret_env")
    return os.environ.get(variable) if variable else None


async def _post(settings: Mapping[str, Any], url: str, body: Mapping[str, Any],
                extra: Mapping[str, str]) -> tuple[Outcome, int | None, str]:
    """POST ``body`` signed; ((error, permanent), status, excerpt)."""
    data = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()
    headers = {**signed_headers(_secret(settings), data), **extra}
    try:
        response = await post_json(url, data, headers=headers, allow_hosts=settings.get("allow_hosts", ()),
                                   timeout=float(settings.get("timeout", 10)))
    except Refused as exc:
        return (describe_failure(exc), True), None, ""
    except httpx.HTTPError as exc:
        return (describe_failure(exc), False), None, ""
    return status_outcome(response), response.status, response.excerpt


async def send(workspace: Any, deliveries: list[Delivery], timeout: float) -> list[Outcome]:
    """The channel: deliver each queued event to its endpoint as configured NOW (URL, secret, allow list)."""
    settings: Mapping[str, Any] = (getattr(workspace, "plugins", {}) or {}).get("webhook") or {}
    outcomes: list[Outcome] = []
    for delivery in deliveries:
        row = json.loads(delivery.payload)
        endpoint = _endpoint(settings, str(row.get("endpoint")))
        if endpoint is None:
            outcomes.append((f"the endpoint {row.get('endpoint')} is no longer configured", True))
            continue
        outcome, _, _ = await _post(settings, str(endpoint["url"]), row["body"],
                                    {"X-Routecard-Event": str(row["body"].get("event", "")),
                                     "X-Routecard-Delivery": str(row.get("key", ""))})
        outcomes.append(outcome)
    return outcomes


def _describe(payload: bytes) -> str:
    row = json.loads(payload)
    return f"webhook {row.get('body', {}).get('event')} of {row.get('body', {}).get('order', {}).get('number')} " \
           f"to endpoint {row.get('endpoint')}"


async def post_order(context: ActionContext) -> ActionResult:
    """The ``webhook.post`` action: POST the order to an endpoint now and record the answer."""
    name = context.parameters.get("endpoint")
    endpoint = _endpoint(context.settings, str(name)) if isinstance(name, str) else None
    if endpoint is None:
        return ActionResult(ok=False, error=f"no webhook endpoint named {name!r} in the webhook settings")
    body = {"event": "action", "workspace": context.workspace, "order": dict(context.order)}
    (error, _), status, excerpt = await _post(context.settings, str(endpoint["url"]), body,
                                              {"X-Routecard-Event": "action"})
    data = {"status": status, "excerpt": excerpt} if status is not None else {}
    if error:
        return ActionResult(ok=False, error=error, data=data)
    return ActionResult(message=f"the receiver answered {status}", data=data)


@hookimpl
def routecard_settings_schema() -> Mapping[str, Any]:
    return SETTINGS_SCHEMA


@hookimpl
def routecard_settings_problems(settings: Mapping[str, Any]) -> Sequence[tuple[Sequence[str | int], str]]:
    """Each endpoint's URL must pass the guard's static checks (scheme, internal addresses, numeric forms)."""
    problems: list[tuple[Sequence[str | int], str]] = []
    for index, endpoint in enumerate(settings.get("endpoints", ())):
        try:
            check_url(str(endpoint["url"]), settings.get("allow_hosts", ()))
        except Refused as exc:
            problems.append((("endpoints", index, "url"), f"the webhook URL is refused: {exc}"))
    return problems


@hookimpl
def routecard_channels() -> Sequence[Channel]:
    return [Channel(kind=KIND, send=send, describe=_describe)]


@hookimpl
def routecard_actions() -> Sequence[OrderAction]:
    return [OrderAction(name="webhook.post", run=post_order, description="POST the order to a webhook endpoint.")]


def _wants(endpoint: Mapping[str, Any], kind: str, template: Any) -> bool:
    """Does ``endpoint`` take events of ``kind`` about ``template``'s work orders (all, unless it lists some)?"""
    events = endpoint.get("events") or ()
    templates = endpoint.get("templates") or ()
    return (not events or kind in events) and (not templates or template in templates)


@hookimpl
def routecard_event_wanted(kind: str, template: str, settings: Mapping[str, Any]) -> bool:
    return any(_wants(endpoint, kind, template) for endpoint in settings.get("endpoints", ()))


@hookimpl
async def routecard_event(event: Event, context: EventContext) -> None:
    """Queue one delivery per endpoint that wants this event (fires once: keyed by the event)."""
    for endpoint in context.settings.get("endpoints", ()):
        if not _wants(endpoint, event.kind, event.order.get("template")):
            continue
        key = f"{endpoint['name']}:{event.key}"
        body = {"event": event.kind, "workspace": context.workspace, "order": dict(event.order),
                "before": dict(event.before), "after": dict(event.after), "source": event.source}
        await context.send(KIND, key, {"endpoint": endpoint["name"], "key": key, "body": body})
