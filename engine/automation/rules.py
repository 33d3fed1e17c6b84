"""Rules at run time: indexed by trigger, fired from each saved change, in its transaction.

``RuleIndex`` compiles the workspace's enabled rules once (conditions to closures) and
files them by trigger: ``(event, field or step)`` and ``(event, None)``, so an event
looks at the few rules that can react to it, never at all of them. ``RuleEngine`` is a
``Runtime.after_change`` listener: it turns a change's audit events into triggers
(``triggers_of``), builds the order's facts, and fires the rules whose condition holds
in ascending ``order`` then name, honouring ``stop``. Each firing is one change of the
order (saved, so rules may react to it in turn), audited with ``rule NAME (file:line)``;
a failing rule is rolled back to a savepoint and recorded as ``rule_failed`` without
undoing the change that triggered it. A cascade deeper than ``MAX_DEPTH`` or longer than
``MAX_FIRINGS`` is stopped and recorded as ``rule_cascade_stopped``.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .. import metrics
from ..db import Database
from ..link.resolved import LinkedWorkspace
from ..model.automation import Rule, Trigger
from ..runtime.actors import SYSTEM, Actor
from ..runtime.state import Change, Order, insert_event, now
from .actions import ActionFailed, Doing, run_actions
from .calendar import BusinessCalendar
from .closures import Test
from .conditions import compile_condition, condition_fields, to_python

if TYPE_CHECKING:
    from ..runtime.service import Runtime

log = logging.getLogger("routecard.rules")

MAX_DEPTH = 5
"""Rules fired by changes of rules fired by ... : at most this deep."""
MAX_FIRINGS = 50
"""Firings caused by one change (all depths together): at most this many."""

PASSED_ON = frozenset({"created", "action_processed", "action_skipped", "comment_added", "email_received",
                       "sla_warning", "sla_breach"})
"""Event kinds that are rule events under the same name."""
FACT_OF_KEY = {"priority": "priority", "status": "status", "step": "step", "queue": "queue", "title": "title",
               "owner_id": "owner", "group_name": "group", "customer_id": "customer", "project_id": "project",
               "sender": "sender"}
"""State keys of the work order and the facts (condition field names) they are."""
LOOKED_UP = frozenset({"owner", "customer", "project"})
MESSAGE_KINDS = frozenset({"comment", "reply", "follow_up"})
"""Thread messages people write: the rule event ``comment_added``."""


class CompiledRule(NamedTuple):
    """A rule ready to fire: its condition as a closure and what it applies to."""

    name: str
    rule: Rule
    test: Test
    templates: frozenset[str]
    queues: frozenset[str]
    needs: frozenset[str]
    """Facts its condition needs that take a lookup (owner, customer, project)."""
    source: str
    """``rule NAME (file:line)``: the source of its changes in the audit trail."""
    at: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.rule.order, self.name)


class Watch(NamedTuple):
    """A rule reacting to one trigger: its delay, and for field_changed the values it waits for."""

    compiled: CompiledRule
    after: str | None
    from_: Any = None
    to: Any = None


class Candidate(NamedTuple):
    compiled: CompiledRule
    trigger: str
    after: str | None
    """The trigger's delay (``48h``), or ``None`` to fire at once."""


def rule_types(workspace: LinkedWorkspace, rule: Rule) -> dict[str, str]:
    """The types of the custom fields a rule may test (templates in its scope)."""
    names = list(rule.templates)
    if not names and rule.queues:
        names = [t for q in rule.queues if q in workspace.queues for t in workspace.queues[q].templates]
    chosen = [workspace.templates[n] for n in (names or workspace.templates) if n in workspace.templates]
    return {f.name: f.type for t in chosen for f in t.fields}


