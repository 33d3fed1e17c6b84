"""Who is calling: an API token (``Authorization: Bearer``) or a browser session cookie.

Requests authenticated by a session cookie must prove they come from our own pages
when they change something: an unsafe method needs the ``x-csrftoken`` header equal
to the session's CSRF token (shown at login and by ``GET /api/session``), and an
``Origin`` header, when sent, must be our own (the workspace's ``base_url`` or the
request's own origin). Token
requests carry no ambient credentials and need no CSRF token. Handlers marked
``opt={"public": True}`` (health, login) are open; everything else answers 401
without credentials, before the body is read.
"""

from __future__ import annotations

import hmac
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
    DefineMiddleware,
)

from engine.errors import NotFound
from engine.runtime import Actor, Runtime
from engine.runtime.actors import token_holder

from .sessions import SESSION_COOKIE, find_session

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "x-csrftoken"
PUBLIC_OPT = "public"


class Credentials(msgspec.Struct, frozen=True):
    """How the request was authenticated (``request.auth``)."""

    via: Literal["token", "session"]
    session_key: str | None = None
    csrf: str | None = None


class AuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        runtime: Runtime = connection.app.state.runtime
        header = connection.headers.get("authorization")
        if header is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise NotAuthorizedException("use `Authorization: Bearer <token>`")
            holder = await token_holder(runtime.db, token.strip())
            actor = await _actor(runtime, holder.user if holder else None, holder.generation if holder else None)
            return AuthenticationResult(user=actor, auth=Credentials("token"))
        found = await session_actor(connection, runtime)
        if found is not None:
            return AuthenticationResult(user=found[0], auth=found[1])
        raise NotAuthorizedException("authentication required: `Authorization: Bearer <token>` or a session")


async def session_actor(connection: ASGIConnection[Any, Any, Any, Any],
                        runtime: Runtime) -> tuple[Actor, Credentials] | None:
    """The signed-in user of the request's session cookie (``None``: no valid session).

    Unsafe methods must come from our own pages (``Origin``) and carry the session's
    CSRF token. Pages open to visitors (the portal's public forms) call this themselves.
    """
    key = connection.cookies.get(SESSION_COOKIE)
    if not key:
        return None
    session = await find_session(runtime.db, key)
    if session is None:
        return None
    check_same_origin(connection, runtime)
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        sent = connection.headers.get(CSRF_HEADER, "")
        if not (sent and hmac.compare_digest(sent.encode(), session.csrf.encode())):
            raise PermissionDeniedException(
                f"the CSRF token is missing or wrong: send the `{CSRF_HEADER}` header "
                "given at login (GET /api/session shows it)")
    actor = await _actor(runtime, session.user_id, session.generation)
    return actor, Credentials("session", session_key=session.key, csrf=session.csrf)


def check_same_origin(connection: ASGIConnection[Any, Any, Any, Any], runtime: Runtime) -> None:
    """Refuse an unsafe request whose ``Origin`` is not one of ours (cross-site form posts)."""
    if connection.scope.get("method", "GET") in SAFE_METHODS:
        return
    origin = connection.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in own_origins(connection, runtime):
        raise PermissionDeniedException(f"a cross-site request from {origin[:100]} is refused")


def own_origins(connection: ASGIConnection[Any, Any, Any, Any], runtime: Runtime) -> set[str]:
    """The origins our own pages have: the configured base URL's and the request's own."""
    base = urlsplit(runtime.workspace.settings.base_url)
    own = urlsplit(str(connection.base_url))
    return {f"{base.scheme}://{base.netloc}", f"{own.scheme}://{own.netloc}"}


async def _actor(runtime: Runtime, user: int | None, generation: Any) -> Actor:
    if user is None:
        raise NotAuthorizedException("the token or session is not valid (unknown, revoked or expired)")
    try:
        return await runtime.actors.get(runtime.db, runtime.workspace, user, generation)
    except NotFound:
        raise NotAuthorizedException("the user is not active") from None


def auth_middleware() -> DefineMiddleware:
    """The middleware as the app registers it; ``/schema`` (the OpenAPI document) stays open."""
    return DefineMiddleware(AuthMiddleware, exclude=[r"^/schema(/|$)"], exclude_from_auth_key=PUBLIC_OPT)
