"""Rules that fire later: triggers with ``after:`` and ``schedule`` triggers, through the job scheduler.

A trigger with ``after: 48h`` does not fire the rule at once: the event enqueues a
``rule_delayed`` job (once per rule, order and version) due 48 hours later; when it runs,
the rule fires if its condition still holds on the order as it is then.

A ``schedule`` trigger (``every day 08:00``, ``every monday 09:30``, ``every weekday
08:00``, ``every 2h``) is enqueued by a worker tick as a ``rule_schedule`` job for its
next time (in the workspace's timezone; the unique key makes it once per time however
many workers tick). The job fires the rule on each open work order in the rule's scope
whose condition holds, at most ``MAX_SCHEDULED_ORDERS`` per run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zoneinfo
from typing import TYPE_CHECKING, Any

from ..errors import NotFound
from ..runtime.state import FINAL, Order, load_order
from .jobs import enqueue, job_kind, tick
from ..model.common import duration_span
from .rules import Cascade, CompiledRule, order_facts

if TYPE_CHECKING:
    from ..runtime.service import Runtime

MAX_SCHEDULED_ORDERS = 1000
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _key(*parts: str) -> str:
    text = ":".join(parts)
    return text if len(text) <= 200 else f"{text[:150]}:{hashlib.sha256(text.encode()).hexdigest()[:40]}"


async def enqueue_delayed(runtime: Runtime, order: Order, rule: str, trigger: str, after: str, *,
                          moment: dt.datetime, changed: set[str] | None = None) -> bool:
    """Ask for ``rule`` to fire on ``order`` ``after`` from ``moment`` (once per order version)."""
    return await enqueue(runtime.db, "rule_delayed", _key("rule", rule, str(order.id), str(order.version), trigger),
                         moment + duration_span(after),
                         {"rule": rule, "number": order.number, "trigger": f"{trigger} (after {after})",
                          "changed": sorted(changed or ())})


def _compiled(runtime: Runtime, name: str) -> CompiledRule | None:
    return runtime.rules.index.by_name.get(name)


async def _fire_if(runtime: Runtime, compiled: CompiledRule, order: Order, trigger: str, changed: set[str]) -> bool:
    if order.is_final:
        return False
    facts = await order_facts(runtime.db, order, changed, compiled.needs)
    if not compiled.test(facts):
        return False
    return await runtime.rules.fire(order, compiled, trigger, Cascade(depth=1))


@job_kind("rule_delayed")
async def run_delayed(runtime: Runtime, payload: dict[str, Any]) -> None:
    """A delayed trigger is due: fire the rule if it still exists, is enabled, and its condition holds now."""
    compiled = _compiled(runtime, str(payload.get("rule")))
    if compiled is None:
        return
    try:
        order = await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs,
                                 str(payload.get("number")))
    except NotFound:
        return
    await _fire_if(runtime, compiled, order, str(payload.get("trigger")), set(payload.get("changed") or ()))


def next_time(schedule: str, moment: dt.datetime, timezone: str) -> dt.datetime:
    """The first time after ``moment`` that ``schedule`` (``every ...``) names, in ``timezone``."""
    zone = zoneinfo.ZoneInfo(timezone)
    spec = schedule.removeprefix("every ").strip()
    if spec[0].isdigit():
        span = duration_span(spec)
        seconds = int(span.total_seconds())
        if seconds <= 0:
            raise ValueError(f"the schedule {schedule!r} never fires")
        epoch = int(moment.timestamp())
        return dt.datetime.fromtimestamp((epoch // seconds + 1) * seconds, dt.timezone.utc)
    day, clock = spec.split(" ")
    hour, minute = (int(p) for p in clock.split(":"))
    local = moment.astimezone(zone)
    for offset in range(0, 9):
        date = local.date() + dt.timedelta(days=offset)
        if day == "weekday" and date.weekday() > 4:
            continue
        if day in WEEKDAYS and date.weekday() != WEEKDAYS.index(day):
            continue
        when = dt.datetime(date.year, date.month, date.day, hour, minute, tzinfo=zone)
        if when > moment:
            return when.astimezone(dt.timezone.utc)
    raise ValueError(f"the schedule {schedule!r} names no time")  # pragma: no cover - the pattern allows none


@tick
async def schedule_rules(runtime: Runtime, moment: dt.datetime) -> None:
    """A worker tick: enqueue the next run of every scheduled rule (once per rule and time)."""
    for compiled, schedule in runtime.rules.index.scheduled:
        due = next_time(schedule, moment, runtime.workspace.settings.timezone)
        await enqueue(runtime.db, "rule_schedule", _key("schedule", compiled.name, due.isoformat()), due,
                      {"rule": compiled.name, "schedule": schedule})


@job_kind("rule_schedule")
async def run_schedule(runtime: Runtime, payload: dict[str, Any]) -> None:
    """A scheduled rule is due: fire it on every open work order in its scope whose condition holds."""
    compiled = _compiled(runtime, str(payload.get("rule")))
    if compiled is None:
        return
    sql = "SELECT number FROM rc_work_order WHERE status NOT IN ({}, {})"
    args: list[Any] = sorted(FINAL)
    for column, names in (("template", compiled.templates), ("queue", compiled.queues)):
        if names:
            sql += f" AND {column} IN ({', '.join('{}' for _ in names)})"
            args += sorted(names)
    rows = await runtime.db.fetch(sql + " ORDER BY id LIMIT {}", *args, MAX_SCHEDULED_ORDERS)
    trigger = f"schedule {payload.get('schedule')}"
    for row in rows:
        order = await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs,
                                 str(row["number"]))
        await _fire_if(runtime, compiled, order, trigger, set())
