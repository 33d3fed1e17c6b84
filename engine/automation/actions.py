"""The actions of rules, macros and escalations, applied to one work order.

Actions that change the order (``set_field``, ``set_priority``, ``set_status``,
``assign``, ``route``) are recorded on one ``Change`` with the ``source`` that explains
them (``rule NAME (file:line)``, ``macro NAME``, ``sla NAME breach``); saving it
writes them with their audit events in the caller's transaction. Actions with effects
elsewhere (``comment``, ``email``, ``create_work_order``, ``call``) write their rows
in the same transaction and note themselves as events of the same change.

Texts (comments, subjects, bodies) are admins' templates rendered in the sandboxed
Jinja environment of ``engine.comms.mail``; values people typed only enter them as
values. Mail goes through the outbox to addresses from server data only.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import TemplateError

from ..comms.mail import compile_text, one_line
from ..comms.notices import contact_address
from ..errors import Invalid, NotFound, Refused
from ..model.automation import (
    ACTION_KEYS,
    Action,
    AddComment,
    Assign,
    CallPlugin,
    CreateWorkOrder,
    Route,
    SendEmail,
    SetField,
)
from ..runtime.actors import SYSTEM, Actor, group_members
from ..runtime.assignment import choose_in_group
from ..runtime.fields import to_json_time
from ..runtime.state import Change, Order, load_order, now

if TYPE_CHECKING:
    from ..runtime.service import Runtime

MAX_MACRO_DEPTH = 5
"""Macros applying macros: at most this deep."""
NOTE_KINDS = frozenset({"comment_added", "email_queued", "work_order_created", "plugin_called", "rule_fired"})
"""Events an action records beside the order's state (its effects elsewhere)."""


class ActionFailed(Refused):
    """An action that could not be done; ``detail`` says why (nothing of its rule or macro is kept)."""

    code = "action_failed"


class Doing:
    """One application of a list of actions: the runtime, the order, who acts, the change and its source."""

    def __init__(self, runtime: Runtime, order: Order, actor: Actor, change: Change, source: str, *,
                 quiet: bool = False) -> None:
        self.runtime = runtime
        self.order = order
        self.actor = actor
        self.change = change
        self.source = source
        self.quiet = quiet
        """Run because of mail a machine sent: mail goes to staff only, never back out (no mail loops)."""

    def record(self, kind: str, changes: dict[str, Any], values: dict[str, Any] | None = None) -> None:
        if self.order.is_final:
            raise Refused(f"work order {self.order.number} is {self.order.status}; it can no longer change")
        self.change.record(kind, changes, source=self.source[:300], values=values)

    def note(self, kind: str, after: dict[str, Any]) -> None:
        self.change.events.append((kind, {}, after, self.source[:300]))


# -- texts --------------------------------------------------------------------------------------

_TEXTS: dict[str, Any] = {}


def render_text(doing: Doing, source: str, field: str) -> str:
    """An admin's text with the order's placeholders filled in (sandboxed)."""
    template = _TEXTS.get(source)
    if template is None:
        template = compile_text(source, field)
        if len(_TEXTS) < 2048:
            _TEXTS[source] = template
    order = doing.order
    values = {**order.state["fields"], **doing.runtime.messages.notices.values(order),
              "priority": order.state["priority"], "sender": order.row.get("sender"),
              "group": order.state["group_name"], "template": order.template.name}
    try:
        return str(template.render(values))
    except TemplateError as exc:  # SecurityError and UndefinedError included
        raise ActionFailed(f"the text of `{field}` cannot be filled in: {exc}") from None


# -- the actions --------------------------------------------------------------------------------


async def _set_field(doing: Doing, action: SetField) -> None:
    order = doing.order
    values = order.codec.validate({action.field: action.value}, partial=True)
    shown = {n: order.codec.to_json(n, v) for n, v in values.items()}
    shown = {n: v for n, v in shown.items() if v != order.state["fields"].get(n)}
    if shown:
        doing.record("updated", {"fields": shown}, values={n: values[n] for n in shown})


async def _set_priority(doing: Doing, priority: str) -> None:
    if doing.order.state["priority"] != priority:
        doing.record("updated", {"priority": priority})


async def _set_status(doing: Doing, status: str) -> None:
    order = doing.order
    if order.status == status:
        return
    moment = to_json_time(now())
    if status == "cancelled":
        doing.record("cancelled", {"status": "cancelled", "cancelled_at": moment})
    elif status == "completed":
        doing.record("completed", {"status": "completed", "completed_at": moment,
                                   "path": [*order.state["path"], order.state["step"]]})
    else:
        doing.record("status_changed", {"status": status})


