"""Benchmark: server time of the HTMX screens with 1,000,000 stored work orders.

For SQLite and PostgreSQL: a workspace of three queues (twelve steps) is applied and
N work orders (default 1,000,000) are stored: most completed, a few percent cancelled,
some tens of thousands open across the steps (mostly recent ones, a few old ones
left behind), with owners, groups, priorities and each open order's pending action.
The app then runs under uvicorn in its own process (as ``routecard serve`` runs it),
wrapped in an ASGI timer that records, per request, the time from the request
reaching the app to the end of its response; a signed-in session (POST /login) sends
requests one after another over loopback HTTP, each step or order chosen at random
(steps cycled, orders drawn from the whole table) so no cache answers twice in a row.

Measured, p50 and p99 of server time:

- the Order Manager's full page for a step: ``/manager?queue=Q&step=S``
  (the side panel with open work per step, the list, the layout);
- the side panel's totals per status (``/manager/statuses``, loaded by the page right
  after it arrives: completed and cancelled work counted over the whole table);
- the same list as the htmx fragment (``hx-request: true``, ``hx-target: list``);
- the order page ``/orders/{number}``;
- the ceiling: the list query itself, the exact SQL ``list_orders`` sends for each
  step, run directly on the database in this process (no HTTP, no rendering).

Each figure is printed with its ratio to that ceiling. Goal: p99 < 30 ms.

    .venv/bin/python bench/ui_pages.py [--orders 1000000] [--requests 300] [--seconds 20] [--sqlite-only]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.api_throughput import free_port, serve, stop, wait_for  # noqa: E402
from bench.pgdb import DEFAULT_SERVER, each_database  # noqa: E402
from engine.db import Database, connect  # noqa: E402
from engine.migrate import apply_workspace  # noqa: E402
from engine.runtime import Runtime, add_user  # noqa: E402
from engine.runtime.actors import load_actor  # noqa: E402
from engine.runtime.views import list_orders  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

PASSWORD = "bench"
OWNERS = 10
QUEUES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    # queue: (template, [(step, group), ...])
    "repairs": ("repair", [("intake", "desk"), ("diagnose", "field"), ("fix", "field"), ("test", "field"),
                           ("ship", "desk")]),
    "installs": ("install", [("plan", "desk"), ("schedule", "desk"), ("install", "field"), ("accept", "desk")]),
    "returns": ("return_item", [("receive", "desk"), ("inspect", "field"), ("refund", "billing")]),
}
TEMPLATE_SHARE = {"repair": range(0, 6), "install": range(6, 9), "return_item": range(9, 10)}
"""Which values of ``x % 10`` make an order of each template (60%, 30%, 10%)."""
PREFIX = {"repair": "RP-", "install": "IN-", "return_item": "RT-"}
RECENT = 50_000
"""The newest orders, 80% of them still open; of the older ones one in 1009 is left open."""
TIMER_PATH = "/__bench__/timings"
LABEL_HEADER = "x-bench-label"


def workspace_files() -> dict[str, str]:
    owners = ", ".join(f"owner{i}" for i in range(OWNERS))
    docs = [
        f"kind: Group\nname: desk\nsupervisor: boss\nmembers: [agent, {owners}]\n",
        "kind: Group\nname: field\nmembers: [agent]\n",
        "kind: Group\nname: billing\nmembers: [agent]\n",
        "kind: Role\nname: agent\ngroups: [desk, field, billing]\n"
        "permissions: [order.create, order.edit, order.transition]\n",
    ]
    for template, prefix in PREFIX.items():
        docs.append(f"kind: Template\nname: {template}\nnumbering: {{prefix: \"{prefix}\", digits: 8}}\nfields:\n"
                    "  - {name: summary, type: input, required: true}\n  - {name: amount, type: decimal}\n")
    for queue, (template, steps) in QUEUES.items():
        lines = "".join(f"  - name: {step}\n    group: {group}\n    actions: [{{name: done}}]\n"
                        for step, group in steps)
        docs.append(f"kind: Queue\nname: {queue}\ntemplates: [{template}]\nsteps:\n{lines}")
    return {"routecard.yaml": "name: bench\n", "defs.yaml": "---\n".join(docs)}


def _case(selector: str, choices: dict[str, str]) -> str:
    return f"CASE {selector} " + " ".join(f"WHEN {k} THEN {v}" for k, v in choices.items()) + " END"


async def preload(db: Database, orders: int, owner_ids: list[int]) -> None:
    """``orders`` work orders in one INSERT … SELECT over a generated series, then their extension rows
    and the open orders' pending actions."""
    start = int(time.time()) - orders * 60  # one order a minute, the newest now
    if db.dialect == "sqlite":
        series = f"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {orders}) SELECT x FROM c"
        pad = "substr('0000000' || x, -8, 8)"
        moment = f"(strftime('%Y-%m-%d %H:%M:%S', {start} + x * 60, 'unixepoch') || '+00:00')"
    else:
        series = f"SELECT x FROM generate_series(1, {orders}) AS x"
        pad = "lpad(x::text, 8, '0')"
        moment = f"to_timestamp({start} + x * 60)"
    template = _case("x % 10", {str(i): f"'{t}'" for t, share in TEMPLATE_SHARE.items() for i in share})
    status = (f"CASE WHEN x > {orders - RECENT} THEN (CASE WHEN x % 5 = 0 THEN 'completed' ELSE 'open' END) "
              "WHEN x % 1009 = 0 THEN 'open' WHEN x % 31 = 0 THEN 'cancelled' ELSE 'completed' END")
    queue = _case("template", {f"'{t}'": f"'{q}'" for q, (t, _) in QUEUES.items()})
    # open orders spread over their queue's steps; completed ones in the last step, cancelled in the first
    step, group = [], []
    for q, (t, steps) in QUEUES.items():
        n = len(steps)
        step.append(f"WHEN template = '{t}' THEN (CASE WHEN status = 'completed' THEN '{steps[-1][0]}' "
                    f"WHEN status = 'cancelled' THEN '{steps[0][0]}' ELSE "
                    + _case(f"(x / 10) % {n}", {str(i): f"'{s}'" for i, (s, _) in enumerate(steps)}) + " END)")
        group.append(f"WHEN template = '{t}' THEN "
                     + _case(f"(x / 10) % {n}", {str(i): f"'{g}'" for i, (_, g) in enumerate(steps)}))
    priority = _case("x % 20", {"0": "'urgent'", "1": "'high'", "2": "'high'", "3": "'low'"}).replace(
        " END", " ELSE 'normal' END")
    owner = "CASE WHEN x % 3 = 0 THEN NULL ELSE " + _case(
        f"x % {OWNERS}", {str(i): str(owner_ids[i]) for i in range(OWNERS)}) + " END"
    prefix = _case("template", {f"'{t}'": f"'{p}'" for t, p in PREFIX.items()})
    async with db.transaction():
        await db.execute(
            "INSERT INTO rc_work_order (number, template, queue, step, status, priority, title, owner_id, "
            "group_name, created_at, updated_at, completed_at, version, definition_version, path) "
            f"SELECT {prefix} || {pad}, template, {queue}, CASE {' '.join(step)} END, status, {priority}, "
            f"'Order ' || x, {owner}, CASE {' '.join(group)} END, {moment}, {moment}, "
            f"CASE WHEN status = 'completed' THEN {moment} END, 1, '', '[]' "
            f"FROM (SELECT x, {template} AS template, {status} AS status FROM ({series}) AS s1) AS s2 "
            "ORDER BY x")
        for t in PREFIX:
            await db.execute(f"INSERT INTO tpl_{t} (work_order_id, summary) SELECT id, title FROM rc_work_order "
                             "WHERE template = {}", t)
        await db.execute("INSERT INTO rc_step_action (work_order_id, step, action, round, state) "
                         "SELECT id, step, 'done', 1, 'pending' FROM rc_work_order WHERE status = 'open'")
    if db.dialect == "postgresql":
        await db.execute("VACUUM ANALYZE")  # what autovacuum does shortly after a bulk load (insert threshold)


