"""Dashboard figures: open work by age, throughput per group, time per customer, SLA compliance.

Each figure is scoped to what the viewer may see: the work orders of their templates
(``views.visible_templates``), the time entries of their timesheets (``reports.scope``).
Weeks are ISO weeks in the workspace's time zone; the charts look back ``WEEKS`` weeks.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden
from .actors import Actor
from .reports import Selection, timesheet
from .fields import as_utc
from .timesheets import zone
from .views import visible_templates

if TYPE_CHECKING:
    from .service import Runtime

AGE_BUCKETS = ((1, "< 1 day"), (3, "1–3 days"), (7, "3–7 days"), (30, "7–30 days"), (None, "> 30 days"))
"""Upper bounds (days) of the ageing buckets of open work, with their labels."""
WEEKS = 8
"""How many weeks the throughput and time charts look back."""


def _order_scope(runtime: Runtime, actor: Actor) -> tuple[list[str], list[Any]]:
    if not actor.is_staff:
        raise Forbidden("customers see no dashboards")
    templates = visible_templates(runtime, actor)
    if templates is None:
        return [], []
    return ([f"w.template IN ({', '.join('{}' for _ in templates)})" if templates else "1 = 0"], list(templates))


async def ageing(runtime: Runtime, actor: Actor, at: dt.datetime) -> list[dict[str, Any]]:
    """Open work orders by age (since created), in ``AGE_BUCKETS``."""
    where, args = _order_scope(runtime, actor)
    where.append("w.status NOT IN ('completed', 'cancelled')")
    bounds = [at - dt.timedelta(days=days) for days, _ in AGE_BUCKETS if days is not None]
    cases = " ".join(f"WHEN w.created_at > {{}} THEN {i}" for i in range(len(bounds)))
    rows = await runtime.db.fetch(
        f"SELECT CASE {cases} ELSE {len(bounds)} END AS bucket, COUNT(*) AS n FROM rc_work_order w "
        f"WHERE {' AND '.join(where)} GROUP BY bucket", *bounds, *args)
    found = {int(r["bucket"]): int(r["n"]) for r in rows}
    return [{"bucket": label, "orders": found.get(i, 0)} for i, (_days, label) in enumerate(AGE_BUCKETS)]


def week_of(moment: dt.datetime, tz: dt.tzinfo) -> str:
    year, week, _ = moment.astimezone(tz).isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(at: dt.datetime, tz: dt.tzinfo) -> list[str]:
    return [week_of(at - dt.timedelta(weeks=i), tz) for i in reversed(range(WEEKS))]


def _since(at: dt.datetime, tz: dt.tzinfo) -> dt.datetime:
    """The start (Monday 00:00 local) of the first week the charts show."""
    local = (at - dt.timedelta(weeks=WEEKS - 1)).astimezone(tz)
    monday = local.date() - dt.timedelta(days=local.weekday())
    return dt.datetime.combine(monday, dt.time(), tzinfo=tz).astimezone(dt.timezone.utc)


async def throughput(runtime: Runtime, actor: Actor, at: dt.datetime) -> dict[str, Any]:
    """Work orders completed per week and group (the group they were in when completed)."""
    tz = zone(runtime)
    where, args = _order_scope(runtime, actor)
    where += ["w.status = 'completed'", "w.completed_at >= {}"]
    rows = await runtime.db.fetch(
        f"SELECT w.group_name, w.completed_at FROM rc_work_order w WHERE {' AND '.join(where)}",
        *args, _since(at, tz))
    weeks = _weeks(at, tz)
    groups: dict[str, dict[str, int]] = {}
    for row in rows:
        week = week_of(as_utc(row["completed_at"]), tz)
        if week in weeks:
            per = groups.setdefault(row["group_name"] or "", dict.fromkeys(weeks, 0))
            per[week] += 1
    return {"weeks": weeks, "groups": dict(sorted(groups.items()))}


async def time_per_customer(runtime: Runtime, actor: Actor, at: dt.datetime) -> list[dict[str, Any]]:
    """Hours booked per customer in the charts' weeks (entries the actor may see)."""
    report = await timesheet(runtime, actor, Selection(
        filters={"from": _since(at, zone(runtime))}, group_by="customer"))
    return [{"customer": g.label or g.key, "minutes": g.totals.minutes,
             "billable_minutes": g.totals.billable_minutes} for g in report.groups]


def has_sla_columns() -> bool:
    """Whether work orders carry an SLA (``sla_name``); without it there is no compliance to chart."""
    from ..compile.core import CORE_TABLES

    table = next(t for t in CORE_TABLES if t.name == "rc_work_order")
    return any(c.name == "sla_name" for c in table.columns)


async def sla_compliance(runtime: Runtime, actor: Actor, at: dt.datetime) -> dict[str, Any] | None:
    """Per week: work orders completed under an SLA, and how many of them without a breach.

    A breach is an ``sla_breach`` audit event on the order. ``None`` when orders carry no SLA.
    """
    if not has_sla_columns():
        return None
    tz = zone(runtime)
    where, args = _order_scope(runtime, actor)
    where += ["w.status = 'completed'", "w.completed_at >= {}", "w.sla_name IS NOT NULL"]
    rows = await runtime.db.fetch(
        "SELECT w.completed_at, (SELECT COUNT(*) FROM rc_event e WHERE e.work_order_id = w.id "
        f"AND e.kind = 'sla_breach') AS breaches FROM rc_work_order w WHERE {' AND '.join(where)}",
        *args, _since(at, tz))
    weeks = _weeks(at, tz)
    done = dict.fromkeys(weeks, 0)
    met = dict.fromkeys(weeks, 0)
    for row in rows:
        week = week_of(as_utc(row["completed_at"]), tz)
        if week in done:
            done[week] += 1
            met[week] += 0 if int(row["breaches"]) else 1
    return {"weeks": weeks, "completed": done, "met": met,
            "percent": {w: (round(100 * met[w] / done[w]) if done[w] else None) for w in weeks}}
