"""Time on the screens: the timer on the work-order page, the entry form, the timesheets page and its exports.

The timesheets page, its CSV export and the invoice report show one ``reports.timesheet``
for the same query string, so what the page shows is what the CSV holds. The CSV is
streamed line by line, every cell that could start a spreadsheet formula neutralised.
Times are entered and shown in the workspace's time zone and stored in UTC.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.params import FromPath
from litestar.response import Stream

from engine.errors import Invalid, NotFound, Refused
from engine.runtime import Actor, Runtime
from engine.runtime.reports import FILTERS, GROUPS, SORTS, csv_lines, hours, invoice, selection, timesheet
from engine.runtime.timesheets import MAX_TIMER_HOURS, Timesheets, may_track

from ..deps import RuntimeDep
from .common import page_for, redirect, show
from .order_view import abilities
from .orders import error_map, fragment, html, read_form
from .times import local_input, local_text, zone_of

QUERY_KEYS = (*FILTERS, "sort", "group_by")


def _params(request: Request[Any, Any, Any]) -> dict[str, str | None]:
    """The report's query parameters (unknown ones are passed on, to be refused by name)."""
    return {key: request.query_params.get(key) for key in request.query_params}


async def _choices(runtime: Runtime) -> dict[str, Any]:
    """The filter form's lists: customers, projects, templates."""
    customers = await runtime.db.fetch("SELECT id, name, label FROM rc_customer ORDER BY name")
    projects = await runtime.db.fetch(
        "SELECT p.id, p.name, p.label, c.name AS customer FROM rc_project p JOIN rc_customer c ON c.id = p.customer_id "
        "ORDER BY c.name, p.name")
    return {"customers": customers, "projects": projects, "templates": runtime.workspace.templates}


