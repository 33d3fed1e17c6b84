"""The work-order services: create, edit, process actions, route, assign, cancel, link, read.

Every call checks who acts (``Actor``) against the definitions (range, edit limit,
supervisors, permissions), validates its input, and commits its changes together
with their audit events in one transaction. Refusals raise a ``ServiceError``
(``engine.errors``) and change nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec

from ..db import Database
from ..errors import Conflict, Forbidden, Invalid, NotFound, Refused
from ..link.resolved import LinkedWorkspace, ResolvedQueue, ResolvedStep, ResolvedTemplate
from ..plugins import Plugins, default_plugins, run_plugin_action
from .actors import SYSTEM, Actor, ActorCache, group_members
from .assignment import ASSIGNMENT_RULES, choose_in_group, initial_owner, transfer_owner
from .fields import FieldCodec, to_json_time
from .input import checked_input, for_customer
from .inserts import (IDEMPOTENCY_INSERT, actions_insert, fields_insert, kept, numbered_order_insert,
                      order_insert)
from .numbering import counter_name, ensure_sequence, sequence_name
from .portal import CustomerScope
from .state import Change, Order, event_insert, insert_event, load_order, now

if TYPE_CHECKING:
    from ..comms.thread import Messages

COMPLETE = "complete"
CORE_EDITABLE = ("title", "priority", "requested_at", "planned_at", "customer_id", "project_id")

ChangeListener = Callable[[Change], Awaitable[None]]
"""Called with every saved ``Change``, inside its transaction (e.g. to write outbox rows)."""
QuietOnCreate = Callable[[ResolvedTemplate, ResolvedQueue], bool]
"""Says that a listener sends no statement for a new work order of a template in a queue (``Runtime.listen``)."""
QuietOnChange = Callable[[Change], bool]
"""Says that a listener sends no statement when it hears of a change about to be saved (``Runtime.listen``)."""
MessageListener = Callable[[Order, str, Actor | None], Awaitable[None]]
"""Called with every message added to a work order's thread (its kind and author), inside its transaction."""
OpeningColumns = Callable[[Order], Awaitable[dict[str, Any]]]
"""Gives values for columns a feature keeps on a new work order's row (``Runtime.open_with``)."""


class Abilities(msgspec.Struct, frozen=True, kw_only=True):
    """What an actor may do with one work order."""

    supervises: bool
    move: bool
    """process and skip actions, advance, return, complete"""
    edit: bool
    """change content: fields, title, priority, dates, customer"""
    assign: bool
    cancel: bool


