"""A work order in memory, and the change being made to it.

A service call loads the order (``load_order``), records every change as an event on
a ``Change`` (which also updates the in-memory state), and ``Change.save`` writes the
row, the custom fields, the step actions and the events in the caller's transaction
(on PostgreSQL in one statement), bumping the version once and refusing if someone
else bumped it first.

The state (``Order.state``) is plain JSON: exactly what the audit trail's events
carry, so replaying the events of an order rebuilds it (``replay``).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import msgspec

from ..compile.spec import extension_table
from ..db import ROW_ID, Database, parent_value
from ..errors import Conflict, NotFound
from ..identifiers import quote
from ..link.resolved import ResolvedQueue, ResolvedStep, ResolvedTemplate
from .fields import FieldCodec, to_json_time

CORE_KEYS = (
    "number", "template", "queue", "step", "status", "priority", "title", "owner_id", "group_name",
    "customer_id", "project_id", "created_by", "created_at", "requested_at", "planned_at", "completed_at",
    "cancelled_at", "path",
)
TIME_KEYS = frozenset({"created_at", "requested_at", "planned_at", "completed_at", "cancelled_at"})
MERGED_KEYS = frozenset({"fields", "actions"})
"""State keys whose events carry only the entries that changed."""
FINAL = frozenset({"completed", "cancelled"})


CLOCK: ContextVar[Callable[[], dt.datetime] | None] = ContextVar("routecard_clock", default=None)
"""A stand-in for the wall clock (workflow scenarios set one that moves only when told); ``None``: the real one."""


def now() -> dt.datetime:
    """The current time (UTC): the stand-in ``CLOCK`` when one is set in this context."""
    clock = CLOCK.get()
    return clock() if clock is not None else dt.datetime.now(dt.timezone.utc)


def _json_core(key: str, value: Any) -> Any:
    if key in TIME_KEYS:
        return to_json_time(value)
    if key == "path":
        return json.loads(value) if isinstance(value, str) else list(value or [])
    return value


class Order:
    """A loaded work order: its row, custom fields and the current step's actions."""

    def __init__(self, row: dict[str, Any], fields: dict[str, Any], actions: dict[str, dict[str, Any]],
                 template: ResolvedTemplate, queue: ResolvedQueue, codec: FieldCodec, round: int,
                 state: dict[str, Any] | None = None) -> None:
        """``state``: the state as JSON, when the caller has just built it (a copy is kept)."""
        self.id = int(row["id"])
        self.version = int(row["version"])
        self.row = row
        self.template = template
        self.queue = queue
        self.codec = codec
        self.round = round
        self.action_rows = actions
        if state is not None:
            self.state: dict[str, Any] = {**state, "path": list(state["path"]), "fields": dict(state["fields"]),
                                          "actions": dict(state["actions"])}
        else:
            self.state = {key: _json_core(key, row.get(key)) for key in CORE_KEYS}
            self.state["fields"] = {name: codec.to_json(name, fields.get(name)) for name in codec.fields}
            self.state["actions"] = {name: a["state"] for name, a in actions.items()}
        self.values = dict(fields)
        """Custom-field values as Python objects (what is stored)."""

    @property
    def number(self) -> str:
        return str(self.state["number"])

    @property
    def status(self) -> str:
        return str(self.state["status"])

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    @property
    def owner_id(self) -> int | None:
        owner = self.state["owner_id"]
        return int(owner) if owner is not None else None

    @property
    def step(self) -> ResolvedStep | None:
        for step in self.queue.steps:
            if step.name == self.state["step"]:
                return step
        return None


async def load_order(db: Database, templates: dict[str, ResolvedTemplate], queues: dict[str, ResolvedQueue],
                     codecs: dict[str, FieldCodec], number: str) -> Order:
    """The work order ``number``; ``NotFound`` if there is none (or its definitions are gone).

    One query when the number's prefix names the order's template (``template_by_number``):
    the row, the custom fields and the actions of the step's latest round together (a
    return to the step starts a new round). Otherwise (a number from before its template's
    prefix changed, or brought in from another system) once more with the row's template.
    """
    guess = template_by_number(templates.values(), number)
    rows = await db.fetch(_order_query(guess.name if guess else None, _field_names(guess)), number)
    template = templates.get(rows[0]["template"]) if rows else None
    if rows and template is not guess and template is not None and template.fields:
        rows = await db.fetch(_order_query(template.name, _field_names(template)), number)  # the fields too
    if not rows:
        raise NotFound(f"no work order {number}")
    first = rows[0]
    template, queue = templates.get(first["template"]), queues.get(first["queue"])
    if template is None or queue is None:
        raise NotFound(f"work order {number} belongs to a template or queue that no longer exists")
    names = _field_names(template)
    fields: dict[str, Any] = ({n: first[f"_f_{n}"] for n in names}
                              if names and first["_fields"] is not None else {})
    actions = {r["_action"]: {"action": r["_action"], "state": r["_state"], "result": r["_result"]}
               for r in rows if r["_action"] is not None}
    round_ = int(first["_round"]) if actions else 1
    row = {k: v for k, v in first.items() if not k.startswith("_")}
    return Order(row, fields, actions, template, queue, codecs[template.name], round_)


