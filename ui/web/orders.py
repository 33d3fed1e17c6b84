"""The work-order page and its changes: header edits in place, actions, routing, sections, cancel, links.

Every change is an htmx POST carrying the version the person read; it answers with the
region it changed (the header/actions/steps region ``#order-flow``, a section, the
links) plus the audit trail out of band. When the change ends the work order
(completed, cancelled) the whole page body is sent, now without any controls.
A person's input that the runtime refuses comes back in its form with the error at
each input (422); a work order changed meanwhile says so, with a reload link (409).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Request, Response, get, post
from litestar.enums import MediaType
from litestar.params import FromPath

from engine.errors import Conflict, Invalid, NotFound
from engine.link.resolved import ResolvedTemplate
from engine.runtime import Actor, Runtime

from ..deps import RuntimeDep
from .common import environment, page_for
from .files import UPLOAD_REQUEST_MAX, FilesDep, save_with_files
from .forms import FormLists, entered_values, form_lists, parse_form, resolve, sections
from .order_view import HEADER_PARTS, core_label, order_context
from .render import Page
from .times import zone_of

MAX_NUMBER = 60


# -- helpers ------------------------------------------------------------------------------------


def fragment(page: Page, name: str, values: Mapping[str, Any]) -> str:
    """Template ``name`` (a fragment, no layout) rendered with the page's context and ``values``."""
    return environment().get_template(name).render({**page.context(), **values})


def html(body: str, *, status: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=headers or {})


async def read_form(request: Request[Any, Any, Any]) -> dict[str, list[Any]]:
    form = await request.form()
    return form_lists(form.multi_items())


def form_version(form: FormLists) -> int:
    """The version the form was filled in on; ``Invalid`` when it is missing (a page from before)."""
    texts = [v for v in form.get("version", ()) if isinstance(v, str)]
    text = texts[-1] if texts else ""
    if not text.isdigit() or len(text) > 10:
        raise Invalid("the form does not say which version of the work order it was filled in on",
                      [{"field": "version", "message": "reload the page and try again"}])
    return int(text)


def error_map(errors: Sequence[Mapping[str, str]]) -> dict[str, str]:
    """Errors by input name (the first message of each)."""
    out: dict[str, str] = {}
    for error in errors:
        out.setdefault(error.get("field") or "", error.get("message", ""))
    return out


def changed_words(page: Page, template: ResolvedTemplate | None, changed: Sequence[str]) -> str:
    """What a conflict says changed, in the reader's words."""
    words = []
    for name in changed:
        if name.startswith("fields.") and template is not None:
            item = template.field(name.removeprefix("fields."))
            words.append(page.label(item.label, item.name) if item else name)
        elif name.startswith("actions."):
            words.append(page.gettext("actions"))
        elif name not in ("path", "group_name", "version"):
            words.append(core_label(page, name))
    unique = list(dict.fromkeys(words))
    return ", ".join(unique) if unique else page.gettext("not shown here")


async def _context(request: Request[Actor, Any, Any], runtime: Runtime, number: str,
                   order: dict[str, Any] | None = None) -> tuple[Page, dict[str, Any]]:
    page = page_for(request, runtime)
    if order is None:
        order = await runtime.get(request.user, number)
    return page, await order_context(runtime, request.user, page, order)


def _flow(page: Page, ctx: Mapping[str, Any], *, status: int = 200) -> Response[str]:
    """The flow region, with the audit trail out of band; the whole body once the order is final."""
    if ctx["final"]:
        return html(fragment(page, "order_body.html", ctx), status=status,
                    headers={"HX-Retarget": "#order", "HX-Reswap": "innerHTML"})
    body = fragment(page, "order_flow.html", ctx) + fragment(page, "order_trail.html", {**ctx, "oob": True})
    return html(body, status=status)


def _section(template: ResolvedTemplate | None, index: int) -> Sequence[Any]:
    found = sections(template.fields if template else ())
    if not 0 <= index < len(found):
        raise NotFound(f"the work order has no section {index}")
    return found[index][1]


# -- the page -----------------------------------------------------------------------------------


