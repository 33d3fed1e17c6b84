"""Timesheet reports: the entries a person may see, filtered, sorted, grouped with subtotals, invoiced.

One function (``timesheet``) reads the entries of a selection and computes its groups
and totals; the timesheets page, its CSV export and the JSON API all show its result,
so they agree to the minute. Filters, sort keys and groupings are checked against
allow-lists (``BadQuery`` names the allowed values); user input only ever travels as
SQL parameters. Periods (day, week, month) are counted in the workspace's time zone.

Who sees which entries: holders of ``report.view`` or ``time.edit_others`` (and admins)
see every entry on the work orders they can see; everybody else on the staff sees their
own entries and those on work orders in the groups they supervise. Customers see none.

Amounts: billable minutes × the project's hourly rate, else the customer's; an entry
without either rate has no amount (``None``) and is counted under ``unpriced_minutes``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from ..errors import BadQuery, Forbidden
from .actors import Actor
from .fields import as_utc, to_json_time
from .timesheets import zone
from .views import visible_templates

if TYPE_CHECKING:
    from .service import Runtime

FILTERS = ("user", "customer_id", "project_id", "template", "from", "to", "billable")
SORTS = {"started_at": "e.started_at", "minutes": "e.minutes", "user": "u.login", "order": "w.number",
         "customer": "c.name", "project": "p.name"}
GROUPS = ("none", "user", "customer", "project", "day", "week", "month")
MAX_ROWS = 200_000
"""The most entries one report reads; a larger selection is refused (narrow the dates)."""
CENT = Decimal("0.01")


@dataclass
class Selection:
    """A checked report request."""

    filters: dict[str, Any] = field(default_factory=dict)
    sort: str = "started_at"
    descending: bool = False
    group_by: str = "none"


def _bad(field_name: str, message: str) -> BadQuery:
    return BadQuery("the timesheet cannot be shown", [{"field": field_name, "message": message}])


def selection(runtime: Runtime, params: dict[str, str | None]) -> Selection:
    """Check a report request given as text (query parameters); every problem named at once."""
    errors: list[dict[str, str]] = []
    out = Selection()
    tz = zone(runtime)
    for key, value in params.items():
        if value in (None, ""):
            continue
        assert value is not None
        if len(value) > 200 or "\x00" in value:
            errors.append({"field": key, "message": "at most 200 characters of text"})
        elif key == "sort":
            name = value.lstrip("-")
            if name not in SORTS:
                errors.append({"field": "sort", "message": f"sort by one of: {', '.join(SORTS)} (prefix - for descending)"})
            out.sort, out.descending = name, value.startswith("-")
        elif key == "group_by":
            if value not in GROUPS:
                errors.append({"field": "group_by", "message": f"group by one of: {', '.join(GROUPS)}"})
            out.group_by = value
        elif key not in FILTERS:
            errors.append({"field": key, "message": f"filter by one of: {', '.join(FILTERS)}"})
        elif key in ("customer_id", "project_id"):
            if not value.isdigit() or len(value) > 18:
                errors.append({"field": key, "message": "a number"})
            else:
                out.filters[key] = int(value)
        elif key in ("from", "to"):
            try:
                day = dt.date.fromisoformat(value)
            except ValueError:
                errors.append({"field": key, "message": "a date, YYYY-MM-DD"})
                continue
            if key == "to":
                day += dt.timedelta(days=1)  # "to" is inclusive: up to the end of that day
            out.filters[key] = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.timezone.utc)
        elif key == "billable":
            if value not in ("yes", "no"):
                errors.append({"field": key, "message": "yes or no"})
            else:
                out.filters[key] = value == "yes"
        elif key == "template":
            if value not in runtime.workspace.templates:
                errors.append({"field": key, "message": f"one of: {', '.join(runtime.workspace.templates)}"})
            else:
                out.filters[key] = value
        else:
            out.filters[key] = value
    if errors:
        raise BadQuery("the timesheet cannot be shown", errors)
    return out


def scope(runtime: Runtime, actor: Actor) -> tuple[list[str], list[Any]]:
    """The SQL conditions (on ``e`` entries, ``w`` orders) of the entries ``actor`` may see."""
    if not actor.is_staff:
        raise Forbidden("customers see no timesheets")
    where: list[str] = []
    args: list[Any] = []
    templates = visible_templates(runtime, actor)
    if templates is not None:
        where.append(f"w.template IN ({', '.join('{}' for _ in templates)})" if templates else "1 = 0")
        args += templates
    if not (actor.can("report.view") or actor.can("time.edit_others")):
        groups = sorted(actor.supervises)
        clause = "e.user_id = {}"
        args.append(actor.id)
        if groups:
            clause += f" OR w.group_name IN ({', '.join('{}' for _ in groups)})"
            args += groups
        where.append(f"({clause})")
    return where, args


QUERY = (
    "SELECT e.id, e.started_at, e.minutes, e.billable, e.note, e.percent_complete, u.login AS user_login, "
    "w.number, w.title, w.template, c.id AS customer_id, c.name AS customer, c.label AS customer_label, "
    "c.hourly_rate AS customer_rate, p.id AS project_id, p.name AS project, p.label AS project_label, "
    "p.hourly_rate AS project_rate "
    "FROM rc_time_entry e JOIN rc_work_order w ON w.id = e.work_order_id JOIN rc_user u ON u.id = e.user_id "
    "LEFT JOIN rc_customer c ON c.id = w.customer_id LEFT JOIN rc_project p ON p.id = w.project_id"
)


def hours(minutes: int) -> Decimal:
    """Minutes as hours to two places."""
    return (Decimal(minutes) / 60).quantize(CENT, ROUND_HALF_UP)


def amount(minutes: int, rate: Decimal | None) -> Decimal | None:
    return None if rate is None else (Decimal(minutes) * rate / 60).quantize(CENT, ROUND_HALF_UP)


@dataclass
class Totals:
    """Minutes of a group: all, billable, and billable ones without a rate; their amount."""

    minutes: int = 0
    billable_minutes: int = 0
    entries: int = 0

    def add(self, row: dict[str, Any]) -> None:
        self.minutes += row["minutes"]
        self.entries += 1
        if row["billable"]:
            self.billable_minutes += row["minutes"]

    def as_json(self) -> dict[str, Any]:
        return {"entries": self.entries, "minutes": self.minutes, "hours": str(hours(self.minutes)),
                "billable_minutes": self.billable_minutes, "billable_hours": str(hours(self.billable_minutes)),
                "non_billable_minutes": self.minutes - self.billable_minutes}


@dataclass
class Group:
    key: str
    label: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)


@dataclass
class Report:
    """The entries of a selection, in groups with subtotals, and the grand total."""

    selection: Selection
    groups: list[Group]
    totals: Totals

    def as_json(self) -> dict[str, Any]:
        return {"group_by": self.selection.group_by, "totals": self.totals.as_json(),
                "groups": [{"key": g.key, "label": g.label, "totals": g.totals.as_json(),
                            "entries": [public(r) for r in g.rows]} for g in self.groups]}


def public(row: dict[str, Any]) -> dict[str, Any]:
    """An entry row as the API shows it."""
    return {"id": row["id"], "started_at": row["started_at_iso"], "minutes": row["minutes"],
            "billable": row["billable"], "note": row["note"], "percent_complete": row["percent_complete"],
            "user": row["user_login"], "order": row["number"], "title": row["title"], "template": row["template"],
            "customer": row["customer"], "project": row["project"]}


def _group_key(row: dict[str, Any], group_by: str, tz: dt.tzinfo) -> tuple[str, str]:
    if group_by == "user":
        return row["user_login"], row["user_login"]
    if group_by == "customer":
        return row["customer"] or "", row["customer_label"] or row["customer"] or ""
    if group_by == "project":
        name = f"{row['customer'] or ''}/{row['project'] or ''}" if row["project"] else ""
        return name, row["project_label"] or ""
    local = row["started"].astimezone(tz)
    if group_by == "day":
        key = local.date().isoformat()
    elif group_by == "week":
        year, week, _ = local.isocalendar()
        key = f"{year}-W{week:02d}"
    elif group_by == "month":
        key = f"{local:%Y-%m}"
    else:
        key = ""
    return key, key


def conditions(runtime: Runtime, actor: Actor, chosen: Selection) -> tuple[list[str], list[Any]]:
    """The SQL conditions of the actor's scope and the selection's filters (``e``, ``w``, ``u`` aliases)."""
    where, args = scope(runtime, actor)
    filters = chosen.filters
    if "user" in filters:
        where.append("e.user_id = (SELECT id FROM rc_user WHERE login = {})")
        args.append(filters["user"])
    for key, column in (("customer_id", "w.customer_id"), ("project_id", "w.project_id"),
                        ("template", "w.template"), ("billable", "e.billable")):
        if key in filters:
            where.append(f"{column} = {{}}")
            args.append(filters[key])
    if "from" in filters:
        where.append("e.started_at >= {}")
        args.append(filters["from"])
    if "to" in filters:
        where.append("e.started_at < {}")
        args.append(filters["to"])
    return where, args


async def timesheet(runtime: Runtime, actor: Actor, chosen: Selection) -> Report:
    """The report of ``chosen``: entries grouped (groups in key order) and summed."""
    where, args = conditions(runtime, actor, chosen)
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if chosen.descending else "ASC"
    rows = await runtime.db.fetch(
        f"{QUERY}{clause} ORDER BY {SORTS[chosen.sort]} {direction}, e.id {direction} LIMIT {{}}",
        *args, MAX_ROWS + 1)
    if len(rows) > MAX_ROWS:
        raise _bad("from", f"more than {MAX_ROWS} entries; choose a shorter date range")
    tz = zone(runtime)
    groups: dict[str, Group] = {}
    totals = Totals()
    for row in rows:
        row["started"] = as_utc(row["started_at"])
        row["started_at_iso"] = to_json_time(row["started"])
        row["minutes"] = int(row["minutes"])
        row["billable"] = bool(row["billable"])
        rate = row["project_rate"] if row["project_rate"] is not None else row["customer_rate"]
        row["rate"] = Decimal(str(rate)) if rate is not None else None
        key, label = _group_key(row, chosen.group_by, tz)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Group(key, label)
        group.rows.append(row)
        group.totals.add(row)
        totals.add(row)
    ordered = [groups[k] for k in sorted(groups)] if chosen.group_by != "none" else list(groups.values())
    return Report(chosen, ordered, totals)


MAX_PERIODS = 1000
"""The most days, weeks or months one summary spans."""
KEY_SQL = {"user": "e.user_id", "customer": "w.customer_id", "project": "w.project_id"}
"""What a summary groups by for the named keys (ids, named after the aggregate)."""


def summary_keys(text: str | None) -> tuple[str, ...]:
    """``group_by`` of a summary: one or two of ``GROUPS`` (not ``none``), comma-separated."""
    keys = tuple(k for k in (text or "").split(",") if k)
    allowed = tuple(g for g in GROUPS if g != "none")
    if not 1 <= len(keys) <= 2 or len(set(keys)) != len(keys) or any(k not in allowed for k in keys) \
            or sum(k not in KEY_SQL for k in keys) > 1:
        raise _bad("group_by", f"one or two of: {', '.join(allowed)}, separated by a comma (one period at most)")
    return keys


def periods(kind: str, first: dt.datetime, last: dt.datetime, tz: dt.tzinfo
            ) -> list[tuple[str, dt.datetime, dt.datetime]]:
    """The local days, weeks or months from ``first`` to ``last``: (key, UTC start, UTC end)."""
    day = first.astimezone(tz).date()
    if kind == "week":
        day -= dt.timedelta(days=day.weekday())
    elif kind == "month":
        day = day.replace(day=1)
    out: list[tuple[str, dt.datetime, dt.datetime]] = []
    begin = dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.timezone.utc)
    while begin <= last:
        if len(out) == MAX_PERIODS:
            raise _bad("from", f"more than {MAX_PERIODS} periods; choose a shorter date range or a longer period")
        if kind == "day":
            key, following = day.isoformat(), day + dt.timedelta(days=1)
        elif kind == "week":
            year, week, _ = day.isocalendar()
            key, following = f"{year}-W{week:02d}", day + dt.timedelta(days=7)
        else:
            key = f"{day:%Y-%m}"
            following = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        end = dt.datetime.combine(following, dt.time(), tzinfo=tz).astimezone(dt.timezone.utc)
        out.append((key, begin, end))
        day, begin = following, end
    return out


async def summary(runtime: Runtime, actor: Actor, chosen: Selection, by: tuple[str, ...]) -> list[dict[str, Any]]:
    """Totals per group without reading the entries: SQL aggregates (for large selections).

    Grouped by a period, one aggregate per period runs over the range of the index on
    ``started_at`` between its local midnights (computed here), so the totals agree with
    ``timesheet`` to the minute; groups come in key order.
    """
    period = next((k for k in by if k not in KEY_SQL), None)
    dates = {k: v for k, v in chosen.filters.items() if k in ("from", "to")}
    # per period, its bounds (within the dates asked for) are the one range on the index
    where, args = conditions(runtime, actor, Selection(
        filters={k: v for k, v in chosen.filters.items() if period is None or k not in dates}))
    named_keys = [k for k in by if k in KEY_SQL]
    selected = "".join(f"{KEY_SQL[k]} AS g_{k}, " for k in named_keys)
    grouped = f" GROUP BY {', '.join(f'g_{k}' for k in named_keys)}" if named_keys else ""
    sql = (f"SELECT {selected}COUNT(*) AS n, SUM(e.minutes) AS minutes, "
           f"SUM(CASE WHEN e.billable THEN e.minutes ELSE 0 END) AS billable FROM rc_time_entry e "
           f"JOIN rc_work_order w ON w.id = e.work_order_id WHERE {' AND '.join([*where, '1 = 1'])}")
    rows: list[dict[str, Any]] = []
    if period is None:
        rows = await runtime.db.fetch(sql + grouped, *args)
    else:
        # the periods between the first and last entry at all (two index seeks), within the dates asked for
        lo = await runtime.db.fetch_value("SELECT MIN(started_at) FROM rc_time_entry")
        hi = await runtime.db.fetch_value("SELECT MAX(started_at) FROM rc_time_entry")
        if lo is None:
            return []
        first = max(as_utc(lo), dates.get("from", as_utc(lo)))
        last = min(as_utc(hi), dates.get("to", as_utc(hi)))
        for key, begin, end in periods(period, first, last, zone(runtime)):
            found = await runtime.db.fetch(sql + " AND e.started_at >= {} AND e.started_at < {}" + grouped, *args,
                                           max(begin, dates.get("from", begin)), min(end, dates.get("to", end)))
            rows += [{**row, f"g_{period}": key} for row in found if int(row["n"])]
    named = await _names(runtime, by, rows)
    out = []
    for row in rows:
        totals = Totals(minutes=int(row["minutes"]), billable_minutes=int(row["billable"]), entries=int(row["n"]))
        keys = [named[key].get(row[f"g_{key}"], "") if key in named else row[f"g_{key}"] for key in by]
        out.append({"keys": keys, **totals.as_json()})
    return sorted(out, key=lambda item: item["keys"])


async def _names(runtime: Runtime, by: tuple[str, ...], rows: list[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """The group keys of ids as ``timesheet`` names them: login, customer, ``customer/project``."""
    named: dict[str, dict[Any, str]] = {}
    for key in by:
        if key not in KEY_SQL:
            continue
        ids = sorted({int(r[f"g_{key}"]) for r in rows if r[f"g_{key}"] is not None})
        named[key] = {}
        if not ids:
            continue
        marks = ", ".join("{}" for _ in ids)
        if key == "user":
            found = await runtime.db.fetch(f"SELECT id, login AS name FROM rc_user WHERE id IN ({marks})", *ids)
        elif key == "customer":
            found = await runtime.db.fetch(f"SELECT id, name FROM rc_customer WHERE id IN ({marks})", *ids)
        else:
            found = await runtime.db.fetch(
                f"SELECT p.id, c.name || '/' || p.name AS name FROM rc_project p JOIN rc_customer c "
                f"ON c.id = p.customer_id WHERE p.id IN ({marks})", *ids)
        named[key] = {int(r["id"]): str(r["name"]) for r in found}
    return named


def invoice(report: Report) -> list[dict[str, Any]]:
    """Billable hours and amounts per customer and project: ``[{customer, projects: [...], amount}]``."""
    customers: dict[str, dict[str, Any]] = {}
    for group in report.groups:
        for row in group.rows:
            if not row["billable"]:
                continue
            customer = customers.setdefault(row["customer"] or "", {
                "customer": row["customer"], "label": row["customer_label"] or "", "projects": {}})
            project = customer["projects"].setdefault(row["project"] or "", {
                "project": row["project"], "label": row["project_label"] or "", "rate": row["rate"],
                "minutes": 0})
            project["minutes"] += row["minutes"]
    out = []
    for name in sorted(customers):
        customer = customers[name]
        projects = []
        total = Decimal(0)
        unpriced = 0
        for key in sorted(customer["projects"]):
            project = customer["projects"][key]
            value = amount(project["minutes"], project["rate"])
            if value is None:
                unpriced += project["minutes"]
            else:
                total += value
            projects.append({"project": project["project"], "label": project["label"],
                             "rate": None if project["rate"] is None else str(project["rate"]),
                             "billable_minutes": project["minutes"], "billable_hours": str(hours(project["minutes"])),
                             "amount": None if value is None else str(value)})
        out.append({"customer": customer["customer"], "label": customer["label"], "projects": projects,
                    "billable_minutes": sum(p["billable_minutes"] for p in projects),
                    "billable_hours": str(hours(sum(p["billable_minutes"] for p in projects))),
                    "amount": str(total.quantize(CENT)), "unpriced_minutes": unpriced})
    return out


NEUTRAL = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One cell as CSV text; text starting with a formula character is prefixed with ``'``."""
    text = "" if value is None else str(value)
    if text.startswith(NEUTRAL):
        text = "'" + text
    if any(c in text for c in ',"\n\r'):
        text = '"' + text.replace('"', '""') + '"'
    return text


