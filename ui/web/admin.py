"""The definitions browser: what the workspace defines and where, for admins, read-only.

``/admin`` lists every queue, template, field, group, role, rule, SLA, form and macro with
the file and line it is defined at (where the linked definition keeps one) and the
definition version. A queue's page shows its steps, actions and routing with the workflow
diagram (``engine.diagram``), served as ``image/svg+xml`` from its own route and shown in
an ``<img>``; a template's page shows its settings and fields. Users with the ``admin`` or
``definition.apply`` permission may look; others get 403.

Admins (``admin`` permission) also find the mail settings there with a button that sends a
test mail through the configured SMTP server (``POST /admin/mail/test``, see
``engine.comms.smtp_check``); the JSON API offers the same as ``POST /api/admin/mail/test``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath

from engine.comms.smtp_check import MailTestLimiter, MailTestResult, describe_server, send_test_mail

from engine.diagnostics import Location
from engine.diagram import DiagramWords, queue_svg
from engine.errors import Invalid, NotFound, ServiceError
from engine.labels import label_map
from engine.link.resolved import LinkedWorkspace, ResolvedField, ResolvedQueue, ResolvedTemplate
from engine.model import Trigger
from engine.runtime import Actor, Runtime

from ..deps import RuntimeDep
from .common import WEB_EXCEPTION_HANDLERS, page_for, show
from .orders import fragment, html, read_form
from .render import N_, Page

SVG_MEDIA_TYPE = "image/svg+xml"
SVG_HEADERS = {
    # The picture is drawn by engine.diagram with every text escaped; this keeps it inert even when opened directly.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-cache",
}


def require_mail_admin(actor: Actor) -> None:
    """Refuse (403) anyone without the ``admin`` permission: only admins send test mails."""
    if not actor.can("admin"):
        raise PermissionDeniedException("only admins may send a test mail")


def mail_test_limiter(state: State) -> MailTestLimiter:
    """The app's limit on test mails (one per process, shared by the page and the API)."""
    limiter = state.get("mail_test_limiter")
    if not isinstance(limiter, MailTestLimiter):
        limiter = state.setdefault("mail_test_limiter", MailTestLimiter())
    return limiter


async def mail_test(request: Request[Actor, Any, Any], runtime: Runtime, to: Any) -> MailTestResult:
    """Send the test mail for the API and the page: admin only, rate limited, through ``mail.smtp`` only."""
    actor = request.user
    require_mail_admin(actor)
    if not isinstance(to, str) or not to.strip():
        raise Invalid("say where to send the test mail", [{"field": "to", "message": "give an email address"}])
    mail_test_limiter(request.app.state).take(actor.login)
    return await send_test_mail(runtime.workspace.settings, to, actor.login)


def require_admin(actor: Actor) -> None:
    """Refuse (403) anyone who may neither administer nor apply definitions."""
    if not (actor.can("admin") or actor.can("definition.apply")):
        raise PermissionDeniedException("the definitions are shown to admins only")


def where(definition: Any, kind: str | None = None, workspace: LinkedWorkspace | None = None) -> Location | None:
    """Where ``definition`` is written: its own place, else its document's (by kind and name)."""
    location = getattr(definition, "location", None)
    if isinstance(location, Location):
        return location
    if kind is not None and workspace is not None:
        return workspace.locations.get(kind, {}).get(str(getattr(definition, "name", "")))
    return None


def _labels(workspace: LinkedWorkspace, label: Any) -> dict[str, str]:
    """The label of an as-written definition (text, mapping or nothing) as a mapping of language to text."""
    return label_map(label, workspace.settings.language)


def _events(on: tuple[Any, ...]) -> list[str]:
    return [str(t.event) if isinstance(t, Trigger) else str(t) for t in on]


def overview_rows(workspace: LinkedWorkspace) -> dict[str, list[dict[str, Any]]]:
    """Every definition the overview lists, by kind, each with its name, label, place and a few facts."""
    def row(name: str, definition: Any, label: dict[str, str], kind: str | None = None, **facts: Any) -> dict[str, Any]:
        return {"name": name, "label": label, "where": where(definition, kind, workspace), **facts}

    def plain(definition: Any) -> dict[str, str]:
        return _labels(workspace, getattr(definition, "label", None))

    return {
        "queues": [row(n, q, q.label, steps=len(q.steps), templates=q.templates) for n, q in workspace.queues.items()],
        "templates": [row(n, t, t.label, fields=len(t.fields), prefix=t.prefix, queues=t.queues)
                      for n, t in workspace.templates.items()],
        "fields": [row(f.name, f, f.label, template=t.name, type=f.type, required=f.required)
                   for t in workspace.templates.values() for f in t.fields],
        "groups": [row(n, g, plain(g), "Group", supervisor=g.supervisor, members=len(g.members))
                   for n, g in workspace.groups.items()],
        "roles": [row(n, r, plain(r), "Role", permissions=r.permissions, groups=r.groups) for n, r in workspace.roles.items()],
        "rules": [row(n, r, plain(r), "Rule", events=_events(r.on), enabled=r.enabled) for n, r in workspace.rules.items()],
        "slas": [row(n, s, plain(s), "SLA", templates=s.templates, calendar=s.calendar) for n, s in workspace.slas.items()],
        "forms": [row(n, f, plain(f), "Form", template=f.template, access=f.access, pages=len(f.pages))
                  for n, f in workspace.forms.items()],
        "macros": [row(n, m, plain(m), "Macro", templates=m.templates, actions=len(m.actions)) for n, m in workspace.macros.items()],
        "comment_templates": [row(n, c, plain(c), "CommentTemplate", templates=c.templates, use=c.use)
                              for n, c in workspace.comment_templates.items()],
    }


