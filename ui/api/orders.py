"""Work orders: read, list, count, edit, process actions, route, assign, cancel, link, audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, PathParameter, QueryParameter
from msgspec import UNSET

from engine.automation.macros import apply_macro
from engine.errors import BadQuery, Invalid
from engine.runtime import Actor
from engine.runtime.views import FILTERS, counts, list_orders

from ..deps import RuntimeDep
from .bodies import (
    ActionBody,
    AdvanceBody,
    AssignBody,
    CancelBody,
    LinkBody,
    MacroBody,
    OrderPatch,
    ReturnBody,
    set_values,
)

Number = Annotated[str, PathParameter(max_length=60, description="the work order's number, e.g. DS-100001")]
Q = FromQuery[str | None]
PAGING = ("sort", "cursor", "limit")


class OrderController(Controller):
    path = "/api/orders"
    tags = ["orders"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", summary="List work orders (filtered, sorted, cursor-paged)")
    async def list_view(
        self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
        queue: Q = None, step: Q = None, status: Q = None, template: Q = None, priority: Q = None,
        owner: Annotated[str | None, QueryParameter(description="a login, `me` or `none`")] = None,
        group: Q = None, customer_id: Q = None,
        sort: Annotated[str, QueryParameter(description="a field, `-` prefix for descending")] = "-created_at",
        cursor: Q = None, limit: FromQuery[int] = 50,
    ) -> dict[str, Any]:
        unknown = [k for k in request.query_params if k not in FILTERS and k not in PAGING]
        if unknown:
            raise BadQuery("the list cannot be shown", [
                {"field": k, "message": f"filter by one of: {', '.join(FILTERS)}"} for k in unknown])
        given = {"queue": queue, "step": step, "status": status, "template": template, "priority": priority,
                 "owner": owner, "group": group, "customer_id": customer_id}
        filters = {k: v for k, v in given.items() if v is not None}
        return await list_orders(runtime, request.user, filters=filters, sort=sort, cursor=cursor, limit=limit)

    @get("/counts", summary="Open work per queue and step, all work per status")
    async def count_view(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> dict[str, Any]:
        return await counts(runtime, request.user)

    @get("/{number:str}", summary="One work order")
    async def get_order(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number) -> dict[str, Any]:
        return await runtime.get(request.user, number)

    @patch("/{number:str}", summary="Edit the work order's content (custom fields, title, priority, dates, customer)")
    async def update(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                     data: JSONBody[OrderPatch]) -> dict[str, Any]:
        return await runtime.update(request.user, number, data.version, set_values(data, skip=("version",)))

    @post("/{number:str}/actions/{action:str}", status_code=200, summary="Process or skip an action of the current step")
    async def process(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number, action: FromPath[str],
                      data: JSONBody[ActionBody]) -> dict[str, Any]:
        return await runtime.process(request.user, number, data.version, action, skip=data.skip, note=data.note,
                                     follow_up=data.follow_up)

    @post("/{number:str}/advance", status_code=200, summary="Move a finished step on")
    async def advance(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                      data: JSONBody[AdvanceBody]) -> dict[str, Any]:
        return await runtime.advance(request.user, number, data.version, data.to, data.follow_up)

    @post("/{number:str}/return", status_code=200, summary="Send the work order back")
    async def return_order(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                           data: JSONBody[ReturnBody]) -> dict[str, Any]:
        return await runtime.return_order(request.user, number, data.version, data.to)

    @post("/{number:str}/assign", status_code=200, summary="Give the work order to a member of its group")
    async def assign(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                     data: JSONBody[AssignBody]) -> dict[str, Any]:
        if (data.owner is UNSET) == (data.rule is None):
            raise Invalid("say who gets the work order", [
                {"field": "owner", "message": "give either `owner` (a login, or null for nobody) or `rule`"}])
        owner = None if data.owner is UNSET else data.owner
        return await runtime.assign(request.user, number, data.version, owner, rule=data.rule)

    @post("/{number:str}/cancel", status_code=200, summary="Cancel the work order, for good")
    async def cancel(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                     data: JSONBody[CancelBody]) -> dict[str, Any]:
        return await runtime.cancel(request.user, number, data.version, data.reason)

    @post("/{number:str}/macros/{name:str}", status_code=200,
          summary="Apply a macro: its actions all at once, or none of them")
    async def macro(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                    name: FromPath[str], data: JSONBody[MacroBody]) -> dict[str, Any]:
        return await apply_macro(runtime, request.user, number, data.version, name)

    @get("/{number:str}/links", summary="The work orders linked to this one")
    async def links(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number) -> list[dict[str, Any]]:
        return await runtime.links(request.user, number)

    @post("/{number:str}/links", status_code=200, summary="Link another work order to this one")
    async def link(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                   data: JSONBody[LinkBody]) -> dict[str, Any]:
        return await runtime.link(request.user, number, data.number)

    @get("/{number:str}/events", summary="The audit trail, oldest first")
    async def events(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number) -> list[dict[str, Any]]:
        return await runtime.events(request.user, number)