async def prepare(url: str, root: Path, orders: int) -> tuple[list[str], list[str]]:
    """The applied workspace with its users and orders; some open and some random order numbers."""
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    db = await connect(url)
    try:
        await add_user(db, workspace, "agent", password=PASSWORD, roles=("agent",))
        await add_user(db, workspace, "boss")
        owner_ids = [await add_user(db, workspace, f"owner{i}") for i in range(OWNERS)]
        await preload(db, orders, owner_ids)
        rng = random.Random(7)
        ids = [rng.randint(1, orders) for _ in range(2000)]
        marks = ", ".join("{}" for _ in ids)
        anywhere = [r["number"] for r in await db.fetch(f"SELECT number FROM rc_work_order WHERE id IN ({marks})",
                                                        *ids)]
        open_ = [r["number"] for r in await db.fetch(
            "SELECT number FROM rc_work_order WHERE status = 'open' ORDER BY id")]
    finally:
        await db.close()
    rng.shuffle(anywhere)
    return anywhere, rng.sample(open_, min(2000, len(open_)))


# ---------------------------------------------------------------- the server, timed at the ASGI level


class Timed:
    """The app's ASGI callable, timed: per labelled request, the seconds from the call to the
    end of the response. ``GET /__bench__/timings`` hands them over (and forgets them)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.times: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == TIMER_PATH:
            body = json.dumps({"times": self.times, "statuses": self.statuses}).encode()
            self.times, self.statuses = defaultdict(list), defaultdict(lambda: defaultdict(int))
            await send({"type": "http.response.start", "status": 200,
                        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        label = next((v.decode() for k, v in scope["headers"] if k == LABEL_HEADER.encode()), None)
        status = [0]

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, watch)
        finally:
            if label is not None:
                self.times[label].append(time.perf_counter() - started)
                self.statuses[label][status[0]] += 1


def run_server(root: Path, url: str, port: int) -> None:
    """What ``routecard serve`` runs, with the timer around the app."""
    import uvicorn

    from ui.app import create_app

    uvicorn.run(Timed(create_app(root, url)), host="127.0.0.1", port=port, log_level="warning")


# ---------------------------------------------------------------- the client


def sign_in(port: int) -> str:
    """The session cookie of the agent, signed in through the login form."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", "/login", body=f"login=agent&password={PASSWORD}&next=/manager",
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("set-cookie")
        if response.status != 303 or not cookie:
            raise RuntimeError(f"sign-in failed: {response.status}")
        return cookie.split(";", 1)[0]
    finally:
        connection.close()


