"""The customer portal: "My orders" (forms, running, archived), an order's page with chat; its forms'
pages are in ``portal_forms``.

Every route here is reachable without the staff screens' sign-in (``opt public``)
and finds the visitor itself: a signed-in user through the session (with the same
origin and CSRF checks as everywhere), else nobody. What a visitor may see is never
decided here: the runtime's services scope every read by the viewer
(``engine/runtime/portal.py``), and anything outside that scope is "not found".

A visitor without an account can fill in a ``public`` form; the drafts it starts are
held by its browser in the ``rc_drafts`` cookie (their random keys), and nowhere
else. Spam protection for every form post: a honeypot input that people never see
(``website``) and a limit of posts per client address (``POST_LIMIT`` a minute).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath

from engine.errors import Invalid, NotFound
from engine.labels import label_map
from engine.runtime import Actor, Runtime
from engine.runtime.attachments import Attachments
from engine.runtime.forms import Forms, asked_fields
from engine.runtime.portal import portal_of, portal_orders
from engine.window import SlidingWindow

from ..auth import PUBLIC_OPT, check_same_origin, session_actor
from ..deps import RuntimeDep
from .common import environment, page_for, redirect
from .files import FilesDep
from .forms import names_for
from .order_view import field_text
from .orders import read_form
from .render import Page, render, render_block
from .times import local_text, zone_of

DRAFTS_COOKIE = "rc_drafts"
MAX_HELD = 10
"""Drafts one visitor's browser holds at most (the oldest are forgotten)."""
POST_LIMIT = 30
"""Form posts per client address and minute (starts, pages, submissions, chat)."""
HONEYPOT = "website"
PUBLIC = {PUBLIC_OPT: True}


class TooManyPosts(HTTPException):
    status_code = 429


class PostLimiter:
    """Posts per client address in a sliding minute, kept in the server process."""

    def __init__(self, limit: int = POST_LIMIT, window: float = 60.0) -> None:
        self.limit = limit
        self.posts = SlidingWindow(window)

    def check(self, client: str) -> None:
        if self.posts.count(client) >= self.limit:
            raise TooManyPosts("too many form posts from your address; try again in a minute",
                               headers={"Retry-After": str(self.posts.wait(client))})
        self.posts.add(client)


def _limiter(request: Request[Any, Any, Any]) -> PostLimiter:
    state = request.app.state
    limiter = getattr(state, "portal_limiter", None)
    if limiter is None:
        limiter = state.portal_limiter = PostLimiter()
    assert isinstance(limiter, PostLimiter)
    return limiter


async def visitor(request: Request[Any, Any, Any], runtime: Runtime) -> Actor | None:
    """The signed-in user (set on the request for the page's context), or ``None``."""
    found = await session_actor(request, runtime)
    if found is None:
        check_same_origin(request, runtime)
        return None
    request.scope["user"], request.scope["auth"] = found
    return found[0]


async def _customer(request: Request[Any, Any, Any], runtime: Runtime) -> Actor:
    """The signed-in user, for pages that need one (visitors go to the sign-in page)."""
    actor = await visitor(request, runtime)
    if actor is None:
        raise NotAuthorizedException("sign in to see your orders")
    return actor


def held_drafts(request: Request[Any, Any, Any]) -> list[str]:
    value = request.cookies.get(DRAFTS_COOKIE) or ""
    return [k for k in value.split(".") if 10 <= len(k) <= 100][:MAX_HELD]


def hold_draft(request: Request[Any, Any, Any], response: Response[Any], key: str) -> None:
    keys = [key, *(k for k in held_drafts(request) if k != key)][:MAX_HELD]
    response.set_cookie(Cookie(key=DRAFTS_COOKIE, value=".".join(keys), httponly=True, samesite="strict",
                               path="/portal", secure=request.url.scheme == "https", max_age=30 * 24 * 3600))


