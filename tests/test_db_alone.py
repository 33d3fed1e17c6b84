"""Transactions begun when first used, and a statement sent alone (``Database.fetch_alone``).

On PostgreSQL a transaction sends BEGIN just before its first statement; one whose only
statement goes alone sends it without BEGIN and COMMIT, and nothing after it. A new work
order is such a statement when no listener of the runtime writes for it (``Runtime.listen``):
its number (the template's sequence), row, fields, actions, audit event and idempotency key
in one. So is a change to an order no listener writes for (the order read before the
transaction; its version, fields, actions and events in one). What is checked here is
what the server receives (every query asyncpg sends is recorded) and that the work stays
all-or-nothing either way. On SQLite, which runs in this process, ``fetch_alone``
declines and the caller runs the statement in the transaction.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from engine.db import Database
from engine.errors import Conflict, Invalid
from engine.runtime.service import Change
from engine.workspace import open_workspace

from tests.helpers_workspace import write_workspace
from tests.runtime_helpers import ORDER, Env, ecommerce, tmp_env  # noqa: F401 - fixtures


INSERT = "INSERT INTO alone_t (id, note) VALUES ({}, {}) RETURNING id"


async def _table(db: Database) -> None:
    await db.execute("CREATE TABLE alone_t (id INTEGER PRIMARY KEY, note VARCHAR(20) NOT NULL)")


async def _notes(db: Database) -> list[str]:
    return [r["note"] for r in await db.fetch("SELECT note FROM alone_t ORDER BY id")]


async def test_a_lone_statement_is_sent_without_begin_and_commit(db: Database, sent: list[str]) -> None:
    await _table(db)
    sent.clear()
    async with db.transaction():
        rows = await db.fetch_alone(INSERT, 1, "alone")
        if db.dialect == "sqlite":
            assert rows is None  # declined: run it in the transaction
            rows = await db.fetch(INSERT, 1, "alone")
    assert rows == [{"id": 1}]
    assert await _notes(db) == ["alone"]
    if db.dialect == "postgresql":
        assert sent[0] == "INSERT INTO alone_t (id, note) VALUES ($1, $2) RETURNING id"
        assert "BEGIN" not in sent and "COMMIT" not in sent


async def test_an_empty_transaction_sends_nothing(db: Database, sent: list[str]) -> None:
    sent.clear()
    async with db.transaction():
        pass
    if db.dialect == "postgresql":
        assert sent == []


async def test_nothing_follows_a_lone_statement(db: Database) -> None:
    """What is sent alone is committed at once: a later statement could not be part of it."""
    if db.dialect != "postgresql":
        pytest.skip("SQLite declines to send a statement alone")
    await _table(db)
    with pytest.raises(RuntimeError, match="only one"):
        async with db.transaction():
            await db.fetch_alone(INSERT, 1, "committed")
            await db.fetch("SELECT note FROM alone_t")
    assert await _notes(db) == ["committed"]
    async with db.transaction():  # the connection went back to the pool clean
        await db.fetch(INSERT, 2, "after")
    assert await _notes(db) == ["committed", "after"]


async def test_a_transaction_under_way_takes_no_lone_statement(db: Database, sent: list[str]) -> None:
    await _table(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.fetch("SELECT 1 AS one")
            assert await db.fetch_alone(INSERT, 1, "inside") is None
            await db.fetch(INSERT, 1, "inside")
            raise RuntimeError("rolled back")
    assert await _notes(db) == []


async def test_a_nested_transaction_takes_no_lone_statement(db: Database, sent: list[str]) -> None:
    """Nested in a caller's transaction that has sent nothing yet, the statement is part of it:
    the caller goes on after the inner block, and a rollback takes both back."""
    await _table(db)
    with pytest.raises(RuntimeError):
        async with db.transaction():
            async with db.transaction():
                assert await db.fetch_alone(INSERT, 1, "inner") is None
                await db.fetch(INSERT, 1, "inner")
            await db.fetch(INSERT, 2, "outer")
            raise RuntimeError("rolled back")
    assert await _notes(db) == []
    async with db.transaction():  # the outer one alone may send it alone again
        rows = await db.fetch_alone(INSERT, 3, "alone")
    assert (rows is not None) == (db.dialect == "postgresql")


async def test_a_failing_lone_statement_raises_and_writes_nothing(db: Database) -> None:
    await _table(db)
    await db.execute("INSERT INTO alone_t (id, note) VALUES (1, 'there')")
    with pytest.raises(Exception, match="(?i)unique|constraint"):
        async with db.transaction():
            if await db.fetch_alone(INSERT, 1, "clash") is None:
                await db.fetch(INSERT, 1, "clash")
    assert await _notes(db) == ["there"]
    with pytest.raises(Invalid):
        async with db.transaction():
            if await db.fetch_alone(INSERT, 2, "a\x00b") is None:
                await db.fetch(INSERT, 2, "a\x00b")
    assert await _notes(db) == ["there"]


DESK = {"routecard.yaml": "name: desk\n", "defs.yaml": """\
kind: Group
name: desk
members: [agent]
---
kind: Role
name: agent
groups: [desk]
permissions: [order.create, order.transition, order.edit, order.cancel]
---
kind: Template
name: ticket
numbering: {prefix: "T-"}
fields:
  - {name: summary, type: input, required: true}
