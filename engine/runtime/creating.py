"""Creating work orders: numbered, validated, written with their audit event in one go."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from ..db import Database
from ..errors import Forbidden, Invalid, NotFound
from ..link.resolved import LinkedWorkspace, ResolvedQueue, ResolvedStep, ResolvedTemplate
from ..plugins import Plugins
from .actors import Actor
from .assignment import initial_owner
from .base import RuntimeBase
from .fields import to_json_time
from .input import checked_input, for_customer
from .inserts import (IDEMPOTENCY_INSERT, actions_insert, fields_insert, kept, numbered_order_insert,
                      order_insert)
from .numbering import counter_name, ensure_sequence, sequence_name
from .state import Change, Order, event_insert, now


class Creating(RuntimeBase):
    """The create service of ``Runtime``."""

    def __init__(self, workspace: LinkedWorkspace, db: Database, plugins: Plugins | None = None) -> None:
        super().__init__(workspace, db, plugins)
        self._numbers: set[str] = set()
        """PostgreSQL: the templates whose number sequence is known to exist (``numbering``)."""
        self._numbering_turns: dict[str, asyncio.Lock] = {}
        """PostgreSQL: one check of a template's sequence at a time (``_numbering``)."""

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