def guarded_post(request: Request[Any, Any, Any], form: Mapping[str, Sequence[Any]]) -> None:
    """The spam checks of every form post: the honeypot is empty, the address under its limit."""
    client = request.client.host if request.client else "unknown"
    _limiter(request).check(client)
    if any(isinstance(v, str) and v.strip() for v in form.get(HONEYPOT, ())):
        raise Invalid("not accepted", [{"field": HONEYPOT, "message": "leave this empty"}])


def show_portal(request: Request[Any, Any, Any], runtime: Runtime, name: str, *, status: int = 200,
          block: str | None = None, **values: Any) -> Response[str]:
    """Render a portal template; ``say(label, fallback)`` reads a definition's label (one text or per language)."""
    page = page_for(request, runtime)

    def say(value: str | Mapping[str, str] | None, fallback: str = "") -> str:
        return say_label(page, value, fallback)
    if block is not None:
        return render_block(environment(), page, name, block, status=status, say=say, **values)
    return render(environment(), page, name, status=status, say=say, **values)


# -- My orders -----------------------------------------------------------------------------


@get("/portal", opt=PUBLIC, include_in_schema=False)
async def portal_home(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """My orders: the forms to fill in (and drafts), running orders, archived orders."""
    actor = await visitor(request, runtime)
    portal = portal_of(runtime.workspace)
    forms = Forms(runtime)
    if actor is None and (portal is None or portal.login == "required"):
        return redirect(request, "/login?next=/portal")
    tab = request.query_params.get("tab") or "forms"
    if tab not in ("forms", "running", "archived"):
        raise NotFound(f"no tab {tab}")
    search = (request.query_params.get("q") or "")[:200]
    status = request.query_params.get("status") or None
    orders: list[dict[str, Any]] = []
    if actor is not None and tab != "forms":
        orders = await portal_orders(runtime, actor, archived=tab == "archived", search=search, status=status)
    zone = zone_of(runtime.workspace.settings.timezone)
    drafts = await forms.mine(actor) if actor is not None else []
    page = page_for(request, runtime)
    return show_portal(request, runtime, "portal.html", portal=portal, tab=tab, search=search, status_filter=status,
                 forms=forms.offered(actor), drafts=drafts, orders=orders,
                 when=lambda v: local_text(v, zone) if v else "",
                 form_label=lambda name: form_label(page, runtime, name))


def form_label(page: Page, runtime: Runtime, name: str) -> str:
    form = runtime.workspace.forms.get(name)
    return say_label(page, form.label, name) if form else name


def say_label(page: Page, label: str | Mapping[str, str] | None, fallback: str) -> str:
    """A definition's label (one text, or one per language) in the reader's language."""
    return page.label(label_map(label, page.default_language), fallback)


# -- an order --------------------------------------------------------------------------------


async def _order_context(request: Request[Any, Any, Any], runtime: Runtime, actor: Actor, number: str,
                         files: Attachments) -> dict[str, Any]:
    order = await runtime.get(actor, number)
    zone = zone_of(runtime.workspace.settings.timezone)
    page = page_for(request, runtime)
    template = runtime.workspace.templates.get(order["template"])
    asked = _asked_fields(runtime, order["template"])
    items = [f for f in (template.fields if template else ()) if f.name in asked]
    names = await names_for(runtime.db, items, [order["fields"]])
    known = {int(a["id"]): a for a in await files.of_order(actor, number)}
    values = [(f, field_text(page, f, order["fields"].get(f.name), names, zone)) for f in items if f.type != "upload"]
    uploads = [(f, [known[i] for i in order["fields"].get(f.name) or [] if i in known])
               for f in items if f.type == "upload"]
    messages = [{**m, "at": local_text(m["created_at"], zone)} for m in await runtime.messages.thread(actor, number)]
    portal = portal_of(runtime.workspace)
    final = order["status"] in ("completed", "cancelled")
    return {"order": order, "values": values, "uploads": uploads, "messages": messages,
            "chat": bool(portal and portal.chat) and not final, "final": final,
            "created": local_text(order["created_at"], zone), "chat_error": None, "chat_body": ""}


def _asked_fields(runtime: Runtime, template: str) -> set[str]:
    """The fields the portal's forms ask for a template (what a customer filled in, and may read back)."""
    return set().union(*(asked_fields(f) for f in runtime.workspace.forms.values() if f.template == template))


@get("/portal/orders/{number:str}", opt=PUBLIC, include_in_schema=False)
async def portal_order(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep,
                       number: FromPath[str]) -> Response[Any]:
    """One of the customer's orders: what they asked, where it stands, the conversation."""
    actor = await _customer(request, runtime)
    ctx = await _order_context(request, runtime, actor, number, files)
    return show_portal(request, runtime, "portal_order.html", sent=bool(
        request.query_params.get("sent")), **ctx)


@get("/portal/orders/{number:str}/messages", opt=PUBLIC, include_in_schema=False)
async def portal_messages(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep,
                          number: FromPath[str]) -> Response[Any]:
    """The conversation alone (the page polls it, so staff answers appear without reloading)."""
    actor = await _customer(request, runtime)
    ctx = await _order_context(request, runtime, actor, number, files)
    return show_portal(request, runtime, "portal_order.html", block="messages", **ctx)


@post("/portal/orders/{number:str}/chat", opt=PUBLIC, include_in_schema=False)
async def portal_chat(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep,
                      number: FromPath[str]) -> Response[Any]:
    """Write to staff about a running order."""
    actor = await _customer(request, runtime)
    await runtime.get(actor, number)  # visible before anything else is said
    form = await read_form(request)
    guarded_post(request, form)
    body = next((v for v in reversed(form.get("body", [])) if isinstance(v, str)), "")
    error = None
    try:
        await runtime.messages.chat(actor, number, body)
    except Invalid as exc:
        error = "; ".join(e["message"] for e in exc.errors)
    ctx = await _order_context(request, runtime, actor, number, files)
    ctx.update(chat_error=error, chat_body=body if error else "")
    return show_portal(request, runtime, "portal_order.html", block="messages", status=422 if error else 200, **ctx)


# -- staff: the chat on the order page ----------------------------------------------------------


async def _staff_chat(request: Request[Actor, Any, Any], runtime: Runtime, number: str, *, status: int = 200,
                      error: str | None = None) -> Response[str]:
    actor = request.user
    order = await runtime.get(actor, number)
    zone = zone_of(runtime.workspace.settings.timezone)
    portal = portal_of(runtime.workspace)
    messages = [{**m, "at": local_text(m["created_at"], zone)}
                for m in await runtime.messages.thread(actor, number) if m["kind"] == "chat"]
    return show_portal(request, runtime, "order_chat_section.html", status=status, order=order, messages=messages,
                 enabled=bool(portal and portal.chat), final=order["status"] in ("completed", "cancelled"),
                 may_chat=actor.can("comment.public"), chat_error=error)


@get("/orders/{number:str}/chat", include_in_schema=False)
async def staff_chat(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The order's chat with the customer (empty where the portal has no chat)."""
    return await _staff_chat(request, runtime, number)


@post("/orders/{number:str}/chat", include_in_schema=False)
async def staff_chat_post(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                          number: FromPath[str]) -> Response[str]:
    """Answer the customer in the chat."""
    await runtime.get(request.user, number)
    form = await read_form(request)
    body = next((v for v in reversed(form.get("body", [])) if isinstance(v, str)), "")
    try:
        await runtime.messages.chat(request.user, number, body)
    except Invalid as exc:
        return await _staff_chat(request, runtime, number, status=422,
                                 error="; ".join(e["message"] for e in exc.errors))
    return await _staff_chat(request, runtime, number)


PORTAL_HANDLERS = (portal_home, portal_order, portal_messages, portal_chat, staff_chat, staff_chat_post)
"""The portal's routes but its forms' (``portal_forms``), for the screens' router."""
