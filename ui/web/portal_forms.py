"""The customer portal's forms: starting one, its pages, the summary, submitting, resuming by link.

A visitor without an account can fill in a ``public`` form; the drafts it starts are
held by its browser in the ``rc_drafts`` cookie (their random keys), and nowhere else.
Every post passes the portal's spam checks (``portal.guarded_post``). Staff see the
drafts customers did not send and may mail them a link that resumes one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response, get, post
from litestar.params import FromPath
from markupsafe import escape

from engine.errors import Invalid, NotFound
from engine.model import Form
from engine.runtime import Actor, Runtime
from engine.runtime.attachments import Upload
from engine.runtime.form_links import FormLinks
from engine.runtime.forms import Forms

from ..deps import RuntimeDep
from .common import page_for, redirect
from .files import UPLOAD_REQUEST_MAX, FilesDep
from .forms import decimal_pattern, entered_values, form_values, names_for, parse_form, resolve, upload_values
from .orders import error_map, read_form
from .portal import (HONEYPOT, PUBLIC, form_label, guarded_post, held_drafts, hold_draft, say_label, show_portal,
                     visitor)
from .times import local_text, zone_of


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
    actor = await visitor(request, runtime)
    form_data = await read_form(request)
    guarded_post(request, form_data)
    draft = await Forms(runtime).start(actor, name)
    response = redirect(request, _draft_url(draft["key"], _form_of(runtime, draft).pages[0].name))
    if actor is None:
        hold_draft(request, response, draft["key"])
    return response


@get("/portal/forms/{name:str}", opt=PUBLIC, include_in_schema=False)
async def form_intro(request: Request[Any, Any, Any], runtime: RuntimeDep, name: FromPath[str]) -> Response[Any]:
    """The form's description and its start button (a public form's address to link to)."""
    actor = await visitor(request, runtime)
    forms = Forms(runtime)
    try:
        form = forms.form(actor, name)
    except NotFound:
        if actor is None:
            return redirect(request, f"/login?next={quote('/portal/forms/' + name, safe='')}")
        raise
    return show_portal(request, runtime, "portal_form_intro.html", form=form,
                  title=say_label(page_for(request, runtime), form.label, form.name))


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
        "form": form, "title": say_label(page_for(request, runtime), form.label, form.name), "draft": draft, "page_index": index,
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
    actor = await visitor(request, runtime)
    draft = await Forms(runtime).get(actor, key, held=held_drafts(request))
    if draft["submitted"]:
        return redirect(request, "/portal?tab=running")
    ctx = await _page_context(request, runtime, actor, draft, page_name)
    return show_portal(request, runtime, "portal_form_page.html", **ctx)


@post("/portal/drafts/{key:str}/pages/{page_name:str}", opt=PUBLIC, include_in_schema=False,
      request_max_body_size=UPLOAD_REQUEST_MAX)
async def save_form_page(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep, key: FromPath[str],
                         page_name: FromPath[str]) -> Response[Any]:
    """Save a page and go on (``go``: back, next or summary); refused answers come back at their inputs (422)."""
    actor = await visitor(request, runtime)
    forms = Forms(runtime)
    held = held_drafts(request)
    draft = await forms.get(actor, key, held=held)
    form = _form_of(runtime, draft)
    index = _page_index(form, page_name)
    posted = await read_form(request)
    guarded_post(request, posted)
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
        return show_portal(request, runtime, "portal_form_page.html", status=422, **ctx)
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
    actor = await visitor(request, runtime)
    forms = Forms(runtime)
    draft = await forms.get(actor, key, held=held_drafts(request))
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
    return show_portal(request, runtime, "portal_form_page.html", block="form", **ctx)


def _version(posted: Mapping[str, Sequence[Any]]) -> int | None:
    text = next((v for v in posted.get("version", []) if isinstance(v, str)), "")
    return int(text) if text.isdigit() and len(text) < 10 else None


@get("/portal/drafts/{key:str}/summary", opt=PUBLIC, include_in_schema=False)
async def form_summary(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Every page, marked complete or not, with links back; the remark and the send button."""
    actor = await visitor(request, runtime)
    forms = Forms(runtime)
    draft = await forms.get(actor, key, held=held_drafts(request))
    if draft["submitted"]:
        return redirect(request, "/portal?tab=running")
    return await _summary(request, runtime, forms, actor, draft)


