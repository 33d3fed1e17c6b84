"""Time tracking over JSON: timers, time entries and the timesheet report (the same one the screens show)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from engine.runtime import Actor
from engine.runtime.reports import GROUPS, SORTS, invoice, selection, summary, summary_keys, timesheet
from engine.runtime.timesheets import MAX_ENTRY_MINUTES, Timesheets

from ..deps import RuntimeDep
from .bodies import ID_MAX, VERSION_MAX, Body, set_values

Text = Annotated[str | None, QueryParameter(max_length=200)]
EntryId = Annotated[int, PathParameter(ge=1, le=ID_MAX, description="the time entry's id")]
When = Annotated[str, Meta(max_length=40, examples=["2026-03-02T09:00", "2026-03-02T09:00:00+01:00"], description=(
    "a date and time, ISO 8601; without an offset, a local time in the workspace's time zone"))]
Minutes = Annotated[int, Meta(description=f"whole minutes, 1 to {MAX_ENTRY_MINUTES}")]
Percent = Annotated[int, Meta(description="the work order's percent complete, 0 to 100")]


class TimerBody(Body):
    order: Annotated[str, Meta(max_length=60, description="the work order's number")]


class EntryBody(Body):
    """A time entry to book; ``process_action``/``advance_to`` change the order in the same transaction."""

    order: Annotated[str, Meta(max_length=60, description="the work order's number")]
    started_at: When
    minutes: Minutes
    billable: bool = True
    note: Annotated[str, Meta(max_length=2000)] | None = None
    percent_complete: Percent | None = None
    user: Annotated[str, Meta(max_length=100, description="book for this login (supervisors only)")] | None = None
    process_action: Annotated[str, Meta(max_length=100)] | None = None
    advance_to: Annotated[str, Meta(max_length=100, description="a next step or `complete`")] | None = None
    version: Annotated[int, Meta(ge=1, le=VERSION_MAX,
                                 description="the order's version; needed with a status change")] | None = None


class EntryPatch(Body):
    """A change of an entry read at ``version``; keys left out stay as they are."""

    version: Annotated[int, Meta(ge=1, le=VERSION_MAX, description="the entry's version you read")]
    started_at: When | UnsetType = UNSET
    minutes: Minutes | UnsetType = UNSET
    billable: bool | UnsetType = UNSET
    note: Annotated[str, Meta(max_length=2000)] | None | UnsetType = UNSET
    percent_complete: Percent | None | UnsetType = UNSET


def _local_text(value: Any) -> Any:
    """A datetime body value as ISO text (a naive one stays naive: local time)."""
    return value.isoformat() if isinstance(value, dt.datetime) else value


class TimerController(Controller):
    path = "/api/timers"
    tags = ["time"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/current", summary="Your running timer (null when none runs)")
    async def current(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> dict[str, Any] | None:
        return await Timesheets(runtime).current(request.user)

    @post("/start", status_code=200, summary="Start your timer on a work order (a timer running elsewhere is "
                                              "stopped and booked)")
    async def start(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                    data: JSONBody[TimerBody]) -> dict[str, Any]:
        return await Timesheets(runtime).start(request.user, data.order)

    @post("/stop", status_code=200, summary="Stop your timer; returns the draft entry to book")
    async def stop(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> dict[str, Any]:
        return await Timesheets(runtime).stop(request.user)


class TimeEntryController(Controller):
    path = "/api/time-entries"
    tags = ["time"]  # noqa: RUF012

    @post("/", summary="Book a time entry (optionally with percent complete and a status change of the order)")
    async def create(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                     data: JSONBody[EntryBody]) -> dict[str, Any]:
        values = {k: _local_text(v) for k, v in set_values(data).items() if v is not None}
        values["started_at"] = _local_text(data.started_at)
        return await Timesheets(runtime).create(request.user, values)

    @get("/{entry:int}", summary="One time entry (its author, a supervisor of its order's group, or time.edit_others)")
    async def get_entry(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                        entry: EntryId) -> dict[str, Any]:
        return await Timesheets(runtime).get(request.user, entry)

    @patch("/{entry:int}", summary="Change a time entry")
    async def update(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, entry: EntryId,
                     data: JSONBody[EntryPatch]) -> dict[str, Any]:
        values = set_values(data, skip=("version",))
        if data.started_at is not UNSET:
            values["started_at"] = _local_text(data.started_at)
        return await Timesheets(runtime).update(request.user, entry, data.version, values)

    @delete("/{entry:int}", status_code=204, summary="Delete a time entry read at `version`")
    async def remove(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, entry: EntryId,
                     version: Annotated[int, QueryParameter(ge=1, le=VERSION_MAX,
                                                            description="the entry's version you read")]) -> None:
        await Timesheets(runtime).delete(request.user, entry, version)

    @get("/", summary="The time entries of one work order you may see")
    async def of_order(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                       order: Annotated[str, QueryParameter(max_length=60)]) -> list[dict[str, Any]]:
        return await Timesheets(runtime).entries_of(request.user, order)


class ReportController(Controller):
    path = "/api/reports"
    tags = ["time"]  # noqa: RUF012

    @get("/timesheets", summary="Time entries of a selection, grouped, with subtotals and totals")
    async def timesheets(
        self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
        user: Text = None, customer_id: Text = None, project_id: Text = None, template: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from", description="first day, YYYY-MM-DD")] = None,
        to: Annotated[str | None, QueryParameter(description="last day (inclusive), YYYY-MM-DD")] = None,
        billable: Annotated[str | None, QueryParameter(description="yes or no")] = None,
        sort: Annotated[str | None, QueryParameter(description=f"one of {', '.join(SORTS)}; - for descending")] = None,
        group_by: Annotated[str | None, QueryParameter(description=f"one of {', '.join(GROUPS)}")] = None,
    ) -> dict[str, Any]:
        report = await timesheet(runtime, request.user, selection(runtime, _params(request)))
        return report.as_json()

    @get("/invoice", summary="Billable hours and amounts per customer and project (same filters)")
    async def invoice_view(
        self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
        user: Text = None, customer_id: Text = None, project_id: Text = None, template: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from")] = None, to: Text = None, billable: Text = None,
    ) -> list[dict[str, Any]]:
        return invoice(await timesheet(runtime, request.user, selection(runtime, _params(request))))

    @get("/summary", summary="Totals per group only (one or two keys, e.g. `customer,month`), for large selections")
    async def summary_view(
        self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
        group_by: Annotated[str, QueryParameter(description="one or two of user, customer, project, day, week, "
                                                             "month, comma-separated")],
        user: Text = None, customer_id: Text = None, project_id: Text = None, template: Text = None,
        from_: Annotated[str | None, QueryParameter(name="from")] = None, to: Text = None, billable: Text = None,
    ) -> list[dict[str, Any]]:
        params = _params(request)
        keys = summary_keys(params.pop("group_by", None))
        return await summary(runtime, request.user, selection(runtime, params), keys)


def _params(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """Every query parameter, so that an unknown one is refused by name."""
    return {key: request.query_params.get(key) for key in request.query_params}


TIME_HANDLERS = [TimerController, TimeEntryController, ReportController]
"""The API's time routes, for ``ui.app``."""
