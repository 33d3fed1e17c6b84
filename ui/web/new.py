"""New work orders: the templates a person may create, and each template's create form.

The form is compiled from the template's definition (its own attributes, then its
custom fields by section); posting it creates the work order through the runtime and
goes to its page. Refused input comes back in the form, at each input, as entered.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from engine.errors import Invalid, NotFound
from engine.link.resolved import ResolvedTemplate
from engine.model.common import PRIORITIES
from engine.runtime import Actor, Runtime

from ..deps import RuntimeDep
from .common import environment, page_for, redirect
from .files import UPLOAD_REQUEST_MAX, FilesDep, save_with_files, upload_hint
from .forms import (
    CORE_FIELDS,
    Names,
    decimal_pattern,
    entered_values,
    form_values,
    parse_form,
    resolve,
    sections,
)
from .orders import error_map, read_form
from .render import render, render_block
from .times import zone_of

NEW_CORE = ("title", "priority", "customer_id", "requested_at", "planned_at")


def creatable(runtime: Runtime, actor: Actor) -> list[ResolvedTemplate]:
    """The templates ``actor`` may create work orders of (as ``Runtime.create`` decides for staff)."""
    if not actor.is_staff or not actor.can("order.create"):
        return []
    return [t for t in runtime.workspace.templates.values()
            if "admin" in actor.permissions or actor.groups & runtime.range_of(t)]


def _template(runtime: Runtime, actor: Actor, name: str) -> ResolvedTemplate:
    found = next((t for t in creatable(runtime, actor) if t.name == name), None)
    if found is None:
        raise NotFound(f"no template {name} you may create work orders of")
    return found


def _form_values(runtime: Runtime, template: ResolvedTemplate, values: dict[str, Any], errors: list[dict[str, str]],
                 queue: str | None = None) -> dict[str, Any]:
    others = [e for e in errors if e.get("field") not in {*CORE_FIELDS, "queue"}
              and not (e.get("field") or "").startswith("fields.")]
    return {
        "template": template, "sections": [(title, items) for title, items in sections(template.fields)],
        "values": values, "errors": error_map(errors), "other_errors": others, "priorities": PRIORITIES,
        "decimal_pattern": decimal_pattern, "zone_name": runtime.workspace.settings.timezone,
        "core_names": NEW_CORE, "queues": [(q, runtime.workspace.queues[q]) for q in template.queues],
        "queue": queue or template.queues[0], "has_upload": any(f.type == "upload" for f in template.fields),
        "upload_limit": upload_hint(runtime), "files": {},
    }


@get("/new", include_in_schema=False)
async def new_order(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The templates the user may create a work order of."""
    return render(environment(), page_for(request, runtime), "new.html", templates=creatable(runtime, request.user))


@get("/new/{template:str}", include_in_schema=False)
async def new_form(request: Request[Actor, Any, Any], runtime: RuntimeDep, template: FromPath[str]) -> Response[str]:
    """The create form of ``template``, filled with the fields' defaults."""
    found = _template(runtime, request.user, template)
    zone = zone_of(runtime.workspace.settings.timezone)
    values = {"priority": "normal", **form_values(found.fields, {f.name: f.default for f in found.fields}, Names(), zone)}
    return render(environment(), page_for(request, runtime), "new_form.html", **_form_values(runtime, found, values, []))


@post("/new/{template:str}", include_in_schema=False, request_max_body_size=UPLOAD_REQUEST_MAX)
async def create_order(request: Request[Actor, Any, Any], runtime: RuntimeDep, files: FilesDep,
                       template: FromPath[str]) -> Response[Any]:
    """Create the work order (with the files sent) and go to its page; refused input comes back in the form (422)."""
    actor = request.user
    found = _template(runtime, actor, template)
    form = await read_form(request)
    parsed = parse_form(form, found.fields, NEW_CORE, zone=zone_of(runtime.workspace.settings.timezone))
    queue = next((v for v in form.get("queue", []) if isinstance(v, str) and v), None)
    if queue is not None:
        parsed.data["queue"] = queue
    await resolve(runtime, actor, parsed)
    try:
        if parsed.errors:
            try:  # the runtime's objections to the rest, all at once
                runtime.codecs[found.name].validate(parsed.data.get("fields") or {}, partial=False)
            except Invalid as exc:
                known = {e["field"] for e in parsed.errors}
                parsed.errors += [e for e in exc.errors if e["field"] not in known]
            raise Invalid("not accepted", parsed.errors)
        if parsed.files:
            sent = {f.field: [1] for f in parsed.files}  # stand-ins: the rest is checked before anything is stored
            runtime.codecs[found.name].validate({**(parsed.data.get("fields") or {}), **sent}, partial=False)

            async def change(uploads: dict[str, Any]) -> dict[str, Any]:
                return await runtime.create(actor, found.name, {**parsed.data, "fields": {**parsed.fields, **uploads}})
            order = await save_with_files(files, actor, parsed, found.fields, {}, change)
        else:
            order = await runtime.create(actor, found.name, parsed.data)
    except Invalid as exc:
        values = entered_values(form, found.fields, NEW_CORE)
        page = page_for(request, runtime)
        context = _form_values(runtime, found, values, exc.errors, queue)
        if page.is_htmx:
            return render_block(environment(), page, "new_form.html", "form", status=422, **context)
        return render(environment(), page, "new_form.html", status=422, **context)
    return redirect(request, f"/orders/{order['number']}")


NEW_HANDLERS = (new_order, new_form, create_order)
"""The routes of creating work orders."""
