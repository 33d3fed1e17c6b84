"""Benchmark: API throughput for create and for process-action, against a bare-INSERT ceiling.

For SQLite and PostgreSQL: a workspace is applied, N work orders (default 1,000,000) are
stored beforehand, and Routecard's server runs in its own process, as `routecard serve`
builds and serves it, with one more route: a bare INSERT (bench/ceiling_app.py). 32
keep-alive connections send, in five turns of a fifth of the time each (so that the
machine's changing speed falls alike on all loads), POST /bench/insert (the ceiling: the
same server's bare insert endpoint, through the same middleware and token
authentication; on PostgreSQL its INSERT is one statement on its own, without
BEGIN and COMMIT), POST /api/templates/ticket/orders (create),
POST /api/templates/timed/orders (create of a template with an SLA on a business
calendar: its clock started with the order) and POST /api/orders/{number}/actions/check
(process-action); the ratios to the ceiling are printed. The same route alone in an
otherwise empty Litestar app is measured too, for what Routecard's middleware costs.
Goal: create >= 50% of the ceiling, p99 < 50 ms.

On PostgreSQL the server keeps the pool it is shipped with (10 connections; the 32 clients
wait their turns for them). The ceiling route is served a second time by a server with a
connection for each client (``?pool_size=32``), where it may run faster, and the ratios are
taken to the faster of the two ceilings: the pool size chosen for create is not one that
slows the ceiling down.

Back to back, 32 clients keep 32 requests in the server at every moment, so their mean
latency is 32 / rate (Little's law): the line "latency" prints what that means for the p99
goal. Create's p99 is printed for each of the five turns too, with the longest
request: a stall of the machine shows as one turn far above the others. Creates are
then sent once more at half their measured rate, paced, and their latency is counted
from when each was due (a server's latency at a given load).

    .venv/bin/python bench/api_throughput.py [--orders 1000000] [--seconds 10] [--sqlite-only | --postgres-only]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from bench import loadgen  # noqa: E402
from bench.ceiling_app import PATH as CEILING_PATH  # noqa: E402
from bench.ceiling_app import create_table  # noqa: E402
from bench.pgdb import DEFAULT_SERVER, each_database  # noqa: E402
from engine.db import Database, connect  # noqa: E402
from engine.migrate import apply_workspace  # noqa: E402
from engine.runtime import add_user, create_token  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

WORKSPACE = {
    "routecard.yaml": "name: bench\n",
    "defs.yaml": """\
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
numbering: {prefix: "T-", digits: 8}
fields:
  - {name: summary, type: input, required: true}
  - {name: amount, type: decimal}
  - {name: urgent, type: boolean}
---
kind: Template
name: timed
numbering: {prefix: "S-", digits: 8}
fields:
  - {name: summary, type: input, required: true}
  - {name: amount, type: decimal}
  - {name: urgent, type: boolean}
---
kind: Calendar
name: office
timezone: Europe/Vienna
hours:
  mon: ["08:00-12:00", "13:00-17:00"]
  tue: ["08:00-12:00", "13:00-17:00"]
  wed: ["08:00-12:00", "13:00-17:00"]
  thu: ["08:00-12:00", "13:00-17:00"]
  fri: ["08:00-12:00"]
holidays:
  - {date: "2026-12-24", label: Christmas Eve}
  - {date: "2026-12-25", label: Christmas Day}
---
kind: SLA
name: standard
templates: [timed]
calendar: office
targets: {first_response: 4h, resolution: 2d}
warn_before: 1h
---
kind: Queue
name: desk_queue
templates: [ticket, timed]
steps:
  - name: triage
    group: desk
    actions: [{name: check}, {name: route}]
  - name: work
    group: desk
    actions: [{name: fix}]
