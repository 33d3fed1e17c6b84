"""Linking groups, roles and queues: every step reachable, every step able to finish."""

from __future__ import annotations

from collections import deque

from ..identifiers import RESERVED_STEP_NAMES
from ..model import Group, Queue, Role, Step
from .context import Entry, Linker
from .resolved import ResolvedAction, ResolvedQueue, ResolvedStep

COMPLETE = "complete"


def link_groups(linker: Linker) -> dict[str, Group]:
    out = {}
    for name, entry in linker.of("Group").items():
        group: Group = entry.definition
        linker.check_unique(entry, ("members",), group.members, "member")
        out[name] = group
    return out


def link_roles(linker: Linker) -> dict[str, Role]:
    out = {}
    for name, entry in linker.of("Role").items():
        role: Role = entry.definition
        linker.check_unique(entry, ("permissions",), role.permissions, "permission")
        ok = True
        ok &= linker.require_all("Group", role.groups, entry, "groups", "group")
        if ok:
            out[name] = role
    return out


def queues_by_template(linker: Linker) -> dict[str, list[str]]:
    """Which queues list each template (before the queues are checked)."""
    out: dict[str, list[str]] = {}
    for name, entry in linker.of("Queue").items():
        for template in entry.definition.templates:
            out.setdefault(template, []).append(name)
    return out


def _next_of(steps: tuple[Step, ...], index: int) -> tuple[str, ...]:
    step = steps[index]
    if step.next is None:
        return (steps[index + 1].name,) if index + 1 < len(steps) else (COMPLETE,)
    if isinstance(step.next, str):
        return (step.next,)
    return tuple(step.next)


def _link_step(linker: Linker, entry: Entry[Queue], index: int, names: list[str],
               ranges: dict[str, tuple[str, ...]]) -> ResolvedStep | None:
    queue: Queue = entry.definition
    step = queue.steps[index]
    at = ("steps", index)
    ok = True
    if step.name in RESERVED_STEP_NAMES:
        linker.error(entry.at(*at, "name"), f"`{step.name}` is reserved; give the step another name")
        ok = False
    if step.group is not None:
        if not linker.require("Group", step.group, entry.at(*at, "group"), "group"):
            ok = False
        else:
            for template, allowed in ranges.items():
                if allowed and step.group not in allowed:
                    linker.error(
                        entry.at(*at, "group"),
                        f"group `{step.group}` is not in the range of template `{template}` "
                        f"({', '.join(allowed)})",
                    )
                    ok = False
    linker.check_unique(entry, (*at, "actions"), [a.name for a in step.actions], "action")
    targets = _next_of(queue.steps, index)
    if isinstance(step.next, tuple) and not step.next:
        linker.error(entry.at(*at, "next"), f"step `{step.name}` has an empty `next`; name a step or complete")
        ok = False
    for position, target in enumerate(targets):
        where = entry.at(*at, "next", position) if isinstance(step.next, tuple) else entry.at(*at, "next")
        if target == COMPLETE:
            continue
        if target == step.name:
            linker.error(where, f"step `{step.name}` cannot be its own next step")
            ok = False
        elif target not in names:
            linker.unknown("step", target, [*names, COMPLETE], where, "step", f"in queue `{queue.name}`")
            ok = False
    for position, way in enumerate(step.returns):
        where = entry.at(*at, "returns", position)
        if way == "previous":
            if index == 0:
                linker.error(where, "the first step has no previous step to return to")
                ok = False
        elif way == "supervisor":
            group = linker.of("Group").get(step.group or "")
            if step.group is None:
                linker.error(where, f"step `{step.name}` has no group, so it has no supervisor to return to")
                ok = False
            elif group is not None and group.definition.supervisor is None:
                linker.error(where, f"group `{step.group}` has no supervisor to return to")
                ok = False
        elif way not in names[:index]:
            known = ["previous", "supervisor", *names[:index]]
            linker.unknown("return", way, known, where, "return path")
            ok = False
    for position, action in enumerate(step.actions):
        if action.with_ and action.plugin is None:
            linker.error(entry.at(*at, "actions", position, "with", key=True),
                         f"action `{action.name}` has `with` parameters but no `plugin`")
            ok = False
    if not ok:
        return None
    return ResolvedStep(
        name=step.name,
        label=linker.labels(step.label, step.name.replace("_", " ").capitalize()),
        group=step.group,
        actions=tuple(
            ResolvedAction(
                name=a.name,
                label=linker.labels(a.label, a.name.replace("_", " ").capitalize()),
                plugin=a.plugin,
                parameters=dict(a.with_),
                skippable=a.skippable,
            )
            for a in step.actions
        ),
        next=targets,
        returns=step.returns,
    )


