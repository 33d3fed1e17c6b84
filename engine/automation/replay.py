"""What-if: the workspace's rules run against recorded events, without writing anything.

``replay_rules`` reads the audit trail since a date, rebuilds each work order's state
event by event (the trail replays to the order, ``engine.runtime.state``), and for every
change made by a person, a job or a mail (not by rules: those are what is being tried)
asks the rules of the given workspace - the current definitions, or changed ones not yet
applied, disabled rules included (so a new rule can be tried before it is switched on) -
which would have fired, with the facts as they were at that moment. Nothing is
done: the answer lists, per rule, the orders it would have touched and what it would have
done. Only reads run; scheduled rules are not replayed (no event starts them).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NamedTuple

import msgspec

from ..db import Database
from ..link.resolved import LinkedWorkspace
from ..model.automation import Action
from ..plugins import default_plugins
from ..runtime.fields import FieldCodec, as_utc
from ..runtime.state import CORE_KEYS, MERGED_KEYS, Change, Order
from .rules import RuleIndex, changed_values, order_facts, triggers_of

MAX_EVENTS = 200_000
"""Events read at most in one replay (the oldest first)."""


class Would(NamedTuple):
    """One rule that would have fired on one work order at one moment."""

    rule: str
    at: str
    """Where the rule is defined (file:line:col)."""
    number: str
    when: str
    trigger: str
    actions: tuple[str, ...]
    delayed: str | None


def describe_action(action: Action) -> str:
    """An action in a few words, for people reading a replay."""
    for key in action.__struct_fields__:
        value = getattr(action, key)
        if value is None:
            continue
        if key == "set_field":
            return f"set {value.field} to {json.dumps(value.value)}"
        if key in ("set_priority", "set_status"):
            return f"set {key.removeprefix('set_')} to {value}"
        if key == "apply_macro":
            return f"apply macro {value}"
        parts = msgspec.to_builtins(value)
        shown = ", ".join(f"{k} {v if not isinstance(v, str) or len(v) < 60 else v[:57] + '...'}"
                          for k, v in parts.items())
        return f"{key.replace('_', ' ')}: {shown}"
    return "nothing"


def _apply(state: dict[str, Any], kind: str, after: dict[str, Any]) -> None:
    for key, value in after.items():
        if key in MERGED_KEYS:
            if key == "actions" and kind in ("created", "step_entered", "returned"):
                state[key] = dict(value)
            else:
                state.setdefault(key, {}).update(value)
        elif key in CORE_KEYS:
            state[key] = value


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or {})


async def replay_rules(workspace: LinkedWorkspace, db: Database, since: dt.datetime,
                       until: dt.datetime | None = None) -> list[Would]:
    """Which rules of ``workspace`` would have fired on the changes recorded from ``since`` (to ``until``)."""
    index = RuleIndex(workspace, disabled=True, functions=default_plugins().condition_functions)
    codecs = {name: FieldCodec(t) for name, t in workspace.templates.items()}
    orders = await db.fetch(
        "SELECT DISTINCT work_order_id FROM rc_event WHERE at >= {}" + (" AND at < {}" if until else ""),
        *([since, until] if until else [since]))
    ids = sorted(int(r["work_order_id"]) for r in orders if r["work_order_id"] is not None)
    found: list[Would] = []
    read = 0
    for order_id in ids:
        if read >= MAX_EVENTS:
            break
        rows = await db.fetch(
            "SELECT e.kind, e.at, e.before, e.after, e.source, e.version, w.number, w.sender FROM rc_event e "
            "JOIN rc_work_order w ON w.id = e.work_order_id WHERE e.work_order_id = {} ORDER BY e.id", order_id)
        read += len(rows)
        found += await _replay_order(workspace, index, codecs, db, order_id, rows, since, until)
    return found


async def _replay_order(workspace: LinkedWorkspace, index: RuleIndex, codecs: dict[str, FieldCodec], db: Database,
                        order_id: int, rows: list[dict[str, Any]], since: dt.datetime,
                        until: dt.datetime | None) -> list[Would]:
    state: dict[str, Any] = {"fields": {}, "actions": {}}
    found: list[Would] = []
    groups: list[list[dict[str, Any]]] = []
    for row in rows:  # the events of one saved change share its version and time
        if groups and (groups[-1][0]["version"], groups[-1][0]["at"]) == (row["version"], row["at"]):
            groups[-1].append(row)
        else:
            groups.append([row])
    for group in groups:
        for row in group:
            _apply(state, row["kind"], _json(row["after"]))
        first = group[0]
        moment = as_utc(first["at"])
        if moment < since or (until is not None and moment >= until):
            continue
        if any(str(r["source"] or "").startswith("rule ") for r in group):
            continue  # what rules did is what is being tried again
        template = workspace.templates.get(str(state.get("template")))
        queue = workspace.queues.get(str(state.get("queue")))
        if template is None or queue is None:
            continue
        row = {key: state.get(key) for key in CORE_KEYS}
        row.update(id=order_id, version=first["version"] or 1, sender=first["sender"])
        fields = {f.name: state["fields"].get(f.name) for f in template.fields}
        order = Order(row, fields, {name: {"state": s} for name, s in state["actions"].items()}, template, queue,
                      codecs[template.name], 1)
        change = Change(order, None, workspace.fingerprint)
        change.events = [(r["kind"], _json(r["before"]), _json(r["after"]), r["source"]) for r in group]
        triggers, names = triggers_of(change)
        candidates = index.candidates(triggers, order, changed_values(change)) if triggers else []
        if not candidates:
            continue
        needs = frozenset().union(*(c.compiled.needs for c in candidates))
        facts = await order_facts(db, order, names, needs)
        for candidate in candidates:
            compiled = candidate.compiled
            if not compiled.test(facts):
                continue
            found.append(Would(compiled.name, compiled.at, str(first["number"]), moment.isoformat(),
                               candidate.trigger, tuple(describe_action(a) for a in compiled.rule.do),
                               candidate.after))
            if compiled.rule.stop and candidate.after is None:
                break
    return found


def report(found: list[Would], workspace: LinkedWorkspace) -> str:
    """The replay as text: per rule, the orders it would have touched and what it would have done."""
    lines: list[str] = []
    by_rule: dict[str, list[Would]] = {}
    for item in found:
        by_rule.setdefault(item.rule, []).append(item)
    for name in sorted(workspace.rules, key=lambda n: (workspace.rules[n].order, n)):
        rule = workspace.rules[name]
        items = by_rule.get(name, [])
        touched = sorted({i.number for i in items})
        state = "" if rule.enabled else " [disabled]"
        where = str(workspace.locations.get("Rule", {}).get(name, "?"))
        lines.append(f"rule {name} ({where}){state}: would have fired {len(items)} time"
                     f"{'s' if len(items) != 1 else ''} on {len(touched)} work order{'s' if len(touched) != 1 else ''}")
        for item in items:
            later = f" after {item.delayed} (if its condition still holds then)" if item.delayed else ""
            lines.append(f"  {item.number} at {item.when} on {item.trigger}{later}: {'; '.join(item.actions)}")
    return "\n".join(lines)
