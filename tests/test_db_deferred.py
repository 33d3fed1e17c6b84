"""Statements that wait (``Database.defer``) and transactions begun when first used.

On PostgreSQL a transaction sends BEGIN just before its first statement, and a statement
given to ``defer`` waits for the next one or for the end of the transaction: sent alone
when nothing else comes, without BEGIN and COMMIT. What is checked here is what the
server receives (every query asyncpg sends is recorded) and that the transaction stays
all-or-nothing either way. On SQLite ``defer`` runs the statement at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from engine.db import Database

from tests.runtime_helpers import ORDER, Env, ecommerce, tmp_env  # noqa: F401 - fixtures


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every query asyncpg sends to PostgreSQL during the test, as sent (without a final semicolon)."""
    queries: list[str] = []
    for name in ("execute", "fetch"):
        original = getattr(asyncpg.connection.Connection, name)

        def recording(self: Any, query: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            queries.append(query.strip().rstrip(";"))
            return _original(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.connection.Connection, name, recording)
    yield queries


async def _table(db: Database) -> None:
    await db.execute("CREATE TABLE deferred_t (id INTEGER PRIMARY KEY, note VARCHAR(20) NOT NULL)")


async def _notes(db: Database) -> list[str]:
    return [r["note"] for r in await db.fetch("SELECT note FROM deferred_t ORDER BY id")]


async def test_a_lone_deferred_statement_is_sent_alone(db: Database, sent: list[str]) -> None:
    await _table(db)
    sent.clear()
    async with db.transaction():
        await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "alone")
        if db.dialect == "postgresql":
            assert sent == []  # nothing yet: it waits for the end
    assert await _notes(db) == ["alone"]
    if db.dialect == "postgresql":
        assert sent[:1] == ["INSERT INTO deferred_t (id, note) VALUES ($1, $2)"]
        assert "BEGIN" not in sent and "COMMIT" not in sent


async def test_an_empty_transaction_sends_nothing(db: Database, sent: list[str]) -> None:
    sent.clear()
    async with db.transaction():
        pass
    if db.dialect == "postgresql":
        assert sent == []


async def test_a_later_statement_sends_begin_and_the_deferred_first(db: Database, sent: list[str]) -> None:
    await _table(db)
    sent.clear()
    async with db.transaction():
        await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "first")
        await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 2, "second")
        # a read in the transaction sees what was deferred before it
        assert [r["note"] for r in await db.fetch("SELECT note FROM deferred_t ORDER BY id")] == ["first", "second"]
    if db.dialect == "postgresql":
        assert [q.split(" VALUES")[0] for q in sent] == [
            "BEGIN", "INSERT INTO deferred_t (id, note)", "INSERT INTO deferred_t (id, note)",
            "SELECT note FROM deferred_t ORDER BY id", "COMMIT"]
    assert await _notes(db) == ["first", "second"]


async def test_two_deferred_statements_commit_together_or_not_at_all(db: Database, sent: list[str]) -> None:
    await _table(db)
    with pytest.raises(Exception, match="(?i)unique|constraint"):
        async with db.transaction():
            await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "kept?")
            await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "clash")
    assert await _notes(db) == []
    if db.dialect == "postgresql":
        assert "BEGIN" in sent and "ROLLBACK" in sent and "COMMIT" not in sent
    # the connection went back to the pool clean: the next transaction works
    async with db.transaction():
        await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 3, "after")
    assert await _notes(db) == ["after"]


async def test_a_failing_lone_statement_raises_at_the_end_and_writes_nothing(db: Database) -> None:
    await _table(db)
    await db.execute("INSERT INTO deferred_t (id, note) VALUES (1, 'there')")
    with pytest.raises(Exception, match="(?i)unique|constraint"):
        async with db.transaction():
            await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "clash")
    assert await _notes(db) == ["there"]


async def test_an_exception_before_the_end_sends_nothing_deferred(db: Database, sent: list[str]) -> None:
    await _table(db)
    sent.clear()
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "dropped")
            raise RuntimeError("changed my mind")
    if db.dialect == "postgresql":
        assert sent == []  # neither the statement nor BEGIN/ROLLBACK went out
    assert await _notes(db) == []


async def test_deferred_text_with_nul_is_refused_at_once(db: Database) -> None:
    from engine.errors import Invalid

    await _table(db)
    with pytest.raises(Invalid):
        async with db.transaction():
            await db.defer("INSERT INTO deferred_t (id, note) VALUES ({}, {})", 1, "a\x00b")
    assert await _notes(db) == []