CSV_COLUMNS = ("group", "date", "user", "order", "title", "customer", "project", "minutes", "hours", "billable",
               "percent_complete", "note")


def csv_lines(report: Report, tz: dt.tzinfo) -> Iterator[str]:
    """The report as CSV lines (header, entries, a subtotal per group, the total), for streaming."""
    yield ",".join(CSV_COLUMNS) + "\r\n"
    grouped = report.selection.group_by != "none"
    for group in report.groups:
        for row in group.rows:
            local = row["started"].astimezone(tz)
            cells = (group.key if grouped else "", f"{local:%Y-%m-%d %H:%M}", row["user_login"], row["number"],
                     row["title"], row["customer"], row["project"], row["minutes"], hours(row["minutes"]),
                     "yes" if row["billable"] else "no", row["percent_complete"], row["note"])
            yield ",".join(csv_cell(c) for c in cells) + "\r\n"
        if grouped:
            yield _total_line(f"subtotal {group.key}", group.totals)
    yield _total_line("total", report.totals)


def _total_line(label: str, totals: Totals) -> str:
    cells: list[Any] = [label, "", "", "", "", "", "", totals.minutes, hours(totals.minutes),
                        f"billable {totals.billable_minutes}", "", ""]
    return ",".join(csv_cell(c) for c in cells) + "\r\n"