class RuleIndex:
    """The enabled rules of a workspace, compiled and filed by trigger."""

    def __init__(self, workspace: LinkedWorkspace, *, disabled: bool = False,
                 functions: Mapping[str, Callable[[Any], Any]] | None = None) -> None:
        """Index the enabled rules of ``workspace`` (the disabled ones too with ``disabled``: for a replay)."""
        self.workspace = workspace
        self.by_trigger: dict[tuple[str, str | None], list[Watch]] = {}
        self.scheduled: list[tuple[CompiledRule, str]] = []
        self.by_name: dict[str, CompiledRule] = {}
        calendars = {n: BusinessCalendar(c) for n, c in workspace.calendars.items()}
        locations = workspace.locations.get("Rule", {})
        for name, rule in sorted(workspace.rules.items()):
            if not rule.enabled and not disabled:
                continue
            at = str(locations[name]) if name in locations else "?"
            compiled = CompiledRule(
                name=name, rule=rule, test=compile_condition(rule.when, rule_types(workspace, rule), functions, calendars),
                templates=frozenset(rule.templates), queues=frozenset(rule.queues),
                needs=condition_fields(rule.when) & LOOKED_UP, source=f"rule {name} ({at})", at=at)
            self.by_name[name] = compiled
            for trigger in rule.on:
                event, detail, after = _trigger(trigger)
                if event == "schedule":
                    assert isinstance(trigger, Trigger) and trigger.schedule is not None
                    self.scheduled.append((compiled, trigger.schedule))
                    continue
                values = (trigger.from_, trigger.to) if isinstance(trigger, Trigger) else (None, None)
                self.by_trigger.setdefault((event, detail), []).append(Watch(compiled, after, *values))
        self.size = len(workspace.rules)

    def fires_on_creation(self, template: str, queue: str) -> bool:
        """Might a rule fire when a work order of ``template`` enters ``queue`` (``on: created``)?"""
        return any((not w.compiled.templates or template in w.compiled.templates)
                   and (not w.compiled.queues or queue in w.compiled.queues)
                   for w in self.by_trigger.get(("created", None), ()))

    def candidates(self, triggers: list[tuple[str, str | None]], order: Order,
                   values: dict[str, tuple[Any, Any]] | None = None) -> list[Candidate]:
        """The rules that react to any of ``triggers`` and apply to ``order``, in firing order.

        ``values`` are the changed fields' (old, new) values, for triggers with ``from``/``to``.
        """
        found: dict[str, Candidate] = {}
        template, queue = order.template.name, order.queue.name
        for event, detail in triggers:
            for key in ((event, detail), (event, None)) if detail is not None else ((event, None),):
                for compiled, after, from_, to in self.by_trigger.get(key, ()):
                    if compiled.name in found:
                        continue
                    if (from_ is not None or to is not None) and not _moved(order, detail, values, from_, to):
                        continue
                    if compiled.templates and template not in compiled.templates:
                        continue
                    if compiled.queues and queue not in compiled.queues:
                        continue
                    found[compiled.name] = Candidate(compiled, event if detail is None else f"{event} {detail}",
                                                     after)
        return sorted(found.values(), key=lambda c: c.compiled.key)


def _moved(order: Order, name: str | None, values: dict[str, tuple[Any, Any]] | None, from_: Any, to: Any) -> bool:
    """Did field ``name`` change from ``from_`` (if given) to ``to`` (if given)? Compared as the field's type."""
    if name is None or values is None or name not in values:
        return False
    field = order.codec.fields.get(name)
    kind = field.type if field is not None else "input"
    old, new = (to_python(kind, v) for v in values[name])
    return ((from_ is None or old == to_python(kind, from_)) and (to is None or new == to_python(kind, to)))


def changed_values(change: Change) -> dict[str, tuple[Any, Any]]:
    """The (old, new) value of every custom field and plain attribute ``change`` changed, by fact name."""
    out: dict[str, tuple[Any, Any]] = {}
    for _kind, before, after, _source in change.events:
        for key, value in after.items():
            if key == "fields":
                old = before.get("fields") or {}
                out.update({name: (out.get(name, (old.get(name),))[0], v) for name, v in value.items()})
            elif key in FACT_OF_KEY and FACT_OF_KEY[key] not in LOOKED_UP:
                name = FACT_OF_KEY[key]
                out[name] = (out.get(name, (before.get(key),))[0], value)
    return out


def _trigger(trigger: str | Trigger) -> tuple[str, str | None, str | None]:
    if isinstance(trigger, str):
        return trigger, None, None
    detail = trigger.field if trigger.event == "field_changed" else trigger.step
    return trigger.event, detail, trigger.after


def triggers_of(change: Change) -> tuple[list[tuple[str, str | None]], set[str]]:
    """The rule events a saved change stands for, and the names of the facts it changed."""
    out: list[tuple[str, str | None]] = []
    changed: set[str] = set()
    for kind, before, after, _source in change.events:
        if kind in PASSED_ON:
            out.append((kind, None))
        if kind == "created":
            continue
        for key, value in after.items():
            if key == "fields":
                old = before.get("fields") or {}
                changed.update(name for name, v in value.items() if old.get(name) != v)
            elif key in FACT_OF_KEY and before.get(key) != value:
                changed.add(FACT_OF_KEY[key])
                if key == "step":
                    out.append(("step_entered", value))
                    if before.get(key) is not None:
                        out.append(("step_left", before[key]))
                elif key == "owner_id" and ("assigned", None) not in out:
                    out.append(("assigned", None))
    out.extend(("field_changed", name) for name in sorted(changed))
    return out, changed


