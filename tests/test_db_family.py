"""``Database.insert_family``: a row and rows referring to it, all or none, on both databases.

On PostgreSQL they are one statement; on SQLite the parent's id is read from the cursor and
bound where each child writes ``ROW_ID``, wherever and however often it stands.
"""

from __future__ import annotations

import pytest

from engine.db import ROW_ID, Database
from engine.errors import Invalid

PARENT = "INSERT INTO fam_parent (title) VALUES ({})"
TAGS = f"INSERT INTO fam_child (note, parent_id, position) VALUES ({{}}, {ROW_ID}, {{}}), ({{}}, {ROW_ID}, {{}})"
LAST = f"INSERT INTO fam_child (note, position, parent_id) VALUES ({{}}, {{}}, {ROW_ID})"


async def _tables(db: Database) -> None:
    key = "INTEGER PRIMARY KEY" if db.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
    await db.execute(f"CREATE TABLE fam_parent (id {key}, title VARCHAR(20) NOT NULL)")
    await db.execute(f"CREATE TABLE fam_child (id {key}, note VARCHAR(20) NOT NULL, "
                     "parent_id BIGINT NOT NULL REFERENCES fam_parent (id), position INTEGER NOT NULL UNIQUE)")


async def _rows(db: Database) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    return (await db.fetch("SELECT id, title FROM fam_parent ORDER BY id"),
            await db.fetch("SELECT note, parent_id, position FROM fam_child ORDER BY position"))


async def test_children_get_the_new_id_wherever_it_stands(db: Database) -> None:
    await _tables(db)
    await db.execute("INSERT INTO fam_parent (title) VALUES ({})", "earlier")
    first = await db.insert_family(PARENT, ["first"], [(TAGS, ["a", 1, "b", 2]), (LAST, ["c", 3])])
    async with db.transaction():
        second = await db.insert_family(PARENT, ["second"], [(LAST, ["d", 4])])
    parents, children = await _rows(db)
    assert [p["title"] for p in parents] == ["earlier", "first", "second"]
    assert [first, second] == [p["id"] for p in parents[1:]]
    assert children == [{"note": "a", "parent_id": first, "position": 1}, {"note": "b", "parent_id": first, "position": 2},
                        {"note": "c", "parent_id": first, "position": 3}, {"note": "d", "parent_id": second, "position": 4}]


async def test_a_failing_child_leaves_nothing(db: Database) -> None:
    await _tables(db)
    await db.insert_family(PARENT, ["kept"], [(LAST, ["a", 1])])
    before = await _rows(db)
    with pytest.raises(Exception):  # the driver's unique violation  # noqa: B017, PT011
        await db.insert_family(PARENT, ["lost"], [(LAST, ["b", 2]), (LAST, ["c", 1])])
    assert await _rows(db) == before


async def test_text_with_nul_in_a_child_is_refused_before_anything_is_written(db: Database) -> None:
    await _tables(db)
    with pytest.raises(Invalid):
        await db.insert_family(PARENT, ["fine"], [(LAST, ["bad\x00note", 1])])
    assert await _rows(db) == ([], [])
