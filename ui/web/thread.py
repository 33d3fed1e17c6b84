"""The work order's message thread on its page: messages, the comment/reply/follow-up forms, subscribing.

The page loads the thread as a fragment (``order_thread.html`` asks for it with
``hx-trigger="load"``). Every form answers with the whole thread section
(``order_thread_section.html``) plus, out of band, the audit trail and (after an
assignment) the header region. Input the runtime refuses comes back in its form with
the error at each input (422).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from engine.errors import Invalid
from engine.runtime import Actor, Runtime
from engine.runtime.actors import group_members

from ..deps import RuntimeDep
from .common import page_for
from .forms import FormLists
from .order_view import order_context
from .orders import error_map, fragment, html, read_form
from .render import Page
from .times import local_text, zone_of

FORMS = ("comment", "reply", "follow_up")


async def thread_context(runtime: Runtime, actor: Actor, page: Page, order: Mapping[str, Any]) -> dict[str, Any]:
    """What the thread section shows of ``order`` (as ``Runtime.view`` gives it) to ``actor``."""
    number = order["number"]
    zone = zone_of(runtime.workspace.settings.timezone)
    messages = [{**m, "at": local_text(m["created_at"], zone)}
                for m in reversed(await runtime.messages.thread(actor, number))]
    followers = await runtime.messages.subscribers(actor, number)
    final = order["status"] in ("completed", "cancelled")
    template = runtime.workspace.templates.get(order["template"])
    members: list[str] = []
    can_assign = False
    if actor.is_staff and not final and template is not None and order["group"]:
        owner = order["owner"]
        can_assign = runtime.abilities(actor, template=template, group=order["group"],
                                       queue=runtime.workspace.queues.get(order["queue"]),
                                       owned_by_actor=None if owner is None else owner == actor.login).assign
        if can_assign:
            members = sorted((await group_members(runtime.db, runtime.workspace, order["group"])).values())
    contact = next((order["fields"].get(f.name) for f in (template.fields if template else ()) if f.type == "email"),
                   None)
    staff = actor.is_staff
    return {
        "order": order, "messages": messages, "subscribed": actor.login in followers,
        "subscriber_count": len(followers), "assign_members": members, "can_assign_thread": can_assign,
        "can_private": staff and actor.can("comment.private"), "can_public": not staff or actor.can("comment.public"),
        "can_reply": staff and actor.can("email.send"), "is_staff": staff,
        "thread_values": {"reply.to": contact or "", "reply.subject": f"Re: {order['title']}",
                          "follow_up.subject": order["title"]},
        "thread_errors": {}, "open_form": None,
    }


async def _section(request: Request[Actor, Any, Any], runtime: Runtime, number: str, *, status: int = 200,
                   extra: Mapping[str, Any] | None = None, changed: bool = False) -> Response[str]:
    page = page_for(request, runtime)
    order = await runtime.get(request.user, number)
    ctx = await thread_context(runtime, request.user, page, order)
    extra = dict(extra or {})
    extra["thread_values"] = {**ctx["thread_values"], **extra.get("thread_values", {})}
    body = fragment(page, "order_thread_section.html", {**ctx, **extra})
    if changed:  # the audit trail (and the owner, after an assignment) changed too
        full = await order_context(runtime, request.user, page, order)
        body += fragment(page, "order_trail.html", {**full, "oob": True})
        if not full["final"]:
            body += fragment(page, "order_flow.html", {**full, "oob": True})
    return html(body, status=status)


def _text(form: FormLists, name: str) -> str:
    values = [v for v in form.get(name, ()) if isinstance(v, str)]
    return values[-1] if values else ""


def _flag(form: FormLists, name: str) -> bool:
    return _text(form, name) in ("true", "on", "1")


@get("/orders/{number:str}/thread", include_in_schema=False)
async def thread(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The thread section as it is now."""
    return await _section(request, runtime, number)


@post("/orders/{number:str}/thread/{kind:str}", include_in_schema=False)
async def post_message(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                       kind: FromPath[str]) -> Response[str]:
    """Add a comment, a reply (``reply``) or a follow-up (``follow_up``) from the thread's forms."""
    if kind not in FORMS:
        raise Invalid(f"no kind of message {kind}", [{"field": "kind", "message": f"one of: {', '.join(FORMS)}"}])
    actor = request.user
    await runtime.get(actor, number)  # the order must be visible before anything else is said
    form = await read_form(request)
    body = _text(form, "body")
    assign = _text(form, "assign_to") or None
    messages = runtime.messages
    try:
        if kind == "reply":
            await messages.reply(actor, number, body, to=_text(form, "to"), subject=_text(form, "subject") or None,
                                 quote=_flag(form, "quote"), assign_to=assign, subscribe=_flag(form, "subscribe"))
        elif kind == "follow_up":
            await messages.follow_up(actor, number, body, subject=_text(form, "subject") or None,
                                     client_viewable=_flag(form, "client_viewable"), assign_to=assign,
                                     subscribe=_flag(form, "subscribe"))
        else:
            await messages.comment(actor, number, body, client_viewable=_flag(form, "client_viewable") or
                                   not actor.is_staff, assign_to=assign, subscribe=_flag(form, "subscribe"))
    except Invalid as exc:
        entered = {f"{kind}.{name}": _text(form, name) for name in ("body", "to", "subject", "assign_to")}
        flags = {f"{kind}.{name}": _flag(form, name) for name in ("client_viewable", "quote", "subscribe")}
        errors = {f"{kind}.{k}": v for k, v in error_map(exc.errors).items()}
        return await _section(request, runtime, number, status=422, extra={
            "thread_values": {**entered, **flags}, "thread_errors": errors, "open_form": kind})
    return await _section(request, runtime, number, changed=True)


@post("/orders/{number:str}/subscription", include_in_schema=False)
async def subscription(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """Follow the work order (``on=true``) or stop following it."""
    form = await read_form(request)
    await runtime.messages.subscribe(request.user, number, _flag(form, "on"))
    return await _section(request, runtime, number, changed=True)


THREAD_HANDLERS = (thread, post_message, subscription)
"""The thread's routes, for the screens' router."""
