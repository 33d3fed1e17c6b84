"""Linking rules, macros, SLAs and calendars: references exist, actions are well-formed."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any, NamedTuple

from ..model import SLA, Action, Calendar, Macro, Rule
from ..model.automation import ACTION_KEYS
from .conditions import Scope, check_condition, check_new_fields, check_set_field, template_scope
from .context import Entry, Linker
from .resolved import ResolvedTemplate
from .templating import template_problem
from .values import value_problem

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def timezone_problem(name: str) -> str | None:
    """Why ``name`` is not a usable IANA timezone, or ``None``."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return f"unknown timezone `{name}`; use an IANA name such as Europe/Berlin or UTC"
    return None


def schedule_problem(schedule: str) -> str | None:
    """Why a schedule (``every ...``, already of the schema's form) never fires, or ``None``."""
    spec = schedule.removeprefix("every ").split(" ")[-1]
    if ":" in spec:
        hour, minute = (int(p) for p in spec.split(":"))
        if hour > 23 or minute > 59:
            return f"`{spec}` is not a time of day (00:00 to 23:59)"
    elif int(spec[:-1]) == 0:
        return f"`{schedule}` never fires: give an interval of at least 1{spec[-1]}"
    return None


def link_actions(linker: Linker, entry: Entry[Any], path: tuple[str | int, ...],
                 actions: tuple[Action, ...], scope: Scope, templates: dict[str, ResolvedTemplate]) -> bool:
    """Check a list of actions (of a rule, macro or escalation) against the fields in ``scope``."""
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
            if value.step is not None and value.queue is None and scope.complete and scope.steps is not None \
                    and value.step not in scope.steps:
                linker.unknown("step", value.step, scope.steps, entry.at(*at, "route", "step"),
                               "step", f"in the queues of {scope.what}")
                ok = False
            if all(v is None for v in (value.queue, value.step, value.customer, value.project)):
                linker.error(entry.at(*at, "route"), "`route` needs a queue, step, customer or project")
                ok = False
        elif key == "set_field":
            ok &= check_set_field(linker, entry, (*at, key), value.field, value.value, scope)
        elif key == "create_work_order":
            ok &= linker.require("Template", value.template, entry.at(*at, key, "template"), "template")
            if value.template in templates:
                ok &= check_new_fields(linker, entry, (*at, key, "fields"), templates[value.template], value.fields)
        elif key == "apply_macro":
            ok &= linker.require("Macro", value, entry.at(*at, key), "macro")
        elif key in ("comment", "email"):
            texts = (("text",) if key == "comment" else ("subject", "body"))
            for part in texts:
                problem = template_problem(getattr(value, part))
                if problem:
                    linker.error(entry.at(*at, key, part), problem)
                    ok = False
    return ok


def link_rules(linker: Linker, templates: dict[str, ResolvedTemplate]) -> dict[str, Rule]:
    """Check every rule: references, triggers, its condition and actions; then report rule cycles."""
    out = {}
    for name, entry in linker.of("Rule").items():
        rule: Rule = entry.definition
        ok = True
        ok &= linker.require_all("Template", rule.templates, entry, "templates", "template")
        ok &= linker.require_all("Queue", rule.queues, entry, "queues", "queue")
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
            problem = schedule_problem(trigger.schedule) if trigger.schedule is not None else None
            if problem:
                linker.error(entry.at("on", index, "schedule"), problem)
                ok = False
            if trigger.field is not None and trigger.event != "field_changed":
                linker.error(entry.at("on", index, "field"), "`field` narrows only event: field_changed")
                ok = False
            if trigger.step is not None and trigger.event not in ("step_entered", "step_left"):
                linker.error(entry.at("on", index, "step"), "`step` narrows only step_entered and step_left")
                ok = False
        scope = template_scope(linker, templates, rule.templates, f"rule `{name}`", queues=rule.queues)
        for index, trigger in enumerate(rule.on):
            if isinstance(trigger, str):
                continue
            for key, value in (("from", trigger.from_), ("to", trigger.to)):
                if value is None:
                    continue
                if trigger.event != "field_changed" or trigger.field is None:
                    linker.error(entry.at("on", index, key), f"`{key}` narrows only event: field_changed with `field`")
                    ok = False
                    continue
                found = scope.resolve(trigger.field)
                if isinstance(found, str):
                    linker.error(entry.at("on", index, "field"), found)
                    ok = False
                elif found and (problem := value_problem(found[0], value)):
                    linker.error(entry.at("on", index, key), problem)
                    ok = False
        if rule.when is not None:
            ok &= check_condition(linker, entry, ("when",), rule.when, scope)
        ok &= link_actions(linker, entry, ("do",), rule.do, scope, templates)
        if ok:
            out[name] = rule
    report_rule_cycles(linker, out)
    return out