def fetch_timings(port: int) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", TIMER_PATH)
        return dict(json.loads(connection.getresponse().read()))
    finally:
        connection.close()


def step_urls() -> list[str]:
    return [f"/manager?queue={q}&step={s}" for q, (_, steps) in QUEUES.items() for s, _ in steps]


def cycle(items: list[str], count: int, seed: int) -> list[str]:
    """``count`` items: every item once per round, each round in a new random order."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < count:
        round_ = list(items)
        rng.shuffle(round_)
        out += round_
    return out[:count]


async def drive(port: int, label: str, paths: list[str], headers: dict[str, str], seconds: float) -> None:
    queue = iter(paths)

    def next_request(_: int) -> loadgen.Request | None:
        path = next(queue, None)
        return None if path is None else ("GET", path, b"", {**headers, LABEL_HEADER: label})

    await loadgen.run("127.0.0.1", port, next_request, connections=1, seconds=seconds)


class Capture:
    """A database stand-in that remembers the statements sent through it (and runs them)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.dialect = db.dialect
        self.engine = db.engine
        self.sent: list[tuple[str, tuple[Any, ...]]] = []

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        self.sent.append((sql, args))
        return await self.db.fetch(sql, *args)

    async def fetch_value(self, sql: str, *args: Any) -> Any:
        self.sent.append((sql, args))
        return await self.db.fetch_value(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        self.sent.append((sql, args))
        await self.db.execute(sql, *args)


async def bare_list_queries(url: str, root: Path, urls: list[str], seconds: float) -> list[float]:
    """Seconds per list query: the SQL ``list_orders`` sends for each URL's step, run directly."""
    workspace = open_workspace(root)
    db = await connect(url)
    try:
        await db.start_pool()
        capture = Capture(db)
        runtime = Runtime(workspace, capture)  # type: ignore[arg-type]
        actor = await load_actor(db, workspace, login="agent")
        statements: dict[str, tuple[str, tuple[Any, ...]]] = {}
        for path in set(urls):
            query = dict(part.split("=", 1) for part in path.split("?", 1)[1].split("&"))
            capture.sent.clear()
            # the Order Manager lists open work unless asked otherwise
            await list_orders(runtime, actor, filters={**query, "status": "open"}, limit=50)
            statements[path] = capture.sent[0]
        times = []
        deadline = time.perf_counter() + seconds
        for path in urls:
            sql, args = statements[path]
            started = time.perf_counter()
            await db.fetch(sql, *args)
            times.append(time.perf_counter() - started)
            if time.perf_counter() > deadline:
                break
        return times
    finally:
        await db.close()


# ---------------------------------------------------------------- the run


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


async def measure(label: str, url: str, root: Path, orders: int, requests: int, seconds: float) -> None:
    started = time.perf_counter()
    anywhere, open_orders = await prepare(url, root, orders)
    print(f"{label}: {orders:,} stored work orders (prepared in {time.perf_counter() - started:.0f} s)", flush=True)
    steps = step_urls()
    order_paths = [f"/orders/{n}" for pair in zip(anywhere, open_orders) for n in pair][:requests]
    port = free_port()
    server = serve([sys.executable, str(Path(__file__).resolve()), "--serve", str(root), url, str(port)])
    try:
        wait_for(port)
        cookie = {"Cookie": sign_in(port)}
        htmx = {**cookie, "hx-request": "true", "hx-target": "list"}
        # warm-up: templates compiled, statements prepared, every step read once
        await drive(port, "warm-up", steps + order_paths[:10], cookie, seconds)
        await drive(port, "warm-up", steps, htmx, seconds)
        bare = await bare_list_queries(url, root, cycle(steps, requests, 1), seconds)
        await drive(port, "page", cycle(steps, requests, 2), cookie, seconds)
        await drive(port, "fragment", cycle(steps, requests, 3), htmx, seconds)
        await drive(port, "statuses", ["/manager/statuses"] * requests, {**cookie, "hx-request": "true"}, seconds)
        await drive(port, "order", order_paths, cookie, seconds)
        timings = fetch_timings(port)
    finally:
        stop(server)
    ceiling = statistics.median(bare) if bare else float("nan")
    ceiling99 = percentile(bare, 0.99)
    rows = [("ceiling  bare list query (SQL only)", bare, {})]
    for key, name in (("page", "Order Manager step, full page"), ("fragment", "Order Manager step, htmx list"),
                      ("statuses", "side panel totals per status"),
                      ("order", "order page /orders/{number}")):
        rows.append((name, timings["times"].get(key, []), timings["statuses"].get(key, {})))
    print(f"  {'':38} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'p50 ratio':>10} {'p99 ratio':>10}  statuses")
    for name, times, statuses in rows:
        p50, p99 = percentile(times, 0.5), percentile(times, 0.99)
        codes = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items())) or "-"
        failed = any(not code.startswith("2") for code in statuses)
        goal = ("" if name.startswith("ceiling") else "  (errors: not a page's time)" if failed
                else "  ok (< 30 ms)" if p99 < 0.030 else "  over the 30 ms goal")
        print(f"  {name:38} {len(times):8d} {p50 * 1000:8.2f} {p99 * 1000:8.2f} {p50 / ceiling:10.1f} "
              f"{p99 / ceiling99:10.1f}  {codes}{goal}")
    missing = timings["statuses"].get("order", {}).get("404")
    if missing:
        print(f"  note: {missing} order pages answered 404 (is GET /orders/{{number}} in place?)")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=300, help="requests per measured kind")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long per measured kind")
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    print("Server time per request (ASGI call to end of response), one signed-in client, sequential; "
          "ratios against the bare list query (p50 to p50, p99 to p99). Goal: p99 < 30 ms.")
    async for label, url, root in each_database(workspace_files(), args.postgres, sqlite_only=args.sqlite_only):
        await measure(label, url, root, args.orders, args.requests, args.seconds)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        run_server(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    else:
        asyncio.run(main())