async def order_facts(db: Database, order: Order, changed: set[str], needs: frozenset[str]) -> dict[str, Any]:
    """The facts a condition tests on ``order``: custom fields, core attributes and ``changed``."""
    state = order.state
    types = order.codec.fields
    facts: dict[str, Any] = {name: to_python(types[name].type, value) if name in types else value
                             for name, value in state["fields"].items()}
    facts.update(priority=state["priority"], status=state["status"], step=state["step"], queue=state["queue"],
                 template=state["template"], title=state["title"], group=state["group_name"],
                 sender=order.row.get("sender"), created_at=to_python("datetime", state["created_at"]),
                 owner=None, customer=None, project=None, changed=changed)
    if "owner" in needs and state["owner_id"] is not None:
        facts["owner"] = await db.fetch_value("SELECT login FROM rc_user WHERE id = {}", state["owner_id"])
    if "customer" in needs and state["customer_id"] is not None:
        facts["customer"] = await db.fetch_value("SELECT name FROM rc_customer WHERE id = {}", state["customer_id"])
    if "project" in needs and state["project_id"] is not None:
        facts["project"] = await db.fetch_value("SELECT name FROM rc_project WHERE id = {}", state["project_id"])
    return facts


class Cascade:
    """The firings caused by one change from outside (a person, a job): how deep, how many."""

    def __init__(self, depth: int = 0) -> None:
        self.depth = depth
        self.fired = 0
        self.stopped = False
        self.quiet = False
        """Started by mail a machine sent (auto-reply, bounce, list): nothing answers it by mail."""


_CASCADE: contextvars.ContextVar[Cascade | None] = contextvars.ContextVar("routecard_rule_cascade", default=None)


@contextlib.contextmanager
def cascade_depth(depth: int) -> Iterator[None]:
    """Run the block as if ``depth`` rules deep (for actions run by a job or an escalation)."""
    token = _CASCADE.set(Cascade(depth)) if _CASCADE.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _CASCADE.reset(token)


def _snapshot(order: Order) -> dict[str, Any]:
    kept = ("template", "codec", "queue")
    return {k: v if k in kept else copy.deepcopy(v) for k, v in vars(order).items()}