async def _assign(doing: Doing, action: Assign) -> None:
    runtime, order = doing.runtime, doing.order
    if action.user is not None:
        owner = await runtime.db.fetch_value(
            "SELECT id FROM rc_user WHERE login = {} AND is_active = {} AND is_staff = {}", action.user, True, True)
        if owner is None:
            raise ActionFailed(f"no active staff user {action.user}")
        if order.owner_id != int(owner):
            doing.record("assigned", {"owner_id": int(owner)})
        return
    group = action.group
    assert group is not None
    if group not in runtime.workspace.groups:
        raise ActionFailed(f"no group {group}")
    if order.state["group_name"] == group and order.owner_id is not None \
            and order.owner_id in await group_members(runtime.db, runtime.workspace, group):
        return  # already with a member of the group: it stays with them
    method = action.method or order.template.assignment
    owner_id = await choose_in_group(runtime.db, runtime.workspace, group, method)  # None: the supervisor chooses
    if order.state["group_name"] != group or order.owner_id != owner_id:
        doing.record("assigned", {"group_name": group, "owner_id": owner_id})


async def _route(doing: Doing, action: Route) -> None:
    runtime, order = doing.runtime, doing.order
    changes: dict[str, Any] = {}
    if action.customer is not None:
        customer = await runtime.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", action.customer)
        if customer is None:
            raise ActionFailed(f"no customer {action.customer}")
        changes["customer_id"] = int(customer)
        project = None
        if action.project is not None:
            project = await runtime.db.fetch_value(
                "SELECT id FROM rc_project WHERE customer_id = {} AND name = {}", customer, action.project)
            if project is None:
                raise ActionFailed(f"customer {action.customer} has no project {action.project}")
        if project is not None or order.state["project_id"] is not None:
            owner = await runtime.db.fetch_value(
                "SELECT customer_id FROM rc_project WHERE id = {}", order.state["project_id"]) \
                if project is None else customer
            if project is not None or owner != customer:
                changes["project_id"] = int(project) if project is not None else None
    changes = {k: v for k, v in changes.items() if order.state.get(k) != v}
    if changes:
        doing.record("routed", changes)
    if action.queue is None and action.step is None:
        return
    target_queue = order.queue
    if action.queue is not None and action.queue != order.queue.name:
        queue = runtime.workspace.queues.get(action.queue)
        if queue is None or order.template.name not in queue.templates:
            raise ActionFailed(f"queue {action.queue} does not serve template {order.template.name}")
        target_queue = queue
    step = action.step or target_queue.steps[0].name
    if target_queue is order.queue and step == order.state["step"]:
        return
    if all(s.name != step for s in target_queue.steps):
        raise ActionFailed(f"queue {target_queue.name} has no step {step}")
    path = [*order.state["path"], order.state["step"]]
    if target_queue is not order.queue:
        doing.record("routed", {"queue": target_queue.name})
        order.queue = target_queue
    if order.is_final:
        raise Refused(f"work order {order.number} is {order.status}; it can no longer change")
    await runtime._enter(doing.change, order, runtime._step(order, step), path)
    doing.change.events[-1] = (*doing.change.events[-1][:3], doing.source[:300])


async def _comment(doing: Doing, action: AddComment) -> None:
    text = render_text(doing, action.text, "comment.text").strip()
    if not text:
        raise ActionFailed("the comment is empty once filled in")
    message = await doing.runtime.messages.notices.message(
        doing.actor, doing.order, "comment", text[:100_000], client_viewable=action.client_viewable, to=[],
        subject=None, quoted=None)
    doing.note("comment_added", {"message": message, "message_kind": "comment",
                                 "client_viewable": action.client_viewable})


async def recipients(doing: Doing, names: tuple[str, ...]) -> list[str]:
    """The addresses ``names`` stand for, from server data only; never Routecard's own address."""
    runtime, order = doing.runtime, doing.order
    notices = runtime.messages.notices
    own = notices._sender()[0].lower()
    found: list[str] = []
    for name in names:
        if name == "customer":
            address = contact_address(order)
            found += [address] if address else []
        elif name == "sender":
            sender = order.row.get("sender")
            found += [str(sender)] if sender else []
        elif name == "owner":
            if order.owner_id is not None:
                email = await runtime.db.fetch_value(
                    "SELECT email FROM rc_user WHERE id = {} AND is_active = {}", order.owner_id, True)
                found += [str(email)] if email else []
        elif name == "group":
            group = order.state["group_name"]
            members = await group_members(runtime.db, runtime.workspace, group) if group else {}
            if members:
                marks = ", ".join("{}" for _ in members)
                rows = await runtime.db.fetch(
                    f"SELECT email FROM rc_user WHERE id IN ({marks}) AND email IS NOT NULL ORDER BY id",
                    *sorted(members))
                found += [str(r["email"]) for r in rows if r["email"]]
        elif name == "subscribers":
            found += await notices._subscribers(order, client_viewable=False, author=None)
        else:
            found.append(name)
    out: list[str] = []
    for address in found:
        if address.lower() != own and address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out


STAFF_RECIPIENTS = ("owner", "group", "subscribers")


