"""Signing in and out, the language setting, the home page."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import PermissionDeniedException
from litestar.response import Redirect

from engine.errors import Invalid
from engine.runtime import Actor
from engine.runtime.actors import set_language

from ..auth import PUBLIC_OPT, Credentials, own_origins, session_actor
from ..deps import RuntimeDep
from ..limits import TooManyAttempts, checked_sign_in
from ..sessions import SESSION_AGE, SESSION_COOKIE, close_session, open_session
from .common import local_target, redirect, show
from .i18n import LANGUAGES
from .render import LANGUAGE_COOKIE

MAX_FORM_FIELD = 200


@get("/", opt={PUBLIC_OPT: True}, include_in_schema=False)
async def home(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Redirect:
    """Staff start at the Order Manager, customers (and visitors of an open portal) at their orders."""
    found = await session_actor(request, runtime)
    if found is not None and not found[0].is_staff:
        return Redirect("/portal", status_code=303)
    return Redirect("/manager", status_code=303)


@get("/login", opt={PUBLIC_OPT: True}, include_in_schema=False)
async def login_page(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[str]:
    return show(request, runtime, "login.html", next=local_target(request.query_params.get("next"), default=""),
                expired=bool(request.query_params.get("expired")), error=False, login="")


@post("/login", opt={PUBLIC_OPT: True}, include_in_schema=False)
async def login(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    origin = request.headers.get("origin")
    if origin is not None and origin.rstrip("/") not in own_origins(request, runtime):
        raise PermissionDeniedException(f"a sign-in from another site ({origin[:100]}) is refused")
    form = await request.form()
    login_name = str(form.get("login") or "")[:MAX_FORM_FIELD]
    password = str(form.get("password") or "")[:MAX_FORM_FIELD]
    target = local_target(str(form.get("next") or ""), default="")
    try:
        user = await checked_sign_in(request, runtime.db, login_name, password) if login_name and password else None
    except TooManyAttempts:
        return show(request, runtime, "login.html", status=429, next=target, expired=False, error="limited",
                    login=login_name)
    if user is None:
        return show(request, runtime, "login.html", status=401, next=target, expired=False, error=True,
                    login=login_name)
    session = await open_session(runtime.db, user)
    if not target:  # signed in from the plain sign-in page: staff to the Order Manager, customers to the portal
        staff = await runtime.db.fetch_value("SELECT is_staff FROM rc_user WHERE id = {}", user)
        target = "/manager" if staff else "/portal"
    response = Redirect(target, status_code=303)
    response.set_cookie(Cookie(key=SESSION_COOKIE, value=session.key, httponly=True, samesite="lax", path="/",
                               secure=request.url.scheme == "https", max_age=int(SESSION_AGE.total_seconds())))
    return response


@post("/logout", include_in_schema=False)
async def logout(request: Request[Actor, Credentials, Any], runtime: RuntimeDep) -> Response[Any]:
    if request.auth.session_key:
        await close_session(runtime.db, request.auth.session_key)
    response = redirect(request, "/login")
    response.set_cookie(Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/"))
    return response


@post("/settings/language", include_in_schema=False)
async def choose_language(request: Request[Actor, Credentials, Any], runtime: RuntimeDep) -> Response[Any]:
    form = await request.form()
    language = str(form.get("language") or "")
    if language not in LANGUAGES:
        raise Invalid("the language is not offered",
                      [{"field": "language", "message": f"one of: {', '.join(LANGUAGES)}"}])
    await set_language(runtime.db, request.user.id or 0, language)
    response = Response(None, status_code=204, headers={"HX-Refresh": "true"})
    response.set_cookie(Cookie(key=LANGUAGE_COOKIE, value=language, path="/", samesite="lax",
                               max_age=365 * 24 * 3600))
    return response
