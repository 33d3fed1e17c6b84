"""What every screen's handler uses: the page context, rendering, redirects, errors as HTML."""

from __future__ import annotations

import functools
from typing import Any
from urllib.parse import quote, urlsplit

from jinja2 import Environment
from litestar import Request, Response
from litestar.enums import MediaType
from litestar.exceptions import HTTPException, NotAuthorizedException, PermissionDeniedException
from litestar.response import Redirect
from markupsafe import escape

from engine.errors import Conflict, Forbidden, Invalid, NotFound, ServiceError
from engine.runtime import Actor, Runtime

from ..sessions import SESSION_COOKIE
from .render import N_, Page, make_environment, render

HTMX_ERROR_TARGET = "#toast"


@functools.cache
def environment() -> Environment:
    """The app's Jinja environment (templates are read once, on first use)."""
    return make_environment()


def page_for(request: Request[Any, Any, Any], runtime: Runtime) -> Page:
    user = request.scope.get("user")
    return Page(request, runtime, user.language if isinstance(user, Actor) else None)


def show(request: Request[Any, Any, Any], runtime: Runtime, name: str, *, status: int = 200,
         headers: dict[str, str] | None = None, **values: Any) -> Response[str]:
    """Render template ``name`` for this request."""
    return render(environment(), page_for(request, runtime), name, status=status, headers=headers, **values)


def local_target(value: str | None, default: str = "/manager") -> str:
    """``value`` if it is a path on this site (``/x``, not ``//host`` or ``http://...``), else ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return default
    return value


def redirect(request: Request[Any, Any, Any], target: str) -> Response[Any]:
    """Go to ``target``: an ``HX-Redirect`` for htmx requests, a 303 otherwise."""
    if request.headers.get("hx-request") == "true":
        return Response(None, status_code=204, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, NotFound):
        return 404, N_("Not found")
    if isinstance(exc, Forbidden | PermissionDeniedException):
        return 403, N_("Not allowed")
    if isinstance(exc, Conflict):
        return 409, N_("Changed meanwhile")
    if isinstance(exc, Invalid):
        return 422, N_("Not accepted")
    if isinstance(exc, ServiceError):
        return exc.status, N_("Request refused")
    if isinstance(exc, HTTPException):
        return exc.status_code, N_("Request refused")
    return 500, N_("Something went wrong")


def _message(exc: Exception) -> str:
    if isinstance(exc, ServiceError) and exc.errors and not isinstance(exc, Conflict):
        return "; ".join(f"{e['field']}: {e['message']}" if e.get("field") else e["message"] for e in exc.errors)
    if isinstance(exc, ServiceError | HTTPException):
        return str(exc.detail if isinstance(exc, HTTPException) else exc)
    return "the server could not answer this request; it has been logged"


def html_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Errors of the screens as HTML: a login redirect, a message in the page, or an error page."""
    if isinstance(exc, NotAuthorizedException):
        expired = "&expired=1" if request.cookies.get(SESSION_COOKIE) else ""
        return redirect(request, f"/login?next={quote(request.url.path + _query(request), safe='')}{expired}")
    status, heading = _status_of(exc)
    if status == 500:
        request.logger.exception("unexpected error on %s", request.url.path)
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if request.headers.get("hx-request") == "true" or runtime is None:
        page = page_for(request, runtime) if runtime is not None else None
        text = page.gettext(heading) if page else heading
        body = f'<p class="error" role="alert"><strong>{escape(text)}:</strong> {escape(_message(exc))}</p>'
        return Response(body, status_code=status, media_type=MediaType.HTML,
                        headers={"HX-Retarget": HTMX_ERROR_TARGET, "HX-Reswap": "innerHTML"})
    page = page_for(request, runtime)
    return render(environment(), page, "error.html", status=status, heading=page.gettext(heading),
                  message=_message(exc))


def _query(request: Request[Any, Any, Any]) -> str:
    query = request.url.query
    return f"?{query}" if query else ""


WEB_EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    ServiceError: html_error,
    HTTPException: html_error,
    Exception: html_error,
}