async def _summary(request: Request[Any, Any, Any], runtime: Runtime, forms: Forms, actor: Actor | None,
                   draft: Mapping[str, Any], *, status: int = 200, errors: Sequence[Mapping[str, str]] = (),
                   entered: Mapping[str, str] | None = None) -> Response[Any]:
    form = _form_of(runtime, draft)
    projects = await forms.projects(actor) if actor is not None and form.choose_project else []
    return show_portal(request, runtime, "portal_summary.html", status=status, form=form,
                  title=say_label(page_for(request, runtime), form.label, form.name), draft=draft, pages=draft["pages"], url=_draft_url,
                  projects=projects, errors=list(errors), entered=entered or {}, honeypot=HONEYPOT,
                  visitor=actor is None)


@post("/portal/drafts/{key:str}/submit", opt=PUBLIC, include_in_schema=False)
async def submit_form(request: Request[Any, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Send the draft: the new order's page (a visitor, who has no account, sees a receipt)."""
    actor = await visitor(request, runtime)
    forms = Forms(runtime)
    held = held_drafts(request)
    draft = await forms.get(actor, key, held=held)
    posted = await read_form(request)
    guarded_post(request, posted)

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
        return show_portal(request, runtime, "portal_sent.html", number=order["number"])
    return redirect(request, f"/portal/orders/{quote(order['number'], safe='')}?sent=1")


@get("/portal/resume/{token:str}", opt=PUBLIC, include_in_schema=False)
async def resume(request: Request[Any, Any, Any], runtime: RuntimeDep, token: FromPath[str]) -> Response[Any]:
    """A "send order link" link: sign in (as the person it was sent to), then continue the draft."""
    actor = await visitor(request, runtime)
    if actor is None:
        return redirect(request, f"/login?next={quote(request.url.path, safe='')}")
    draft = await FormLinks(Forms(runtime)).resume(actor, token)
    first_open = next((p["name"] for p in draft["pages"] if not p["complete"]), None)
    return redirect(request, _draft_url(draft["key"], first_open) if first_open else _draft_url(draft["key"]))


# -- staff: drafts not sent -------------------------------------------------------------------


@get("/drafts", include_in_schema=False)
async def unsent_drafts(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """Forms customers started but did not send, with "send order link"."""
    rows = await FormLinks(Forms(runtime)).unsent(request.user)
    zone = zone_of(runtime.workspace.settings.timezone)
    page = page_for(request, runtime)
    return show_portal(request, runtime, "drafts.html", drafts=[{**d, "at": local_text(d["updated_at"], zone)}
                                                              for d in rows],
                  form_label=lambda name: form_label(page, runtime, name), sent=None)


@post("/drafts/{key:str}/link", include_in_schema=False)
async def send_link(request: Request[Actor, Any, Any], runtime: RuntimeDep, key: FromPath[str]) -> Response[Any]:
    """Mail the person a single-use link that resumes the draft."""
    sent = await FormLinks(Forms(runtime)).send_link(request.user, key)
    page = page_for(request, runtime)
    text = escape(page.gettext("Link sent to %(to)s", to=sent["to"]))
    return Response(f'<span class="notice" role="status">{text}</span>', media_type="text/html", status_code=200)


PORTAL_FORM_HANDLERS = (start_form, form_intro, form_page, save_form_page, preview_form_page, form_summary,
                        submit_form, resume, unsent_drafts, send_link)
"""The routes of the portal's forms and of the drafts staff see."""