@get("/orders/{number:str}", include_in_schema=False)
async def order_page(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The whole work-order page."""
    page, ctx = await _context(request, runtime, number)
    return html(fragment(page, "order.html", ctx))


@get("/orders/{number:str}/flow", include_in_schema=False)
async def order_flow(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The header/actions region as it is now (closes an edit or a confirmation)."""
    page, ctx = await _context(request, runtime, number)
    return html(fragment(page, "order_flow.html", ctx))


# -- the header, in place ----------------------------------------------------------------------


@get("/orders/{number:str}/header/{part:str}", include_in_schema=False)
async def header_form(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                      part: FromPath[str]) -> Response[str]:
    if part not in HEADER_PARTS:
        raise NotFound(f"the header has no part {part}")
    page, ctx = await _context(request, runtime, number)
    return html(fragment(page, "order_flow.html", {**ctx, "editing": None if ctx["final"] else part}))


@post("/orders/{number:str}/header/{part:str}", include_in_schema=False)
async def header_save(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                      part: FromPath[str]) -> Response[str]:
    """Save one header part: the owner through assignment, the others as an edit."""
    if part not in HEADER_PARTS:
        raise NotFound(f"the header has no part {part}")
    form = await read_form(request)
    version = form_version(form)
    entered = {part: next((v for v in reversed(form.get(part, [])) if isinstance(v, str)), "")}
    try:
        if part == "owner":
            order = await runtime.assign(request.user, number, version, entered["owner"] or None)
        else:
            zone = zone_of(runtime.workspace.settings.timezone)
            parsed = parse_form({part: form.get(part, [""])}, (), (part,), zone=zone)
            if part == "title" and not str(parsed.data.get("title", "x")).strip():
                parsed.errors.append({"field": "title", "message": "a work order needs a title"})
            await resolve(runtime, request.user, parsed)
            if parsed.errors:
                raise Invalid("not accepted", parsed.errors)
            order = await runtime.update(request.user, number, version, parsed.data)
    except Invalid as exc:
        page, ctx = await _context(request, runtime, number)
        values = {**ctx["values"], **entered}
        return html(fragment(page, "order_flow.html", {**ctx, "editing": part, "values": values, "form_version": version,
                                                       "errors": error_map(exc.errors)}), status=422)
    except Conflict as exc:
        page, ctx = await _context(request, runtime, number)
        return html(fragment(page, "order_flow.html", {
            **ctx, "editing": part, "values": {**ctx["values"], **entered}, "form_version": version,
            "conflict": changed_words(page, ctx["template"], exc.changed)}), status=409)
    page, ctx = await _context(request, runtime, number, order)
    return _flow(page, ctx)


# -- the flow: actions, on, back, cancel ---------------------------------------------------------


async def _flow_change(request: Request[Actor, Any, Any], runtime: Runtime, number: str, change: Any) -> Response[str]:
    """Run ``change(version, form)``; answer with the flow region, or the conflict in it."""
    form = await read_form(request)
    version = form_version(form)
    try:
        order = await change(version, form)
    except Conflict as exc:
        page, ctx = await _context(request, runtime, number)
        return html(fragment(page, "order_flow.html", {
            **ctx, "conflict": changed_words(page, ctx["template"], exc.changed)}), status=409)
    page, ctx = await _context(request, runtime, number, order)
    return _flow(page, ctx)


def _text(form: FormLists, name: str) -> str:
    values = [v for v in form.get(name, ()) if isinstance(v, str)]
    return values[-1] if values else ""


def _follow_up(form: FormLists) -> bool | None:
    """The agent's choice of a follow-up work order, where the template lets the agent decide."""
    return True if _text(form, "follow_up") == "true" else None


@post("/orders/{number:str}/actions/{action:str}", include_in_schema=False)
async def process_action(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                         action: FromPath[str]) -> Response[str]:
    """Process an action of the current step, or skip it (``skip=true``)."""
    async def change(version: int, form: FormLists) -> dict[str, Any]:
        return await runtime.process(request.user, number, version, action, skip=_text(form, "skip") == "true",
                                     follow_up=_follow_up(form))
    return await _flow_change(request, runtime, number, change)


@post("/orders/{number:str}/advance", include_in_schema=False)
async def advance(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    async def change(version: int, form: FormLists) -> dict[str, Any]:
        return await runtime.advance(request.user, number, version, _text(form, "to") or None,
                                     follow_up=_follow_up(form))
    return await _flow_change(request, runtime, number, change)


@post("/orders/{number:str}/return", include_in_schema=False)
async def send_back(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    async def change(version: int, form: FormLists) -> dict[str, Any]:
        return await runtime.return_order(request.user, number, version, _text(form, "to"))
    return await _flow_change(request, runtime, number, change)


@get("/orders/{number:str}/cancel", include_in_schema=False)
async def cancel_confirm(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The confirmation asked before cancelling (in the page, not a browser dialog)."""
    page, ctx = await _context(request, runtime, number)
    return html(fragment(page, "order_flow.html", {**ctx, "confirming": not ctx["final"]}))


@post("/orders/{number:str}/cancel", include_in_schema=False)
async def cancel(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    async def change(version: int, form: FormLists) -> dict[str, Any]:
        return await runtime.cancel(request.user, number, version, _text(form, "reason").strip()[:300] or None)
    return await _flow_change(request, runtime, number, change)


# -- sections of custom fields --------------------------------------------------------------------


@get("/orders/{number:str}/sections/{index:int}", include_in_schema=False)
async def section(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                  index: FromPath[int]) -> Response[str]:
    """A section of custom fields, read (``?edit=1``: as a form)."""
    page, ctx = await _context(request, runtime, number)
    _section(ctx["template"], index)
    editing = index if request.query_params.get("edit") and not ctx["final"] else None
    return html(fragment(page, "order_section.html", {**ctx, "sec": ctx["sections"][index], "section_editing": editing}))


@post("/orders/{number:str}/sections/{index:int}", include_in_schema=False,
      request_max_body_size=UPLOAD_REQUEST_MAX)
async def section_save(request: Request[Actor, Any, Any], runtime: RuntimeDep, files: FilesDep,
                       number: FromPath[str], index: FromPath[int]) -> Response[str]:
    """Save a section's fields (with the files sent); errors come back at their inputs with what was entered."""
    actor = request.user
    current = await runtime.get(actor, number)
    template = runtime.workspace.templates.get(current["template"])
    items = _section(template, index)
    form = await read_form(request)
    version = form_version(form)
    parsed = parse_form(form, items, zone=zone_of(runtime.workspace.settings.timezone))
    await resolve(runtime, actor, parsed)
    try:
        if parsed.errors:
            try:  # report the runtime's objections to the rest at once
                runtime.codecs[current["template"]].validate(parsed.fields, partial=True)
            except Invalid as exc:
                parsed.errors += exc.errors
            raise Invalid("not accepted", parsed.errors)
        if parsed.files or parsed.removed:
            runtime.codecs[current["template"]].validate(parsed.fields, partial=True)  # before storing anything
            await files.check_edit(actor, number)

            async def change(uploads: dict[str, Any]) -> dict[str, Any]:
                return await runtime.update(actor, number, version, {"fields": {**parsed.fields, **uploads}})
            order = await save_with_files(files, actor, parsed, items, current["fields"], change)
        else:
            order = await runtime.update(actor, number, version, {"fields": parsed.fields})
    except (Invalid, Conflict) as exc:
        page, ctx = await _context(request, runtime, number, current)
        conflict = changed_words(page, template, exc.changed) if isinstance(exc, Conflict) else None
        values = {**ctx["values"], **entered_values(form, items)}
        return html(fragment(page, "order_section.html", {
            **ctx, "sec": ctx["sections"][index], "section_editing": index, "values": values, "form_version": version,
            "errors": {} if conflict else error_map(exc.errors), "conflict": conflict}),
            status=409 if conflict else 422)
    page, ctx = await _context(request, runtime, number, order)
    body = (fragment(page, "order_section.html", {**ctx, "sec": ctx["sections"][index]})
            + fragment(page, "order_flow.html", {**ctx, "oob": True})
            + fragment(page, "order_trail.html", {**ctx, "oob": True}))
    return html(body)


# -- links ----------------------------------------------------------------------------------------


@post("/orders/{number:str}/links", include_in_schema=False)
async def link(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """Link another work order (by its number) to this one."""
    actor = request.user
    current = await runtime.get(actor, number)  # this order must be visible before anything else is said
    form = await read_form(request)
    other = _text(form, "number").strip()
    problem: str | None = None
    if not other or len(other) > MAX_NUMBER:
        problem = "enter the number of another work order"
    elif current["status"] in ("completed", "cancelled"):
        problem = f"work order {number} is {current['status']}; it can no longer change"
    else:
        try:
            await runtime.link(actor, number, other)
        except NotFound:
            problem = f"no work order {other}"
        except Invalid as exc:
            problem = exc.errors[0]["message"] if exc.errors else exc.detail
    page, ctx = await _context(request, runtime, number)
    if problem:
        return html(fragment(page, "order_links.html", {**ctx, "link_error": problem, "link_value": other}), status=422)
    return html(fragment(page, "order_links.html", ctx) + fragment(page, "order_trail.html", {**ctx, "oob": True}))


ORDER_HANDLERS = (order_page, order_flow, header_form, header_save, process_action, advance, send_back,
                  cancel_confirm, cancel, section, section_save, link)
"""The work-order page's routes, for the screens' router."""
