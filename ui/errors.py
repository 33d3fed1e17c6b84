"""Every error the API answers with, mapped to JSON in this one place.

The body is always ``{"error": code, "detail": text, "errors": [{"field", "message"}]}``;
a conflict adds ``current_version`` and ``changed``. Nothing else leaves the server:
no stack traces, no driver messages.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from engine.errors import Conflict, ServiceError

log = logging.getLogger("routecard.api")

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "too_many_requests",
}
_AT = re.compile(r"^(?P<message>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")


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


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return Response(error_body("internal", "internal error; the server log has the details"), status_code=500)


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    ServiceError: _service_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}
"""Given to the ``Litestar`` app: the one mapping of errors to responses."""
