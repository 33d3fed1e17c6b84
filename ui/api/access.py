"""Signing in: browser sessions (``/api/session``) and API tokens (``/api/tokens``)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody, PathParameter

from engine.errors import NotFound
from engine.runtime import Actor, create_token

from ..auth import CSRF_HEADER, PUBLIC_OPT, Credentials
from ..deps import RuntimeDep
from ..errors import error_response
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
from .bodies import ID_MAX, LoginBody, TokenBody

TokenId = Annotated[int, PathParameter(ge=1, le=ID_MAX, description="the token's id (GET /api/tokens lists them)")]


def _who(actor: Actor) -> dict[str, Any]:
    return {"login": actor.login, "name": actor.name, "groups": sorted(actor.groups), "roles": sorted(actor.roles),
            "is_staff": actor.is_staff}


class SessionController(Controller):
    path = "/api/session"
    tags = ["access"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @post("/", opt={PUBLIC_OPT: True}, summary="Sign in with login and password; sets the session cookie",
          responses={401: error_response(401, "Wrong login or password."),
                     429: error_response(429, "Too many failed sign-ins for this login or client; wait a while.")})
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

    @delete("/", status_code=204, summary="Sign out",
            response_cookies=[Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/",
                                     description="cleared: the session is over")])
    async def logout(self, request: Request[Actor, Credentials, Any], runtime: RuntimeDep) -> None:
        if request.auth.session_key:
            await close_session(runtime.db, request.auth.session_key)


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
    async def revoke(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, token: TokenId) -> None:
        assert request.user.id is not None
        if not await revoke_token(runtime.db, request.user.id, token):
            raise NotFound(f"you have no token {token}")