---
kind: Queue
name: desk_queue
templates: [ticket]
steps:
  - name: triage
    group: desk
    actions: [{name: check}, {name: route}]
"""}

async def test_a_create_nobody_listens_to_is_one_statement(tmp_env: Any, sent: list[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A create of a template without rules, SLAs or webhooks: on PostgreSQL one statement
    (number, order, fields, actions, event and idempotency key), neither BEGIN nor COMMIT,
    on the connection the idempotency key's lookup did not take."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})  # the template's sequence is made
    taken: list[object] = []
    original = asyncpg.pool.Pool._acquire

    def acquire(self: Any, *args: Any, **kwargs: Any) -> Any:
        taken.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.pool.Pool, "_acquire", acquire)
    sent.clear()
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "second"}}, idempotency_key="k-1")
    acquired = len(taken)
    writes = [q for q in sent if not q.startswith("SELECT")]
    order = (await env.db.fetch("SELECT id, number, title FROM rc_work_order WHERE number = {}", view["number"]))[0]
    assert view["number"] == "T-00002" and view["title"] == order["title"] == "Ticket T-00002"
    assert view["fields"] == {"summary": "second"}
    assert await env.db.fetch_value("SELECT work_order_id FROM rc_idempotency WHERE key = 'k-1'") == order["id"]
    assert [r["action"] for r in await env.db.fetch(
        "SELECT action FROM rc_step_action WHERE work_order_id = {} ORDER BY action", order["id"])] == ["check", "route"]
    after = await env.db.fetch_value(
        "SELECT after FROM rc_event WHERE work_order_id = {} AND kind = 'created'", order["id"])
    after = json.loads(after) if isinstance(after, str) else after
    assert (after["number"], after["title"], after["fields"]) == ("T-00002", "Ticket T-00002", {"summary": "second"})
    if env.db.dialect == "postgresql":
        assert len(writes) == 1 and writes[0].startswith("WITH parent AS (INSERT INTO rc_work_order"), sent
        assert "nextval" in writes[0] and "BEGIN" not in sent and "COMMIT" not in sent
        assert acquired == 2  # the idempotency key's lookup, and the order


async def test_a_given_title_is_kept(tmp_env: Any) -> None:
    env = await tmp_env(DESK)
    view = await env.rt.create(await env.actor("agent"), "ticket", {"title": "Printer on fire",
                                                                     "fields": {"summary": "x"}})
    assert view["title"] == "Printer on fire"
    events = await env.rt.events(await env.actor("agent"), view["number"])
    assert events[0]["after"]["title"] == "Printer on fire" and events[0]["after"]["number"] == view["number"]


async def test_a_create_whose_listeners_write_is_one_transaction(ecommerce: Env, sent: list[str]) -> None:
    """The e-commerce order has a rule on `created`: what it does and the order's insert commit
    together. Its SLA clock goes in the insert itself, not in an UPDATE after it."""
    lukas = await ecommerce.actor("lukas.maier")
    await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    sent.clear()
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    assert await ecommerce.db.fetch_value(
        "SELECT sla_state FROM rc_work_order WHERE number = {}", view["number"]) is not None
    if ecommerce.db.dialect == "postgresql":
        begin, commit = sent.index("BEGIN"), sent.index("COMMIT")
        inside = sent[begin + 1:commit]
        assert inside[0].startswith("WITH parent AS (INSERT INTO rc_work_order") and "sla_clock" in inside[0], sent
        assert not any(q.startswith("UPDATE rc_work_order SET sla_") for q in sent), sent
        assert not any(q.startswith("SELECT sla_name") for q in sent), sent  # a new order's clock is not read
        assert not any("nextval" in q for q in sent[:begin]), sent  # the number comes with the order


OTHER = """\
kind: Template
name: other
numbering: {prefix: "O-"}
fields:
  - {name: summary, type: input}
