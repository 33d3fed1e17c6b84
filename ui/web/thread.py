"""The work order's message thread on its page: messages, the comment/reply/follow-up forms, subscribing.

The page loads the thread as a fragment (``order_thread.html`` asks for it with
``hx-trigger="load"``). Every form answers with the whole thread section
(``order_thread_section.html``) plus, out of band, the audit trail and (after an
assignment) the header region. Input the runtime refuses comes back in its form with
the error at each input (422).

The forms are multipart: files chosen in them are stored and sent with the message
(``send_with_files``: all or nothing, counted against the daily quota), and the order's
files already uploaded may be ticked to go along. A comment template picked from the
list fills the text area (``GET .../thread/{kind}/text``) before the agent sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, BinaryIO, cast

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath, FromQuery

from engine.comms.texts import label as text_label
from engine.comms.texts import offered
from engine.errors import Invalid
from engine.runtime import Actor, Runtime
from engine.runtime.actors import group_members
from engine.runtime.attachments import Upload
from engine.storage import size_words

from ..deps import RuntimeDep
from .common import page_for
from .files import UPLOAD_REQUEST_MAX, FilesDep, send_with_files
from .forms import MAX_FILES, FormLists
from .order_view import order_context
from .orders import error_map, fragment, html, read_form
from .render import Page
from .times import local_text, zone_of

FORMS = ("comment", "reply", "follow_up")


async def thread_context(runtime: Runtime, actor: Actor, page: Page, order: Mapping[str, Any]) -> dict[str, Any]:
    """What the thread section shows of ``order`` (as ``Runtime.view`` gives it) to ``actor``."""
    number = order["number"]
    zone = zone_of(runtime.workspace.settings.timezone)
    messages = [{**m, "at": local_text(m["created_at"], zone),
                 "attachments": [{**f, "size_text": size_words(f["size"])} for f in m.get("attachments", ())]}
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
    texts = {kind: [(c.name, text_label(runtime.workspace, c, page.language))
                    for c in offered(runtime.workspace, order["template"], kind)] if staff else []
             for kind in FORMS}
    attachments = runtime.workspace.settings.attachments
    sendable = [{**f, "size_text": size_words(f["size"])}
                for f in await runtime.messages.sendable_files(actor, number)] if not final else []
    return {
        "comment_texts": texts, "sendable_files": sendable, "can_attach": not final,
        "per_mail_limit": size_words(attachments.max_per_mail), "upload_limit": size_words(attachments.max_size),
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


def _uploads(form: FormLists) -> list[Upload]:
    """The files chosen in the form (a browser sends an empty part when none was)."""
    parts = [v for v in form.get("attachments", ()) if isinstance(v, UploadFile) and v.filename]
    if len(parts) > MAX_FILES:
        raise Invalid("too many files", [{"field": "attachments", "message": f"at most {MAX_FILES} files at once"}])
    return [Upload(cast(BinaryIO, part.file), str(part.filename), "attachments") for part in parts]


def _ticked(form: FormLists) -> list[int]:
    """The ids of the order's files ticked to go along."""
    texts = [v for v in form.get("attachment_ids", ()) if isinstance(v, str)]
    return [int(t) for t in texts[:MAX_FILES] if t.isdigit() and len(t) < 19]


def _form_errors(kind: str, errors: list[dict[str, str]]) -> dict[str, str]:
    """Errors by the form's input keys (``reply.body``); a file's error is shown at the files' input."""
    named = [{**e, "field": "attachments" if (e.get("field") or "").startswith("attachments") else e.get("field", "")}
             for e in errors]
    return {f"{kind}.{k}": v for k, v in error_map(named).items()}


