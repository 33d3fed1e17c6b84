"""Signing in: browser sessions (``/api/session``) and API tokens (``/api/tokens``)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath, JSONBody

from engine.errors import NotFound
from engine.runtime import Actor, create_token

from ..auth import CSRF_HEADER, PUBLIC_OPT, Credentials
from ..deps import RuntimeDep
from ..limits import checked_sign_in
from ..sessions import (
    SESSION_AGE,
    SESSION_COOKIE,
    close_session,
    list_tokens,
    open_session,
    revoke_token,
    token_id,
)
from .bodies import LoginBody, TokenBody


def _who(actor: Actor) -> dict[str, Any]:
    return {"login": actor.login, "name": actor.name, "groups": sorted(actor.groups), "roles": sorted(actor.roles),
            "is_staff": actor.is_staff}


class SessionController(Controller):
    path = "/api/session"
    tags = ["access"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post("/", opt={PUBLIC_OPT: True}, summary="Sign in with login and password; sets the session cookie")
    async def login(self, request: Request[Any, Any, Any], runtime: RuntimeDep,
                    data: JSONBody[LoginBody]) -> Response[dict[str, Any]]:
        user = await checked_sign_in(request, runtime.db, data.login, data.password)
        if user is None:
            raise NotAuthorizedException("wrong login or password")
        session = await open_session(runtime.db, user)
        cookie = Cookie(key=SESSION_COOKIE, value=session.key, httponly=True, samesite="lax", path="/",
                        max_age=int(SESSION_AGE.total_seconds()))
        return Response({"login": data.login, "csrf_token": session.csrf, "csrf_header": CSRF_HEADER},
                        status_code=201, cookies=[cookie])

    @get("/", summary="The signed-in user and, for a session, its CSRF token")
    async def whoami(self, request: Request[Actor, Credentials, Any]) -> dict[str, Any]:
        return {**_who(request.user), "via": request.auth.via, "csrf_token": request.auth.csrf}

    @delete("/", status_code=204, summary="Sign out")
    async def logout(self, request: Request[Actor, Credentials, Any], runtime: RuntimeDep) -> Response[None]:
        if request.auth.session_key:
            await close_session(runtime.db, request.auth.session_key)
        return Response(None, status_code=204, cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/")])


class TokenController(Controller):
    path = "/api/tokens"
    tags = ["access"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post("/", summary="Create an API token for yourself; the token is shown only in this answer")
    async def create(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, data: JSONBody[TokenBody]) -> dict[str, Any]:
        assert request.user.id is not None
        token = await create_token(runtime.db, request.user.id, data.name)
        return {"id": await token_id(runtime.db, token), "name": data.name, "token": token}

    @get("/", summary="Your API tokens (never the tokens themselves)")
    async def list_view(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> list[dict[str, Any]]:
        assert request.user.id is not None
        return await list_tokens(runtime.db, request.user.id)

    @delete("/{token:int}", status_code=204, summary="Revoke one of your API tokens")
    async def revoke(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, token: FromPath[int]) -> None:
        assert request.user.id is not None
        if not await revoke_token(runtime.db, request.user.id, token):
            raise NotFound(f"you have no token {token}")