class Runtime:
    """The services of one workspace on one database."""

    def __init__(self, workspace: LinkedWorkspace, db: Database, plugins: Plugins | None = None) -> None:
        from ..comms.thread import Messages  # comms builds on the runtime; imported late to avoid a cycle

        self.db = db
        self.actors = ActorCache()
        """The actors of recent requests' credentials (see ``ActorCache``)."""
        self._logins: dict[int, str] = {}
        self._numbers: set[str] = set()
        """PostgreSQL: the templates whose number sequence is known to exist (``numbering``)."""
        self._numbering_turns: dict[str, asyncio.Lock] = {}
        """PostgreSQL: one check of a template's sequence at a time (``_numbering``)."""
        self._quiet_creates: dict[ChangeListener, QuietOnCreate] = {}
        """What listeners said of new work orders (``listen``)."""
        self._quiet_changes: dict[ChangeListener, QuietOnChange] = {}
        """What listeners said of changes (``listen``)."""
        self.plugins: Plugins = plugins if plugins is not None else default_plugins()
        """The plugins: their order actions, event subscribers, channels and panels."""
        self.after_change: list[ChangeListener] = []
        """Listeners of every saved change, run in its transaction (a failing one rolls it back)."""
        self.opening: list[OpeningColumns] = []
        """What features keep on a new work order's row, written with it (``open_with``)."""
        self.reload(workspace)
        self.messages: Messages = Messages(self)
        """The message threads of work orders: comments, replies, follow-ups, subscriptions."""
        self.listen(lambda change: self.plugins.dispatch(self, change),
                    quiet_on_create=lambda template, _: not self.plugins.wants_event(
                        "created", template.name, self.workspace.settings),
                    quiet_on_change=lambda change: not any(self.plugins.wants_event(
                        kind, change.order.template.name, self.workspace.settings) for kind, *_ in change.events))
        self.after_message: list[MessageListener] = []
        """Listeners of every message added to a thread (order, kind, author), run in its transaction."""
        from ..automation.sla import install as install_sla  # SLA clocks: before the rules, which may read them

        self.sla = install_sla(self)
        """The SLA clocks of work orders (an ``after_change`` and ``after_message`` listener)."""
        from ..automation.rules import RuleEngine  # rules build on the runtime too

        self.rules = RuleEngine(self)
        """The automation rules, fired from every saved change (an ``after_change`` listener)."""

    def reload(self, workspace: LinkedWorkspace) -> None:
        """Serve ``workspace`` (a newer applied definition version) from now on.

        A request that has already read the old definitions finishes with them; the next
        one sees the new ones. The database must already be at the new version.
        """
        codecs = {name: FieldCodec(t) for name, t in workspace.templates.items()}
        self.workspace, self.codecs = workspace, codecs

    async def applied_version(self) -> str | None:
        """The fingerprint of the definition version last applied to the database."""
        rows = await self.db.fetch("SELECT fingerprint FROM rc_definition_version ORDER BY id DESC LIMIT 1")
        return str(rows[0]["fingerprint"]) if rows else None

    # -- access ---------------------------------------------------------------------------

    def range_of(self, template: ResolvedTemplate, queue: ResolvedQueue | None = None) -> set[str]:
        """The groups that may work on ``template``'s orders (its range, else its queues' groups)."""
        if template.range:
            return set(template.range)
        queues = [queue] if queue else [self.workspace.queues[q] for q in template.queues]
        return {s.group for q in queues for s in q.steps if s.group}

    def can_see(self, actor: Actor, order: Order) -> bool:
        if not actor.is_staff:
            return CustomerScope(self.workspace, actor).sees({**order.state, "sender": order.row.get("sender")})
        return actor.can("order.view_all") or bool(actor.groups & self.range_of(order.template, order.queue))

    def abilities(self, actor: Actor, *, template: ResolvedTemplate, group: str | None,
                  owned_by_actor: bool | None, queue: ResolvedQueue | None = None) -> Abilities:
        """What ``actor`` may do with a work order of ``template`` in ``group``.

        ``owned_by_actor`` is ``None`` when nobody owns it. The one place these rules
        live: every change checks them, and screens use them to offer only what works.
        """
        supervises = "admin" in actor.permissions or group in actor.supervises
        own = owned_by_actor is True
        if supervises:
            move = True
        elif not actor.can("order.transition"):
            move = False
        else:
            move = own if owned_by_actor is not None else group in actor.groups
        edit = supervises or own or (template.edit_limit == "everyone" and actor.can("order.edit")
                                     and bool(actor.groups & self.range_of(template, queue)))
        return Abilities(
            supervises=supervises, move=move, edit=edit,
            assign=supervises or actor.can("order.assign") or own,
            cancel=actor.can("order.cancel") and (supervises or owned_by_actor is not False))

    def abilities_on(self, actor: Actor, order: Order) -> Abilities:
        owner = order.owner_id
        return self.abilities(actor, template=order.template, group=order.state["group_name"], queue=order.queue,
                              owned_by_actor=None if owner is None else owner == actor.id)

    def _supervises(self, actor: Actor, order: Order) -> bool:
        return self.abilities_on(actor, order).supervises

    def _may_move(self, actor: Actor, order: Order) -> bool:
        """May ``actor`` change the status of ``order`` (process, route, complete)?"""
        return self.abilities_on(actor, order).move

    def _may_edit(self, actor: Actor, order: Order) -> bool:
        return self.abilities_on(actor, order).edit

    async def _load(self, actor: Actor, number: str) -> Order:
        order = await load_order(self.db, self.workspace.templates, self.workspace.queues, self.codecs, number)
        if not self.can_see(actor, order):
            raise NotFound(f"no work order {number}")
        return order

    async def _load_for_change(self, actor: Actor, number: str, version: Any) -> Order:
        """The order ``number`` for a change from ``version`` (refused at another version, or final).

        The services of changes read it before their transaction, which then holds no
        connection meanwhile and may send the change alone: the change is saved only if the
        order is still at that version (``Change.save``), whenever it was read."""
        if isinstance(version, bool) or not isinstance(version, int) or not 0 < version < 2**31:
            raise Invalid("`version` is required: the version of the work order you read",
                          [{"field": "version", "message": "expected the work order's version (a number)"}])
        order = await self._load(actor, number)
        if order.version != version:
            changed = await self._changed_since(order, version)
            raise Conflict(
                f"work order {number} is at version {order.version}, not {version}; "
                f"changed since: {', '.join(changed) or 'nothing visible'}", order.version, changed)
        if order.is_final:
            raise Refused(f"work order {number} is {order.status}; it can no longer change")
        return order

    async def _changed_since(self, order: Order, version: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT after FROM rc_event WHERE work_order_id = {} AND version > {} ORDER BY id", order.id, version)
        names: list[str] = []
        for row in rows:
            after = json.loads(row["after"]) if isinstance(row["after"], str) else row["after"]
            for key, value in after.items():
                keys = [f"{key}.{k}" for k in value] if key in ("fields", "actions") else [key]
                names.extend(k for k in keys if k not in names)
        return names

    # -- create -----------------------------------------------------------------------------

    async def create(self, actor: Actor, template_name: str, data: dict[str, Any],
                     idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a work order of ``template_name`` from ``data`` (fields, title, priority, ...)."""
        template = self.workspace.templates.get(template_name)
        if template is None:
            raise NotFound(f"no template {template_name}")
        if actor.is_staff:
            actor.require("order.create")
            if not ("admin" in actor.permissions or actor.groups & self.range_of(template)):
                raise Forbidden(f"{actor.login} is in none of the groups of template {template_name}")
        if idempotency_key is not None:
            existing = await self._idempotent(actor, idempotency_key)
            if existing is not None:
                return existing
        queue_name = data.get("queue") or template.queues[0]
        if queue_name not in template.queues:
            raise Invalid(f"template {template_name} does not enter queue {queue_name}",
                          [{"field": "queue", "message": f"one of: {', '.join(template.queues)}"}])
        queue = self.workspace.queues[queue_name]
        core, fields = await checked_input(
            self.db, data, ("title", "priority", "requested_at", "planned_at", "customer_id", "project_id", "queue",
                            "fields"), self.codecs[template_name], partial=False, actor=actor)
        if not actor.is_staff:
            core = for_customer(actor, core)
        first = queue.steps[0]
        try:
            return await self._insert(actor, template, queue, first, core, fields, idempotency_key)
        except Exception:
            # a retry racing the first request with the same key: return the order the first one made
            if idempotency_key is not None:
                existing = await self._idempotent(actor, idempotency_key)
                if existing is not None:
                    return existing
            raise

    async def _insert(self, actor: Actor, template: ResolvedTemplate, queue: ResolvedQueue, first: ResolvedStep,
                      core: dict[str, Any], fields: dict[str, Any], idempotency_key: str | None) -> dict[str, Any]:
        postgres = self.db.dialect == "postgresql"
        if postgres:
            # A round-robin turn is a row every create in the group updates: taken in a short
            # statement of its own, it is not locked for the whole transaction, so concurrent
            # creates do not queue behind each other. (On SQLite writes are serial anyway.)
            owner = await initial_owner(self.db, self.workspace, template, first, actor.id)
            if template.name not in self._numbers:
                await self._numbering(template)
        # a create no listener writes for is one statement (unless inside a caller's transaction)
        alone = postgres and self._quiet_create(template, queue)
        async with self.db.transaction():
            if not postgres:
                number: str | None = await self._next_number(template)
                owner = await initial_owner(self.db, self.workspace, template, first, actor.id)
            else:
                number = None  # on PostgreSQL the order's statement takes it from the template's sequence
            moment = now()
            title = core.get("title") or None
            row = {
                "number": number, "template": template.name, "queue": queue.name, "step": first.name,
                "status": "open", "priority": core.get("priority", "normal"),
                "title": title if title or number is None else self._default_title(template, number),
                "owner_id": owner, "group_name": first.group, "customer_id": core.get("customer_id"),
                "project_id": core.get("project_id"), "created_by": actor.id, "created_at": moment,
                "updated_at": moment, "requested_at": core.get("requested_at"), "planned_at": core.get("planned_at"),
                "version": 1, "definition_version": self.workspace.fingerprint, "path": "[]",
            }
            codec = self.codecs[template.name]
            state = {key: (to_json_time(v) if isinstance(v, dt.datetime) else v)
                     for key, v in row.items() if key not in ("updated_at", "version", "definition_version")}
            state["path"] = []
            state["completed_at"] = None
            state["cancelled_at"] = None
            state["fields"] = {f.name: codec.to_json(f.name, fields.get(f.name)) for f in template.fields}
            state["actions"] = {a.name: "pending" for a in first.actions}
            actions = {a.name: {"state": "pending", "result": None} for a in first.actions}
            for opening in self.opening:  # the columns features keep, in the order's own insert
                row.update(kept(await opening(Order({**row, "id": 0}, fields, actions, template, queue, codec, 1,
                                                     state=state))))
            children: list[tuple[str, list[Any]]] = [(
                fields_insert(template.name, tuple(fields)), [codec.to_storage(n, v) for n, v in fields.items()])]
            if first.actions:
                children.append((actions_insert(len(first.actions)),
                                 [value for action in first.actions for value in (first.name, action.name)]))
            if idempotency_key is not None:
                children.append((IDEMPOTENCY_INSERT, [idempotency_key, actor.id, moment]))
            if postgres:
                # number and title are the statement's (its event's state too), the rest as in Python
                del row["number"], row["title"], state["number"], state["title"]
                children.append(event_insert(actor.id, "created", {}, state, None, self.workspace.fingerprint, 1,
                                             moment, numbered=True))
                values = [title, self._default_title(template, ""), *row.values(), template.prefix,
                          template.digits, sequence_name(template.name)]
                saved = await self.db.insert_family_returning(numbered_order_insert(tuple(row)), values, children,
                                                              ("number", "title"), alone=alone)
                row.update(saved)
                state.update(number=saved["number"], title=saved["title"])
            else:
                children.append(event_insert(actor.id, "created", {}, state, None, self.workspace.fingerprint, 1,
                                             moment))
                row["id"] = await self.db.insert_family(order_insert(tuple(row)), list(row.values()), children)
            created = Change(Order(row, fields, actions, template, queue, codec, 1, state=state), actor.id,
                             self.workspace.fingerprint)
            created.events.append(("created", {}, state, None))
            for listener in self.after_change:  # saved above: the listeners hear of it like of any change
                await listener(created)
        return await self.view(created.order, known={actor.id: actor.login} if actor.id is not None else None)

    async def _numbering(self, template: ResolvedTemplate) -> None:
        """Make sure ``template``'s number sequence exists (PostgreSQL), once per runtime.

        The check runs on a connection of its own (``ensure_sequence``): the first creates of a
        template arriving together wait for one check rather than each opening a connection (32
        at once after a server started opened 32, and the benchmark's first turn of creates had
        a p99 of 120 ms against some 40 in the others).
        """
        async with self._numbering_turns.setdefault(template.name, asyncio.Lock()):
            if template.name not in self._numbers:
                await ensure_sequence(self.db, template.name, template.start)
                self._numbers.add(template.name)

    @staticmethod
    def _default_title(template: ResolvedTemplate, number: str) -> str:
        """The title of a work order created without one: the template's label and the number."""
        return f"{next(iter(template.label.values()))} {number}"

    def listen(self, listener: ChangeListener, *, quiet_on_create: QuietOnCreate | None = None,
               quiet_on_change: QuietOnChange | None = None) -> None:
        """Hear every saved change, in its transaction (``after_change``).

        ``quiet_on_create`` tells, for a template and a queue, that the listener sends no
        statement at all when it hears of a new work order of them; ``quiet_on_change`` the
        same of a change to an existing order, asked with the change built and not yet saved.
        When every listener says so, the work order or the change is saved on PostgreSQL in
        one statement without BEGIN and COMMIT (for a change, when its transaction has sent
        nothing before it). A listener without them (as one appended to ``after_change``)
        counts as one that writes.
        """
        self.after_change.append(listener)
        if quiet_on_create is not None:
            self._quiet_creates[listener] = quiet_on_create
        if quiet_on_change is not None:
            self._quiet_changes[listener] = quiet_on_change

    def open_with(self, columns: OpeningColumns) -> None:
        """Have ``columns`` give values for columns a feature keeps on each new work order's row
        (``KEPT_COLUMNS``), written by the order's insert rather than by an UPDATE after it.

        It is called in the create's transaction before anything is written, with the order
        about to be inserted (its ``id`` 0; on PostgreSQL its ``number``, and the title of an
        order created without one, not known yet). It may read the database (on PostgreSQL
        the create is then a transaction rather than one statement sent alone). JSON columns'
        values are given as JSON text.
        """
        self.opening.append(columns)

    def _quiet_create(self, template: ResolvedTemplate, queue: ResolvedQueue) -> bool:
        """Does no listener send any statement for a new work order of ``template`` in ``queue``?"""
        return self._all_quiet(self._quiet_creates, template, queue)

    def _quiet_change(self, change: Change) -> bool:
        """Does no listener send any statement for ``change``?"""
        return self._all_quiet(self._quiet_changes, change)

    def _all_quiet(self, said: Mapping[ChangeListener, Callable[..., bool]], *about: Any) -> bool:
        """Has every listener said (in ``said``) that it sends nothing ``about`` this?"""
        for listener in self.after_change:
            quiet = said.get(listener)
            if quiet is None or not quiet(*about):
                return False
        return True

    async def _idempotent(self, actor: Actor, key: str) -> dict[str, Any] | None:
        if len(key) > 200:
            raise Invalid("the idempotency key is too long", [{"field": "Idempotency-Key", "message": "at most 200 characters"}])
        found = await self.db.fetch_value(
            "SELECT w.number AS number FROM rc_idempotency i JOIN rc_work_order w ON w.id = i.work_order_id "
            "WHERE i.key = {} AND i.user_id = {}", key, actor.id)
        return await self.get(actor, found) if found is not None else None

    async def _next_number(self, template: ResolvedTemplate) -> str:
        """On SQLite: the template's counter row, counted up in the order's transaction."""
        # an UPDATE, cheaper than the upsert; the upsert only for a template's first number
        counter = counter_name(template.name)
        value = await self.db.fetch_value("UPDATE rc_counter SET value = value + 1 WHERE name = {} RETURNING value",
                                          counter)
        if value is None:
            value = await self.db.fetch_value(
                "INSERT INTO rc_counter (name, value) VALUES ({}, {}) ON CONFLICT (name) DO UPDATE "
                "SET value = rc_counter.value + 1 RETURNING value", counter, template.start)
        return self._numbered(template, value)

    @staticmethod
    def _numbered(template: ResolvedTemplate, value: Any) -> str:
        return f"{template.prefix}{int(value):0{template.digits}d}"

    # -- read -------------------------------------------------------------------------------

    async def logins(self, ids: set[int]) -> dict[int, str]:
        """The logins of users by id. A login never changes, so each is looked up once."""
        missing = sorted(i for i in ids if i not in self._logins)
        if missing:
            if len(self._logins) > 10_000:
                self._logins.clear()
            marks = ", ".join("{}" for _ in missing)
            self._logins.update({int(r["id"]): str(r["login"]) for r in await self.db.fetch(
                f"SELECT id, login FROM rc_user WHERE id IN ({marks})", *missing)})
        return {i: self._logins[i] for i in ids if i in self._logins}

    async def get(self, actor: Actor, number: str) -> dict[str, Any]:
        """The work order as the API shows it."""
        return await self.view(await self._load(actor, number))

    async def view(self, order: Order, known: dict[int, str] | None = None) -> dict[str, Any]:
        """The API's view of ``order``; ``known`` logins by user id save looking them up."""
        state = order.state
        logins: dict[int, str] = dict(known or {})
        ids = {i for i in (state["owner_id"], state["created_by"]) if i is not None and i not in logins}
        if ids:
            logins.update(await self.logins(ids))
        step = order.step
        return {
            "number": order.number, "template": state["template"], "queue": state["queue"],
            "step": state["step"], "status": state["status"], "priority": state["priority"],
            "title": state["title"], "owner": logins.get(state["owner_id"]) if state["owner_id"] else None,
            "group": state["group_name"], "customer_id": state["customer_id"], "project_id": state["project_id"],
            "created_by": logins.get(state["created_by"]) if state["created_by"] else None,
            "created_at": state["created_at"], "updated_at": to_json_time(order.row.get("updated_at")),
            "requested_at": state["requested_at"], "planned_at": state["planned_at"],
            "completed_at": state["completed_at"], "cancelled_at": state["cancelled_at"],
            "version": order.version, "path": list(state["path"]),
            "fields": dict(state["fields"]),
            "actions": [
                {"name": a.name, "label": next(iter(a.label.values())), "state": state["actions"].get(a.name, "pending"),
                 "skippable": a.skippable, "plugin": a.plugin,
                 "result": _json(order.action_rows.get(a.name, {}).get("result"))}
                for a in (step.actions if step else ())
            ],
            "next": list(step.next) if step and not order.is_final else [],
            "returns": list(step.returns) if step and not order.is_final else [],
        }

    async def events(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        """The audit trail of a work order, oldest first."""
        order = await self._load(actor, number)
        rows = await self.db.fetch(
            "SELECT e.id, e.kind, e.at, e.before, e.after, e.source, e.version, u.login AS actor "
            "FROM rc_event e LEFT JOIN rc_user u ON u.id = e.actor_id WHERE e.work_order_id = {} ORDER BY e.id",
            order.id)
        return [{"id": r["id"], "kind": r["kind"], "at": to_json_time(r["at"]), "actor": r["actor"],
                 "version": r["version"], "source": r["source"],
                 "before": _json(r["before"]), "after": _json(r["after"])} for r in rows]

    # -- edit -------------------------------------------------------------------------------

    async def update(self, actor: Actor, number: str, version: Any, data: dict[str, Any]) -> dict[str, Any]:
        """Change the work order's content: custom fields, title, priority, dates, customer."""
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            if not self._may_edit(actor, order):
                raise Forbidden(f"{actor.login} may not edit work order {number} "
                                f"(edit limit: {order.template.edit_limit})")
            core, values = await checked_input(self.db, data, (*CORE_EDITABLE, "fields"), order.codec, partial=True,
                                               actor=actor, order_id=order.id)
            if not actor.is_staff:
                core = for_customer(actor, core)
            change = Change(order, actor.id, self.workspace.fingerprint)
            core_json = {k: (to_json_time(v) if isinstance(v, dt.datetime) else v) for k, v in core.items()
                         if (to_json_time(v) if isinstance(v, dt.datetime) else v) != order.state.get(k)}
            field_json = {n: order.codec.to_json(n, v) for n, v in values.items()}
            field_json = {n: v for n, v in field_json.items() if v != order.state["fields"].get(n)}
            if not core_json and not field_json:
                return await self.view(order)
            changes: dict[str, Any] = dict(core_json)
            if field_json:
                changes["fields"] = field_json
            change.record("updated", changes, values={n: values[n] for n in field_json})
            await self._save(change)
        return await self.view(order)

    # -- the flow -----------------------------------------------------------------------------

    async def process(self, actor: Actor, number: str, version: Any, action: str, *, skip: bool = False,
                      note: str | None = None, follow_up: bool | None = None) -> dict[str, Any]:
        """Process (or skip) an order action of the current step; a finished step moves on."""
        follow: str | None = None
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            self._check_mover(actor, order)
            step = order.step
            spec = next((a for a in step.actions if a.name == action), None) if step else None
            if step is None or spec is None:
                known = ", ".join(a.name for a in step.actions) if step else ""
                raise Invalid(f"step {order.state['step']} has no action {action}",
                              [{"field": "action", "message": f"actions of this step: {known or 'none'}"}])
            current = order.state["actions"].get(action, "pending")
            if current != "pending":
                raise Refused(f"action {action} is already {current}")
            if skip and not spec.skippable:
                raise Refused(f"action {action} may not be skipped")
            change = Change(order, actor.id, self.workspace.fingerprint)
            result: dict[str, Any] | None = {"note": note} if note else None
            if spec.plugin and not skip:
                outcome = await run_plugin_action(self, spec.plugin, await self.view(order), spec.parameters)
                result = {**(result or {}), **outcome.as_json(spec.plugin)}
                if outcome.ran and not outcome.ok:  # the action stays pending, its error on the order
                    change.update_action(action, "pending", result)
                    change.record("action_failed", {"actions": {action: "pending"}, "action_result": result})
                    await self._save(change)
                    return await self.view(order)
            state = "skipped" if skip else "processed"
            change.update_action(action, state, result)
            self._take(change, actor, order)
            change.record("action_skipped" if skip else "action_processed", {"actions": {action: state}}
                          | ({"action_result": result} if spec.plugin and not skip else {}))
            if all(order.state["actions"].get(a.name) != "pending" for a in step.actions) and len(step.next) == 1:
                follow = await self._move_on(change, actor, order, step.next[0], follow_up)
            await self._save(change)
        if follow is not None:
            await self._create_follow_up(order, follow)
        return await self.view(order)

    async def advance(self, actor: Actor, number: str, version: Any, to: str | None = None,
                      follow_up: bool | None = None) -> dict[str, Any]:
        """Move a finished step on: to its only next step, or to ``to`` when it has several."""
        follow: str | None = None
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            self._check_mover(actor, order)
            step = order.step
            assert step is not None
            pending = [a.name for a in step.actions if order.state["actions"].get(a.name) == "pending"]
            if pending:
                raise Refused(f"step {step.name} still has pending actions: {', '.join(pending)}")
            if to is None:
                if len(step.next) != 1:
                    raise Invalid(f"step {step.name} leads to several steps; say which",
                                  [{"field": "to", "message": f"one of: {', '.join(step.next)}"}])
                to = step.next[0]
            if to not in step.next:
                raise Refused(f"step {step.name} does not lead to {to}; it leads to {', '.join(step.next)}")
            change = Change(order, actor.id, self.workspace.fingerprint)
            self._take(change, actor, order)
            follow = await self._move_on(change, actor, order, to, follow_up)
            await self._save(change)
        if follow is not None:
            await self._create_follow_up(order, follow)
        return await self.view(order)

    async def return_order(self, actor: Actor, number: str, version: Any, to: str) -> dict[str, Any]:
        """Send the work order back: to the previous step, an earlier step, or the group's supervisor."""
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            self._check_mover(actor, order)
            step = order.step
            assert step is not None
            if to not in step.returns:
                raise Refused(f"step {step.name} allows no return to {to}"
                              + (f"; it allows: {', '.join(step.returns)}" if step.returns else ""))
            change = Change(order, actor.id, self.workspace.fingerprint)
            if to == "supervisor":
                group = self.workspace.groups.get(step.group or "")
                supervisor_login = group.supervisor if group else None
                supervisor = await self.db.fetch_value(
                    "SELECT id FROM rc_user WHERE login = {} AND is_active = {}", supervisor_login, True)
                if supervisor is None:
                    raise Refused(f"group {step.group} has no supervisor with a user account")
                change.record("returned_to_supervisor", {"owner_id": int(supervisor)})
            else:
                path: list[str] = list(order.state["path"])
                target = path[-1] if to == "previous" else to
                if not path or target not in path:
                    raise Refused(f"work order {number} has not been in step {target} before")
                cut = len(path) - 1 - path[::-1].index(target)
                await self._enter(change, order, self._step(order, target), path[:cut], kind="returned")
            await self._save(change)
        return await self.view(order)

    async def assign(self, actor: Actor, number: str, version: Any, login: str | None, *,
                     rule: str | None = None) -> dict[str, Any]:
        """Give the work order to a member of its current group (or to nobody).

        With ``rule`` (``round_robin`` or ``least_open``) the rule picks the member.
        """
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            if not self.abilities_on(actor, order).assign:
                raise Forbidden(f"{actor.login} may not assign work order {number}")
            owner = None
            if rule is not None:
                group = order.state["group_name"]
                if rule not in ASSIGNMENT_RULES:
                    raise Invalid(f"no assignment rule {rule}",
                                  [{"field": "rule", "message": f"one of: {', '.join(ASSIGNMENT_RULES)}"}])
                owner = await choose_in_group(self.db, self.workspace, group, rule) if group else None
                if owner is None:
                    raise Invalid(f"group {group or '(none)'} has no member to assign",
                                  [{"field": "rule", "message": "the group has no members"}])
            elif login is not None:
                group = order.state["group_name"]
                members = await group_members(self.db, self.workspace, group) if group else {}
                owner = next((i for i, name in members.items() if name == login), None)
                if owner is None:
                    raise Invalid(f"{login} is not a member of group {group}",
                                  [{"field": "owner", "message": f"not a member of {group}"}])
            change = Change(order, actor.id, self.workspace.fingerprint)
            change.record("assigned", {"owner_id": owner})
            await self._save(change)
        return await self.view(order)

    async def cancel(self, actor: Actor, number: str, version: Any, reason: str | None = None) -> dict[str, Any]:
        """Cancel the work order, for good."""
        order = await self._load_for_change(actor, number, version)
        async with self.db.transaction():
            actor.require("order.cancel")
            if not self.abilities_on(actor, order).cancel:
                raise Forbidden(f"only the owner or a supervisor may cancel work order {number}")
            change = Change(order, actor.id, self.workspace.fingerprint)
            change.record("cancelled", {"status": "cancelled", "cancelled_at": to_json_time(now())},
                          source=(reason or "")[:300] or None)
            await self._save(change)
        return await self.view(order)

    async def link(self, actor: Actor, number: str, other: str) -> dict[str, Any]:
        """Associate two work orders (both must be visible to the actor)."""
        async with self.db.transaction():
            order = await self._load(actor, number)
            target = await self._load(actor, other)
            if order.id == target.id:
                raise Invalid("a work order cannot be linked to itself", [{"field": "number", "message": "same order"}])
            low, high = sorted((order.id, target.id))
            if await self.db.fetch_value("SELECT id FROM rc_link WHERE from_id = {} AND to_id = {}", low, high) is None:
                await self.db.execute("INSERT INTO rc_link (from_id, to_id, kind) VALUES ({}, {}, 'related')", low, high)
                for a, b in ((order, target), (target, order)):
                    await insert_event(self.db, a.id, actor.id, "linked", {}, {"linked": b.number}, None,
                                       self.workspace.fingerprint, a.version, now())
        return {"number": number, "links": await self.links(actor, number)}

    async def links(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        order = await self._load(actor, number)
        rows = await self.db.fetch(
            "SELECT w.number, w.status, w.title, w.template FROM rc_link l JOIN rc_work_order w "
            "ON w.id = CASE WHEN l.from_id = {} THEN l.to_id ELSE l.from_id END "
            "WHERE l.from_id = {} OR l.to_id = {} ORDER BY w.id", order.id, order.id, order.id)
        return [dict(r) for r in rows]

    # -- helpers of the flow ----------------------------------------------------------------

    async def _save(self, change: Change) -> None:
        """Save ``change`` and tell the listeners (``after_change``), in the caller's transaction
        (on PostgreSQL the change goes alone when none of them writes and the transaction has
        sent nothing yet)."""
        await change.save(self.db, alone=self.db.may_go_alone() and self._quiet_change(change))
        for listener in self.after_change:
            await listener(change)

    def _check_mover(self, actor: Actor, order: Order) -> None:
        if not self._may_move(actor, order):
            who = "its owner" if order.owner_id is not None else f"a member of group {order.state['group_name']}"
            raise Forbidden(f"{actor.login} may not move work order {order.number}: only {who} or a supervisor may")

    def _take(self, change: Change, actor: Actor, order: Order) -> None:
        """An unassigned order becomes the acting member's."""
        if order.owner_id is None and actor.id is not None and order.state["group_name"] in actor.groups:
            change.record("assigned", {"owner_id": actor.id}, source="taken")

    @staticmethod
    def _step(order: Order, name: str) -> ResolvedStep:
        return next(s for s in order.queue.steps if s.name == name)

    async def _enter(self, change: Change, order: Order, step: ResolvedStep, path: list[str], *,
                     kind: str = "step_entered") -> None:
        owner = await transfer_owner(self.db, self.workspace, order.template, step,
                                     current_group=order.state["group_name"], owner=order.owner_id,
                                     creator=order.state["created_by"])
        round_ = int(await self.db.fetch_value(
            "SELECT COALESCE(MAX(round), 0) AS r FROM rc_step_action WHERE work_order_id = {} AND step = {}",
            order.id, step.name) or 0) + 1
        change.enter_round(step, round_)
        order.state["actions"] = {}
        change.record(kind, {"step": step.name, "group_name": step.group, "owner_id": owner, "path": path,
                             "actions": {a.name: "pending" for a in step.actions}})

    async def _move_on(self, change: Change, actor: Actor, order: Order, target: str,
                       follow_up: bool | None = None) -> str | None:
        """Leave the current step for ``target`` (or complete); the template of a follow-up, if any."""
        path = [*order.state["path"], order.state["step"]]
        if target != COMPLETE:
            await self._enter(change, order, self._step(order, target), path)
            return None
        change.record("completed", {"status": "completed", "completed_at": to_json_time(now()), "path": path})
        end = order.template.end_action
        if end == "new_work_order" or (end == "agent_decides" and follow_up):
            return order.template.end_template
        return None

    async def _create_follow_up(self, order: Order, template: str) -> None:
        """The end action: a new work order for the same customer."""
        data: dict[str, Any] = {"title": f"Follow-up of {order.number}"}
        if order.state["customer_id"] is not None:
            data["customer_id"] = order.state["customer_id"]
        try:
            await self.create(SYSTEM, template, data)
        except Invalid:
            # required fields without defaults: the follow-up cannot be made automatically
            async with self.db.transaction():
                await insert_event(self.db, order.id, None, "follow_up_failed", {}, {"follow_up_template": template},
                                   "required fields have no defaults", self.workspace.fingerprint,
                                   order.version, now())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