@get("/orders/{number:str}/thread", include_in_schema=False)
async def thread(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The thread section as it is now."""
    return await _section(request, runtime, number)


@post("/orders/{number:str}/thread/{kind:str}", include_in_schema=False, request_max_body_size=UPLOAD_REQUEST_MAX)
async def post_message(request: Request[Actor, Any, Any], runtime: RuntimeDep, files: FilesDep,
                       number: FromPath[str], kind: FromPath[str]) -> Response[str]:
    """Add a comment, a reply (``reply``) or a follow-up (``follow_up``) from the thread's forms, with its files."""
    if kind not in FORMS:
        raise Invalid(f"no kind of message {kind}", [{"field": "kind", "message": f"one of: {', '.join(FORMS)}"}])
    actor = request.user
    await runtime.get(actor, number)  # the order must be visible before anything else is said
    form = await read_form(request)
    body = _text(form, "body")
    assign = _text(form, "assign_to") or None
    template = _text(form, "template") or None
    messages = runtime.messages
    ticked = _ticked(form)

    async def send(new: list[int]) -> dict[str, Any]:
        ids = [*ticked, *new]
        if kind == "reply":
            return await messages.reply(actor, number, body, to=_text(form, "to"),
                                        subject=_text(form, "subject") or None, quote=_flag(form, "quote"),
                                        assign_to=assign, subscribe=_flag(form, "subscribe"), attachments=ids,
                                        template=template)
        if kind == "follow_up":
            return await messages.follow_up(actor, number, body, subject=_text(form, "subject") or None,
                                            client_viewable=_flag(form, "client_viewable"), assign_to=assign,
                                            subscribe=_flag(form, "subscribe"), attachments=ids, template=template)
        return await messages.comment(actor, number, body, client_viewable=_flag(form, "client_viewable") or
                                      not actor.is_staff, assign_to=assign, subscribe=_flag(form, "subscribe"),
                                      attachments=ids, template=template)

    try:
        await send_with_files(files, actor, _uploads(form), send)
    except Invalid as exc:
        entered = {f"{kind}.{name}": _text(form, name) for name in ("body", "to", "subject", "assign_to", "template")}
        flags = {f"{kind}.{name}": _flag(form, name) for name in ("client_viewable", "quote", "subscribe")}
        return await _section(request, runtime, number, status=422, extra={
            "thread_values": {**entered, **flags, f"{kind}.attachment_ids": ticked},
            "thread_errors": _form_errors(kind, exc.errors), "open_form": kind})
    return await _section(request, runtime, number, changed=True)


@get("/orders/{number:str}/thread/{kind:str}/text", include_in_schema=False)
async def comment_text(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                       kind: FromPath[str], template: FromQuery[str] = "") -> Response[str]:
    """The form's text area filled with the picked comment template (and its visibility, out of band)."""
    if kind not in FORMS:
        raise Invalid(f"no kind of message {kind}", [{"field": "kind", "message": f"one of: {', '.join(FORMS)}"}])
    page = page_for(request, runtime)
    actor = request.user
    values: dict[str, Any] = {"kind": kind, "body": "", "client_viewable": None, "error": None,
                              "toggle": kind != "reply" and actor.can("comment.private") and actor.can("comment.public")}
    if template:
        try:
            filled = await runtime.messages.fill_template(actor, number, template[:100], kind)
            values.update(body=filled["body"], client_viewable=filled["client_viewable"])
        except Invalid as exc:
            values["error"] = "; ".join(e["message"] for e in exc.errors) or exc.detail
    else:
        await runtime.get(actor, number)  # nothing picked: an empty text, for a visible order only
    return html(fragment(page, "order_thread_text.html", values))


@post("/orders/{number:str}/subscription", include_in_schema=False)
async def subscription(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """Follow the work order (``on=true``) or stop following it."""
    form = await read_form(request)
    await runtime.messages.subscribe(request.user, number, _flag(form, "on"))
    return await _section(request, runtime, number, changed=True)


THREAD_HANDLERS = (thread, post_message, comment_text, subscription)
"""The thread's routes, for the screens' router."""
