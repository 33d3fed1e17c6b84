"""Every error the API answers with, mapped to JSON in this one place.

The body is always ``{"error": code, "detail": text, "errors": [{"field", "message"}]}``;
a conflict adds ``current_version`` and ``changed``. Nothing else leaves the server:
no stack traces, no driver messages. ``document_errors`` puts that shape, and the
statuses each operation can answer with, into the OpenAPI document.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.routes import HTTPRoute
from litestar.types import ExceptionHandlersMap
from msgspec import UNSET, UnsetType

from engine.db import unavailable
from engine.errors import Conflict, ServiceError

from .auth import PUBLIC_OPT

log = logging.getLogger("routecard.api")

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "too_many_requests",
    503: "unavailable",
}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")


class Problem(msgspec.Struct):
    """One problem with the request, by field path (``fields.quantity``, ``version``, ``body``)."""

    field: str
    message: str


class ErrorBody(msgspec.Struct, kw_only=True):
    """Every error answer of the API."""

    error: str
    """A stable code for programs: ``not_found``, ``invalid``, ``conflict``, ``refused``, ..."""
    detail: str
    """What went wrong, for people."""
    errors: list[Problem]
    """Each problem by field (may be empty)."""
    current_version: int | UnsetType = UNSET
    """Conflicts only: the work order's version now."""
    changed: list[str] | UnsetType = UNSET
    """Conflicts only: what changed since the version you sent."""


def error_body(code: str, detail: str, errors: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": code, "detail": detail, "errors": errors or [], **extra}


def _path(text: str) -> str:
    """msgspec's ``$.fields.qty`` / ``$[0].x`` as ``fields.qty`` / ``0.x``."""
    return re.sub(r"\[(\d+)\]", r".\1", text).strip(".")


def decode_problem(message: str, key: str = "") -> dict[str, str]:
    """One msgspec decoding message (and Litestar's key of the value) as a ``{field, message}`` entry."""
    match = _AT.match(message.strip())
    text, path = (match["message"], match["path"] or "") if match else (message, "")
    where = ".".join(p for p in (key.removeprefix("data").strip("."), _path(path)) if p)
    unknown = _UNKNOWN.search(text)
    if unknown:
        field = ".".join(p for p in (where, unknown["name"]) if p)
        return {"field": field, "message": f"`{unknown['name']}` is not a known field here"}
    return {"field": where or "body", "message": text}


def _service_error(_: Request[Any, Any, Any], exc: ServiceError) -> Response[Any]:
    extra: dict[str, Any] = {}
    if isinstance(exc, Conflict):
        extra = {"current_version": exc.current_version, "changed": exc.changed}
    return Response(error_body(exc.code, exc.detail, exc.errors, **extra), status_code=exc.status)


def _validation_error(_: Request[Any, Any, Any], exc: ValidationException) -> Response[Any]:
    """Bodies and parameters that do not have the declared shape: 400 for broken JSON, else 422."""
    errors: list[dict[str, str]] = []
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if not isinstance(item, dict):
            continue
        source = item.get("source")
        if source == "body":
            errors.append(decode_problem(str(item.get("message", "")), str(item.get("key", ""))))
        else:
            errors.append({"field": str(item.get("key") or source or "request"), "message": str(item.get("message", ""))})
    return Response(error_body("invalid", "the request does not have the expected shape", errors), status_code=422)


def _http_error(_: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    detail = exc.detail if status < 500 else "internal error"
    errors: list[dict[str, str]] = []
    if status == 400 and ("JSON" in detail or "decode" in detail.lower()):
        detail = "the body is not valid JSON"
        errors = [{"field": "body", "message": "send a JSON object (Content-Type: application/json)"}]
    if status == 413:
        detail = "the request body is too large"
    headers = dict(exc.headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return Response(error_body(_CODES.get(status, "error"), detail, errors), status_code=status,
                    headers=headers or None)


NUL_IN_TEXT = "22021"
"""PostgreSQL's ``character_not_in_repertoire``: text holding the NUL character, which it cannot store."""


def _sqlstate(exc: BaseException) -> str | None:
    """The SQLSTATE of ``exc`` or of what caused it (the database layer may wrap the driver's error)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        current = current.__cause__ or current.__context__
    return None


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    if _sqlstate(exc) == NUL_IN_TEXT:  # a value with U+0000 reached PostgreSQL: the client's mistake
        return Response(error_body("invalid", "the request does not have the expected shape", [
            {"field": "request", "message": "text may not contain the NUL character (U+0000)"}]), status_code=422)
    if unavailable(exc):  # the database is down or restarting: not a bug, and worth trying again shortly
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return Response(error_body("unavailable", "the database is not reachable; try again shortly"),
                        status_code=503, headers={"Retry-After": "1"})
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(error_body("internal", "internal error; the server log has the details"), status_code=500)


_MEANINGS = {
    400: "The body is not valid JSON, or a query names an unknown filter, sort key or cursor.",
    401: "No valid credentials: send `Authorization: Bearer <token>`, or sign in.",
    403: "Not allowed: a permission is missing, or a signed-in browser request lacks its CSRF token.",
    404: "Not found, or not yours to see (the same answer for both).",
    409: "Refused by the workflow now, or changed since you read it (see `current_version` and `changed`).",
    413: "The request body is too large.",
    422: "A value does not have the documented shape or breaks the definitions; `errors` names each field.",
    503: "The database is not reachable; try again shortly (see `Retry-After`).",
}
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _error_statuses(handler: HTTPRouteHandler, route: HTTPRoute, public: bool) -> list[int]:
    """The error statuses ``handler`` can answer with, from what it takes and whether it changes anything."""
    unsafe = bool(handler.http_methods & UNSAFE)
    inputs = unsafe or bool(route.path_parameters) or bool(
        set(handler.parsed_fn_signature.parameters) - {"self", "request", "runtime", "files"})
    statuses = [400, 404, 422] if inputs else []  # 404: a path, query or body value names nothing we have
    if not public:  # public ones (health, readiness, sign-in) say themselves what else they answer
        statuses += [401, 403, 503]
    if unsafe and not public:
        statuses.append(409)
    if handler.http_methods & {"POST", "PUT", "PATCH"}:
        statuses.append(413)
    return sorted(statuses)


def error_response(status: int, description: str | None = None) -> ResponseSpec:
    """The OpenAPI answer ``status`` with the error body; for a handler's own ``responses``."""
    return ResponseSpec(data_container=ErrorBody, generate_examples=False,
                        description=description or _MEANINGS.get(status, "An error."))


def document_errors(app: Litestar) -> None:
    """Document every operation's error answers with ``ErrorBody`` (instead of Litestar's default shape).

    Called once the routes are registered and before the OpenAPI document is first built.
    Statuses a handler declares itself (its ``responses``) are kept as they are; public
    handlers (``opt={PUBLIC_OPT: True}``) answer no 401/403.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if not handler.resolve_include_in_schema():
                continue
            public = bool(handler.opt.get(PUBLIC_OPT))
            documented = {s: error_response(s) for s in _error_statuses(handler, route, public)}
            handler.responses = {**documented, **(handler.responses or {})}


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ServiceError: _service_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""Given to the ``Litestar`` app: the one mapping of errors to responses."""