async def _email(doing: Doing, action: SendEmail) -> None:
    wanted, copies = action.to, action.cc
    if doing.quiet:  # never answer a machine: staff only
        wanted, copies = tuple(n for n in wanted if n in STAFF_RECIPIENTS), ()
    to = await recipients(doing, wanted)
    cc = await recipients(doing, copies)
    if not to and not cc:
        doing.note("email_queued", {"to": [], "cc": [], "skipped": "no recipient" if not doing.quiet
                                    else "the event was mail sent by a machine; nothing answers it"})
        return
    subject = one_line(render_text(doing, action.subject, "email.subject"))[:250]
    body = render_text(doing, action.body, "email.body")
    notices = doing.runtime.messages.notices
    key = f"auto:{doing.order.id}:{uuid.uuid4().hex}"
    for address in [*to, *cc]:
        await notices._enqueue(key, address, subject=subject, body=body, order=doing.order, in_reply_to=None,
                               message=None, automatic=True)
    doing.note("email_queued", {"to": to, "cc": cc, "subject": subject})


async def _create_work_order(doing: Doing, action: CreateWorkOrder) -> None:
    order = doing.order
    data: dict[str, Any] = {"fields": dict(action.fields)}
    if order.state["customer_id"] is not None:
        data["customer_id"] = order.state["customer_id"]
        if order.state["project_id"] is not None:
            data["project_id"] = order.state["project_id"]
    created = await doing.runtime.create(SYSTEM, action.template, data)
    doing.note("work_order_created", {"created": created["number"], "template": action.template})


async def _apply_macro(doing: Doing, name: str) -> None:
    macro = doing.runtime.workspace.macros.get(name)
    if macro is None:
        raise ActionFailed(f"no macro {name}")
    if macro.templates and doing.order.template.name not in macro.templates:
        raise ActionFailed(f"macro {name} is not for template {doing.order.template.name}")
    if doing.source.count("macro ") >= MAX_MACRO_DEPTH:
        raise ActionFailed(f"macros apply each other more than {MAX_MACRO_DEPTH} deep")
    inner = Doing(doing.runtime, doing.order, doing.actor, doing.change, f"{doing.source} > macro {name}",
                  quiet=doing.quiet)
    await run_actions(inner, macro.actions)


async def _call(doing: Doing, action: CallPlugin) -> None:
    try:
        run = importlib.import_module("engine.plugins").run_plugin_action
    except (ImportError, AttributeError):
        run = None
    if run is None or not hasattr(doing.runtime, "plugins"):
        raise ActionFailed(f"cannot run {action.action}: no plugin system")
    view = await doing.runtime.view(doing.order)
    result = await run(doing.runtime, action.action, view, dict(action.with_))
    ok = bool(getattr(result, "ok", True)) and getattr(result, "ran", True) is not False
    message = getattr(result, "error", None) or getattr(result, "message", None)
    doing.note("plugin_called", {"action": action.action, "ok": ok, "message": message})
    if not ok:
        raise ActionFailed(f"plugin action {action.action} failed: {message or 'no reason given'}")


_HANDLERS: dict[str, Callable[[Doing, Any], Awaitable[None]]] = {
    "set_field": _set_field, "set_priority": _set_priority, "set_status": _set_status, "assign": _assign,
    "route": _route, "comment": _comment, "email": _email, "create_work_order": _create_work_order,
    "apply_macro": _apply_macro, "call": _call,
}
assert set(_HANDLERS) == set(ACTION_KEYS)


async def run_actions(doing: Doing, actions: tuple[Action, ...]) -> None:
    """Do ``actions`` in order on ``doing``'s change (not saved yet); the first failure raises."""
    for index, action in enumerate(actions):
        key = next((k for k in ACTION_KEYS if getattr(action, k) is not None), None)
        if key is None:
            raise ActionFailed(f"action {index + 1} does nothing")
        try:
            await _HANDLERS[key](doing, getattr(action, key))
        except (Invalid, Refused, NotFound) as exc:
            problems = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            raise ActionFailed(f"{key}: {exc.detail}" + (f" ({problems})" if problems else "")) from None


async def apply_actions(runtime: Runtime, order_number: str, actions: tuple[Action, ...], *, source: str,
                        depth: int = 0) -> None:
    """Do ``actions`` on work order ``order_number`` as Routecard itself, in the caller's transaction.

    Every change is audited with ``source``; rules react to them like to any change
    (``depth`` counts how deep in a cascade this is). ``ActionFailed`` when one fails.
    """
    from .rules import cascade_depth

    async with runtime.db.transaction():
        order = await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs,
                                 order_number)
        change = Change(order, None, runtime.workspace.fingerprint)
        await run_actions(Doing(runtime, order, SYSTEM, change, source), actions)
        if change.events:
            with cascade_depth(depth):
                await runtime._save(change)