---
kind: Queue
name: other_queue
templates: [other]
steps:
  - name: triage
    group: desk
"""
"""A second template of DESK's group, in a queue of its own."""
OTHER_ONLY = {**DESK, "other.yaml": OTHER + """\
---
kind: SLA
name: other_only
templates: [other]
targets: {first_response: 1h}
"""}
"""DESK, the second template, and an SLA for the second one only."""


def _with_sla(when: str = "") -> dict[str, str]:
    """DESK with SLAs: ``vip`` (for orders whose condition ``when`` holds, if given) and ``standard``."""
    vip_when = f"when: {when}\n" if when else ""
    return {**DESK, "sla.yaml": f"""\
kind: SLA
name: vip
priority: 1
{vip_when}targets: {{first_response: 1h, resolution: 4h}}
---
kind: SLA
name: standard
priority: 2
targets: {{first_response: 8h, resolution: 3d}}
"""}


async def _clock(env: Env, number: str) -> dict[str, Any]:
    row = (await env.db.fetch("SELECT sla_name, sla_state, sla_target, sla_due_at, sla_clock FROM rc_work_order "
                              "WHERE number = {}", number))[0]
    clock = row["sla_clock"]
    return {**row, "sla_clock": json.loads(clock) if isinstance(clock, str) else clock}


async def test_a_new_orders_sla_clock_goes_in_its_insert(tmp_env: Any, sent: list[str]) -> None:
    """With SLAs and nothing else listening, a create is still one statement on PostgreSQL: the
    clock (the SLA chosen, first response and resolution started, the nearest target) is
    written by the order's insert, not by an UPDATE after it."""
    env = await tmp_env(_with_sla())
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})  # the template's sequence is made
    sent.clear()
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "second"}})
    clock = await _clock(env, view["number"])
    assert (clock["sla_name"], clock["sla_state"], clock["sla_target"]) == ("vip", "running", "first_response")
    assert set(clock["sla_clock"]) == {"first_response", "resolution"} and clock["sla_due_at"] is not None
    if env.db.dialect == "postgresql":
        writes = [q for q in sent if not q.startswith("SELECT")]
        assert len(writes) == 1 and writes[0].startswith("WITH parent AS (INSERT INTO rc_work_order"), sent
        assert "sla_clock" in writes[0] and "BEGIN" not in sent and "COMMIT" not in sent, sent


@pytest.mark.parametrize("title", [None, "Printer on fire"])
async def test_an_sla_on_the_title_of_an_untitled_order(tmp_env: Any, sent: list[str], title: str | None) -> None:
    """An SLA whose condition tests the title: an order created without one gets its title
    (the template's label and number, "Ticket T-00002") in the insert on PostgreSQL, so its
    clock is written after the insert, in the same transaction, and the condition sees that
    title. With a title given, the clock goes in the insert."""
    env = await tmp_env(_with_sla('{field: title, contains: Ticket}'))
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})
    sent.clear()
    titled = {"title": title} if title else {}
    view = await env.rt.create(agent, "ticket", {**titled, "fields": {"summary": "second"}})
    assert (await _clock(env, view["number"]))["sla_name"] == ("standard" if title else "vip")
    if env.db.dialect == "postgresql":
        updates = [q for q in sent if q.startswith("UPDATE rc_work_order SET sla_")]
        assert len(updates) == (0 if title else 1) and "BEGIN" in sent and "COMMIT" in sent, sent


async def test_a_template_no_sla_covers_has_no_clock_to_write(tmp_env: Any, sent: list[str]) -> None:
    """An SLA for another template only: a ticket's insert carries no SLA column at all, the
    other template's carries its clock; both are one statement on PostgreSQL."""
    env = await tmp_env(OTHER_ONLY)
    agent = await env.actor("agent")
    for template in ("ticket", "other"):
        await env.rt.create(agent, template, {"fields": {"summary": "first"}} if template == "ticket" else {})
    sent.clear()
    ticket = await env.rt.create(agent, "ticket", {"fields": {"summary": "second"}})
    other = await env.rt.create(agent, "other", {})
    assert (await _clock(env, ticket["number"]))["sla_name"] is None
    assert (await _clock(env, other["number"]))["sla_name"] == "other_only"
    if env.db.dialect == "postgresql":
        writes = [q for q in sent if not q.startswith("SELECT")]
        assert len(writes) == 2 and "BEGIN" not in sent, sent
        assert "sla_" not in writes[0] and "sla_clock" in writes[1], sent


