"""The SLA sweep over 1,000,000 open work orders, on SQLite and PostgreSQL.

Every order runs an SLA clock (``sla_state = 'running'``) whose next moment
(``sla_next_at``) is spread one second apart, so a sweep at a later moment finds the
orders that became due since the last one. Each round moves the moment on by ``--due``
seconds (so ``--due`` orders are due) and times, in the same run:

- the ceiling: the bare indexed SELECT of those rows (``sla_state``, ``sla_next_at``);
- one sweep (``engine.automation.escalation.sweep``): the same SELECT (with ``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL), one escalation job per order, the orders marked
  ``escalating``, in one transaction;
- an idle sweep (nothing due), the common case between escalations.

Prints p50/p99 in milliseconds and the ratio to the ceiling. Goal: a sweep < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.pgdb import DEFAULT_SERVER, TICKET_DEFS, each_database  # noqa: E402
from engine.automation.escalation import SWEEP_BATCH, sweep  # noqa: E402
from engine.db import Database, connect  # noqa: E402
from engine.migrate import apply_workspace  # noqa: E402
from engine.runtime import Runtime  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

FILES = {
    "routecard.yaml": "name: sla-bench\n",
    "defs.yaml": TICKET_DEFS + """\
---
kind: SLA
name: standard
targets: {first_response: 4h, resolution: 2d}
warn_before: 1h
""",
}
BASE = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)


async def preload(db: Database, orders: int) -> None:
    """``orders`` open work orders with running SLA clocks, one due per second from ``BASE`` on."""
    start = int(BASE.timestamp())
    if db.dialect == "sqlite":
        series = f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {orders}) SELECT x FROM c"
        pad = "substr('0000000' || x, -8, 8)"
        due = f"(strftime('%Y-%m-%d %H:%M:%S', {start} + x, 'unixepoch') || '+00:00')"
        created = f"(strftime('%Y-%m-%d %H:%M:%S', {start} - 3600, 'unixepoch') || '+00:00')"
    else:
        series = f"SELECT x FROM generate_series(1, {orders}) AS x"
        pad = "lpad(x::text, 8, '0')"
        due = f"to_timestamp({start} + x)"
        created = f"to_timestamp({start} - 3600)"
    async with db.transaction():
        await db.execute(
            "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, group_name, "
            "created_at, updated_at, version, definition_version, path, sla_name, sla_state, sla_target, "
            "sla_due_at, sla_next_at) "
            f"SELECT 'T-' || {pad}, 'ticket', 'support', 'triage', 'open', 'normal', 'Order ' || x, 'desk', "
            f"{created}, {created}, 1, '', '[]', 'standard', 'running', 'first_response', {due}, {due} "
            f"FROM ({series}) AS s ORDER BY x")
    if db.dialect == "postgresql":
        await db.execute("VACUUM ANALYZE")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


async def measure(label: str, url: str, root: Path, orders: int, due: int, rounds: int) -> None:
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    db = await connect(url)
    try:
        await db.start_pool()
        began = time.perf_counter()
        await preload(db, orders)
        print(f"{label}: {orders:,} open orders loaded in {time.perf_counter() - began:.1f} s")
        runtime = Runtime(workspace, db)
        ceiling: list[float] = []
        sweeps: list[float] = []
        idle: list[float] = []
        found = 0
        for index in range(1, rounds + 1):
            moment = BASE + dt.timedelta(seconds=index * due)
            t0 = time.perf_counter()
            rows = await db.fetch(
                "SELECT id, number, sla_next_at FROM rc_work_order WHERE sla_state = 'running' AND sla_next_at <= {} "
                "ORDER BY sla_next_at LIMIT {}", moment, SWEEP_BATCH)
            t1 = time.perf_counter()
            swept = await sweep(runtime, moment)
            t2 = time.perf_counter()
            await sweep(runtime, moment)
            t3 = time.perf_counter()
            assert swept == len(rows), (swept, len(rows))
            found += swept
            ceiling.append(t1 - t0)
            sweeps.append(t2 - t1)
            idle.append(t3 - t2)
        jobs = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_job")
        assert jobs == found, (jobs, found)
        ms = 1000.0
        print(f"  due per sweep: {found / rounds:.0f} (of {orders:,} running clocks), {rounds} sweeps")
        for name, values in (("bare indexed SELECT (ceiling)", ceiling), ("sweep: select + enqueue + mark", sweeps),
                             ("idle sweep (nothing due)", idle)):
            p50, p99 = percentile(values, 0.5), percentile(values, 0.99)
            ratio = "" if values is ceiling else (
                f"   x{p50 / percentile(ceiling, 0.5):.1f} / x{p99 / percentile(ceiling, 0.99):.1f} the ceiling")
            print(f"  {name:32s} p50 {p50 * ms:7.2f} ms   p99 {p99 * ms:7.2f} ms{ratio}")
        verdict = "met" if percentile(sweeps, 0.99) < 0.1 else "NOT met"
        print(f"  goal (sweep < 100 ms at p99): {verdict}")
    finally:
        await db.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=100, help="orders due per sweep")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print(f"SLA sweep: {args.orders:,} running SLA clocks, {args.due} due per sweep; times per sweep, "
          "against the bare indexed SELECT of the same rows. Goal: < 100 ms.")
    async for label, url, root in each_database(FILES, args.postgres, sqlite_only=args.sqlite_only):
        await measure(label, url, root, args.orders, args.due, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
