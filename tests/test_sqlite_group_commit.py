"""SQLite's group commit (engine/sqlite.py): transactions close together share one commit,
and each keeps every promise of a transaction of its own."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.db import Database, connect
from engine.sqlite import FALLBACK_CHECKPOINT, GROUP_LIMIT, GroupLost, SharedSQLiteEngine


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    db = await connect(f"sqlite:///{tmp_path}/group.db")
    await db.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, parent INTEGER "
                     "REFERENCES item (id) DEFERRABLE INITIALLY DEFERRED)")
    try:
        yield db
    finally:
        await db.close()


def engine_of(db: Database) -> SharedSQLiteEngine:
    assert isinstance(db.engine, SharedSQLiteEngine)
    return db.engine


def committed_names(db: Database) -> set[str]:
    """What another connection sees: only committed rows."""
    path = engine_of(db).path
    with sqlite3.connect(path) as other:
        return {row[0] for row in other.execute("SELECT name FROM item")}


async def test_transactions_started_together_share_a_commit_and_each_returns_after_it(sqlite_db: Database) -> None:
    db = sqlite_db
    seen_after_return: dict[str, bool] = {}

    async def one(name: str) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", name)
        seen_after_return[name] = name in committed_names(db)

    before = engine_of(db).commits
    names = [f"n{i}" for i in range(40)]
    await asyncio.gather(*(one(name) for name in names))
    commits = engine_of(db).commits - before
    assert committed_names(db) == set(names)
    assert all(seen_after_return.values()) and len(seen_after_return) == 40
    assert 1 <= commits < 10, commits  # forty transactions, a handful of commits


async def test_a_group_never_grows_past_its_limit(sqlite_db: Database) -> None:
    db = sqlite_db

    async def one(i: int) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", f"n{i}")

    before = engine_of(db).commits
    count = GROUP_LIMIT * 3
    await asyncio.gather(*(one(i) for i in range(count)))
    assert engine_of(db).commits - before >= 3
    assert len(committed_names(db)) == count


async def test_a_failing_transaction_takes_only_its_own_work_back(sqlite_db: Database) -> None:
    db = sqlite_db

    async def one(i: int) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", f"n{i}")
            if i % 3 == 0:
                await db.execute("INSERT INTO item (name) VALUES ({})", f"extra{i}")
                raise ValueError(f"transaction {i} gives up")

    results = await asyncio.gather(*(one(i) for i in range(12)), return_exceptions=True)
    failed = {i for i, result in enumerate(results) if isinstance(result, ValueError)}
    assert failed == {0, 3, 6, 9}
    assert committed_names(db) == {f"n{i}" for i in range(12) if i % 3}


async def test_a_constraint_error_in_one_transaction_leaves_the_group_whole(sqlite_db: Database) -> None:
    db = sqlite_db

    async def one(name: str) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", name)

    results = await asyncio.gather(one("a"), one("b"), one("a"), one("c"), return_exceptions=True)
    assert [type(r).__name__ for r in results] == ["NoneType", "NoneType", "IntegrityError", "NoneType"]
    assert committed_names(db) == {"a", "b", "c"}


async def test_when_the_commit_fails_every_transaction_of_the_group_raises(sqlite_db: Database) -> None:
    db = sqlite_db
    async with db.transaction():
        await db.execute("INSERT INTO item (name) VALUES ({})", "before")

    async def one(name: str, parent: int | None) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name, parent) VALUES ({}, {})", name, parent)

    # the deferred foreign key is checked at COMMIT: the group holding row 999 cannot commit
    results = await asyncio.gather(one("x", None), one("y", 999), one("z", None), return_exceptions=True)
    assert all(isinstance(r, GroupLost) for r in results), results
    assert committed_names(db) == {"before"}
    async with db.transaction():  # the writer is usable again
        await db.execute("INSERT INTO item (name) VALUES ({})", "after")
    assert committed_names(db) == {"before", "after"}


async def test_reads_outside_transactions_see_only_committed_work(sqlite_db: Database) -> None:
    db = sqlite_db

    async def read_elsewhere() -> list[dict[str, object]]:
        return await db.fetch("SELECT name FROM item")

    async with db.transaction():
        await db.execute("INSERT INTO item (name) VALUES ({})", "pending")
        # another request (no transaction of its own) reads while this one is open
        outside = await asyncio.create_task(read_elsewhere(), context=contextvars.Context())
        inside = await db.fetch("SELECT name FROM item")
    assert outside == [] and inside == [{"name": "pending"}]
    assert await read_elsewhere() == [{"name": "pending"}]


async def test_a_write_outside_a_transaction_commits_the_open_group_first(sqlite_db: Database) -> None:
    db = sqlite_db
    order: list[str] = []

    async def grouped(name: str) -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", name)
        order.append(name)

    async def alone() -> None:
        await db.execute("INSERT INTO item (name) VALUES ({})", "alone")
        order.append("alone")

    await asyncio.gather(grouped("g1"), grouped("g2"), alone())
    assert committed_names(db) == {"g1", "g2", "alone"}
    assert set(order) == {"g1", "g2", "alone"}
    rows = await db.fetch("SELECT name FROM item ORDER BY id")
    assert [r["name"] for r in rows] == ["g1", "g2", "alone"]


async def test_a_failing_transaction_raises_once_the_work_before_it_is_committed(sqlite_db: Database) -> None:
    db = sqlite_db
    seen: dict[str, bool] = {}

    async def first() -> None:
        async with db.transaction():
            await db.execute("INSERT INTO item (name) VALUES ({})", "a")

    async def second() -> None:
        try:
            async with db.transaction():
                await db.execute("INSERT INTO item (name) VALUES ({})", "a")
        except sqlite3.IntegrityError:
            # like a retry reading what the winner made: it must be there to read
            seen["a"] = "a" in committed_names(db)

    await asyncio.gather(first(), second())
    assert seen == {"a": True}


def rows_in_the_database_file(path: str) -> int:
    """Rows the database file itself holds, leaving out what is only in the WAL."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as file_only:
        return int(file_only.execute("SELECT count(*) FROM item").fetchone()[0])


