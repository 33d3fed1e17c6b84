"""Work-order numbers (``engine.runtime.numbering``): counted from the template's start, each
given once, across servers, after an upgrade from counter rows, and after a backup is restored.

On PostgreSQL a template's numbers come from a sequence of its own, made by the first create a
runtime sees; on SQLite from the template's ``rc_counter`` row. Both must count alike.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from conftest import PG_URL, _admin, _with_database
from engine.archive import export_archive, import_archive, open_archive
from engine.db import connect
from engine.runtime import Runtime
from engine.runtime.actors import load_actor
from engine.runtime.attachments import disk_store
from engine.workspace import open_workspace
from tests.runtime_helpers import Env, make_env, write_workspace

DESK = {"routecard.yaml": "name: numbers\n", "defs.yaml": """\
kind: Group
name: desk
supervisor: boss
members: [agent]
---
kind: Role
name: agent
groups: [desk]
permissions: [order.create, order.edit, order.transition]
---
kind: Template
name: ticket
numbering: {prefix: "N-", digits: 3, start: 7}
---
kind: Queue
name: desk_queue
templates: [ticket]
steps:
  - name: triage
    group: desk
"""}


@pytest.fixture
async def desk(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    env = await make_env(write_workspace(tmp_path / "desk", DESK), database_url)
    try:
        yield env
    finally:
        await env.db.close()


async def create(env: Env, runtime: Runtime | None = None) -> str:
    view = await (runtime or env.rt).create(await env.actor("agent"), "ticket", {})
    return str(view["number"])


async def sequences(env: Env) -> list[str]:
    if env.db.dialect != "postgresql":
        return []
    rows = await env.db.fetch("SELECT sequencename AS name FROM pg_sequences WHERE sequencename LIKE 'rc_number_%'")
    return [str(r["name"]) for r in rows]


async def test_numbers_count_up_from_the_template_start(desk: Env) -> None:
    assert [await create(desk) for _ in range(3)] == ["N-007", "N-008", "N-009"]
    if desk.db.dialect == "postgresql":
        assert await sequences(desk) == ["rc_number_ticket"]
        # the counter row was written once, when the sequence was made, and is left since
        assert await desk.db.fetch_value("SELECT value FROM rc_counter WHERE name = 'number:ticket'") == 6


async def test_two_servers_number_a_new_template_at_once(desk: Env) -> None:
    """Two runtimes on their own connections, creating the template's first orders together:
    one makes the sequence, the other finds it; no number is given twice or skipped."""
    if desk.db.dialect != "postgresql":
        pytest.skip("SQLite is served by one process (`routecard serve`)")
    other_db = await connect(desk.db.url)
    await other_db.start_pool()
    try:
        other = Runtime(desk.workspace, other_db)
        numbers = await asyncio.gather(*(create(desk, desk.rt if i % 2 else other) for i in range(12)))
    finally:
        await other_db.close()
    assert sorted(numbers) == [f"N-{n:03d}" for n in range(7, 19)]


async def test_first_creates_together_check_the_sequence_once(desk: Env, sent: list[str]) -> None:
    """A burst of a template's first creates in one server (as after a restart): one of them
    checks the sequence on a connection of its own, the others wait for it, rather than each
    opening a connection (forking a backend each) to check it again."""
    numbers = await asyncio.gather(*(create(desk) for _ in range(8)))
    assert sorted(numbers) == [f"N-{n:03d}" for n in range(7, 15)]
    if desk.db.dialect == "postgresql":
        assert sum(q.startswith("DO $ensure$") for q in sent) == 1, sent


async def test_a_database_numbered_by_its_counter_row_goes_on_from_it(desk: Env) -> None:
    """A database whose numbers were counted in ``rc_counter`` (as before sequences, and always on
    SQLite): the next number follows the row's, not the template's start."""
    await desk.db.execute("INSERT INTO rc_counter (name, value) VALUES ('number:ticket', 41)")
    assert [await create(desk) for _ in range(2)] == ["N-042", "N-043"]


async def test_a_first_number_taken_in_a_transaction_rolled_back(desk: Env) -> None:
    """The template's first create runs inside a transaction that then fails: the sequence made
    for it stays (it was made on a connection of its own), and the next create works."""
    with pytest.raises(RuntimeError):
        async with desk.db.transaction():
            await desk.db.fetch("SELECT 1")  # a transaction under way, as a form's or a rule's
            assert await create(desk) == "N-007"
            raise RuntimeError("the form's other work failed")
    assert await desk.db.fetch_value("SELECT COUNT(*) FROM rc_work_order") == 0
    # PostgreSQL's sequence does not give a number back (a gap, as for any create that fails);
    # SQLite's counter row rolls back with the transaction
    assert await create(desk) == ("N-008" if desk.db.dialect == "postgresql" else "N-007")


@pytest.fixture(params=["sqlite", "postgresql"])
async def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database to restore into: an SQLite file, or a PostgreSQL database of its own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'target.db'}"
        return
    if not PG_URL:
        pytest.skip("PostgreSQL not configured (set ROUTECARD_TEST_POSTGRES)")
    name = f"routecard_test_target_{secrets.token_hex(4)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(PG_URL, name)
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_numbers_go_on_after_a_backup_is_restored(desk: Env, target_url: str, tmp_path: Path) -> None:
    """Exported from either database and imported into either: the next number follows the last
    one given, even where the target held a number sequence of an earlier database."""
    assert [await create(desk) for _ in range(3)] == ["N-007", "N-008", "N-009"]
    source_root = tmp_path / "desk"
    out = tmp_path / "backup.zip"
    await export_archive(desk.db, desk.workspace, source_root, disk_store(desk.workspace.settings, source_root), out)
    target_root = write_workspace(tmp_path / "target", DESK)
    target = await connect(target_url)
    try:
        if target.dialect == "postgresql":  # left by an earlier database in the same place
            await target.execute("CREATE SEQUENCE rc_number_ticket START WITH 500")
        workspace = open_workspace(target_root)
        with open_archive(out) as opened:
            await import_archive(target, opened, disk_store(workspace.settings, target_root))
        agent = await load_actor(target, workspace, login="agent")
        runtime = Runtime(workspace, target)
        numbers: list[Any] = [(await runtime.create(agent, "ticket", {}))["number"] for _ in range(2)]
    finally:
        await target.close()
    assert numbers == ["N-010", "N-011"]
