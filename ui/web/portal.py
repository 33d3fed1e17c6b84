"""The customer portal: "My orders" (forms, running, archived), an order's page with chat, multi-page forms.

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


import msgspec
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.params import FromPath
from markupsafe import escape

from engine.errors import Invalid, NotFound
from engine.model import Form
from engine.runtime import Actor, Runtime
from engine.runtime.attachments import Attachments, Upload
from engine.labels import label_map
from engine.runtime.forms import Forms, asked_fields
from engine.runtime.portal import portal_of, portal_orders
from engine.window import SlidingWindow

from ..auth import PUBLIC_OPT, check_same_origin, session_actor
from ..deps import RuntimeDep
from .common import environment, page_for, redirect
from .files import UPLOAD_REQUEST_MAX, FilesDep
from .forms import Names, decimal_pattern, entered_values, form_values, names_for, parse_form, resolve, upload_values
from .order_view import field_text
from .orders import error_map, read_form
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


async def _visitor(request: Request[Any, Any, Any], runtime: Runtime) -> Actor | None:
    """The signed-in user (set on the request for the page's context), or ``None``."""
    found = await session_actor(request, runtime)
    if found is None:
        check_same_origin(request, runtime)
        return None
    request.scope["user"], request.scope["auth"] = found
    return found[0]


async def _customer(request: Request[Any, Any, Any], runtime: Runtime) -> Actor:
    """The signed-in user, for pages that need one (visitors go to the sign-in page)."""
    actor = await _visitor(request, runtime)
    if actor is None:
        raise NotAuthorizedException("sign in to see your orders")
    return actor


def _held(request: Request[Any, Any, Any]) -> list[str]:
    value = request.cookies.get(DRAFTS_COOKIE) or ""
    return [k for k in value.split(".") if 10 <= len(k) <= 100][:MAX_HELD]


def _hold(request: Request[Any, Any, Any], response: Response[Any], key: str) -> None:
    keys = [key, *(k for k in _held(request) if k != key)][:MAX_HELD]
    response.set_cookie(Cookie(key=DRAFTS_COOKIE, value=".".join(keys), httponly=True, samesite="strict",
                               path="/portal", secure=request.url.scheme == "https", max_age=30 * 24 * 3600))


def _guarded_post(request: Request[Any, Any, Any], form: Mapping[str, Sequence[Any]]) -> None:
    """The spam checks of every form post: the honeypot is empty, the address under its limit."""
    client = request.client.host if request.client else "unknown"
    _limiter(request).check(client)
    if any(isinstance(v, str) and v.strip() for v in form.get(HONEYPOT, ())):
        raise Invalid("not accepted", [{"field": HONEYPOT, "message": "leave this empty"}])


def _show(request: Request[Any, Any, Any], runtime: Runtime, name: str, *, status: int = 200,
          block: str | None = None, **values: Any) -> Response[str]:
    """Render a portal template; ``say(label, fallback)`` reads a definition's label (one text or per language)."""
    page = page_for(request, runtime)

    def say(value: str | Mapping[str, str] | None, fallback: str = "") -> str:
        return _say(page, value, fallback)
    if block is not None:
        return render_block(environment(), page, name, block, status=status, say=say, **values)
    return render(environment(), page, name, status=status, say=say, **values)


# -- My orders -----------------------------------------------------------------------------


@get("/portal", opt=PUBLIC, include_in_schema=False)
async def portal_home(request: Request[Any, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """My orders: the forms to fill in (and drafts), running orders, archived orders."""
    actor = await _visitor(request, runtime)
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
    return _show(request, runtime, "portal.html", portal=portal, tab=tab, search=search, status_filter=status,
                 forms=forms.offered(actor), drafts=drafts, orders=orders,
                 when=lambda v: local_text(v, zone) if v else "",
                 form_label=lambda name: _form_label(page, runtime, name))


def _form_label(page: Page, runtime: Runtime, name: str) -> str:
    form = runtime.workspace.forms.get(name)
    return _say(page, form.label, name) if form else name


def _say(page: Page, label: str | Mapping[str, str] | None, fallback: str) -> str:
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
    return _show(request, runtime, "portal_order.html", sent=bool(
        request.query_params.get("sent")), **ctx)


@get("/portal/orders/{number:str}/messages", opt=PUBLIC, include_in_schema=False)
async def portal_messages(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep,
                          number: FromPath[str]) -> Response[Any]:
    """The conversation alone (the page polls it, so staff answers appear without reloading)."""
    actor = await _customer(request, runtime)
    ctx = await _order_context(request, runtime, actor, number, files)
    return _show(request, runtime, "portal_order.html", block="messages", **ctx)


@post("/portal/orders/{number:str}/chat", opt=PUBLIC, include_in_schema=False)
async def portal_chat(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep,
                      number: FromPath[str]) -> Response[Any]:
    """Write to staff about a running order."""
    actor = await _customer(request, runtime)
    await runtime.get(actor, number)  # visible before anything else is said
    form = await read_form(request)
    _guarded_post(request, form)
    body = next((v for v in reversed(form.get("body", [])) if isinstance(v, str)), "")
    error = None
    try:
        await runtime.messages.chat(actor, number, body)
    except Invalid as exc:
        error = "; ".join(e["message"] for e in exc.errors)
    ctx = await _order_context(request, runtime, actor, number, files)
    ctx.update(chat_error=error, chat_body=body if error else "")
    return _show(request, runtime, "portal_order.html", block="messages", status=422 if error else 200, **ctx)


# -- forms -----------------------------------------------------------------------------------


def _form_of(runtime: Runtime, draft: Mapping[str, Any]) -> Form:
    return runtime.workspace.forms[draft["form"]]


def _page_index(form: Form, name: str) -> int:
    index = next((i for i, p in enumerate(form.pages) if p.name == name), None)
    if index is None:
        raise NotFound(f"no page {name}")
    return index


def _draft_url(key: str, page: str | None = None) -> str:
    base = f"/portal/drafts/{quote(key, safe='')}"
    return f"{base}/pages/{quote(page, safe='')}" if page else f"{base}/summary"


@post("/portal/forms/{name:str}", opt=PUBLIC, include_in_schema=False)
async def start_form(request: Request[Any, Any, Any], runtime: RuntimeDep, name: FromPath[str]) -> Response[Any]:
    """Start filling in form ``name``: a new draft, then its first page."""
    actor = await _visitor(request, runtime)
    form_data = await read_form(request)
    _guarded_post(request, form_data)
    draft = await Forms(runtime).start(actor, name)
    response = redirect(request, _draft_url(draft["key"], _form_of(runtime, draft).pages[0].name))
    if actor is None:
        _hold(request, response, draft["key"])
    return response


@get("/portal/forms/{name:str}", opt=PUBLIC, include_in_schema=False)
async def form_intro(request: Request[Any, Any, Any], runtime: RuntimeDep, name: FromPath[str]) -> Response[Any]:
    """The form's description and its start button (a public form's address to link to)."""
    actor = await _visitor(request, runtime)
    forms = Forms(runtime)
    try:
        form = forms.form(actor, name)
    except NotFound:
        if actor is None:
            return redirect(request, f"/login?next={quote('/portal/forms/' + name, safe='')}")
        raise
    return _show(request, runtime, "portal_form_intro.html", form=form,
                  title=_say(page_for(request, runtime), form.label, form.name))


async def _page_context(request: Request[Any, Any, Any], runtime: Runtime, actor: Actor | None,
                        draft: Mapping[str, Any], page_name: str, *, entered: Mapping[str, Any] | None = None,
                        errors: Sequence[Mapping[str, str]] = ()) -> dict[str, Any]:
    forms = Forms(runtime)
    form = _form_of(runtime, draft)
    index = _page_index(form, page_name)
    answers = dict(draft["answers"])
    questions = forms.questions(form, index, answers)
    zone = zone_of(runtime.workspace.settings.timezone)
    items = [q.field for q in questions]
    names = await names_for(runtime.db, items, [answers])
    values = {**form_values(items, answers, names, zone), **(entered or {})}
    upload_ids = [i for q in questions if q.field.type == "upload" for i in answers.get(q.field.name) or []]
    files = {}
    if upload_ids:
        marks = ", ".join("{}" for _ in upload_ids)
        for row in await runtime.db.fetch(
                f"SELECT id, filename, size FROM rc_attachment WHERE id IN ({marks})", *upload_ids):
            files[int(row["id"])] = {"filename": row["filename"], "size_text": f"{int(row['size']):,} B"}
    asked = [{"asked": msgspec.structs.replace(q.field, required=q.required), "shown": q.shown} for q in questions]
    return {
        "form": form, "title": _say(page_for(request, runtime), form.label, form.name), "draft": draft, "page_index": index,
        "form_page": form.pages[index], "questions": asked, "values": values, "errors": error_map(errors),
        "other_errors": [e for e in errors if not (e.get("field") or "").startswith("fields.")],
        "pages": draft["pages"], "files": files, "decimal_pattern": decimal_pattern,
        "zone_name": runtime.workspace.settings.timezone, "honeypot": HONEYPOT,
        "has_upload": any(q.field.type == "upload" and q.shown for q in questions),
        "previous": form.pages[index - 1].name if index else None,
        "next": form.pages[index + 1].name if index + 1 < len(form.pages) else None,
        "url": _draft_url, "visitor": actor is None,
        "shown": ",".join(q.field.name for q in questions if q.shown),
    }


@get("/portal/drafts/{key:str}/pages/{page_name:str}", opt=PUBLIC, include_in_schema=False)
async def form_page(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str],
                    page_name: FromPath[str]) -> Response[Any]:
    """One page of a draft, filled with the answers so far."""
    actor = await _visitor(request, runtime)
    draft = await Forms(runtime).get(actor, key, held=_held(request))
    if draft["submitted"]:
        return redirect(request, "/portal?tab=running")
    ctx = await _page_context(request, runtime, actor, draft, page_name)
    return _show(request, runtime, "portal_form_page.html", **ctx)


@post("/portal/drafts/{key:str}/pages/{page_name:str}", opt=PUBLIC, include_in_schema=False,
      request_max_body_size=UPLOAD_REQUEST_MAX)
async def save_form_page(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep, key: FromPath[str],
                         page_name: FromPath[str]) -> Response[Any]:
    """Save a page and go on (``go``: back, next or summary); refused answers come back at their inputs (422)."""
    actor = await _visitor(request, runtime)
    forms = Forms(runtime)
    held = _held(request)
    draft = await forms.get(actor, key, held=held)
    form = _form_of(runtime, draft)
    index = _page_index(form, page_name)
    posted = await read_form(request)
    _guarded_post(request, posted)
    questions = forms.questions(form, index, draft["answers"])
    items = [q.field for q in questions]
    parsed = parse_form(posted, items, zone=zone_of(runtime.workspace.settings.timezone))
    try:
        if actor is not None:
            await resolve(runtime, actor, parsed)
        if parsed.errors:
            raise Invalid("not accepted", parsed.errors)
        version = _version(posted)
        if parsed.files and actor is not None:
            uploads = [Upload(f.upload.file, str(f.upload.filename), "fields." + f.field) for f in parsed.files]
            staged = await files.stage(uploads)
            async with files.saving(staged):
                ids = await files.insert(actor, staged)
                new_ids: dict[str, list[int]] = {}
                for item, attachment_id in zip(staged, ids, strict=True):
                    new_ids.setdefault(item.field.removeprefix("fields."), []).append(attachment_id)
                lists = upload_values(parsed, items, draft["answers"], new_ids)
                draft = await forms.save_page(actor, key, page_name, parsed.fields, version, held=held, files=lists)
        else:
            lists = upload_values(parsed, items, draft["answers"], {}) if parsed.removed else {}
            draft = await forms.save_page(actor, key, page_name, parsed.fields, version, held=held, files=lists)
    except Invalid as exc:
        entered = entered_values(posted, items)
        ctx = await _page_context(request, runtime, actor, draft, page_name, entered=entered, errors=exc.errors)
        return _show(request, runtime, "portal_form_page.html", status=422, **ctx)
    go = next((v for v in posted.get("go", []) if isinstance(v, str)), "next")
    if go == "back" and index:
        target = _draft_url(key, form.pages[index - 1].name)
    elif go == "next" and index + 1 < len(form.pages):
        target = _draft_url(key, form.pages[index + 1].name)
    else:
        target = _draft_url(key)
    return redirect(request, target)


@post("/portal/drafts/{key:str}/pages/{page_name:str}/preview", opt=PUBLIC, include_in_schema=False)
async def preview_form_page(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str],
                            page_name: FromPath[str]) -> Response[Any]:
    """The page again with the answers being entered (not saved): fields appear and disappear as they change."""
    actor = await _visitor(request, runtime)
    forms = Forms(runtime)
    draft = await forms.get(actor, key, held=_held(request))
    form = _form_of(runtime, draft)
    index = _page_index(form, page_name)
    posted = await read_form(request)
    items = [q.field for q in forms.questions(form, index, draft["answers"])]
    # every field of the page, shown or not, so a condition on this page sees this page's answers
    on_page = {i if isinstance(i, str) else i.field for i in form.pages[index].fields}
    every = [f for f in forms.template(form).fields if f.name in on_page]
    parsed = parse_form(posted, every, zone=zone_of(runtime.workspace.settings.timezone))
    typed = {k: v for k, v in parsed.fields.items() if isinstance(v, str | int | bool | list) or v is None}
    ctx = await _page_context(request, runtime, actor, {**draft, "answers": {**draft["answers"], **typed}}, page_name,
                              entered=entered_values(posted, items))
    if ctx["shown"] == next((v for v in posted.get("shown", []) if isinstance(v, str)), None):
        return Response(None, status_code=204)  # nothing appears or disappears: leave the form as it is
    return _show(request, runtime, "portal_form_page.html", block="form", **ctx)


def _version(posted: Mapping[str, Sequence[Any]]) -> int | None:
    text = next((v for v in posted.get("version", []) if isinstance(v, str)), "")
    return int(text) if text.isdigit() and len(text) < 10 else None


@get("/portal/drafts/{key:str}/summary", opt=PUBLIC, include_in_schema=False)
async def form_summary(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Every page, marked complete or not, with links back; the remark and the send button."""
    actor = await _visitor(request, runtime)
    forms = Forms(runtime)
    draft = await forms.get(actor, key, held=_held(request))
    if draft["submitted"]:
        return redirect(request, "/portal?tab=running")
    return await _summary(request, runtime, forms, actor, draft)


async def _summary(request: Request[Any, Any, Any], runtime: Runtime, forms: Forms, actor: Actor | None,
                   draft: Mapping[str, Any], *, status: int = 200, errors: Sequence[Mapping[str, str]] = (),
                   entered: Mapping[str, str] | None = None) -> Response[Any]:
    form = _form_of(runtime, draft)
    projects = await forms.projects(actor) if actor is not None and form.choose_project else []
    return _show(request, runtime, "portal_summary.html", status=status, form=form,
                  title=_say(page_for(request, runtime), form.label, form.name), draft=draft, pages=draft["pages"], url=_draft_url,
                  projects=projects, errors=list(errors), entered=entered or {}, honeypot=HONEYPOT,
                  visitor=actor is None)


@post("/portal/drafts/{key:str}/submit", opt=PUBLIC, include_in_schema=False)
async def submit_form(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Send the draft: the new order's page (a visitor, who has no account, sees a receipt)."""
    actor = await _visitor(request, runtime)
    forms = Forms(runtime)
    held = _held(request)
    draft = await forms.get(actor, key, held=held)
    posted = await read_form(request)
    _guarded_post(request, posted)

    def text(name: str) -> str:
        return next((v for v in reversed(posted.get(name, [])) if isinstance(v, str)), "")
    project = text("project_id")
    try:
        order = await forms.submit(actor, key, _version(posted), remark=text("remark"),
                                   project_id=int(project) if project.isdigit() and len(project) < 19 else None,
                                   email=text("email") or None, held=held)
    except Invalid as exc:
        draft = await forms.get(actor, key, held=held)
        return await _summary(request, runtime, forms, actor, draft, status=422, errors=exc.errors,
                              entered={"remark": text("remark"), "email": text("email"), "project_id": project})
    if actor is None:
        return _show(request, runtime, "portal_sent.html", number=order["number"])
    return redirect(request, f"/portal/orders/{quote(order['number'], safe='')}?sent=1")


@get("/portal/resume/{token:str}", opt=PUBLIC, include_in_schema=False)
async def resume(request: Request[Any, Any, Any], runtime: RuntimeDep, token: FromPath[str]) -> Response[Any]:
    """A "send order link" link: sign in (as the person it was sent to), then continue the draft."""
    actor = await _visitor(request, runtime)
    if actor is None:
        return redirect(request, f"/login?next={quote(request.url.path, safe='')}")
    draft = await Forms(runtime).resume(actor, token)
    form = _form_of(runtime, draft)
    first_open = next((p["name"] for p in draft["pages"] if not p["complete"]), None)
    return redirect(request, _draft_url(draft["key"], first_open) if first_open else _draft_url(draft["key"]))


# -- staff: the chat on the order page ----------------------------------------------------------


async def _staff_chat(request: Request[Actor, Any, Any], runtime: Runtime, number: str, *, status: int = 200,
                      error: str | None = None) -> Response[str]:
    actor = request.user
    order = await runtime.get(actor, number)
    zone = zone_of(runtime.workspace.settings.timezone)
    portal = portal_of(runtime.workspace)
    messages = [{**m, "at": local_text(m["created_at"], zone)}
                for m in await runtime.messages.thread(actor, number) if m["kind"] == "chat"]
    return _show(request, runtime, "order_chat_section.html", status=status, order=order, messages=messages,
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


# -- staff: drafts not sent -------------------------------------------------------------------


@get("/drafts", include_in_schema=False)
async def unsent_drafts(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """Forms customers started but did not send, with "send order link"."""
    rows = await Forms(runtime).unsent(request.user)
    zone = zone_of(runtime.workspace.settings.timezone)
    page = page_for(request, runtime)
    return _show(request, runtime, "drafts.html", drafts=[{**d, "at": local_text(d["updated_at"], zone)}
                                                              for d in rows],
                  form_label=lambda name: _form_label(page, runtime, name), sent=None)


@post("/drafts/{key:str}/link", include_in_schema=False)
async def send_link(request: Request[Actor, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Mail the person a single-use link that resumes the draft."""
    sent = await Forms(runtime).send_link(request.user, key)
    page = page_for(request, runtime)
    text = escape(page.gettext("Link sent to %(to)s", to=sent["to"]))
    return Response(f'<span class="notice" role="status">{text}</span>', media_type="text/html", status_code=200)


PORTAL_HANDLERS = (portal_home, portal_order, portal_messages, portal_chat, start_form, form_intro, form_page,
                   save_form_page, preview_form_page, form_summary, submit_form, resume, staff_chat, staff_chat_post,
                   unsent_drafts, send_link)
"""The portal's routes, for the screens' router."""