DESK = {"routecard.yaml": "name: desk\n", "defs.yaml": """\
kind: Group
name: desk
members: [agent]
---
kind: Role
name: agent
groups: [desk]
permissions: [order.create]
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


async def test_a_create_sends_its_number_then_one_statement(tmp_env: Any, sent: list[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A create of a template without rules, SLAs or webhooks: on PostgreSQL two statements
    (number and id; the order with its fields, actions, event and idempotency key) on one
    connection, neither BEGIN nor COMMIT."""
    env = await tmp_env(DESK)
    agent = await env.actor("agent")
    await env.rt.create(agent, "ticket", {"fields": {"summary": "first"}})  # the template's first number
    taken: list[object] = []
    original = asyncpg.pool.Pool._acquire

    def acquire(self: Any, *args: Any, **kwargs: Any) -> Any:
        taken.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(asyncpg.pool.Pool, "_acquire", acquire)
    sent.clear()
    view = await env.rt.create(agent, "ticket", {"fields": {"summary": "second"}}, idempotency_key="k-1")
    acquired = len(taken)
    writes = [q for q in sent if not q.startswith("SELECT") or "nextval" in q]
    order = (await env.db.fetch("SELECT id, number FROM rc_work_order WHERE number = {}", view["number"]))[0]
    assert view["number"] == "T-00002" and view["fields"] == {"summary": "second"}
    assert await env.db.fetch_value("SELECT work_order_id FROM rc_idempotency WHERE key = 'k-1'") == order["id"]
    assert [r["action"] for r in await env.db.fetch(
        "SELECT action FROM rc_step_action WHERE work_order_id = {} ORDER BY action", order["id"])] == ["check", "route"]
    assert await env.db.fetch_value(
        "SELECT COUNT(*) FROM rc_event WHERE work_order_id = {} AND kind = 'created'", order["id"]) == 1
    if env.db.dialect == "postgresql":
        assert len(writes) == 2 and writes[0].startswith("SELECT nextval(") \
            and writes[1].startswith("WITH parent AS (INSERT INTO rc_work_order"), sent
        # one connection for the idempotency key's lookup, one for the order: its number goes ahead of
        # the order's transaction, on that connection
        assert "no_wait" in writes[0] and acquired == 2


async def test_a_create_whose_listeners_write_is_one_transaction(ecommerce: Env, sent: list[str]) -> None:
    """The e-commerce order starts an SLA clock: its UPDATE and the order's insert commit together."""
    lukas = await ecommerce.actor("lukas.maier")
    await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    sent.clear()
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    assert await ecommerce.db.fetch_value(
        "SELECT sla_state FROM rc_work_order WHERE number = {}", view["number"]) is not None
    if ecommerce.db.dialect == "postgresql":
        begin, commit = sent.index("BEGIN"), sent.index("COMMIT")
        inside = sent[begin + 1:commit]
        assert inside[0].startswith("WITH parent AS (INSERT INTO rc_work_order"), sent
        assert any(q.startswith("UPDATE rc_work_order SET sla_") for q in inside), sent
        assert not any(q.startswith("SELECT sla_name") for q in sent), sent  # a new order's clock is not read


async def test_the_number_is_taken_without_waiting_for_the_disk(ecommerce: Env) -> None:
    """The number's own commit is asynchronous (its WAL is flushed by the order's commit, which
    comes after it): the statement sent ahead of the order's transaction turns synchronous_commit
    off for its own transaction alone."""
    from engine.runtime.service import _RESERVE_ALONE

    db = ecommerce.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite takes the number in the order's own transaction")
    lukas = await ecommerce.actor("lukas.maier")
    first = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    async with db.transaction():
        row = (await db.fetch(_RESERVE_ALONE, "rc_number_customer_order", ecommerce.rt._order_ids))[0]
        assert await db.fetch_value("SHOW synchronous_commit") == "off"
    assert await db.fetch_value("SHOW synchronous_commit") == "on"
    second = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    numbers = [int(re.findall(r"\d+", view["number"])[-1]) for view in (first, second)]
    assert numbers[0] + 2 == numbers[1] == int(row["value"]) + 1


async def test_a_create_inside_a_transaction_under_way_leaves_it_waiting_for_the_disk(ecommerce: Env) -> None:
    """A form submitted or a rule's new work order creates inside a transaction already under
    way: its number is part of that transaction, which commits waiting for the disk as ever.
    Ahead of a transaction that has sent nothing, the number commits on its own."""
    db = ecommerce.db
    if db.dialect != "postgresql":
        pytest.skip("SQLite takes the number in the order's own transaction")
    lukas = await ecommerce.actor("lukas.maier")
    async with db.transaction():
        await db.fetch("SELECT 1")  # under way
        inside = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
        assert await db.fetch_value("SHOW synchronous_commit") == "on"
    async with db.transaction():  # nothing sent yet: the number goes ahead of BEGIN
        ahead = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
        assert await db.fetch_value("SHOW synchronous_commit") == "on"
    numbers = {r["number"] for r in await db.fetch("SELECT number FROM rc_work_order")}
    assert {inside["number"], ahead["number"]} <= numbers
