"""The commands that run Routecard: demo, serve, worker."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostics
from ..errors import UsageError
from ..link.resolved import LinkedWorkspace
from ..workspace import open_workspace
from .common import database_url, keep_for_good, print_diagnostics, require_applied, workspace_dir


def cmd_demo(args: argparse.Namespace) -> int:
    from ..compile import compile_schema
    from ..migrate import apply_workspace

    root = workspace_dir(args.dir)
    diagnostics = Diagnostics()
    linked = open_workspace(root, diagnostics)
    print_diagnostics(diagnostics.sorted(), sys.stderr)
    url = database_url(args, root, linked.settings.database)
    print(f"Checked {root}: {len(linked.templates)} templates, {len(linked.queues)} queues, "
          f"{len(linked.rules)} rules, {len(linked.forms)} forms.")
    plan = asyncio.run(apply_workspace(linked, url))
    print(plan.render(applied=True))
    print()
    schema = compile_schema(linked)
    for template in linked.templates.values():
        table = next(t for t in schema.tables if t.template == template.name)
        columns = ", ".join(f"{c.name} {c.type}" for c in table.columns[1:])
        print(f"template `{template.name}` -> table {table.name}: {columns}")
    for queue in linked.queues.values():
        route = " -> ".join(step.name for step in queue.steps)
        print(f"queue `{queue.name}`: {route} -> complete")
    print(f"\nThe database is ready: {plan.database}")
    print("Change a definition, then run `routecard plan` and `routecard apply` on the folder to migrate it.")
    token, logins = asyncio.run(_demo_users(linked, url, root))
    numbers = asyncio.run(_demo_orders(linked, url, root))
    if numbers:
        print(f"\nDemo work orders: {', '.join(numbers)}")
    if logins:
        print(f"\nDemo users (password `{DEMO_PASSWORD}`): {', '.join(logins)}")
        print(f"API token of {logins[0]}: {token}")
    if args.no_serve:
        return 0
    host, port = args.host, args.port
    if logins:
        print(f"Open http://{host}:{port}/ and sign in as {logins[0]} with password `{DEMO_PASSWORD}`.")
    print(f"Try: curl -H 'Authorization: Bearer {token}' http://{host}:{port}/api/orders/counts")
    args.dir = str(root)
    return cmd_serve(args)


DEMO_PASSWORD = "demo"


async def _demo_users(linked: LinkedWorkspace, url: str, root: Path) -> tuple[str, list[str]]:
    """Every group member and supervisor as a user (password ``demo``), the demo file's
    users with their roles, and a token for the first."""
    from ..db import connect
    from ..demo import read_demo_users
    from ..runtime import add_user, create_token

    logins: list[str] = []
    for group in linked.groups.values():
        for login in ([group.supervisor] if group.supervisor else []) + list(group.members):
            if login not in logins:
                logins.append(login)
    extra = read_demo_users(root)
    for login, spec in extra.items():
        unknown = [r for r in spec.get("roles") or () if r not in linked.roles]
        if unknown:
            raise UsageError(f"{root / 'demo' / 'orders.yaml'}: user {login}: no role {', '.join(unknown)}")
        if login not in logins:
            logins.append(login)
    if not logins:
        return "", []
    db = await connect(url)
    try:
        ids = []
        for login in logins:
            spec = extra.get(login, {})
            customer = None
            if spec.get("customer"):  # a customer user, who signs in to the portal
                customer = await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", str(spec["customer"]))
                if customer is None:
                    raise UsageError(f"{root / 'demo' / 'orders.yaml'}: user {login}: no customer {spec['customer']}")
            ids.append(await add_user(db, linked, login, password=DEMO_PASSWORD, name=str(spec.get("name", "")),
                                      email=spec.get("email"), roles=tuple(spec.get("roles") or ()),
                                      is_staff=customer is None, customer_id=customer))
        return await create_token(db, ids[0], "demo"), logins
    finally:
        await db.close()


async def _demo_orders(linked: LinkedWorkspace, url: str, root: Path) -> list[str]:
    """The workspace's demo work orders (``demo/orders.yaml``), created once in an empty database."""
    from ..db import connect
    from ..demo import read_demo_orders, seed
    from ..runtime import Runtime

    orders = read_demo_orders(root)
    if not orders:
        return []
    db = await connect(url)
    try:
        return await seed(Runtime(linked, db), orders)
    finally:
        await db.close()


def cmd_serve(args: argparse.Namespace) -> int:
    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)
    serve(root, linked, url, host=args.host, port=args.port, worker=bool(getattr(args, "worker", False)),
          log_format=getattr(args, "log_format", None))
    return 0


def serve(root: Path, linked: LinkedWorkspace, url: str, *, host: str, port: int, worker: bool = False,
          log_format: str | None = None, extend: Callable[[Any], None] | None = None) -> None:
    """Serve the app of an applied workspace until stopped (``extend`` may add to the app first)."""
    asyncio.run(require_applied(linked, url, root))
    try:
        import uvicorn
    except ImportError:
        raise UsageError("`routecard serve` needs uvicorn: pip install uvicorn") from None
    # On SQLite the one server process also sends mail; on PostgreSQL `routecard worker` does, unless --worker.
    worker = url.startswith("sqlite:") or worker
    # The engine never imports the web layer at module level: the app factory is found by name.
    app = importlib.import_module("ui.app").create_app(root, url, workspace=linked, worker=worker)
    if extend is not None:
        extend(app)
    print(f"serving {root} on http://{host}:{port} (OpenAPI: /schema/openapi.json)"
          + ("; running the worker (SLA escalations, scheduled rules, the outbox)" if worker
             else "; `routecard worker` runs SLA escalations, scheduled rules and the outbox"), flush=True)
    from ..logs import configure_logging
    from ..logs import log_format as chosen_format

    try:
        config = configure_logging(chosen_format(log_format))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    keep_for_good()
    # one record per request comes from the app (with its request id): uvicorn's access log is off
    uvicorn.run(app, host=host, port=port, log_config=config, access_log=False)


def cmd_worker(args: argparse.Namespace) -> int:
    """The scheduler worker: SLA sweep and schedules, due jobs, the outbox's mail (``--once``: one round)."""
    from ..automation.worker import Worker
    from ..comms.imap import imap_poller, poll_once
    from ..runtime.attachments import disk_store
    from ..db import connect
    from ..runtime import Runtime

    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)

    def say(text: str) -> None:
        print(text, flush=True)

    async def run() -> int:
        await require_applied(linked, url, root)
        db = await connect(url)
        try:
            await db.start_pool()
            runtime = Runtime(linked, db)
            worker = Worker(runtime, say=say, storage=disk_store(linked.settings, root))
            poller = imap_poller(runtime, root, say) if args.imap else None
            if args.once:
                if poller is not None and not await poll_once(poller, say):
                    return 1
                round_ = await worker.run_once()
                jobs = round_.jobs
                say(f"jobs: done {jobs.done}, retrying {jobs.retrying}, dead {jobs.dead}")
                if round_.outbox is not None:
                    mail = round_.outbox
                    say(f"sent {mail.sent}, retrying {mail.retrying}, failed {mail.failed}, waiting {mail.waiting}")
                return 1 if round_.failures else 0
            say(f"worker {worker.name} on {db.display_url}: SLA sweep, jobs and outbox every {args.interval:g} s "
                "(Ctrl+C stops)")
            keep_for_good()
            reading = asyncio.create_task(poller.run()) if poller is not None else None
            try:
                await worker.run(args.interval)
            finally:
                if reading is not None:
                    reading.cancel()
            return 0
        finally:
            await db.close()

    return asyncio.run(run())
