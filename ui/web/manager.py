"""The Order Manager: queues and their steps with counts, and the orders of a step or status.

The side panel counts open work per queue and step and all work per status; choosing
one loads its list into the page (htmx, the URL follows). Lists sort by a column,
filter by owner, priority and template, and page on with "Show more" (a keyset cursor).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.errors import BadQuery
from engine.automation.sla import sla_due
from engine.model.common import PRIORITIES
from engine.runtime import Actor
from engine.runtime.views import FILTERS, counts, list_orders

from ..deps import RuntimeDep
from .common import environment, page_for
from .render import render, render_block

PAGE_SIZE = 50
STATUSES = ("open", "completed", "cancelled")
ANY = "any"
"""The status filter's value for work in every status."""
COLUMNS = ("number", "step", "status", "priority", "created_at", "planned_at")
"""The sortable columns of the list, in the order shown."""


def _selection(request: Request[Any, Any, Any]) -> tuple[dict[str, str], str, str | None]:
    """The list's filters, sort and cursor from the query string; unknown keys refused."""
    params = request.query_params
    filters: dict[str, str] = {}
    unknown = []
    for key in params:
        if key in FILTERS:
            value = params.get(key)
            if value:
                filters[key] = value
        elif key not in ("sort", "cursor"):
            unknown.append(key)
    if unknown:
        raise BadQuery("the list cannot be shown",
                      [{"field": k, "message": f"filter by one of: {', '.join(FILTERS)}"} for k in unknown])
    # Counts in the side panel are of open work, so a list shows open work unless asked otherwise.
    status = filters.setdefault("status", "open")
    if status == ANY:
        del filters["status"]
    return filters, params.get("sort") or "-created_at", params.get("cursor") or None


def link_filters(filters: dict[str, str]) -> dict[str, str]:
    """The filters as links must repeat them (no status given means: any status)."""
    return filters if "status" in filters else {**filters, "status": ANY}


async def with_sla_due(runtime: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The listed orders with their nearest SLA deadline (``item["sla"]``: due_at, state, overdue; or None)."""
    due = await sla_due(runtime.db, [item["number"] for item in items])
    for item in items:
        item["sla"] = due.get(item["number"])
    return items


async def _list_values(request: Request[Actor, Any, Any], runtime: Any) -> dict[str, Any]:
    filters, sort, cursor = _selection(request)
    result = await list_orders(runtime, request.user, filters=filters, sort=sort, cursor=cursor, limit=PAGE_SIZE)
    workspace = runtime.workspace
    await with_sla_due(runtime, result["items"])
    return {
        "filters": filters, "base": link_filters(filters), "sort": sort, "items": result["items"], "next_cursor": result["next_cursor"],
        "columns": COLUMNS, "priorities": PRIORITIES, "statuses": STATUSES, "any_status": ANY, "templates": workspace.templates, "queues": workspace.queues,
    }


@get("/manager", include_in_schema=False)
async def manager(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The whole screen; an htmx request for a new selection gets only the list."""
    page = page_for(request, runtime)
    values = await _list_values(request, runtime)
    if page.is_htmx and request.headers.get("hx-target") == "list":
        return render_block(environment(), page, "manager.html", "list", **values)
    # Totals of completed and cancelled work count every row: they follow in their own request.
    return render(environment(), page, "manager.html", counts=await counts(runtime, request.user, final=False),
                  counts_complete=False, **values)


@get("/manager/statuses", include_in_schema=False)
async def manager_statuses(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The side panel's work per status, every status counted."""
    page = page_for(request, runtime)
    filters, _, _ = _selection(request)
    return render_block(environment(), page, "manager.html", "statuses", counts=await counts(runtime, request.user),
                        counts_complete=True, statuses=STATUSES, filters=filters)


@get("/manager/rows", include_in_schema=False)
async def manager_rows(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The next page of rows (replaces the "Show more" row)."""
    page = page_for(request, runtime)
    return render_block(environment(), page, "manager.html", "rows", **await _list_values(request, runtime))


@get("/manager/panel", include_in_schema=False)
async def manager_panel(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The side panel alone, to refresh its counts."""
    page = page_for(request, runtime)
    filters, _, _ = _selection(request)
    return render_block(environment(), page, "manager.html", "panel", counts=await counts(runtime, request.user),
                        counts_complete=True, statuses=STATUSES, filters=filters, queues=runtime.workspace.queues)
