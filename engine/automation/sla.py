"""SLAs on work orders: which SLA applies, its targets' deadlines, pauses, and the columns the sweep reads.

An order's SLA clock is kept on its ``rc_work_order`` row: ``sla_clock`` (JSON) holds
every running target - ``first_response``, ``next_response``, ``resolution`` and
``step:NAME`` - with its due time, warning time and the levels already fired; the
indexed columns summarise it for lists and the sweep:

- ``sla_name``: the SLA that applies; ``sla_state``: running, paused, escalating or stopped;
- ``sla_target`` / ``sla_due_at``: the nearest target and its deadline; ``sla_warn_at``;
- ``sla_next_at``: when the sweep must look at the order next (the earliest warning or
  breach not fired yet); index ``(sla_state, sla_next_at)``;
- ``sla_paused_at``: since when the clock stands still (a status in the SLA's ``pause_on``).

``SlaClock.changed`` (an ``after_change`` listener) brings the clock up to date in the
transaction of every saved change: created (select the SLA, start first response,
resolution and the first step's target), step entered or returned (the step's target),
a status in ``pause_on`` (pause: each target keeps its remaining business time) or out of
it (resume: due = now + remaining), completed or cancelled (stop). ``message_added``
does the same for the thread: a reply to the customer meets first and next response; a
message from the customer starts next response. The sweep and escalations live in
``escalation``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..link.resolved import LinkedWorkspace
from ..model import SLA
from ..plugins import default_plugins
from ..runtime.fields import as_utc, to_json_time
from ..runtime.state import FINAL, Change, Order, now
from .calendar import BusinessCalendar, Duration
from .conditions import compile_condition, condition_fields
from .rules import LOOKED_UP, order_facts

if TYPE_CHECKING:
    from ..runtime.actors import Actor
    from ..runtime.service import Runtime

Facts = Mapping[str, Any]
LEVELS = ("warning", "breach")
SLA_EVENTS = frozenset({"sla_warning", "sla_breach", "sla_started", "sla_stopped"})
REPLY_KINDS = frozenset({"reply"})
"""Messages that answer the customer (meet first and next response)."""
SLA_COLUMNS = ("sla_name", "sla_state", "sla_target", "sla_due_at", "sla_warn_at", "sla_next_at", "sla_paused_at",
               "sla_clock")


class Policy:
    """One SLA ready to use: its calendar, its condition as a closure, its durations parsed."""

    def __init__(self, sla: SLA, calendar: BusinessCalendar, when: Callable[[Facts], bool]) -> None:
        self.sla = sla
        self.name = sla.name
        self.calendar = calendar
        self.when = when
        self.needs = condition_fields(sla.when) & LOOKED_UP
        """The facts its condition needs looked up (owner, customer, project)."""
        self.reads_title = "title" in condition_fields(sla.when)
        self.templates = frozenset(sla.templates)
        targets = sla.targets
        self.durations: dict[str, Duration] = {
            name: Duration.parse(text) for name, text in (
                ("first_response", targets.first_response), ("next_response", targets.next_response),
                ("resolution", targets.resolution)) if text}
        self.durations.update({f"step:{step}": Duration.parse(text) for step, text in targets.steps.items()})
        self.warn_before = Duration.parse(sla.warn_before).total_seconds if sla.warn_before else None
        self.pause_on = frozenset(sla.pause_on)

    def applies(self, template: str, facts: Facts) -> bool:
        return (not self.templates or template in self.templates) and self.when(facts)


def compile_policies(workspace: LinkedWorkspace) -> list[Policy]:
    """The workspace's SLAs as policies, lowest ``priority`` first (then by name)."""
    calendars = {name: BusinessCalendar(c) for name, c in workspace.calendars.items()}
    around = BusinessCalendar(None)
    out = []
    for sla in sorted(workspace.slas.values(), key=lambda s: (s.priority, s.name)):
        covered = [workspace.templates[t] for t in (sla.templates or workspace.templates) if t in workspace.templates]
        types = {f.name: f.type for t in covered for f in t.fields}
        when = compile_condition(sla.when, types, default_plugins().condition_functions, calendars)
        out.append(Policy(sla, calendars[sla.calendar] if sla.calendar else around, when))
    return out


_POLICIES: dict[str, list[Policy]] = {}


def policies_of(workspace: LinkedWorkspace) -> list[Policy]:
    """``compile_policies`` once per definition version."""
    found = _POLICIES.get(workspace.fingerprint)
    if found is None:
        if len(_POLICIES) > 16:
            _POLICIES.clear()
        found = _POLICIES[workspace.fingerprint] = compile_policies(workspace)
    return found


def _covering(policies: list[Policy], template: str) -> list[Policy]:
    """The SLAs that may apply to work orders of ``template``."""
    return [p for p in policies if not p.templates or template in p.templates]


