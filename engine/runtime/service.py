"""The work-order services: create, edit, process actions, route, assign, cancel, link, read.

``Runtime`` is built in three layers: ``RuntimeBase`` (``base``: access rules, reads,
change listeners), ``Creating`` (``creating``: the create) and, here, the changes of a
work order's life. Every call checks who acts (``Actor``) against the definitions
(range, edit limit, supervisors, permissions), validates its input, and commits its
changes together with their audit events in one transaction. Refusals raise a ``ServiceError``
(``engine.errors``) and change nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from ..db import Database
from ..errors import Forbidden, Invalid, Refused
from ..link.resolved import LinkedWorkspace, ResolvedStep
from ..plugins import Plugins, run_plugin_action
from .actors import SYSTEM, Actor, group_members
from .assignment import ASSIGNMENT_RULES, choose_in_group, transfer_owner
from .creating import Creating
from .fields import to_json_time
from .input import checked_input, for_customer
from .state import Change, Order, insert_event, now

if TYPE_CHECKING:
    from ..comms.thread import Messages

COMPLETE = "complete"
CORE_EDITABLE = ("title", "priority", "requested_at", "planned_at", "customer_id", "project_id")


class Runtime(Creating):
    """The services of one workspace on one database."""

    def __init__(self, workspace: LinkedWorkspace, db: Database, plugins: Plugins | None = None) -> None:
        from ..comms.thread import Messages  # comms builds on the runtime; imported late to avoid a cycle

        super().__init__(workspace, db, plugins)
        self.messages: Messages = Messages(self)
        """The message threads of work orders: comments, replies, follow-ups, subscriptions."""
        self.listen(lambda change: self.plugins.dispatch(self, change),
                    quiet_on_create=lambda template, _: not self.plugins.wants_event(
                        "created", template.name, self.workspace.settings),
                    quiet_on_change=lambda change: not any(self.plugins.wants_event(
                        kind, change.order.template.name, self.workspace.settings) for kind, *_ in change.events))
        from ..automation.sla import install as install_sla  # SLA clocks: before the rules, which may read them

        self.sla = install_sla(self)
        """The SLA clocks of work orders (an ``after_change`` and ``after_message`` listener)."""
        from ..automation.rules import RuleEngine  # rules build on the runtime too

        self.rules = RuleEngine(self)
        """The automation rules, fired from every saved change (an ``after_change`` listener)."""

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