async def test_a_feature_keeps_only_its_own_columns(tmp_env: Any) -> None:
    """``Runtime.open_with`` takes the columns features keep (the SLA clock's), never the order's
    own: a create whose opening names another column is refused and writes nothing."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")

    async def meddling(order: Any) -> dict[str, Any]:
        return {"status": "completed"}

    env.rt.open_with(meddling)
    with pytest.raises(ValueError, match="status"):
        await env.rt.create(agent, "ticket", {"fields": {"summary": "x"}})
    assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_work_order") == 0


def _with_webhook(events: str) -> dict[str, str]:
    return {**DESK, "routecard.yaml": f"""\
name: desk
plugins:
  webhook:
    allow_hosts: [127.0.0.1]
    endpoints:
      - {{name: erp, url: "http://127.0.0.1:9/hook", events: {events}}}
"""}


@pytest.mark.parametrize("events", ["[created]", "[completed]"])
async def test_a_webhook_decides_whether_a_create_is_alone(tmp_env: Any, sent: list[str], events: str) -> None:
    """A webhook endpoint that takes ``created`` makes the create one transaction with its
    outbox row; one that does not take it leaves the create alone (and gets no row)."""
    env = await tmp_env(_with_webhook(events))
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})
    sent.clear()
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "second"}})
    queued = await env.db.fetch("SELECT idempotency_key FROM rc_outbox WHERE kind = 'webhook'")
    assert len(queued) == (2 if events == "[created]" else 0)
    if env.db.dialect == "postgresql":
        assert ("BEGIN" in sent and "COMMIT" in sent) == (events == "[created]"), sent
        assert any(q.startswith("WITH parent AS") for q in sent) and view["number"] == "T-00002"


async def test_a_listener_that_says_nothing_counts_as_writing(tmp_env: Any) -> None:
    """A listener appended to ``after_change`` (no word on new orders) writes in the create's
    transaction: when it fails after writing, neither its row nor the order stays."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")

    async def listener(change: Change) -> None:
        await env.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)", f"heard:{change.order.number}")
        if change.order.state["fields"]["summary"] == "fail":
            raise RuntimeError("the listener failed")

    env.rt.after_change.append(listener)
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "fine"}})
    with pytest.raises(RuntimeError):
        await env.rt.create(agent, "ticket", {"fields": {"summary": "fail"}})
    assert [r["number"] for r in await env.db.fetch("SELECT number FROM rc_work_order")] == [view["number"]]
    assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_counter WHERE name LIKE 'heard:%'") == 1


async def test_a_listener_that_says_it_is_quiet_must_be(tmp_env: Any) -> None:
    """A listener that said it sends nothing for new orders, and then writes: on PostgreSQL the
    order was committed alone and the write is refused (a bug of the listener, made loud)."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")

    async def liar(change: Change) -> None:
        await env.db.execute("INSERT INTO rc_counter (name, value) VALUES ('liar', 1)")

    env.rt.listen(liar, quiet_on_create=lambda *_: True)
    if env.db.dialect == "postgresql":
        with pytest.raises(RuntimeError, match="only one"):
            await env.rt.create(agent, "ticket", {"fields": {"summary": "x"}})
        assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_counter WHERE name = 'liar'") == 0
    else:  # SQLite never sends a statement alone: the write is part of the create's transaction
        await env.rt.create(agent, "ticket", {"fields": {"summary": "x"}})
        assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_counter WHERE name = 'liar'") == 1


async def test_a_create_inside_a_callers_transaction_is_part_of_it(tmp_env: Any) -> None:
    """A form submitted or a rule's new work order: created inside a transaction the caller
    opened (whether it has sent anything yet or not), the order commits or rolls back with it."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")
    for under_way in (False, True):
        with pytest.raises(RuntimeError):
            async with env.db.transaction():
                if under_way:
                    await env.db.fetch("SELECT 1 AS one")
                view = await env.rt.create(agent, "ticket", {"fields": {"summary": "inside"}})
                await env.db.execute("UPDATE rc_work_order SET title = 'changed after' WHERE number = {}",
                                     view["number"])
                raise RuntimeError("the caller's other work failed")
    assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_work_order") == 0
    async with env.db.transaction():
        view = await env.rt.create(agent, "ticket", {"fields": {"summary": "inside"}})
        await env.db.execute("UPDATE rc_work_order SET title = 'changed after' WHERE number = {}", view["number"])
    assert await env.db.fetch_value("SELECT title FROM rc_work_order") == "changed after"