def select_policy(policies: list[Policy], template: str, facts: Facts) -> Policy | None:
    """The SLA of a work order: the first (lowest ``priority``) whose templates and condition match."""
    return next((p for p in policies if p.applies(template, facts)), None)


# -- the clock ----------------------------------------------------------------------------------

Clock = dict[str, dict[str, Any]]
"""target -> {"start", "due", "warn" (ISO or None), "remaining", "warn_remaining" (seconds, while paused), "fired"}."""


def _time(value: Any) -> dt.datetime | None:
    return None if value is None else as_utc(value)


def start_target(clock: Clock, policy: Policy, target: str, moment: dt.datetime, paused: bool) -> None:
    """Start ``target`` at ``moment`` (a paused clock keeps the full time as remaining)."""
    duration = policy.durations.get(target)
    if duration is None:
        return
    due = policy.calendar.add_duration(moment, duration)
    entry: dict[str, Any] = {"start": to_json_time(moment), "due": to_json_time(due), "warn": None, "remaining": None, "warn_remaining": None,
                             "fired": []}
    if policy.warn_before is not None:
        total = policy.calendar.between(moment, due)
        entry["warn"] = to_json_time(policy.calendar.add(moment, max(0.0, total - policy.warn_before)))
    clock[target] = entry
    if paused:
        pause(clock, policy, moment)


def pause(clock: Clock, policy: Policy, moment: dt.datetime) -> None:
    """Stop every target's clock at ``moment``, keeping the business time each has left."""
    for entry in clock.values():
        for key, left in (("due", "remaining"), ("warn", "warn_remaining")):
            if entry.get(key) is not None:
                entry[left] = policy.calendar.between(moment, _time(entry[key]) or moment)
                entry[key] = None


def resume(clock: Clock, policy: Policy, moment: dt.datetime) -> None:
    """Start the clocks again at ``moment`` with the time each had left."""
    for entry in clock.values():
        for key, left in (("due", "remaining"), ("warn", "warn_remaining")):
            if entry.get(left) is not None:
                entry[key] = to_json_time(policy.calendar.add(moment, max(0.0, float(entry[left]))))
                entry[left] = None


def summary(clock: Clock, paused: bool) -> dict[str, Any]:
    """The indexed columns of a clock: nearest target and due time, warning time, next sweep time."""
    nearest: tuple[dt.datetime, str, dt.datetime | None] | None = None  # the first of the earliest due
    next_at: dt.datetime | None = None
    for target, entry in clock.items():
        due, warn = _time(entry["due"]), _time(entry["warn"])
        if due is not None and (nearest is None or due < nearest[0]):
            nearest = (due, target, warn)
        for moment, level in ((warn, "warning"), (due, "breach")):
            if moment is not None and level not in entry["fired"] and (next_at is None or moment < next_at):
                next_at = moment
    return {
        "sla_state": "paused" if paused else "running",
        "sla_target": nearest[1] if nearest else None, "sla_due_at": nearest[0] if nearest else None,
        "sla_warn_at": nearest[2] if nearest else None,
        "sla_next_at": None if paused else next_at,
    }