async def rows_in_file_once_settled(path: str, expected: int) -> int:
    """The rows in the file once they are ``expected`` or 4 s have passed (the thread runs on its
    own time; a read without locks in the middle of a checkpoint may fail, and is read again)."""
    found = -1
    for _ in range(200):
        with contextlib.suppress(sqlite3.DatabaseError):
            found = rows_in_the_database_file(path)
        if found == expected:
            break
        await asyncio.sleep(0.02)
    return found


async def test_commits_reach_the_database_file_through_the_checkpointer_not_the_writer(sqlite_db: Database) -> None:
    """The writer leaves checkpoints to a thread of their own (they stopped the event loop for
    15-25 ms each), and checkpoints itself only when the WAL is far longer than usual."""
    db = sqlite_db
    engine = engine_of(db)
    writer = engine.writer()
    assert writer.execute("PRAGMA wal_autocheckpoint").fetchone()["wal_autocheckpoint"] == FALLBACK_CHECKPOINT
    before = engine.checkpointer.checkpoints
    for batch in range(20):
        await asyncio.gather(*(one_insert(db, f"c{batch}-{i}") for i in range(10)))
    assert await rows_in_file_once_settled(engine.path, 200) == 200
    assert engine.checkpointer.checkpoints > before
    await db.close()  # ends the thread; a later statement starts it again
    assert not engine.checkpointer.running
    await one_insert(db, "after")
    assert await rows_in_file_once_settled(engine.path, 201) == 201


async def one_insert(db: Database, name: str) -> None:
    async with db.transaction():
        await db.execute("INSERT INTO item (name) VALUES ({})", name)
