"""Helpers for migration tests: write workspaces, apply them, put work orders in the database."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

from engine.db import Database
from engine.identifiers import quote
from engine.migrate import Plan, apply_workspace, plan_for
from engine.workspace import open_workspace


def write_workspace(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name -> YAML, dedented) into ``root``; routecard.yaml defaults to a minimal one."""
    root.mkdir(parents=True, exist_ok=True)
    files = {"routecard.yaml": "name: test\n", **files}
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


async def plan(root: Path, url: str) -> Plan:
    return await plan_for(open_workspace(root), url)


async def apply(root: Path, url: str, *, allow_destructive: bool = False) -> Plan:
    return await apply_workspace(open_workspace(root), url, allow_destructive=allow_destructive)


async def insert_order(db: Database, number: str, *, template: str = "order", queue: str = "main",
                       step: str = "review", status: str = "open", fields: dict[str, Any] | None = None) -> int:
    """Insert a work order and its custom-field row the way the runtime stores them."""
    now = dt.datetime.now(dt.timezone.utc)
    async with db.transaction():
        await db.execute(
            "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, created_at, "
            "updated_at, version, definition_version) VALUES ({}, {}, {}, {}, {}, 'normal', {}, {}, {}, 1, '')",
            number, template, queue, step, status, f"Order {number}", now, now,
        )
        order_id = await db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
        fields = fields or {}
        names = ["work_order_id", *fields]
        columns = ", ".join(quote(n) for n in names)
        marks = ", ".join("{}" for _ in names)
        await db.execute(
            f"INSERT INTO {quote('tpl_' + template)} ({columns}) VALUES ({marks})", order_id, *fields.values()
        )
    return int(order_id)


async def column_values(db: Database, table: str, column: str) -> list[Any]:
    """The values of one column, in row order."""
    rows = await db.fetch(f"SELECT {quote(column)} AS v FROM {quote(table)} ORDER BY id")
    return [row["v"] for row in rows]


async def columns_of(db: Database, table: str) -> set[str]:
    if db.dialect == "sqlite":
        return {r["name"] for r in await db.fetch(f"PRAGMA table_info({quote(table)})")}
    rows = await db.fetch(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = {}", table)
    return {r["column_name"] for r in rows}


BOOKKEEPING = {("rc_api_token", "last_used_at")}
"""Columns any request may write, a refused one too (when a token was last used): not compared."""


async def dump(db: Database) -> dict[str, Any]:
    """Every Routecard table with all its rows and columns, to prove that nothing changed.

    ``BOOKKEEPING`` columns are left out of the rows (they are still listed among the columns).
    """
    if db.dialect == "sqlite":
        names = [r["name"] for r in await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")]
    else:
        names = [r["table_name"] for r in await db.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")]
    out: dict[str, Any] = {}
    for name in sorted(n for n in names if n.startswith(("rc_", "tpl_"))):
        out[name] = {
            "columns": sorted(await columns_of(db, name)),
            "rows": [sorted((k, str(v)) for k, v in row.items() if (name, k) not in BOOKKEEPING)
                     for row in await db.fetch(f"SELECT * FROM {quote(name)} ORDER BY id")],
        }
    return out
