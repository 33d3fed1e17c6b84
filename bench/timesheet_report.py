"""The timesheet summary over 1,000,000 time entries, grouped by customer and month, on SQLite and PostgreSQL.

Entries are spread over one year, on 10,000 work orders of 50 customers. Times, in the
same run (median of ``--rounds``):

- the ceiling: the bare aggregate of the same rows by customer (no months, no names);
- ``engine.runtime.reports.summary`` grouped by ``customer,month`` for the year (the
  months cut at local midnights of the workspace's zone);
- the same for one month (a date range the index on ``started_at`` narrows down).

Prints the query plan of the summary. Goal (issue 8): under 1 s on SQLite, the plan
using an index.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgdb import DEFAULT_SERVER, TICKET_DEFS, each_database  # noqa: E402
from engine.db import Database, connect  # noqa: E402
from engine.migrate import apply_workspace  # noqa: E402
from engine.runtime import SYSTEM, Runtime, add_user  # noqa: E402
from engine.runtime.reports import conditions, selection, summary  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

FILES = {
    "routecard.yaml": "name: time-bench\ntimezone: Europe/London\n",
    "defs.yaml": TICKET_DEFS,
}
BASE = dt.datetime(2026, 1, 1, 0, 0, tzinfo=dt.timezone.utc)
CUSTOMERS = 50
ORDERS = 10_000


async def preload(db: Database, entries: int) -> None:
    """Customers with a project each, work orders for them, and ``entries`` entries over one year."""
    start = int(BASE.timestamp())
    spacing = 365 * 24 * 3600 // entries
    if db.dialect == "sqlite":
        def series(n: int) -> str:
            return f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) SELECT x FROM c"
        moment = f"(strftime('%Y-%m-%d %H:%M:%S', {start} + x * {spacing}, 'unixepoch') || '+00:00')"
        until = f"(strftime('%Y-%m-%d %H:%M:%S', {start} + x * {spacing} + 300, 'unixepoch') || '+00:00')"
        now = f"(strftime('%Y-%m-%d %H:%M:%S', {start}, 'unixepoch') || '+00:00')"
    else:
        def series(n: int) -> str:
            return f"SELECT x FROM generate_series(1, {n}) AS x"
        moment = f"to_timestamp({start} + x * {spacing})"
        until = f"to_timestamp({start} + x * {spacing} + 300)"
        now = f"to_timestamp({start})"
    user = int(await db.fetch_value("SELECT id FROM rc_user WHERE login = 'agent'"))
    async with db.transaction():
        await db.execute(f"INSERT INTO rc_customer (name, label, hourly_rate) SELECT 'customer_' || x, "
                         f"'Customer ' || x, 90 FROM ({series(CUSTOMERS)}) AS s")
        await db.execute(f"INSERT INTO rc_project (customer_id, name, label) SELECT id, 'main', 'Main' FROM rc_customer")
        await db.execute(
            "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, group_name, "
            "customer_id, project_id, created_at, updated_at, version, definition_version, path) "
            f"SELECT 'T-' || x, 'ticket', 'support', 'triage', 'open', 'normal', 'Order ' || x, 'desk', "
            f"(x % {CUSTOMERS}) + 1, (x % {CUSTOMERS}) + 1, {now}, {now}, 1, '', '[]' FROM ({series(ORDERS)}) AS s")
        await db.execute(
            "INSERT INTO rc_time_entry (work_order_id, user_id, started_at, ended_at, minutes, billable, version) "
            f"SELECT (x % {ORDERS}) + 1, {user}, {moment}, {until}, 5 + x % 60, x % 3 <> 0, 1 "
            f"FROM ({series(entries)}) AS s")
    await db.execute("ANALYZE" if db.dialect == "sqlite" else "VACUUM ANALYZE")


async def timed(rounds: int, call: object) -> float:
    values = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        await call()  # type: ignore[operator]
        values.append(time.perf_counter() - t0)
    return statistics.median(values)


async def measure(label: str, url: str, root: Path, entries: int, rounds: int) -> None:
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    db = await connect(url)
    try:
        await db.start_pool()
        await add_user(db, workspace, "agent")
        began = time.perf_counter()
        await preload(db, entries)
        print(f"{label}: {entries:,} entries loaded in {time.perf_counter() - began:.1f} s")
        runtime = Runtime(workspace, db)
        year = selection(runtime, {"from": "2026-01-01", "to": "2026-12-31"})
        month = selection(runtime, {"from": "2026-06-01", "to": "2026-06-30"})

        async def ceiling() -> object:
            return await db.fetch(
                "SELECT w.customer_id, COUNT(*), SUM(e.minutes) FROM rc_time_entry e JOIN rc_work_order w "
                "ON w.id = e.work_order_id WHERE e.started_at >= {} AND e.started_at < {} GROUP BY w.customer_id",
                year.filters["from"], year.filters["to"])

        groups = await summary(runtime, SYSTEM, year, ("customer", "month"))
        assert sum(g["entries"] for g in groups) == entries, sum(g["entries"] for g in groups)
        bare = await timed(rounds, ceiling)
        full = await timed(rounds, lambda: summary(runtime, SYSTEM, year, ("customer", "month")))
        one = await timed(rounds, lambda: summary(runtime, SYSTEM, month, ("customer", "month")))
        print(f"  groups (customer x month): {len(groups)}")
        print(f"  bare aggregate by customer (ceiling)   {bare * 1000:8.1f} ms")
        print(f"  summary by customer and month, a year  {full * 1000:8.1f} ms   x{full / bare:.2f} the ceiling")
        print(f"  summary by customer and month, a month {one * 1000:8.1f} ms")
        where, args = conditions(runtime, SYSTEM, month)
        explain = "EXPLAIN QUERY PLAN" if db.dialect == "sqlite" else "EXPLAIN"
        plan = await db.fetch(
            f"{explain} SELECT w.customer_id, SUM(e.minutes) FROM rc_time_entry e JOIN rc_work_order w "
            f"ON w.id = e.work_order_id WHERE {' AND '.join(where)} GROUP BY w.customer_id", *args)
        print("  plan (one month):")
        for row in plan:
            print("    " + str(row.get("detail") or row.get("QUERY PLAN") or row))
        print(f"  goal (a year's summary < 1 s): {'met' if full < 1 else 'NOT met'}")
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print(f"Timesheet summary: {args.entries:,} entries over a year, {ORDERS:,} orders of {CUSTOMERS} customers, "
          "grouped by customer and month. Goal: < 1 s on SQLite.")
    async for label, url, root in each_database(FILES, args.postgres, sqlite_only=args.sqlite_only):
        await measure(label, url, root, args.entries, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