def _with_rule(templates: str) -> dict[str, str]:
    return {**DESK, "rules.yaml": OTHER + f"""\
---
kind: Rule
name: urgent_summaries
on: [created]
templates: {templates}
when: {{field: summary, equals: urgent}}
do:
  - set_priority: high
"""}


@pytest.mark.parametrize("templates", ["[ticket]", "[other]"])
async def test_a_rule_on_created_decides_whether_a_create_is_alone(tmp_env: Any, sent: list[str],
                                                                  templates: str) -> None:
    """A rule that reacts to new work orders of the template makes its create one transaction
    (the rule may write: here it raises the priority); a rule of another template does not."""
    env = await tmp_env(_with_rule(templates))
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})
    sent.clear()
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "urgent"}})
    assert view["priority"] == ("high" if templates == "[ticket]" else "normal")
    if env.db.dialect == "postgresql":
        assert ("BEGIN" in sent and "COMMIT" in sent) == (templates == "[ticket]"), sent


# -- a change to an existing order ----------------------------------------------------------

async def _ticket(env: Env) -> tuple[Any, str]:
    """The agent, and a new ticket's number."""
    agent = await env.actor("agent")
    return agent, (await env.rt.create(agent, "ticket", {"fields": {"summary": "x"}}))["number"]


async def _kinds(env: Env, number: str) -> list[str]:
    rows = await env.db.fetch("SELECT e.kind FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
                              "WHERE w.number = {} ORDER BY e.id", number)
    return [r["kind"] for r in rows]


async def test_a_change_nobody_listens_to_is_one_statement(tmp_env: Any, sent: list[str]) -> None:
    """An action processed on an order no rule, SLA, mail or webhook hears of: the order is read
    before the transaction, and on PostgreSQL the change (the order's version, the action, the
    audit event) is one statement without BEGIN and COMMIT."""
    env = await tmp_env(DESK)
    agent, number = await _ticket(env)
    sent.clear()
    view = await env.rt.process(agent, number, 1, "check")
    assert view["version"] == 2
    assert [a["state"] for a in await env.step_actions(number)] == ["processed", "pending"]
    assert await _kinds(env, number) == ["created", "action_processed"]
    if env.db.dialect == "postgresql":
        writes = [q for q in sent if not q.startswith("SELECT")]
        assert len(writes) == 1 and writes[0].startswith("WITH w AS (UPDATE rc_work_order"), sent
        assert "BEGIN" not in sent and "COMMIT" not in sent, sent


@pytest.mark.parametrize("change", ["update", "cancel"])
async def test_an_edit_or_a_cancel_nobody_listens_to_is_one_statement(tmp_env: Any, sent: list[str],
                                                                      change: str) -> None:
    """An edit or a cancel of an order no listener writes for: read before the transaction and
    saved in one statement on PostgreSQL, as an action processed is."""
    env = await tmp_env(DESK)
    agent, number = await _ticket(env)
    sent.clear()
    if change == "update":
        view = await env.rt.update(agent, number, 1, {"priority": "high", "fields": {"summary": "y"}})
        assert (view["priority"], view["fields"]["summary"]) == ("high", "y")
    else:
        view = await env.rt.cancel(agent, number, 1, "not needed")
        assert view["status"] == "cancelled"
    assert await _kinds(env, number) == ["created", "updated" if change == "update" else "cancelled"]
    if env.db.dialect == "postgresql":
        writes = [q for q in sent if not q.startswith("SELECT")]
        assert len(writes) == 1 and writes[0].startswith("WITH w AS (UPDATE rc_work_order"), sent
        assert "BEGIN" not in sent and "COMMIT" not in sent, sent