def link_macros(linker: Linker, templates: dict[str, ResolvedTemplate]) -> dict[str, Macro]:
    """Check every macro: its templates exist and its actions suit them."""
    out = {}
    for name, entry in linker.of("Macro").items():
        macro: Macro = entry.definition
        ok = True
        ok &= linker.require_all("Template", macro.templates, entry, "templates", "template")
        scope = template_scope(linker, templates, macro.templates, f"macro `{name}`")
        ok &= link_actions(linker, entry, ("actions",), macro.actions, scope, templates)
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
            spans: list[tuple[int, int, str]] = []
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


def link_slas(linker: Linker, templates: dict[str, ResolvedTemplate]) -> dict[str, SLA]:
    """Check every SLA: calendar, templates, targets, its condition and escalation actions."""
    out = {}
    for name, entry in linker.of("SLA").items():
        sla: SLA = entry.definition
        ok = True
        if sla.calendar is not None:
            ok &= linker.require("Calendar", sla.calendar, entry.at("calendar"), "calendar")
        ok &= linker.require_all("Template", sla.templates, entry, "templates", "template")
        targets = sla.targets
        if not (targets.first_response or targets.next_response or targets.resolution or targets.steps):
            linker.error(entry.at("targets"), "the SLA sets no target")
            ok = False
        covered = set(sla.templates) or set(linker.of("Template"))
        steps = {
            step.name
            for queue in linker.of("Queue").values()
            if covered & set(queue.definition.templates)
            for step in queue.definition.steps
        }
        for step in targets.steps:
            if step not in steps:
                linker.unknown("step", step, steps, entry.at("targets", "steps", step, key=True),
                               "step", "in the queues of the SLA's templates")
                ok = False
        scope = template_scope(linker, templates, sla.templates, f"SLA `{name}`", changed=False)
        if sla.when is not None:
            ok &= check_condition(linker, entry, ("when",), sla.when, scope)
        ok &= link_actions(linker, entry, ("on_warning",), sla.on_warning, scope, templates)
        ok &= link_actions(linker, entry, ("on_breach",), sla.on_breach, scope, templates)
        if sla.on_warning and sla.warn_before is None:
            linker.error(entry.at("on_warning", key=True), "`on_warning` needs `warn_before`")
            ok = False
        if ok:
            out[name] = sla
    return out


# Rule cycles ---------------------------------------------------------------------------------

class _Change(NamedTuple):
    """Something an action does that a trigger may react to."""

    event: str
    detail: str | None
    """The field changed or step entered; ``None`` for any."""
    template: str | None
    """The template of a work order the action creates; ``None``: the action changes the same one."""
    says: str