""",
}
CONNECTIONS = 32
ROUNDS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int, path: str = "/health", timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error means the server answers
                return
            time.sleep(0.2)
    raise RuntimeError(f"server on port {port} did not start")


async def preload(db: Database, orders: int, ready: int, owner: int) -> list[str]:
    """``orders`` stored work orders, plus ``ready`` ones waiting in triage for the process benchmark.

    Their numbers have the template's prefix, as the orders of a real database do (a number
    that does not is read in two queries: ``load_order``), with nine digits, out of the way
    of the eight the template's sequence gives the orders the benchmark creates."""
    if db.dialect == "sqlite":
        series = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {n}) "
                  "SELECT x FROM c")
        pad = "substr('0000000' || x, -8, 8)"
    else:
        series = "SELECT x FROM generate_series(1, {n}) AS x"
        pad = "lpad(x::text, 8, '0')"
    async with db.transaction():
        for prefix, count, status, step in (("T-1", orders, "completed", "work"), ("T-2", ready, "open", "triage")):
            if not count:
                continue
            await db.execute(
                "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, owner_id, "
                "group_name, created_at, updated_at, version, definition_version, path) "
                f"SELECT '{prefix}' || {pad}, 'ticket', 'desk_queue', '{step}', '{status}', 'normal', "
                f"'Order ' || x, {owner}, 'desk', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, '', '[]' "
                f"FROM ({series.format(n=count)}) AS s")
        await db.execute(
            "INSERT INTO tpl_ticket (work_order_id, summary, urgent) SELECT id, title, FALSE FROM rc_work_order")
        await db.execute(
            "INSERT INTO rc_step_action (work_order_id, step, action, round, state) "
            "SELECT id, 'triage', a.name, 1, 'pending' FROM rc_work_order, "
            "(SELECT 'check' AS name UNION ALL SELECT 'route') AS a WHERE number LIKE 'T-2%'")
    rows = await db.fetch("SELECT number FROM rc_work_order WHERE number LIKE 'T-2%' ORDER BY id")
    return [r["number"] for r in rows]


async def settle(db: Database) -> None:
    """After the bulk load, what a database that grew to its size over time has done already:
    statistics gathered, and the load's pages written out (a PostgreSQL checkpoint after the
    load, else due while measuring, makes every first change of a page after it write the
    whole page to the WAL; SQLite's WAL copied into the file)."""
    if db.dialect == "postgresql":
        await db.execute("VACUUM ANALYZE")
        await db.execute("CHECKPOINT")
    else:
        await db.execute("ANALYZE")
        await db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def prepare(url: str, root: Path, orders: int, ready: int) -> tuple[str, list[str]]:
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    db = await connect(url)
    try:
        agent = await add_user(db, workspace, "agent", password="bench")
        await add_user(db, workspace, "boss", password="bench")
        token = await create_token(db, agent, "bench")
        numbers = await preload(db, orders, ready, agent)
        await create_table(db)
        await settle(db)
    finally:
        await db.close()
    return token, numbers