def template_by_number(templates: Iterable[ResolvedTemplate], number: str) -> ResolvedTemplate | None:
    """The template with the longest numbering prefix ``number`` begins with (``None``: none).

    No two templates share a prefix (the linker refuses it), so it is the one that gave the
    number, unless the number was given otherwise (``load_order`` checks the row)."""
    return max((t for t in templates if number.startswith(t.prefix)), key=lambda t: len(t.prefix), default=None)


def _field_names(template: ResolvedTemplate | None) -> tuple[str, ...]:
    return tuple(f.name for f in template.fields) if template is not None else ()


@functools.lru_cache(maxsize=256)
def _order_query(template: str | None, names: tuple[str, ...]) -> str:
    """The row of the order numbered by the parameter, with ``template``'s custom fields
    (``_f_`` and the name; ``_fields`` not null when the fields' row is there) and the
    actions of the step's latest round (``_action``, ...): a row for each action, or one
    without an action. The aliases begin with ``_``, which no column or field name can."""
    columns = joined = ""
    if template is not None and names:
        columns = ', f.work_order_id AS "_fields"' + "".join(f', f.{quote(n)} AS "_f_{n}"' for n in names)
        joined = f" LEFT JOIN {quote(extension_table(template))} f ON f.work_order_id = o.id"
    return (f'SELECT o.*, a.action AS "_action", a.state AS "_state", a.result AS "_result", a.round AS "_round"'
            f"{columns} FROM rc_work_order o{joined} LEFT JOIN rc_step_action a ON a.work_order_id = o.id "
            "AND a.step = o.step AND a.round = (SELECT COALESCE(MAX(r.round), 1) FROM rc_step_action r "
            "WHERE r.work_order_id = o.id AND r.step = o.step) WHERE o.number = {} ORDER BY a.id")


