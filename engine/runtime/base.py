"""The core of the work-order services: who may do what, reading orders, hearing of changes.

``RuntimeBase`` holds what every service builds on: the definitions served and their field
codecs, the access rules (range, edit limit, supervisors), an order loaded for a change
(its version checked), the API's view of an order, and the listeners that hear of every
saved change in its transaction. ``Creating`` (``creating``) adds the create, ``Runtime``
(``service``) the changes of a work order's life.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from ..db import Database
from ..errors import Conflict, Invalid, NotFound, Refused
from ..link.resolved import LinkedWorkspace, ResolvedQueue, ResolvedTemplate
from ..plugins import Plugins, default_plugins
from .actors import Actor, ActorCache
from .fields import FieldCodec, to_json_time
from .portal import CustomerScope
from .state import Change, Order, load_order


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


class RuntimeBase:
    """The definitions served, access rules, reads and change listeners of the services (``Runtime``)."""

    def __init__(self, workspace: LinkedWorkspace, db: Database, plugins: Plugins | None = None) -> None:
        self.db = db
        self.actors = ActorCache()
        """The actors of recent requests' credentials (see ``ActorCache``)."""
        self._logins: dict[int, str] = {}
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
        self.after_message: list[MessageListener] = []
        """Listeners of every message added to a thread (order, kind, author), run in its transaction."""
        self.reload(workspace)

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

    # -- listeners ------------------------------------------------------------------------

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

    # -- saving -----------------------------------------------------------------------------

    async def _save(self, change: Change) -> None:
        """Save ``change`` and tell the listeners (``after_change``), in the caller's transaction
        (on PostgreSQL the change goes alone when none of them writes and the transaction has
        sent nothing yet)."""
        await change.save(self.db, alone=self.db.may_go_alone() and self._quiet_change(change))
        for listener in self.after_change:
            await listener(change)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