def serve(args: list[str]) -> subprocess.Popen[bytes]:
    """Start a server; its log (a line per request) goes to bench/out/, never into an unread pipe."""
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    with open(out / "serve.log", "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


async def measure(label: str, url: str, root: Path, orders: int, seconds: float) -> None:
    ready = 40_000
    started = time.perf_counter()
    token, numbers = await prepare(url, root, orders, ready)
    print(f"{label}: {orders:,} stored work orders + {len(numbers):,} waiting in triage "
          f"(prepared in {time.perf_counter() - started:.0f} s)")
    headers = {"Authorization": f"Bearer {token}"}
    body = json.dumps({"title": "Printer on fire", "fields": {"summary": "Printer on fire", "amount": "12.50",
                                                             "urgent": True}}).encode()
    # the bare route alone in an empty app
    port = free_port()
    bare = serve([sys.executable, "bench/ceiling_app.py", "bare", url, str(port)])
    try:
        wait_for(port, "/")
        alone = await loadgen.run("127.0.0.1", port, lambda _: ("POST", CEILING_PATH, body, {}),
                                  connections=CONNECTIONS, seconds=seconds)
    finally:
        stop(bare)
    # Routecard's server with the bare route added: the ceiling, create and process; on
    # PostgreSQL a second one with a connection for each client, for the ceiling alone
    ports = {"shipped": free_port()}
    if url.startswith("postgresql"):
        ports["wide"] = free_port()
    urls = {"shipped": url, "wide": f"{url}?pool_size={CONNECTIONS}"}
    servers = [serve([sys.executable, "bench/ceiling_app.py", "in-routecard", str(root), urls[name], str(port)])
               for name, port in ports.items()]
    try:
        for port in ports.values():
            wait_for(port)
        queue = iter(numbers)
        process_body = json.dumps({"version": 1}).encode()

        def next_process(_: int) -> loadgen.Request | None:
            number = next(queue, None)
            if number is None:
                return None
            return ("POST", f"/api/orders/{number}/actions/check", process_body, headers)

        ceiling: Callable[[int], loadgen.Request | None] = lambda _: ("POST", CEILING_PATH, body, headers)
        loads: dict[str, tuple[int, Callable[[int], loadgen.Request | None]]] = {
            "ceiling": (ports["shipped"], ceiling),
            "create": (ports["shipped"], lambda _: ("POST", "/api/templates/ticket/orders", body, headers)),
            "timed": (ports["shipped"], lambda _: ("POST", "/api/templates/timed/orders", body, headers)),
            "process": (ports["shipped"], next_process),
        }
        if "wide" in ports:
            loads["wide"] = (ports["wide"], ceiling)
        # in turns of a few seconds each, so that the machine's changing speed (other guests of
        # the host, frequency) falls alike on the ceiling and on what is compared with it
        slices: dict[str, list[loadgen.Result]] = {name: [] for name in loads}
        for _ in range(ROUNDS):
            for name, (port, load) in loads.items():
                slices[name].append(await loadgen.run("127.0.0.1", port, load, connections=CONNECTIONS,
                                                      seconds=seconds / ROUNDS))
        measured = {name: loadgen.merged(slices[name]) for name in loads}
        create, process = measured["create"], measured["process"]
        pace = max(1.0, round(create.rate / 2, -1))
        paced = await loadgen.run_paced("127.0.0.1", ports["shipped"], loads["create"][1], rate=pace,
                                        connections=CONNECTIONS, seconds=seconds / 2)
    finally:
        for server in servers:
            stop(server)
    top = max(measured["ceiling"], measured.get("wide", measured["ceiling"]), key=lambda result: result.rate)
    print(f"  bare app bare INSERT route    {alone.summary()}")
    print(f"  ceiling  same server's route  {measured['ceiling'].summary()}")
    if "wide" in measured:
        print(f"  ceiling  pool of {CONNECTIONS}           {measured['wide'].summary()}")
    print(f"  create   work order           {create.summary()}")
    print(f"  create   with an SLA          {measured['timed'].summary()}")
    print(f"  process  order action         {process.summary()}")
    against = " (the faster ceiling)" if "wide" in measured else ""
    print(f"  ratio    create / ceiling     {create.rate / top.rate:8.2f}  (goal >= 0.50){against}")
    print(f"  ratio    create with an SLA   {measured['timed'].rate / top.rate:8.2f}  (on a business calendar)")
    print(f"  ratio    process / ceiling    {process.rate / top.rate:8.2f}")
    print(f"  ratio    create / bare app    {create.rate / alone.rate:8.2f}  (Routecard's middleware included)")
    # 32 clients back to back keep 32 requests in the server at every moment, so the mean time a
    # request takes is 32 / rate (Little's law) whatever the server does with them
    print(f"  latency  {CONNECTIONS} clients back to back: mean {CONNECTIONS / create.rate * 1000:.0f} ms "
          f"= {CONNECTIONS} / create rate; p99 < 50 ms needs more than {CONNECTIONS / 0.05:.0f} creates/s")
    # a stall of the machine lengthens every request under way at once: one turn's p99 far above
    # the others', and a maximum far above the p99, tell it from a server slow all along
    turns = " ".join(f"{turn.percentile(0.99) * 1000:.1f}" for turn in slices["create"])
    print(f"  create   p99 of each turn {turns} ms; the longest request {max(create.latencies) * 1000:.1f} ms")
    print(f"  create   paced at {pace:.0f} req/s   {paced.summary()}  (latency from when each request was due)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgres-only", action="store_true")
    args = parser.parse_args()
    async for label, url, root in each_database(WORKSPACE, args.postgres, sqlite_only=args.sqlite_only,
                                                postgres_only=args.postgres_only):
        await measure(label, url, root, args.orders, args.seconds)

if __name__ == "__main__":
    asyncio.run(main())
