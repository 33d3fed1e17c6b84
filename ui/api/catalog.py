"""What the workspace defines (templates, queues) and the health check; finding customers is in ``customers``."""

from __future__ import annotations

from typing import Any

from litestar import Request, get

from engine.link.resolved import ResolvedField, ResolvedQueue, ResolvedTemplate
from engine.runtime import Actor

from ..auth import PUBLIC_OPT
from ..deps import RuntimeDep


def _label(labels: dict[str, str], fallback: str) -> str:
    return next(iter(labels.values()), fallback)


def _field(field: ResolvedField) -> dict[str, Any]:
    out: dict[str, Any] = {"name": field.name, "type": field.type_name, "label": _label(field.label, field.name),
                           "required": field.required, "default": field.default}
    if field.extension is not None:  # a plugin's type: the core type its values take
        out["base"] = field.type
    if field.options:
        out["options"] = list(field.options)
        out["can_enter"] = field.can_enter
    return out


def template_summary(template: ResolvedTemplate) -> dict[str, Any]:
    return {"name": template.name, "label": _label(template.label, template.name), "queues": list(template.queues),
            "prefix": template.prefix, "edit_limit": template.edit_limit,
            "create": f"/api/templates/{template.name}/orders", "fields": [_field(f) for f in template.fields]}


def queue_summary(queue: ResolvedQueue) -> dict[str, Any]:
    return {"name": queue.name, "label": _label(queue.label, queue.name), "templates": list(queue.templates),
            "steps": [{"name": s.name, "label": _label(s.label, s.name), "group": s.group, "next": list(s.next),
                       "returns": list(s.returns),
                       "actions": [{"name": a.name, "label": _label(a.label, a.name), "skippable": a.skippable,
                                    "plugin": a.plugin} for a in s.actions]} for s in queue.steps]}


@get("/api/templates", tags=["definitions"], summary="The work-order templates and their fields")
async def list_templates(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [template_summary(t) for t in runtime.workspace.templates.values()]


@get("/api/queues", tags=["definitions"], summary="The queues, their steps and actions")
async def list_queues(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> list[dict[str, Any]]:
    return [queue_summary(q) for q in runtime.workspace.queues.values()]


@get("/health", opt={PUBLIC_OPT: True}, tags=["health"], summary="Is the server up and its database reachable?")
async def health(runtime: RuntimeDep) -> dict[str, Any]:
    await runtime.db.fetch("SELECT 1 AS ok")
    return {"status": "ok", "definition_version": runtime.workspace.fingerprint[:12]}
