"""Linking rules, macros, SLAs and calendars: references exist, actions are well-formed."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from ..model import SLA, Action, Calendar, Macro, Rule
from ..model.automation import ACTION_KEYS
from .context import Entry, Linker

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not a usable IANA timezone, or ``None``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone `{name}`; use an IANA name such as Europe/Berlin or UTC"
    return None


def link_actions(linker: Linker, entry: Entry[Any], path: tuple[str | int, ...],
                 actions: tuple[Action, ...]) -> bool:
    """Check a list of actions (of a rule, macro or escalation)."""
    ok = True
    for index, action in enumerate(actions):
        at = (*path, index)
        given = [key for key in ACTION_KEYS if getattr(action, key) is not None]
        if len(given) != 1:
            names = ", ".join(k.rstrip("_") for k in ACTION_KEYS)
            found = f"found {', '.join(given)}" if given else "found none"
            linker.error(entry.at(*at), f"each action needs exactly one of: {names}; {found}")
            ok = False
            continue
        key = given[0]
        value = getattr(action, key)
        if key == "assign":
            if (value.user is None) == (value.group is None):
                linker.error(entry.at(*at, "assign"), "`assign` needs either `user` or `group`")
                ok = False
            if value.group is not None:
                ok &= linker.require("Group", value.group, entry.at(*at, "assign", "group"), "group")
        elif key == "route":
            if value.queue is not None:
                ok &= linker.require("Queue", value.queue, entry.at(*at, "route", "queue"), "queue")
            if value.customer is not None:
                ok &= linker.require("Customer", value.customer, entry.at(*at, "route", "customer"), "customer")
            if value.project is not None:
                if value.customer is None:
                    linker.error(entry.at(*at, "route", "project"), "`project` needs `customer` beside it")
                    ok = False
                elif value.customer in linker.of("Customer"):
                    projects = [p.name for p in linker.of("Customer")[value.customer].definition.projects]
                    if value.project not in projects:
                        linker.unknown("project", value.project, projects, entry.at(*at, "route", "project"),
                                       "project", f"of customer `{value.customer}`")
                        ok = False
            if value.step is not None and value.queue is not None and value.queue in linker.of("Queue"):
                steps = [s.name for s in linker.of("Queue")[value.queue].definition.steps]
                if value.step not in steps:
                    linker.unknown("step", value.step, steps, entry.at(*at, "route", "step"),
                                   "step", f"in queue `{value.queue}`")
                    ok = False
            if all(v is None for v in (value.queue, value.step, value.customer, value.project)):
                linker.error(entry.at(*at, "route"), "`route` needs a queue, step, customer or project")
                ok = False
        elif key == "create_work_order":
            ok &= linker.require("Template", value.template, entry.at(*at, key, "template"), "template")
        elif key == "apply_macro":
            ok &= linker.require("Macro", value, entry.at(*at, key), "macro")
    return ok


def link_rules(linker: Linker) -> dict[str, Rule]:
    out = {}
    for name, entry in linker.of("Rule").items():
        rule: Rule = entry.definition
        ok = True
        for index, template in enumerate(rule.templates):
            ok &= linker.require("Template", template, entry.at("templates", index), "template")
        for index, queue in enumerate(rule.queues):
            ok &= linker.require("Queue", queue, entry.at("queues", index), "queue")
        for index, trigger in enumerate(rule.on):
            if isinstance(trigger, str):
                if trigger == "schedule":
                    linker.error(entry.at("on", index), "a schedule trigger needs `schedule:`, e.g. {event: schedule, schedule: every day 08:00}")
                    ok = False
                continue
            if trigger.event == "schedule" and trigger.schedule is None:
                linker.error(entry.at("on", index), "a schedule trigger needs `schedule:`")
                ok = False
            if trigger.schedule is not None and trigger.event != "schedule":
                linker.error(entry.at("on", index, "schedule"), "`schedule` is only for event: schedule")
                ok = False
            if trigger.field is not None and trigger.event != "field_changed":
                linker.error(entry.at("on", index, "field"), "`field` narrows only event: field_changed")
                ok = False
            if trigger.step is not None and trigger.event not in ("step_entered", "step_left"):
                linker.error(entry.at("on", index, "step"), "`step` narrows only step_entered and step_left")
                ok = False
        ok &= link_actions(linker, entry, ("do",), rule.do)
        if ok:
            out[name] = rule
    return out


def link_macros(linker: Linker) -> dict[str, Macro]:
    out = {}
    for name, entry in linker.of("Macro").items():
        macro: Macro = entry.definition
        ok = True
        for index, template in enumerate(macro.templates):
            ok &= linker.require("Template", template, entry.at("templates", index), "template")
        ok &= link_actions(linker, entry, ("actions",), macro.actions)
        for index, action in enumerate(macro.actions):
            if action.apply_macro == name:
                linker.error(entry.at("actions", index, "apply_macro"), f"macro `{name}` cannot apply itself")
                ok = False
        if ok:
            out[name] = macro
    return out


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def link_calendars(linker: Linker) -> dict[str, Calendar]:
    out = {}
    for name, entry in linker.of("Calendar").items():
        calendar: Calendar = entry.definition
        ok = True
        problem = timezone_problem(calendar.timezone)
        if problem:
            linker.error(entry.at("timezone"), problem)
            ok = False
        for day in WEEKDAYS:
            spans = []
            for index, text in enumerate(getattr(calendar.hours, day)):
                start, end = (_minutes(t) for t in text.split("-"))
                if start >= end or end > 24 * 60:
                    linker.error(entry.at("hours", day, index), f"`{text}` ends before it starts")
                    ok = False
                    continue
                for other_start, other_end, other in spans:
                    if start < other_end and other_start < end:
                        linker.error(entry.at("hours", day, index), f"`{text}` overlaps `{other}`")
                        ok = False
                spans.append((start, end, text))
        if not any(getattr(calendar.hours, day) for day in WEEKDAYS):
            linker.error(entry.at("hours"), "the calendar has no working hours on any day")
            ok = False
        seen: set[str] = set()
        for index, holiday in enumerate(calendar.holidays):
            try:
                dt.date.fromisoformat(holiday.date)
            except ValueError:
                linker.error(entry.at("holidays", index, "date"), f"`{holiday.date}` is not a real date")
                ok = False
            if holiday.date in seen:
                linker.error(entry.at("holidays", index, "date"), f"the holiday {holiday.date} is listed twice")
                ok = False
            seen.add(holiday.date)
        if ok:
            out[name] = calendar
    return out


def link_slas(linker: Linker) -> dict[str, SLA]:
    out = {}
    for name, entry in linker.of("SLA").items():
        sla: SLA = entry.definition
        ok = True
        if sla.calendar is not None:
            ok &= linker.require("Calendar", sla.calendar, entry.at("calendar"), "calendar")
        for index, template in enumerate(sla.templates):
            ok &= linker.require("Template", template, entry.at("templates", index), "template")
        targets = sla.targets
        if not (targets.first_response or targets.next_response or targets.resolution or targets.steps):
            linker.error(entry.at("targets"), "the SLA sets no target")
            ok = False
        scope = set(sla.templates) or set(linker.of("Template"))
        steps = {
            step.name
            for queue in linker.of("Queue").values()
            if scope & set(queue.definition.templates)
            for step in queue.definition.steps
        }
        for step in targets.steps:
            if step not in steps:
                linker.unknown("step", step, steps, entry.at("targets", "steps", step, key=True),
                               "step", "in the queues of the SLA's templates")
                ok = False
        ok &= link_actions(linker, entry, ("on_warning",), sla.on_warning)
        ok &= link_actions(linker, entry, ("on_breach",), sla.on_breach)
        if sla.on_warning and sla.warn_before is None:
            linker.error(entry.at("on_warning", key=True), "`on_warning` needs `warn_before`")
            ok = False
        if ok:
            out[name] = sla
    return out