async def test_an_order_changed_after_it_was_read_is_a_conflict(tmp_env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read before the transaction, the order may change before the change is saved: the save
    finds another version and writes nothing (the action stays pending, no event)."""
    env = await tmp_env(DESK)
    agent, number = await _ticket(env)
    read = env.rt._load_for_change

    async def read_then_someone_else_writes(*args: Any) -> Any:
        order = await read(*args)
        await env.db.execute("UPDATE rc_work_order SET version = version + 1 WHERE number = {}", number)
        return order

    monkeypatch.setattr(env.rt, "_load_for_change", read_then_someone_else_writes)
    with pytest.raises(Conflict, match="changed by someone else"):
        await env.rt.process(agent, number, 1, "check")
    assert [a["state"] for a in await env.step_actions(number)] == ["pending", "pending"]
    assert await _kinds(env, number) == ["created"]


RULE = """kind: Rule
name: checked
on: [action_processed]
do:
  - set_priority: high
"""
DEFAULT_CC = """kind: Template
name: ticket
numbering: {prefix: "T-"}
default_cc: [archive@example.com]
fields:
  - {name: summary, type: input, required: true}
"""


def _listening(listener: str) -> dict[str, str]:
    """DESK with one listener that writes when an action of a ticket is processed."""
    if listener == "sla":
        return _with_sla()
    if listener == "rule":
        return {**DESK, "rule.yaml": RULE}
    if listener == "webhook":
        return _with_webhook("[action_processed]")
    defs = DESK["defs.yaml"]  # the default CC is mailed when the order completes
    start = defs.index("kind: Template")
    end = defs.index("---", start)
    return {**DESK, "defs.yaml": defs[:start] + DEFAULT_CC + defs[end:]}


async def _heard(env: Env, listener: str, number: str) -> bool:
    """Did ``listener`` write what it writes for the processed action?"""
    if listener == "sla":
        return (await _clock(env, number))["sla_clock"]["resolution"]["due"] is not None and \
            await env.db.fetch_value("SELECT COUNT(*) FROM rc_work_order WHERE number = {} AND sla_state = 'stopped'",
                                     number) == 1
    if listener == "rule":
        return (await env.state(number))["priority"] == "high"
    kind = "webhook" if listener == "webhook" else "email"
    return bool(await env.db.fetch_value("SELECT COUNT(*) FROM rc_outbox WHERE kind = {}", kind))


@pytest.mark.parametrize("listener", ["sla", "rule", "webhook", "default_cc"])
async def test_a_change_a_listener_writes_for_is_one_transaction(tmp_env: Any, sent: list[str],
                                                                 listener: str) -> None:
    """An SLA's clock, a rule, a webhook or the default CC's mail: what the listener writes for the
    change commits with it, in one transaction (each says it writes; were one to say it is quiet,
    its write would be refused after the change went alone)."""
    env = await tmp_env(_listening(listener))
    agent, number = await _ticket(env)
    first = await env.rt.process(agent, number, 1, "check")
    sent.clear()
    view = await env.rt.process(agent, number, first["version"], "route")  # the last action: the order completes
    assert view["status"] == "completed" and await _heard(env, listener, number)
    if env.db.dialect == "postgresql":
        assert "BEGIN" in sent and "COMMIT" in sent, sent


async def test_a_template_no_sla_covers_has_no_clock_to_read(tmp_env: Any, sent: list[str]) -> None:
    """An SLA for another template only: a ticket's change neither reads nor writes a clock and
    goes alone; the other template's order has its clock read and written in a transaction."""
    env = await tmp_env(OTHER_ONLY)
    agent, number = await _ticket(env)
    other = (await env.rt.create(agent, "other", {}))["number"]
    sent.clear()
    await env.rt.process(agent, number, 1, "check")
    ticket_sent = list(sent)
    sent.clear()
    await env.rt.update(agent, other, 1, {"priority": "high"})
    if env.db.dialect == "postgresql":
        assert not any("sla_" in q for q in ticket_sent) and "BEGIN" not in ticket_sent, ticket_sent
        assert any(q.startswith("SELECT sla_name") for q in sent) and "BEGIN" in sent, sent


async def test_a_clock_outlives_its_sla_covering_the_template(tmp_env: Any, tmp_path: Path) -> None:
    """An order whose clock started under an SLA that, in a later definition version, no longer
    covers its template: its changes still read the clock, which stops when the order completes."""
    sla = "---\nkind: SLA\nname: both\ntemplates: [{}]\ntargets: {{resolution: 1d}}\n"
    files = {**DESK, "other.yaml": OTHER + sla.format("ticket, other")}
    env = await tmp_env(files)
    agent, number = await _ticket(env)
    assert (await _clock(env, number))["sla_state"] == "running"
    later = write_workspace(tmp_path / "later", {**files, "other.yaml": OTHER + sla.format("other")})
    env.rt.reload(open_workspace(later))
    first = await env.rt.process(agent, number, 1, "check")
    await env.rt.process(agent, number, first["version"], "route")
    assert (await _clock(env, number))["sla_state"] == "stopped"