@get("/timesheets", include_in_schema=False)
async def timesheets_page(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Entries of a selection, grouped with subtotals; links to the CSV and the invoice report."""
    params = _params(request)
    chosen = selection(runtime, params)
    report = await timesheet(runtime, request.user, chosen)
    given = {k: v for k, v in params.items() if v}
    zone = zone_of(runtime.workspace.settings.timezone)
    return show(request, runtime, "timesheets.html", report=report, given=given, hours=hours,
                sorts=tuple(SORTS), groups=GROUPS, query_string=urlencode(given),
                local=lambda moment: local_text(moment.isoformat(), zone), **await _choices(runtime))


async def _stream(lines: Any) -> AsyncIterator[str]:
    for line in lines:
        yield line


@get("/timesheets/export.csv", include_in_schema=False)
async def timesheets_csv(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Stream:
    """Exactly the page's rows and totals as CSV, streamed."""
    report = await timesheet(runtime, request.user, selection(runtime, _params(request)))
    zone = zone_of(runtime.workspace.settings.timezone)
    return Stream(_stream(csv_lines(report, zone)), media_type="text/csv; charset=utf-8", headers={
        "Content-Disposition": 'attachment; filename="timesheet.csv"', "X-Content-Type-Options": "nosniff"})


@get("/timesheets/invoice", include_in_schema=False)
async def invoice_page(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Billable hours and amounts per customer and project for the selection."""
    params = _params(request)
    report = await timesheet(runtime, request.user, selection(runtime, params))
    given = {k: v for k, v in params.items() if v}
    return show(request, runtime, "timesheets_invoice.html", customers=invoice(report), given=given,
                query_string=urlencode(given))


# -- the entry form -----------------------------------------------------------------------------


def _form_text(form: Mapping[str, list[Any]], name: str) -> str:
    values = [v for v in form.get(name, ()) if isinstance(v, str)]
    return values[-1].strip() if values else ""


def _entered(form: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The form's inputs as typed, to show them again with their errors."""
    values: dict[str, Any] = {key: _form_text(form, key) for key in (
        "order", "started_at", "minutes", "note", "percent_complete", "process_action", "version")}
    values["billable"] = "billable" in form
    return values


def entry_data(form: Mapping[str, list[Any]]) -> dict[str, Any]:
    """The entry form as the service's input: numbers as numbers where they are numbers."""
    data: dict[str, Any] = {"billable": "billable" in form}
    for key in ("order", "started_at", "note", "process_action"):
        text = _form_text(form, key)
        if text:
            data[key] = text
    for key in ("minutes", "percent_complete", "version"):
        text = _form_text(form, key)
        if text:
            data[key] = int(text) if text.lstrip("-").isdigit() and len(text) < 10 else text
    return data


async def _order_choices(runtime: Runtime, actor: Actor, number: str) -> dict[str, Any]:
    """The pending actions of the order's current step the actor may process with the entry."""
    try:
        order = await runtime.get(actor, number)
    except Exception:  # noqa: BLE001 - an unknown order is reported by the form's own check
        return {"order_view": None, "pending": []}
    may = abilities(runtime, actor, order, runtime.workspace.templates.get(order["template"]))["can_move"]
    pending = [a for a in order["actions"] if a["state"] == "pending"] if may else []
    return {"order_view": order, "pending": pending}


async def _entry_form(request: Request[Actor, Any, Any], runtime: Runtime, values: dict[str, Any], *,
                      errors: dict[str, str] | None = None, status: int = 200, entry: int | None = None,
                      capped: bool = False) -> Response[str]:
    choices = await _order_choices(runtime, request.user, str(values.get("order") or ""))
    return show(request, runtime, "timesheets_entry.html", values=values, errors=errors or {}, status=status,
                entry=entry, capped=capped, max_hours=MAX_TIMER_HOURS, **choices)


@get("/timesheets/new", include_in_schema=False)
async def entry_new(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """The entry form, prefilled from the query (a stopped timer's draft) or with now and 30 minutes."""
    may_track(request.user)
    zone = zone_of(runtime.workspace.settings.timezone)
    query = request.query_params
    started = query.get("started_at") or dt.datetime.now(dt.timezone.utc).isoformat()
    values = {"order": query.get("order") or "", "started_at": local_input(started, zone),
              "minutes": query.get("minutes") or "30", "billable": True, "note": "", "percent_complete": ""}
    return await _entry_form(request, runtime, values, capped=query.get("capped") == "1")


@post("/timesheets/new", include_in_schema=False)
async def entry_create(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """Book the entry; back to the work order, or the form with each error at its input (422)."""
    form = await read_form(request)
    data = entry_data(form)
    try:
        entry = await Timesheets(runtime).create(request.user, data)
    except Invalid as exc:
        return await _entry_form(request, runtime, _entered(form), errors=error_map(exc.errors), status=422)
    return redirect(request, f"/orders/{entry['order']}#order-time")


@get("/timesheets/{entry:int}/edit", include_in_schema=False)
async def entry_edit(request: Request[Actor, Any, Any], runtime: RuntimeDep, entry: FromPath[int]) -> Response[str]:
    found = await Timesheets(runtime).get(request.user, entry)
    zone = zone_of(runtime.workspace.settings.timezone)
    values = {**found, "started_at": local_input(found["started_at"], zone),
              "percent_complete": found["percent_complete"] if found["percent_complete"] is not None else ""}
    return await _entry_form(request, runtime, values, entry=entry)


@post("/timesheets/{entry:int}/edit", include_in_schema=False)
async def entry_save(request: Request[Actor, Any, Any], runtime: RuntimeDep, entry: FromPath[int]) -> Response[Any]:
    form = await read_form(request)
    data = entry_data(form)
    number = data.pop("order", "")
    data.pop("process_action", None)
    version = data.pop("version", None)
    if "percent_complete" not in data:
        data["percent_complete"] = None
    try:
        saved = await Timesheets(runtime).update(request.user, entry, version, data)
    except Invalid as exc:
        return await _entry_form(request, runtime, _entered(form), errors=error_map(exc.errors), status=422,
                                 entry=entry)
    return redirect(request, f"/orders/{saved['order']}#order-time")


@post("/timesheets/{entry:int}/delete", include_in_schema=False)
async def entry_delete(request: Request[Actor, Any, Any], runtime: RuntimeDep, entry: FromPath[int]) -> Response[Any]:
    form = await read_form(request)
    ts = Timesheets(runtime)
    found = await ts.get(request.user, entry)
    version = entry_data(form).get("version")
    await ts.delete(request.user, entry, version)
    return redirect(request, f"/orders/{found['order']}#order-time")


# -- the timer on the work-order page ----------------------------------------------------------


async def _order_time(request: Request[Actor, Any, Any], runtime: Runtime, number: str, *,
                      message: str | None = None) -> Response[str]:
    ts = Timesheets(runtime)
    actor = request.user
    if not actor.is_staff:
        raise NotFound("no such page")  # customers never see time
    page = page_for(request, runtime)
    tracks = actor.can("time.track")
    order = await runtime.get(actor, number)
    zone = zone_of(runtime.workspace.settings.timezone)
    entries = await ts.entries_of(actor, number)
    total = sum(e["minutes"] for e in entries)
    progress = next((e["percent_complete"] for e in reversed(entries) if e["percent_complete"] is not None), None)
    time = {"timer": await ts.current(actor) if tracks else None, "entries": entries, "tracks": tracks,
            "total": hours(total), "billable": hours(sum(e["minutes"] for e in entries if e["billable"])),
            "progress": progress, "message": message, "max_hours": MAX_TIMER_HOURS,
            "local": lambda value: local_text(value, zone)}
    return html(fragment(page, "order_timer.html", {"order": order, "time": time}))


@get("/orders/{number:str}/time", include_in_schema=False)
async def order_time(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    """The work order's timer and time entries (loaded into the order page)."""
    return await _order_time(request, runtime, number)


@post("/orders/{number:str}/timer/start", include_in_schema=False)
async def timer_start(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str]) -> Response[str]:
    started = await Timesheets(runtime).start(request.user, number)
    page = page_for(request, runtime)
    message = None
    if started["stopped"] is not None:
        message = page.gettext("The timer on %(order)s was stopped: %(minutes)d minutes booked.",
                               order=started["stopped"]["order"], minutes=started["booked"]["minutes"]) \
            if started["booked"] else page.gettext("The timer on %(order)s was stopped; nothing was booked.",
                                                   order=started["stopped"]["order"])
    return await _order_time(request, runtime, number, message=message)


@post("/timer/stop", include_in_schema=False)
async def timer_stop(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    """Stop the timer and open the entry form filled with its draft."""
    try:
        draft = await Timesheets(runtime).stop(request.user)
    except Refused:
        return redirect(request, "/timesheets/new")
    query = urlencode({"order": draft["order"], "started_at": draft["started_at"], "minutes": max(1, draft["minutes"]),
                       "capped": "1" if draft["capped"] else ""})
    return redirect(request, f"/timesheets/new?{query}")


TIMESHEET_HANDLERS = [timesheets_page, timesheets_csv, invoice_page, entry_new, entry_create, entry_edit, entry_save,
                      entry_delete, order_time, timer_start, timer_stop]
"""The routes of this module, for ``ui.web``."""