def _check_flow(linker: Linker, entry: Entry[Queue], steps: list[ResolvedStep]) -> bool:
    """Every step reachable from the first, and complete reachable from every step."""
    by_name = {s.name: s for s in steps}
    index_of = {s.name: i for i, s in enumerate(entry.definition.steps)}
    reached = {steps[0].name}
    todo = deque([steps[0].name])
    while todo:
        for target in by_name[todo.popleft()].next:
            if target != COMPLETE and target not in reached:
                reached.add(target)
                todo.append(target)
    ok = True
    for step in steps:
        if step.name not in reached:
            linker.error(
                entry.at("steps", index_of[step.name], "name"),
                f"step `{step.name}` can never be reached: no step's `next` leads to it",
            )
            ok = False
    finishing = {COMPLETE}
    changed = True
    while changed:
        changed = False
        for step in steps:
            if step.name not in finishing and any(t in finishing for t in step.next):
                finishing.add(step.name)
                changed = True
    for step in steps:
        if step.name in reached and step.name not in finishing:
            linker.error(
                entry.at("steps", index_of[step.name], "name"),
                f"from step `{step.name}` a work order can never reach complete "
                f"(its `next` steps only lead back: {', '.join(step.next)})",
            )
            ok = False
    return ok


def link_queues(linker: Linker) -> dict[str, ResolvedQueue]:
    out = {}
    for name, entry in linker.of("Queue").items():
        queue: Queue = entry.definition
        ok = True
        ranges: dict[str, tuple[str, ...]] = {}
        for index, template in enumerate(queue.templates):
            if linker.require("Template", template, entry.at("templates", index), "template"):
                ranges[template] = linker.of("Template")[template].definition.range
            else:
                ok = False
        linker.check_unique(entry, ("templates",), queue.templates, "template")
        names = [s.name for s in queue.steps]
        duplicate = len(set(names)) != len(names)
        for index, step_name in enumerate(names):
            if step_name in names[:index]:
                linker.error(entry.at("steps", index, "name"), f"queue `{name}` has two steps named `{step_name}`")
        if duplicate:  # routing between same-named steps would only add confusing errors
            continue
        steps = [_link_step(linker, entry, i, names, ranges) for i in range(len(queue.steps))]
        resolved = [s for s in steps if s is not None]
        if len(resolved) != len(steps):
            continue
        ok &= _check_flow(linker, entry, resolved)
        for old, target in queue.retired_steps.items():
            where = entry.at("retired_steps", old)
            if old in names:
                linker.error(entry.at("retired_steps", old, key=True),
                             f"`{old}` is still a step of queue `{name}`; only removed steps can be retired")
                ok = False
            if target != COMPLETE and target not in names:
                linker.unknown("step", target, [*names, COMPLETE], where, "step", f"in queue `{name}`")
                ok = False
        if ok:
            out[name] = ResolvedQueue(
                name=name,
                label=linker.labels(queue.label, name.replace("_", " ").capitalize()),
                location=entry.at("name"),
                templates=queue.templates,
                steps=tuple(resolved),
                retired_steps=dict(queue.retired_steps),
            )
    return out
