"""An agent's own work and a supervisor's assignment view.

"My work orders" is the Order Manager's list filtered to the signed-in owner. The
assignment view lists the open, unassigned work orders of the groups the user
supervises (all groups with the ``order.assign`` permission); each can be given to a
member with one click, or to whom an assignment rule picks.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.params import FromPath

from engine.errors import Invalid
from engine.model.common import PRIORITIES
from engine.runtime import Actor
from engine.runtime.actors import group_members
from engine.runtime.assignment import ASSIGNMENT_RULES
from engine.runtime.views import counts, list_orders

from ..deps import RuntimeDep
from .common import environment, page_for
from .manager import ANY, COLUMNS, PAGE_SIZE, STATUSES, link_filters, with_sla_due
from .render import render, render_block

MAX_ROWS_PER_GROUP = 100


@get("/my", include_in_schema=False)
async def my_work(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The signed-in user's open work orders, in the Order Manager's layout."""
    filters = {"owner": "me", "status": "open"}
    result = await list_orders(runtime, request.user, filters=filters, sort="-created_at", limit=PAGE_SIZE)
    workspace = runtime.workspace
    return render(environment(), page_for(request, runtime), "manager.html",
                  counts=await counts(runtime, request.user, final=False), counts_complete=False,
                  statuses=STATUSES, filters=filters, base=link_filters(filters),
                  sort="-created_at", items=await with_sla_due(runtime, result["items"]), next_cursor=result["next_cursor"], columns=COLUMNS,
                  priorities=PRIORITIES, any_status=ANY, templates=workspace.templates, queues=workspace.queues)


def _groups(request: Request[Actor, Any, Any], runtime: Any) -> list[str]:
    actor = request.user
    if actor.can("order.assign"):
        return sorted(runtime.workspace.groups)
    if not actor.supervises:
        raise PermissionDeniedException("the assignment view is for group supervisors")
    return sorted(actor.supervises)


async def _group_view(request: Request[Actor, Any, Any], runtime: Any, group: str) -> dict[str, Any]:
    result = await list_orders(runtime, request.user, filters={"group": group, "owner": "none", "status": "open"},
                               sort="created_at", limit=MAX_ROWS_PER_GROUP)
    members = await group_members(runtime.db, runtime.workspace, group)
    return {"name": group, "items": result["items"], "more": result["next_cursor"] is not None,
            "members": sorted(members.values())}


@get("/assign", include_in_schema=False)
async def assignment(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    groups = [await _group_view(request, runtime, name) for name in _groups(request, runtime)]
    return render(environment(), page_for(request, runtime), "assign.html", groups=groups, rules=ASSIGNMENT_RULES)


@post("/assign/{number:str}", include_in_schema=False)
async def assign(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """Give one work order to a member or to a rule's choice; the row leaves the list."""
    form = await request.form()
    version = str(form.get("version") or "")
    owner = str(form.get("owner") or "") or None
    rule = str(form.get("rule") or "") or None
    if not version.isdigit():
        raise Invalid("the form is incomplete", [{"field": "version", "message": "reload the page"}])
    if owner is None and rule is None:
        raise Invalid("choose whom to give it to", [{"field": "owner", "message": "choose a member or a rule"}])
    order = await runtime.assign(request.user, number, int(version), None if rule else owner, rule=rule)
    page = page_for(request, runtime)
    return render_block(environment(), page, "assign.html", "assigned", order=order)