def _changes(linker: Linker, actions: tuple[Action, ...], macros: frozenset[str] = frozenset()) -> list[_Change]:
    """What ``actions`` change, as events (macros they apply included)."""
    out: list[_Change] = []

    def field(name: str) -> None:
        out.append(_Change("field_changed", name, None, f"changes `{name}`"))

    for action in actions:
        if action.set_field is not None:
            field(action.set_field.field)
        elif action.set_priority is not None:
            field("priority")
        elif action.set_status is not None:
            field("status")
        elif action.assign is not None:
            out.append(_Change("assigned", None, None, "assigns the work order"))
            field("owner")
            if action.assign.group is not None:
                field("group")
        elif action.route is not None:
            route = action.route
            step = route.step
            queue = linker.of("Queue").get(route.queue or "")
            if step is None and queue is not None:
                step = queue.definition.steps[0].name
            if route.step is not None or route.queue is not None:
                says = f"moves the work order to step `{step}`" if step else "moves the work order to another step"
                out.append(_Change("step_entered", step, None, says))
                out.append(_Change("step_left", None, None, "moves the work order out of its step"))
                field("step")
            for key in ("queue", "customer", "project"):
                if getattr(route, key) is not None:
                    field(key)
        elif action.comment is not None:
            out.append(_Change("comment_added", None, None, "adds a comment"))
        elif action.create_work_order is not None:
            template = action.create_work_order.template
            out.append(_Change("created", None, template, f"creates a work order of template `{template}`"))
        elif action.apply_macro is not None and action.apply_macro not in macros:
            entry = linker.of("Macro").get(action.apply_macro)
            if entry is not None:
                inner = _changes(linker, entry.definition.actions, macros | {action.apply_macro})
                out.extend(c._replace(says=f"applies macro `{action.apply_macro}`, which {c.says}") for c in inner)
    return out


def _watches(rule: Rule) -> list[tuple[str, str | None]]:
    """The events a rule's triggers react to, each with the field or step it narrows to."""
    out: list[tuple[str, str | None]] = []
    for trigger in rule.on:
        if isinstance(trigger, str):
            out.append((trigger, None))
        else:
            out.append((trigger.event, trigger.field if trigger.event == "field_changed" else trigger.step))
    return out


def _edge(first: Rule, second: Rule, changes: list[_Change], all_templates: frozenset[str]) -> str | None:
    """How ``first``'s actions run ``second`` (why it reacts), or ``None`` if they cannot."""
    scope_first = frozenset(first.templates) or all_templates
    scope_second = frozenset(second.templates) or all_templates
    for change in changes:
        if change.template is not None:
            if change.template not in scope_second:
                continue
        elif not scope_first & scope_second:
            continue
        for event, detail in _watches(second):
            if event == change.event and (detail is None or change.detail is None or detail == change.detail):
                return change.says
    return None


def _elementary_cycles(order: list[str], edges: dict[str, dict[str, str]], limit: int = 50,
                       budget: int = 100_000) -> list[list[str]]:
    """Each elementary cycle once, starting at its earliest node in ``order`` (bounded search)."""
    index = {name: i for i, name in enumerate(order)}
    found: list[list[str]] = []
    for start in order:
        path = [start]
        stack = [iter(sorted(edges[start], key=index.__getitem__))]
        while stack and len(found) < limit and budget > 0:
            budget -= 1
            following = next(stack[-1], None)
            if following is None:
                stack.pop()
                path.pop()
            elif following == start:
                found.append(list(path))
            elif index[following] > index[start] and following not in path:
                path.append(following)
                stack.append(iter(sorted(edges[following], key=index.__getitem__)))
    return found


def report_rule_cycles(linker: Linker, rules: dict[str, Rule]) -> None:
    """Report rules whose actions trigger each other (or themselves), each cycle once.

    Only what can be seen without running: an action that changes what another rule's
    trigger reacts to (a field, a step, an assignment, a comment, a new work order).
    """
    entries = linker.of("Rule")
    enabled = [name for name, rule in rules.items() if rule.enabled]
    order = sorted(enabled, key=lambda n: (entries[n].at("name").path, entries[n].at("name").line, n))
    all_templates = frozenset(linker.of("Template"))
    edges: dict[str, dict[str, str]] = {}
    for first in order:
        changes = _changes(linker, rules[first].do)
        edges[first] = {}
        for second in order:
            says = _edge(rules[first], rules[second], changes, all_templates)
            if says is not None:
                edges[first][second] = says
    for cycle in _elementary_cycles(order, edges):
        at = entries[cycle[0]].at("name")
        if len(cycle) == 1:
            name = cycle[0]
            linker.error(at, f"rule `{name}` triggers itself: it {edges[name][name]}, which its own trigger reacts to")
            continue
        ring = [*cycle, cycle[0]]
        steps = "; ".join(f"`{a}` {edges[a][b]}, which `{b}` reacts to" for a, b in zip(ring, ring[1:]))
        linker.error(at, f"rules trigger each other in a cycle: {' -> '.join(f'`{n}`' for n in ring)} ({steps})")