class Change:
    """Everything one service call does to one work order, saved at once."""

    def __init__(self, order: Order, actor_id: int | None, definition_version: str) -> None:
        self.order = order
        self.actor_id = actor_id
        self.definition_version = definition_version
        self.events: list[tuple[str, dict[str, Any], dict[str, Any], str | None]] = []
        self.core: dict[str, Any] = {}
        self.field_values: dict[str, Any] = {}
        self.new_round: tuple[str, int, tuple[str, ...]] | None = None
        self.action_updates: list[tuple[str, int, str, str, Any]] = []
        """(step, round, action, state, result) for each action processed or skipped."""

    def record(self, kind: str, changes: dict[str, Any], *, source: str | None = None,
               values: dict[str, Any] | None = None) -> None:
        """Apply ``changes`` (state keys -> JSON values) to the state and record them as one event."""
        state = self.order.state
        before: dict[str, Any] = {}
        after: dict[str, Any] = {}
        for key, value in changes.items():
            if key in MERGED_KEYS:
                before[key] = {k: state[key].get(k) for k in value}
                after[key] = dict(value)
                state[key].update(value)
            else:
                before[key] = state.get(key)
                after[key] = value
                state[key] = value
                if key in CORE_KEYS:
                    self.core[key] = value
        if values:
            self.field_values.update(values)
            self.order.values.update(values)
        self.events.append((kind, before, after, source))

    def enter_round(self, step: ResolvedStep, round_: int) -> None:
        """The work order enters ``step`` (its actions start pending, in a new round)."""
        self.new_round = (step.name, round_, tuple(a.name for a in step.actions))
        self.order.round = round_
        self.order.action_rows = {a.name: {"state": "pending", "result": None} for a in step.actions}

    def update_action(self, name: str, state: str, result: Any = None) -> None:
        self.action_updates.append((str(self.order.state["step"]), self.order.round, name, state, result))
        self.order.action_rows[name] = {**self.order.action_rows.get(name, {}), "state": state,
                                        "result": json.dumps(result)}

    async def save(self, db: Database, *, alone: bool = False) -> int:
        """Write the change (inside the caller's transaction); return the new version.

        On PostgreSQL everything is one statement (``_saved_at_once``) unless one of its
        parts changes rows another part adds or changes (then one statement per part). With
        ``alone``, that one statement is the transaction's only one if it can be
        (``Database.fetch_alone``).
        """
        order = self.order
        moment = now()
        sets = ["version = version + 1", "updated_at = {}"]
        args: list[Any] = [moment]
        for key, value in self.core.items():
            sets.append(f"{quote(key)} = {{}}")
            if key in TIME_KEYS:
                value = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            elif key == "path":
                value = json.dumps(value)
            args.append(value)
        if db.dialect == "postgresql" and self._apart():
            version = await self._saved_at_once(db, sets, args, moment, alone)
        else:
            version = await self._saved_in_parts(db, sets, args, moment)
        if version is None:
            raise Conflict(f"work order {order.number} was changed by someone else meanwhile", order.version, [])
        order.row["updated_at"] = moment
        order.version = version
        return version

    def _apart(self) -> bool:
        """Does each part of the change touch rows no other part adds or changes? (The parts
        of one statement do not see each other's rows.)"""
        targets = [(step, round_, name) for step, round_, name, _, _ in self.action_updates]
        if len(set(targets)) < len(targets):
            return False
        return self.new_round is None or not any(
            (step, round_) == self.new_round[:2] for step, round_, _ in targets)

    async def _saved_at_once(self, db: Database, sets: list[str], args: list[Any],
                             moment: dt.datetime, alone: bool) -> int | None:
        """PostgreSQL: the change in one statement, each part only if the order's version was
        still the one read; the new version (``None``: it was not, nothing is written)."""
        order = self.order
        values = [*args, order.id, order.version]
        names = tuple(self.field_values)
        if names:
            values += [*(order.codec.to_storage(n, v) for n, v in self.field_values.items()), order.id]
        entered: tuple[str, ...] = ()
        if self.new_round is not None:
            step, round_, entered = self.new_round
            values += [value for name in entered for value in (order.id, step, name, round_)]
        for step_name, round_, name, state, result in self.action_updates:
            values += [state, self.actor_id, moment, json.dumps(result), order.id, step_name, round_, name]
        for kind, before, after, source in self.events:
            values += [order.id, self.actor_id, kind, moment, _event_json(before), _event_json(after), source,
                       self.definition_version]
        statement = _change_statement(tuple(sets), extension_table(order.template.name) if names else "", names,
                                      len(entered), len(self.action_updates), len(self.events))
        updated = await db.fetch_alone(statement, *values) if alone else None
        if updated is None:
            updated = await db.fetch(statement, *values)
        return int(updated[0]["version"]) if updated else None

    async def _saved_in_parts(self, db: Database, sets: list[str], args: list[Any],
                              moment: dt.datetime) -> int | None:
        """The change one statement after the other; the new version (``None``: the order's
        version was no longer the one read, nothing is written)."""
        order = self.order
        updated = await db.fetch(
            f"UPDATE rc_work_order SET {', '.join(sets)} WHERE id = {{}} AND version = {{}} RETURNING version",
            *args, order.id, order.version)
        if not updated:
            return None
        version = int(updated[0]["version"])
        if self.field_values:
            table = quote(extension_table(order.template.name))
            assignments = ", ".join(f"{quote(name)} = {{}}" for name in self.field_values)
            await db.execute(
                f"UPDATE {table} SET {assignments} WHERE work_order_id = {{}}",
                *(order.codec.to_storage(n, v) for n, v in self.field_values.items()), order.id)
        if self.new_round is not None:
            step, round_, names = self.new_round
            if names:
                await db.execute(
                    "INSERT INTO rc_step_action (work_order_id, step, action, round, state) VALUES "
                    + ", ".join("({}, {}, {}, {}, 'pending')" for _ in names),
                    *(value for name in names for value in (order.id, step, name, round_)))
        for step_name, round_, name, state, result in self.action_updates:
            await db.execute(
                "UPDATE rc_step_action SET state = {}, processed_by = {}, processed_at = {}, result = {} "
                "WHERE work_order_id = {} AND step = {} AND round = {} AND action = {}",
                state, self.actor_id, moment, json.dumps(result), order.id, step_name, round_, name)
        for kind, before, after, source in self.events:
            await insert_event(db, order.id, self.actor_id, kind, before, after, source,
                               self.definition_version, version, moment)
        return version