class RuleEngine:
    """Fires the workspace's rules from every change a ``Runtime`` saves (its ``after_change`` listener)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._index: RuleIndex | None = None
        self._savepoints = 0
        runtime.listen(self.changed, quiet_on_create=lambda template, queue: not self.index.fires_on_creation(
            template.name, queue.name), quiet_on_change=lambda change: not self._candidates(change)[0])
        runtime.after_message.append(self.message)

    async def message(self, order: Order, kind: str, author: Actor | None) -> None:
        """The thread listener: a comment, reply or follow-up someone wrote is ``comment_added``.

        (Received mail comes as its own ``email_received`` change; comments of rules come
        with the rule's change.)
        """
        if kind not in MESSAGE_KINDS:
            return
        change = Change(order, author.id if author is not None else None, self.runtime.workspace.fingerprint)
        change.events.append(("comment_added", {}, {"message_kind": kind}, None))
        await self.changed(change)

    @property
    def index(self) -> RuleIndex:
        """The index of the runtime's current definitions (rebuilt after a reload)."""
        workspace = self.runtime.workspace
        if self._index is None or self._index.workspace is not workspace:
            self._index = RuleIndex(workspace, functions=self.runtime.plugins.condition_functions)
        return self._index

    async def changed(self, change: Change) -> None:
        """The listener: fire the rules that react to ``change`` (already saved, same transaction)."""
        candidates, names = self._candidates(change)
        if not candidates:
            return
        cascade = _CASCADE.get()
        token = None
        if cascade is None:
            cascade = Cascade()
            token = _CASCADE.set(cascade)
        if any(kind == "email_received" and after.get("auto") for kind, _, after, _ in change.events):
            cascade.quiet = True
        try:
            await self._fire_all(change.order, candidates, names, cascade)
        finally:
            if token is not None:
                _CASCADE.reset(token)

    def _candidates(self, change: Change) -> tuple[list[Candidate], set[str]]:
        """The rules that react to ``change``, and the names of the facts it changed."""
        index = self.index
        if not index.by_trigger:
            return [], set()
        triggers, names = triggers_of(change)
        return (index.candidates(triggers, change.order, changed_values(change)) if triggers else []), names

    async def _fire_all(self, order: Order, candidates: list[Candidate], names: set[str], cascade: Cascade) -> None:
        needs = frozenset().union(*(c.compiled.needs for c in candidates))
        facts = await order_facts(self.runtime.db, order, names, needs)
        for candidate in candidates:
            compiled = candidate.compiled
            if cascade.stopped:
                return
            try:
                holds = compiled.test(facts)
            except (TypeError, ValueError, ArithmeticError) as exc:  # facts of an unexpected type
                await self._failed(order, compiled, candidate.trigger, f"the condition cannot be tested: {exc}")
                continue
            if not holds:
                continue
            if candidate.after is not None:
                await timed.enqueue_delayed(self.runtime, order, compiled.name, candidate.trigger, candidate.after,
                                      moment=now(), changed=names)
                continue
            if cascade.depth >= MAX_DEPTH or cascade.fired >= MAX_FIRINGS:
                await self._stop(order, compiled, cascade)
                return
            cascade.fired += 1
            fired = await self.fire(order, compiled, candidate.trigger, cascade)
            if fired and compiled.rule.stop:
                return
            facts = await order_facts(self.runtime.db, order, names, needs)

    async def fire(self, order: Order, compiled: CompiledRule, trigger: str, cascade: Cascade) -> bool:
        """Do a rule's actions as one change of ``order``; roll them back and record it if one fails."""
        runtime = self.runtime
        self._savepoints += 1
        savepoint = f"rc_rule_{self._savepoints}"
        before = _snapshot(order)
        await runtime.db.execute(f"SAVEPOINT {savepoint}")
        change = Change(order, None, runtime.workspace.fingerprint)
        change.events.append(("rule_fired", {}, {"rule": compiled.name, "at": compiled.at, "trigger": trigger},
                              compiled.source[:300]))
        cascade.depth += 1
        try:
            await run_actions(Doing(runtime, order, SYSTEM, change, compiled.source, quiet=cascade.quiet),
                              compiled.rule.do)
            await runtime._save(change)
        except Exception as exc:  # noqa: BLE001 - a failing rule never undoes the change that triggered it
            await runtime.db.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
            vars(order).update(before)
            if not isinstance(exc, ActionFailed):
                log.exception("rule %s broke on %s", compiled.name, order.number)
            await self._failed(order, compiled, trigger, exc.detail if isinstance(exc, ActionFailed)
                               else f"{type(exc).__name__}: {exc}")
            metrics.RULE_FIRINGS.inc(compiled.name, "failed")
            return False
        finally:
            cascade.depth -= 1
        await runtime.db.execute(f"RELEASE SAVEPOINT {savepoint}")
        metrics.RULE_FIRINGS.inc(compiled.name, "fired")
        return True

    async def _failed(self, order: Order, compiled: CompiledRule, trigger: str, error: str) -> None:
        """Record that a rule failed on ``order`` (its own changes already rolled back)."""
        log.warning("rule %s failed on %s: %s", compiled.name, order.number, error)
        await insert_event(self.runtime.db, order.id, None, "rule_failed", {},
                           {"rule": compiled.name, "at": compiled.at, "trigger": trigger, "error": error[:1000]},
                           compiled.source[:300], self.runtime.workspace.fingerprint, order.version, now())

    async def _stop(self, order: Order, compiled: CompiledRule, cascade: Cascade) -> None:
        if cascade.stopped:
            return
        cascade.stopped = True
        log.warning("rule cascade stopped on %s before rule %s (depth %d, %d fired)", order.number, compiled.name,
                    cascade.depth, cascade.fired)
        await insert_event(self.runtime.db, order.id, None, "rule_cascade_stopped", {},
                           {"rule": compiled.name, "at": compiled.at, "depth": cascade.depth,
                            "fired": cascade.fired, "max_depth": MAX_DEPTH, "max_firings": MAX_FIRINGS},
                           compiled.source[:300], self.runtime.workspace.fingerprint, order.version, now())


from . import timed  # noqa: E402 - registers the job kinds of delayed and scheduled rules; builds on the above
