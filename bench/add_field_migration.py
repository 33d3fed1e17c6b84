"""Benchmark: plan and apply "add one field" on a template holding 1,000,000 work orders.

For SQLite and PostgreSQL it prints the time to plan and to apply the change, and
two references measured in the same run on the same table: the bare ALTER TABLE
... ADD COLUMN (the least a migration can cost) and a full copy of the table (what a
table rewrite would cost). On PostgreSQL it also reports whether the table was
rewritten (its relfilenode changes when it is). Goal: no table rewrite on PostgreSQL.

    .venv/bin/python bench/add_field_migration.py [--rows 1000000] [--postgres URL] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench.pgdb import DEFAULT_SERVER, scratch_database  # noqa: E402
from engine.db import Database, connect  # noqa: E402
from engine.migrate import apply_workspace, plan_for  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

V1 = """\
kind: Template
name: order
fields:
  - {name: customer_ref, type: input, max_length: 40}
  - {name: notes, type: text}
  - {name: amount, type: decimal}
---
kind: Queue
name: main
templates: [order]
steps:
  - name: review
  - name: ship
"""
V2 = V1.replace("  - {name: amount, type: decimal}\n", "  - {name: amount, type: decimal}\n  - {name: rush, type: boolean}\n")


def write(root: Path, defs: str) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / "routecard.yaml").write_text("name: bench\n")
    (root / "defs.yaml").write_text(defs)


async def populate(db: Database, rows: int) -> None:
    if db.dialect == "sqlite":
        source = (f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {rows}) "
                  "SELECT x FROM c")
        number = "'B-' || x"
        title = "'Order ' || x"
        ref = "'C-' || id"
    else:
        source = f"SELECT x FROM generate_series(1, {rows}) AS x"
        number = "'B-' || x"
        title = "'Order ' || x"
        ref = "'C-' || id"
    async with db.transaction():
        await db.execute(
            "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, created_at, "
            f"updated_at, version, definition_version) SELECT {number}, 'order', 'main', 'review', 'open', "
            f"'normal', {title}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, '' FROM ({source}) AS s"
        )
        await db.execute(
            f"INSERT INTO tpl_order (work_order_id, customer_ref, notes, amount) "
            f"SELECT id, {ref}, 'a note', 12.50 FROM rc_work_order"
        )


async def relfilenode(db: Database) -> int | None:
    if db.dialect != "postgresql":
        return None
    return int(await db.fetch_value("SELECT relfilenode FROM pg_class WHERE relname = 'tpl_order'"))


async def run(url: str, label: str, rows: int, tmp: Path) -> None:
    root = tmp / f"ws_{label}"
    write(root, V1)
    await apply_workspace(open_workspace(root), url)
    db = await connect(url)
    try:
        start = time.perf_counter()
        await populate(db, rows)
        t_fill = time.perf_counter() - start
        count = await db.fetch_value("SELECT COUNT(*) AS n FROM tpl_order")
        before = await relfilenode(db)
        write(root, V2)
        start = time.perf_counter()
        plan = await plan_for(open_workspace(root), url)
        t_plan = time.perf_counter() - start
        start = time.perf_counter()
        await apply_workspace(open_workspace(root), url)
        t_apply = time.perf_counter() - start
        after = await relfilenode(db)
        # references, on the same table
        start = time.perf_counter()
        async with db.transaction():
            await db.execute('ALTER TABLE "tpl_order" ADD COLUMN "bench_probe" BOOLEAN DEFAULT null')
        t_alter = time.perf_counter() - start
        start = time.perf_counter()
        async with db.transaction():
            await db.execute('CREATE TABLE "tpl_order_copy" AS SELECT * FROM "tpl_order"')
        t_copy = time.perf_counter() - start
    finally:
        await db.close()
    [step] = plan.changes
    print(f"{label}: {count:,} rows in tpl_order (filled in {t_fill:.1f} s)")
    print(f"  plan  add field `rush`           {t_plan * 1000:9.1f} ms   ({step.op}, {step.rows:,} rows start empty)")
    print(f"  apply add field `rush`           {t_apply * 1000:9.1f} ms")
    print(f"  ref   bare ALTER TABLE ADD COLUMN {t_alter * 1000:9.1f} ms")
    print(f"  ref   full table copy            {t_copy * 1000:9.1f} ms")
    print(f"  ratio apply / bare ALTER          {t_apply / t_alter:9.1f}x")
    print(f"  ratio apply / table copy          {t_apply / t_copy:9.3f}x")
    if before is not None:
        print(f"  table rewritten by apply: {'YES' if before != after else 'no'} (relfilenode {before} -> {after})")
    else:
        print("  SQLite: ADD COLUMN changes only the schema record; rows are not touched")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        await run(f"sqlite:///{tmp}/bench.db", "SQLite", args.rows, Path(tmp))
        if args.sqlite_only:
            return
        async with scratch_database(args.postgres) as url:
            if url is not None:
                await run(url, "PostgreSQL", args.rows, Path(tmp))


if __name__ == "__main__":
    asyncio.run(main())