@functools.lru_cache(maxsize=256)
def _change_statement(sets: tuple[str, ...], table: str, names: tuple[str, ...], entered: int, updates: int,
                      events: int) -> str:
    """``Change._saved_at_once``'s statement: a data-modifying ``WITH`` whose first part bumps
    the version of the order's row if it is still the one read (``w``); every other part
    writes only if that row was bumped, the events with the new version."""
    parts = [f"w AS (UPDATE rc_work_order SET {', '.join(sets)} WHERE id = {{}} AND version = {{}} RETURNING version)"]
    bumped = "EXISTS (SELECT FROM w)"
    if names:
        assignments = ", ".join(f"{quote(name)} = {{}}" for name in names)
        parts.append(f"f AS (UPDATE {quote(table)} SET {assignments} WHERE work_order_id = {{}} AND {bumped})")
    if entered:  # rows in the order given (their ids are the actions' order)
        rows = ", ".join(f"({i}, {{}}::bigint, {{}}::text, {{}}::text, {{}}::integer)" for i in range(entered))
        parts.append("r AS (INSERT INTO rc_step_action (work_order_id, step, action, round, state) "
                     f"SELECT o, s, a, n, 'pending' FROM (VALUES {rows}) AS v(i, o, s, a, n) WHERE {bumped} "
                     "ORDER BY i)")
    parts += [f"a{i} AS (UPDATE rc_step_action SET state = {{}}, processed_by = {{}}, processed_at = {{}}, "
              f"result = {{}} WHERE work_order_id = {{}} AND step = {{}} AND round = {{}} AND action = {{}} "
              f"AND {bumped})" for i in range(updates)]
    if events:  # one insert, in the order given: the parts of a statement run in no set order
        rows = ", ".join(f"({i}, {{}}::bigint, {{}}::bigint, {{}}::text, {{}}::timestamptz, {{}}::jsonb, "
                         "{}::jsonb, {}::text, {}::text)" for i in range(events))
        parts.append("e AS (INSERT INTO rc_event (work_order_id, actor_id, kind, at, before, after, source, "
                     "definition_version, version) SELECT v.o, v.u, v.k, v.t, v.b, v.a, v.s, v.d, w.version "
                     f"FROM w, (VALUES {rows}) AS v(i, o, u, k, t, b, a, s, d) ORDER BY v.i)")
    return f"WITH {', '.join(parts)} SELECT version FROM w"


_EVENT = ("INSERT INTO rc_event (work_order_id, actor_id, kind, at, before, after, source, definition_version, "
          "version) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})")
_EVENT_OF_NEW_ORDER = _EVENT.replace("VALUES ({}, ", f"VALUES ({ROW_ID}, ", 1)
_EVENT_OF_NUMBERED_ORDER = (
    "INSERT INTO rc_event (work_order_id, actor_id, kind, at, before, after, source, definition_version, version) "
    f"VALUES ({ROW_ID}, {{}}, {{}}, {{}}, {{}}, {{}}::jsonb || jsonb_build_object('number', {parent_value('number')}, "
    f"'title', {parent_value('title')}), {{}}, {{}}, {{}})")


async def insert_event(db: Database, order_id: int, actor_id: int | None, kind: str, before: dict[str, Any],
                       after: dict[str, Any], source: str | None, definition_version: str, version: int,
                       moment: dt.datetime) -> None:
    await db.execute(_EVENT, order_id, actor_id, kind, moment, _event_json(before), _event_json(after), source,
                     definition_version, version)


def event_insert(actor_id: int | None, kind: str, before: dict[str, Any], after: dict[str, Any], source: str | None,
                 definition_version: str, version: int, moment: dt.datetime, *,
                 numbered: bool = False) -> tuple[str, list[Any]]:
    """The audit event of an order not yet inserted, as a child of ``Database.insert_family``.

    ``numbered`` (PostgreSQL, ``Database.insert_family_returning``): the order's number and
    title are the ones its insert returns, added to ``after``.
    """
    return (_EVENT_OF_NUMBERED_ORDER if numbered else _EVENT_OF_NEW_ORDER,
            [actor_id, kind, moment, _event_json(before), _event_json(after), source, definition_version, version])


def _event_json(value: dict[str, Any]) -> str:
    """An event's ``before`` or ``after`` as JSON text (msgspec: several times faster than ``json``)."""
    return msgspec.json.encode(value).decode()


def replay(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The state an order's events lead to, applied in order (``after`` of each event)."""
    state: dict[str, Any] = {"fields": {}, "actions": {}}
    for event in events:
        after = event["after"]
        if isinstance(after, str):
            after = json.loads(after)
        for key, value in after.items():
            if key not in CORE_KEYS and key not in MERGED_KEYS:
                continue  # notes such as a link or a failed follow-up, not part of the order's state
            if key in MERGED_KEYS:
                if key == "actions" and event["kind"] in ("created", "step_entered", "returned"):
                    state[key] = dict(value)
                else:
                    state[key].update(value)
            else:
                state[key] = value
    return state