async def read_clock(runtime: Runtime, order_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The SLA columns of an order (``sla_clock`` as a dict).

    ``lock`` (in a transaction that will write the clock back) takes the order's row lock
    first on PostgreSQL (``FOR NO KEY UPDATE``, as an UPDATE of the order does; rows
    referring to the order can still be added meanwhile), so no other transaction writes
    the clock between this read and that write. Without it, a reply's clock update read
    before an escalation committed and wrote after it: the fired level was forgotten and the
    order stayed ``escalating`` with no job left to run (found by bench/fault_harness.py).
    SQLite's writer runs one write transaction at a time, which holds the lock already.
    """
    locked = " FOR NO KEY UPDATE" if lock and runtime.db.dialect == "postgresql" else ""
    rows = await runtime.db.fetch(
        f"SELECT {', '.join(SLA_COLUMNS)} FROM rc_work_order WHERE id = {{}}{locked}", order_id)
    row = dict(rows[0])
    clock = row["sla_clock"]
    row["sla_clock"] = json.loads(clock) if isinstance(clock, str) else (clock or {})
    return row


def _no_clock() -> dict[str, Any]:
    """What ``read_clock`` gives for an order whose clock never ran."""
    row: dict[str, Any] = dict.fromkeys(SLA_COLUMNS)
    row["sla_clock"] = {}
    return row


def _as_columns(values: dict[str, Any]) -> dict[str, Any]:
    """SLA columns as the database takes them (``sla_clock`` as JSON text)."""
    return {k: (json.dumps(v) if k == "sla_clock" else v) for k, v in values.items() if k in SLA_COLUMNS}


async def write_clock(runtime: Runtime, order_id: int, values: dict[str, Any]) -> None:
    """Write the SLA columns given in ``values`` (``sla_clock`` as a dict)."""
    columns = _as_columns(values)
    sets = ", ".join(f"{key} = {{}}" for key in columns)
    await runtime.db.execute(f"UPDATE rc_work_order SET {sets} WHERE id = {{}}", *columns.values(), order_id)


class SlaClock:
    """Keeps the SLA columns of one runtime's work orders up to date (installed by ``install``)."""

    def __init__(self, runtime: Runtime, clock: Callable[[], dt.datetime] = now) -> None:
        self.runtime = runtime
        self.clock = clock

    async def opening(self, order: Order) -> dict[str, Any]:
        """A new work order's clock, as columns of its row (``Runtime.open_with``): the SLA
        that applies, its first response, resolution and first step's targets started.

        ``sla_state`` is among them (``NULL``: no SLA's condition holds), which tells
        ``changed`` the clock was written with the order. Nothing when no SLA covers the
        order's template, or when one's condition tests the title of an order whose title is
        not known yet (PostgreSQL gives an order created without one its title in the
        insert): ``changed`` writes the clock after the insert then.
        """
        policies = _covering(policies_of(self.runtime.workspace), order.template.name)
        if not policies or (order.state.get("title") is None and any(p.reads_title for p in policies)):
            return {}
        values = await self._brought_up_to_date(order, ["created"], _no_clock(), policies)
        return _as_columns({"sla_state": None, **(values or {})})

    def quiet_on(self, change: Change) -> bool:
        """Does ``changed`` send nothing for ``change``? So when it has no event the clock hears
        of, when there is no SLA, and when no SLA covers the order's template and the order (as
        read for the change) has no clock from an SLA that once did."""
        if all(kind in SLA_EVENTS for kind, *_ in change.events):
            return True
        policies = policies_of(self.runtime.workspace)
        order = change.order
        return not policies or (order.row.get("sla_state") is None and not _covering(policies, order.template.name))

    async def changed(self, change: Change) -> None:
        """After every saved change: select the SLA, start, move, pause, resume or stop targets."""
        if self.quiet_on(change):
            return
        kinds = [event[0] for event in change.events]
        policies = policies_of(self.runtime.workspace)
        order = change.order
        if "created" in kinds:
            if "sla_state" in order.row:
                return  # written with the order (``opening``)
            # a new order's clock is known to be empty: the SLA clock hears of it before any rule
            # (nothing else in its transaction writes the clock), so it is not read back
            row = _no_clock()
        else:
            row = await read_clock(self.runtime, order.id)
        values = await self._brought_up_to_date(order, kinds, row, policies)
        if values is not None:
            await write_clock(self.runtime, order.id, values)

    async def _brought_up_to_date(self, order: Order, kinds: list[str], row: dict[str, Any],
                                  policies: list[Policy]) -> dict[str, Any] | None:
        """The SLA columns to write after a change of the kinds ``kinds`` to ``order``, whose
        clock was ``row``; ``None``: nothing to write."""
        if row["sla_state"] == "stopped":
            return None
        moment = self.clock()
        values: dict[str, Any] = {}
        clock: Clock = row["sla_clock"]
        policy = next((p for p in policies if p.name == row["sla_name"]), None)
        conditional = any(p.sla.when is not None for p in policies)
        needs = frozenset().union(*(p.needs for p in policies))
        facts = await order_facts(self.runtime.db, order, set(), needs) if conditional else {}
        chosen = select_policy(policies, order.template.name, facts)
        if chosen is not None and (policy is None or chosen.name != policy.name):
            before, clock = clock, {}
            starts = [_time(e.get("start")) for e in before.values() if e.get("start")]
            created = min(m for m in starts if m) if starts else _time(order.state.get("created_at")) or moment
            paused = order.status in chosen.pause_on
            fresh = "created" in kinds or policy is None
            for target in ("first_response", "resolution", "next_response"):
                if target == "resolution" or (target in before if not fresh else target == "first_response"):
                    start_target(clock, chosen, target, moment if "created" in kinds else created, paused)
            start_target(clock, chosen, f"step:{order.state['step']}", moment, paused)
            values.update(sla_name=chosen.name, sla_paused_at=moment if paused else None)
            policy = chosen
        elif policy is None:
            return None
        else:
            if any(k in ("step_entered", "returned") for k in kinds):
                for target in [t for t in clock if t.startswith("step:")]:
                    del clock[target]
                start_target(clock, policy, f"step:{order.state['step']}", moment, row["sla_state"] == "paused")
            if order.status in FINAL:
                return {"sla_state": "stopped", "sla_next_at": None, "sla_warn_at": None, "sla_clock": clock}
            paused = row["sla_state"] == "paused"
            if order.status in policy.pause_on and not paused:
                pause(clock, policy, moment)
                values["sla_paused_at"] = moment
            elif order.status not in policy.pause_on and paused:
                resume(clock, policy, moment)
                values["sla_paused_at"] = None
        if order.status in FINAL:
            values.update(sla_state="stopped", sla_next_at=None, sla_clock=clock)
        else:
            values.update(summary(clock, order.status in policy.pause_on), sla_clock=clock)
            if row["sla_state"] == "escalating" and values["sla_state"] == "running":
                values["sla_state"] = "escalating"  # an escalation job is queued; it sets the state when done
        return values

    async def message_added(self, order: Order, kind: str, actor: Actor | None) -> None:
        """After a message in the thread: a reply meets the response targets; a customer's message starts next response."""
        policies = policies_of(self.runtime.workspace)
        if not policies:
            return
        row = await read_clock(self.runtime, order.id, lock=True)  # a message leaves the order's row unlocked
        policy = next((p for p in policies if p.name == row["sla_name"]), None)
        if policy is None or row["sla_state"] == "stopped":
            return
        clock: Clock = row["sla_clock"]
        moment = self.clock()
        paused = row["sla_state"] == "paused"
        if kind in REPLY_KINDS and (actor is None or actor.is_staff):
            clock.pop("first_response", None)
            clock.pop("next_response", None)
        elif (actor is not None and not actor.is_staff) or kind == "email":
            if "first_response" not in clock and "next_response" not in clock:
                start_target(clock, policy, "next_response", moment, paused)
        else:
            return
        values = {**summary(clock, paused), "sla_clock": clock}
        if row["sla_state"] == "escalating":
            values["sla_state"] = "escalating"
        await write_clock(self.runtime, order.id, values)


def install(runtime: Runtime) -> SlaClock:
    """Keep ``runtime``'s SLA columns up to date on every change (and message, where the runtime tells)."""
    service = SlaClock(runtime)
    runtime.open_with(service.opening)
    # a new work order's clock goes in its insert, unless an SLA's condition tests a title not known yet
    runtime.listen(service.changed, quiet_on_create=lambda template, _: not any(
        p.reads_title for p in _covering(policies_of(runtime.workspace), template.name)),
        quiet_on_change=service.quiet_on)
    listeners = getattr(runtime, "after_message", None)
    if isinstance(listeners, list):
        listeners.append(service.message_added)
    return service


async def sla_status(runtime: Runtime, number: str, moment: dt.datetime | None = None) -> dict[str, Any] | None:
    """What the order page shows of an order's SLA: name, label, nearest target, due time, time left, paused.

    ``left`` is business time in seconds in the SLA's calendar (negative: overdue by that much);
    ``None`` when no target is running.
    """
    rows = await runtime.db.fetch(
        f"SELECT {', '.join(SLA_COLUMNS)} FROM rc_work_order WHERE number = {{}}", number)
    if not rows or not rows[0]["sla_name"]:
        return None
    row = rows[0]
    policy = next((p for p in policies_of(runtime.workspace) if p.name == row["sla_name"]), None)
    clock = row["sla_clock"]
    clock = json.loads(clock) if isinstance(clock, str) else (clock or {})
    paused = row["sla_state"] == "paused"
    left: float | None = None
    target = row["sla_target"]
    if paused:
        remaining = [(float(e["remaining"]), t) for t, e in clock.items() if e.get("remaining") is not None]
        if remaining:
            left, target = min(remaining)
    elif row["sla_due_at"] is not None and policy is not None and row["sla_state"] != "stopped":
        left = policy.calendar.between(moment or runtime.sla.clock(), _time(row["sla_due_at"]) or now())
    return {"name": row["sla_name"], "label": policy.sla.label if policy else None, "state": row["sla_state"],
            "target": target, "due_at": to_json_time(row["sla_due_at"]), "paused": paused, "left": left,
            "breached": sorted(t for t, e in clock.items() if "breach" in e.get("fired", []))}


async def sla_due(db: Any, numbers: list[str], moment: dt.datetime | None = None) -> dict[str, dict[str, Any]]:
    """For a list screen: each order's nearest SLA deadline (ISO), whether it is overdue, paused or stopped."""
    if not numbers:
        return {}
    rows = await db.fetch(
        "SELECT number, sla_due_at, sla_state FROM rc_work_order WHERE sla_name IS NOT NULL AND number IN ("
        + ", ".join("{}" for _ in numbers) + ")", *numbers)
    moment = moment or now()
    out = {}
    for row in rows:
        due = _time(row["sla_due_at"])
        running = row["sla_state"] in ("running", "escalating")
        out[str(row["number"])] = {"due_at": to_json_time(due), "state": row["sla_state"],
                                   "overdue": bool(running and due is not None and due < moment)}
    return out