def _queue(runtime: Runtime, name: str) -> ResolvedQueue:
    queue = runtime.workspace.queues.get(name)
    if queue is None:
        raise NotFound(f"no queue {name}")
    return queue


def _template(runtime: Runtime, name: str) -> ResolvedTemplate:
    template = runtime.workspace.templates.get(name)
    if template is None:
        raise NotFound(f"no template {name}")
    return template


def yaml_value(value: Any) -> str:
    """A setting's value written as in YAML: ``true``, ``12`` rather than Python's ``True``, ``12.0``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def constraints(field: ResolvedField) -> list[tuple[str, str]]:
    """The field's settings beyond type, label, required, options and section, as (key, value) in the YAML's words."""
    items: list[tuple[str, Any]] = [
        ("default", field.default), ("max_length", field.max_length), ("pattern", field.pattern),
        ("min", field.min), ("max", field.max), ("digits", field.digits), ("places", field.places),
        ("reference", field.reference), ("renamed_from", field.renamed_from),
        ("can_enter", field.can_enter or None), ("multiple", field.multiple or None),
    ]
    return [(key, yaml_value(value)) for key, value in items if value is not None]


def diagram_words(page: Page) -> DiagramWords:
    """The diagram's words in the page's language."""
    # "Actions: 3" rather than "3 actions": the catalogues hold no plural forms (they are extracted with _ and N_).
    return DiagramWords(
        complete=page.gettext(N_("Complete")), supervisor=page.gettext(N_("Supervisor")),
        previous=page.gettext(N_("previous")), next_step=page.gettext(N_("next step")),
        return_path=page.gettext(N_("return path")),
        actions=lambda n: page.gettext(N_("Actions: %(count)s"), count=n))


@get("/admin", include_in_schema=False)
async def admin_overview(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Every definition of the workspace with where it is defined, and the definition version."""
    require_admin(request.user)
    workspace = runtime.workspace
    mail = workspace.settings.mail
    return show(request, runtime, "admin.html", workspace=workspace, rows=overview_rows(workspace),
                group_labels={n: _labels(workspace, g.label) for n, g in workspace.groups.items()},
                can_test_mail=request.user.can("admin"),
                mail_server=describe_server(mail.smtp) if mail is not None and mail.smtp is not None else None,
                mail_result=None, mail_error=None, mail_to="")


@post("/admin/mail/test", include_in_schema=False, exception_handlers=WEB_EXCEPTION_HANDLERS)
async def admin_mail_test(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The admin page's test-mail button: the outcome (or the refusal) in place of the form's result."""
    require_mail_admin(request.user)
    form = await read_form(request)
    values = [v for v in form.get("to", ()) if isinstance(v, str)]
    to = values[-1] if values else ""
    page = page_for(request, runtime)
    try:
        result = await mail_test(request, runtime, to)
    except ServiceError as exc:
        status = 422 if isinstance(exc, Invalid) else 409
        message = "; ".join(e["message"] for e in exc.errors) or exc.detail
        return html(fragment(page, "admin_mail_test.html", {"mail_error": message, "mail_result": None,
                                                            "mail_to": to}), status=status)
    return html(fragment(page, "admin_mail_test.html", {"mail_error": None, "mail_result": result, "mail_to": to}))


@get("/admin/queues/{name:str}", include_in_schema=False)
async def admin_queue(request: Request[Actor, Any, Any], runtime: RuntimeDep, name: FromPath[str]) -> Response[str]:
    """A queue: its steps with group, actions and routing, and the workflow diagram."""
    require_admin(request.user)
    queue = _queue(runtime, name)
    workspace = runtime.workspace
    return show(request, runtime, "admin_queue.html", workspace=workspace, queue=queue,
                group_labels={n: _labels(workspace, g.label) for n, g in workspace.groups.items()})


@get("/admin/queues/{name:str}/diagram.svg", include_in_schema=False)
async def admin_queue_diagram(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                              name: FromPath[str]) -> Response[str]:
    """The queue's workflow diagram as an SVG picture, labels in the user's language."""
    require_admin(request.user)
    queue = _queue(runtime, name)
    page = page_for(request, runtime)
    svg = queue_svg(queue, runtime.workspace, page.language, diagram_words(page))
    return Response(svg, media_type=SVG_MEDIA_TYPE, headers=SVG_HEADERS)


@get("/admin/templates/{name:str}", include_in_schema=False)
async def admin_template(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                         name: FromPath[str]) -> Response[str]:
    """A template: its settings and its fields."""
    require_admin(request.user)
    template = _template(runtime, name)
    workspace = runtime.workspace
    return show(request, runtime, "admin_template.html", workspace=workspace, template=template,
                constraints=constraints,
                group_labels={n: _labels(workspace, g.label) for n, g in workspace.groups.items()})
