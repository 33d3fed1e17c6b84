"""The ``routecard`` command: init, check, plan, apply, demo, schema, serve, worker, users, tokens, diagram,
plugins, export, import, and the commands plugins add.

Exit codes: 0 fine, 1 definition errors or a refused plan, 2 usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn, TextIO

from .diagnostics import Diagnostics
from .errors import (
    DatabaseError,
    DefinitionError,
    RoutecardError,
    ServiceError,
    UsageError,
)
from .link.resolved import LinkedWorkspace
from .plugins import default_plugins
from .workspace import open_workspace


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


def _workspace_dir(value: str) -> Path:
    path = Path(value)
    if not path.exists():
        raise UsageError(f"{value}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{value}: not a folder (give the workspace folder)")
    return path


def _print_diagnostics(items: Sequence[object], out: TextIO) -> None:
    for item in items:
        print(item, file=out)


def cmd_check(args: argparse.Namespace) -> int:
    root = _workspace_dir(args.dir)
    diagnostics = Diagnostics()
    linked = open_workspace(root, diagnostics)
    _print_diagnostics(diagnostics.sorted(), sys.stderr)
    counts = {
        "templates": len(linked.templates),
        "fields": sum(len(t.fields) for t in linked.templates.values()),
        "queues": len(linked.queues),
        "steps": sum(len(q.steps) for q in linked.queues.values()),
        "groups": len(linked.groups),
        "rules": len(linked.rules),
        "forms": len(linked.forms),
        "SLAs": len(linked.slas),
    }
    summary = ", ".join(f"{n} {what}" for what, n in counts.items())
    print(f"{root}: ok ({summary}); definition version {linked.fingerprint[:12]}")
    return 0


def cmd_test(args: argparse.Namespace) -> int:
    from .scenarios import read_scenarios, run_scenarios

    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    diagnostics = Diagnostics()
    found = read_scenarios(root, diagnostics)
    if diagnostics.items:
        _print_diagnostics(diagnostics.sorted(), sys.stderr)
        return 1
    if not found:
        print(f"{root}: no scenarios (write them as YAML files in {root / 'tests'})", file=sys.stderr)
        return 1
    outcomes = asyncio.run(run_scenarios(linked, found))
    for outcome in outcomes:
        if outcome.failure is None:
            print(f"ok    {outcome.location}: {outcome.name}")
        else:
            print(f"FAIL  {outcome.location}: {outcome.name}\n{outcome.failure}\n")
    failed = sum(o.failure is not None for o in outcomes)
    print(f"{len(outcomes)} scenario{'s' if len(outcomes) != 1 else ''}, {failed} failed")
    return 1 if failed else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schemas import write_schemas

    target = Path(args.out)
    for path in write_schemas(target):
        print(path)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    target = Path(args.dir)
    if target.exists() and any(target.iterdir()):
        raise UsageError(f"{args.dir}: the folder is not empty; give a new or empty folder")
    target.mkdir(parents=True, exist_ok=True)
    starter = resources.files("definitions") / "starter"
    for folder in ("", "tests"):
        (target / folder).mkdir(exist_ok=True)
        for entry in (starter / folder).iterdir() if folder else starter.iterdir():
            if entry.name.endswith(".yaml"):
                (target / folder / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
    from .schemas import write_editor_settings

    write_editor_settings(target)
    print(f"created workspace {target}; next: routecard check {target}")
    return 0


def _database_url(args: argparse.Namespace, root: Path, configured: str | None) -> str:
    from .db import default_url

    return args.db or os.environ.get("ROUTECARD_DATABASE_URL") or default_url(root, configured)


def cmd_plan(args: argparse.Namespace) -> int:
    from .migrate import plan_for

    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)
    plan = asyncio.run(plan_for(linked, url))
    print(plan.render())
    return 1 if plan.refused else 0


def cmd_apply(args: argparse.Namespace) -> int:
    from .migrate import apply_workspace

    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)
    plan = asyncio.run(apply_workspace(linked, url, allow_destructive=args.allow_destructive))
    print(plan.render(applied=True))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .compile import compile_schema
    from .migrate import apply_workspace

    root = _workspace_dir(args.dir)
    diagnostics = Diagnostics()
    linked = open_workspace(root, diagnostics)
    _print_diagnostics(diagnostics.sorted(), sys.stderr)
    url = _database_url(args, root, linked.settings.database)
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
    from .db import connect
    from .demo import read_demo_users
    from .runtime import add_user, create_token

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
    from .db import connect
    from .demo import read_demo_orders, seed
    from .runtime import Runtime

    orders = read_demo_orders(root)
    if not orders:
        return []
    db = await connect(url)
    try:
        return await seed(Runtime(linked, db), orders)
    finally:
        await db.close()


async def _require_applied(linked: LinkedWorkspace, url: str, root: Path) -> None:
    from .migrate import plan_for

    plan = await plan_for(linked, url)
    if not plan.up_to_date:
        have = plan.previous.fingerprint[:12] if plan.previous else "none"
        raise DatabaseError(
            f"the database {plan.database} is not at the workspace's definition version "
            f"{linked.fingerprint[:12]} (it has: {have}); run `routecard apply {root}` first")


def cmd_serve(args: argparse.Namespace) -> int:
    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)
    serve(root, linked, url, host=args.host, port=args.port, worker=bool(getattr(args, "worker", False)),
          log_format=getattr(args, "log_format", None))
    return 0


def serve(root: Path, linked: LinkedWorkspace, url: str, *, host: str, port: int, worker: bool = False,
          log_format: str | None = None, extend: Callable[[Any], None] | None = None) -> None:
    """Serve the app of an applied workspace until stopped (``extend`` may add to the app first)."""
    asyncio.run(_require_applied(linked, url, root))
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
    from .logs import configure_logging
    from .logs import log_format as chosen_format

    try:
        config = configure_logging(chosen_format(log_format))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    _keep_for_good()
    # one record per request comes from the app (with its request id): uvicorn's access log is off
    uvicorn.run(app, host=host, port=port, log_config=config, access_log=False)


def _keep_for_good() -> None:
    """Keep what a long-running process built at start out of the garbage collector's full passes.

    The definitions, routes and OpenAPI document are some 100,000 objects that live as long as
    the process; a full pass walks them all and stops every request for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()


def cmd_worker(args: argparse.Namespace) -> int:
    """The scheduler worker: SLA sweep and schedules, due jobs, the outbox's mail (``--once``: one round)."""
    from .automation.worker import Worker
    from .comms.imap import imap_poller, poll_once
    from .runtime.attachments import disk_store
    from .db import connect
    from .runtime import Runtime

    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)

    def say(text: str) -> None:
        print(text, flush=True)

    async def run() -> int:
        await _require_applied(linked, url, root)
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
            _keep_for_good()
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


async def _with_runtime_db(args: argparse.Namespace) -> tuple[LinkedWorkspace, str]:
    root = _workspace_dir(args.workspace)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)
    await _require_applied(linked, url, root)
    return linked, url


def cmd_users_add(args: argparse.Namespace) -> int:
    from .db import connect
    from .runtime import add_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")

    if args.customer and (args.group or args.role):
        raise UsageError("--customer: a customer user holds no groups or roles")

    async def run() -> int:
        linked, url = await _with_runtime_db(args)
        db = await connect(url)
        try:
            if args.customer:  # a customer user, made (and audited) as staff would make one in the UI
                from .runtime import SYSTEM
                from .runtime.customers import Customers

                made = await Customers(db, linked).add_user_to(SYSTEM, args.customer, {
                    "login": args.username, "name": args.name, "email": args.email, "password": password})
                return int(made["id"])
            return await add_user(db, linked, args.username, name=args.name or "", email=args.email,
                                  password=password, groups=tuple(args.group), roles=tuple(args.role))
        finally:
            await db.close()

    user = asyncio.run(run())
    extras = [f"groups: {', '.join(args.group)}" if args.group else "", f"roles: {', '.join(args.role)}" if args.role else "",
              f"customer user of {args.customer}" if args.customer else ""]
    print(f"user {args.username} (id {user})" + "".join(f"; {e}" for e in extras if e))
    return 0


def cmd_tokens_create(args: argparse.Namespace) -> int:
    from .db import connect
    from .runtime import create_token
    from .runtime.actors import user_id

    async def run() -> str:
        _, url = await _with_runtime_db(args)
        db = await connect(url)
        try:
            found = await user_id(db, args.username)
            if found is None:
                raise UsageError(f"no user {args.username}; add one with `routecard users add {args.username}`")
            return await create_token(db, found, args.name)
        finally:
            await db.close()

    print(asyncio.run(run()))
    return 0


def cmd_rules_replay(args: argparse.Namespace) -> int:
    """What the workspace's rules would have done on the changes recorded since a date (reads only)."""
    import datetime as dt

    from .automation.replay import replay_rules, report
    from .db import connect

    def moment(text: str | None, flag: str) -> dt.datetime | None:
        if text is None:
            return None
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise UsageError(f"{flag}: expected a date (YYYY-MM-DD) or a date and time, found {text!r}") from None
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)

    since, until = moment(args.since, "--since"), moment(args.until, "--until")
    assert since is not None
    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)

    async def run() -> str:
        db = await connect(url)
        try:
            return report(await replay_rules(linked, db, since, until), linked)
        finally:
            await db.close()

    print(asyncio.run(run()))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """Back up a workspace: its definitions, every table's rows and the stored files, in one archive."""
    from .archive import Summary, export_archive
    from .db import connect
    from .runtime.attachments import disk_store
    from .storage import size_words

    root = _workspace_dir(args.dir)
    linked = open_workspace(root)
    url = _database_url(args, root, linked.settings.database)
    out = Path(args.out)

    async def run() -> Summary:
        db = await connect(url)
        try:
            return await export_archive(db, linked, root, disk_store(linked.settings, root), out)
        finally:
            await db.close()

    summary = asyncio.run(run())
    print(f"wrote {out}: {summary.rows} rows in {summary.tables} tables, {summary.files} stored files "
          f"({size_words(summary.file_bytes)}); definition version {summary.fingerprint[:12]}")
    if summary.missing_files:
        keys = ", ".join(summary.missing_files[:5]) + (" ..." if len(summary.missing_files) > 5 else "")
        print(f"warning: {len(summary.missing_files)} stored files the data names were not in the store: {keys}",
              file=sys.stderr)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Restore an archive into an empty database; into a new or empty folder, its definitions too."""
    import shutil

    from .archive import Summary, import_archive, open_archive
    from .db import connect
    from .runtime.attachments import disk_store
    from .storage import size_words

    root = Path(args.dir)
    fresh = not root.exists() or (root.is_dir() and not any(root.iterdir()))
    with open_archive(Path(args.file)) as archive:
        restored = []
        try:
            if fresh:
                restored = archive.write_definitions(root)
            root = _workspace_dir(args.dir)
            linked = open_workspace(root)
            url = _database_url(args, root, linked.settings.database)

            async def run() -> tuple[Summary, str]:
                db = await connect(url)
                try:
                    return await import_archive(db, archive, disk_store(linked.settings, root)), db.display_url
                finally:
                    await db.close()

            summary, where = asyncio.run(run())
        except BaseException:
            if fresh and root.is_dir():  # the folder was new or empty: take back what was written into it
                for entry in root.iterdir():
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            raise
    if restored:
        print(f"restored {len(restored)} definition files into {root}")
    print(f"imported {args.file} into {where}: {summary.rows} rows in {summary.tables} tables, {summary.files} "
          f"stored files ({size_words(summary.file_bytes)}); definition version {summary.fingerprint[:12]}")
    if linked.fingerprint != summary.fingerprint:
        print(f"the workspace's definitions (version {linked.fingerprint[:12]}) differ from the archive's: "
              f"run `routecard plan {root}` and `routecard apply {root}` to migrate the restored data")
    return 0


DIAGRAM_SUFFIXES = {"svg": ".svg", "mermaid": ".mmd"}


def cmd_diagram(args: argparse.Namespace) -> int:
    """Draw a queue's workflow: SVG and Mermaid files, or Mermaid text on stdout (see docs/diagrams.md)."""
    import re

    from .check import did_you_mean
    from .diagram import queue_mermaid, queue_svg
    from .model.common import LANGUAGE_PATTERN

    root = _workspace_dir(args.dir)
    if args.language is not None and not re.match(LANGUAGE_PATTERN, args.language):
        raise UsageError(f"--language {args.language}: give a language code such as en or de-CH")
    linked = open_workspace(root)
    queue = linked.queues.get(args.queue)
    if queue is None:
        known = sorted(linked.queues)
        hint = did_you_mean(args.queue, known) or (f"; queues: {', '.join(known)}" if known else "; it defines none")
        raise UsageError(f"{root}: no queue `{args.queue}`{hint}")
    formats = [args.format] if args.format else []
    if args.output and args.output != "-" and not formats:
        suffix = Path(args.output).suffix.lower()
        found = [name for name, known_suffix in DIAGRAM_SUFFIXES.items() if suffix in (known_suffix, f".{name}")]
        if not found:
            raise UsageError(f"--output {args.output}: cannot tell the format from the name; add --format svg or mermaid")
        formats = found
    if not formats:
        formats = ["svg", "mermaid"]
    if args.output == "-" and len(formats) > 1:
        raise UsageError("--output -: give --format svg or mermaid to write one diagram to standard output")
    for kind in formats:
        text = (queue_svg if kind == "svg" else queue_mermaid)(queue, linked, args.language)
        if args.output == "-" or (kind == "mermaid" and args.format == "mermaid" and not args.output):
            sys.stdout.write(text)
            continue
        target = Path(args.output) if args.output else Path(f"{queue.name}{DIAGRAM_SUFFIXES[kind]}")
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{target}: cannot write the diagram: {exc.strerror}") from None
        print(f"wrote {target}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="routecard", description="Order and work-order workflows described in YAML.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def with_listen(p: argparse.ArgumentParser) -> None:
        p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
        p.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")

    def with_db(p: argparse.ArgumentParser) -> None:
        p.add_argument("--db", metavar="URL", help="database URL (sqlite:///path or postgresql://...); "
                       "default: ROUTECARD_DATABASE_URL, then the workspace's setting, then an SQLite "
                       "file in the workspace")

    p = sub.add_parser("init", help="create a new workspace from the starter")
    p.add_argument("dir")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("check", help="validate a workspace's definitions")
    p.add_argument("dir", nargs="?", default=".")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("test", help="run the workspace's workflow scenarios (tests/*.yaml) on a throw-away database")
    p.add_argument("dir", nargs="?", default=".")
    p.set_defaults(func=cmd_test)
    p = sub.add_parser("plan", help="show the migration plan against the database")
    p.add_argument("dir", nargs="?", default=".")
    with_db(p)
    p.set_defaults(func=cmd_plan)
    p = sub.add_parser("apply", help="apply the migration plan")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("--allow-destructive", action="store_true",
                   help="allow steps that delete data (purged fields)")
    with_db(p)
    p.set_defaults(func=cmd_apply)
    p = sub.add_parser("demo", help="apply an example workspace, add its demo users, and serve it")
    p.add_argument("dir", nargs="?", default="examples/ecommerce-workorders")
    with_db(p)
    with_listen(p)
    p.add_argument("--no-serve", action="store_true", help="stop after applying and adding the demo users")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("serve", help="serve the web app and JSON API (the database must be applied)")
    p.add_argument("dir", nargs="?", default=".")
    with_db(p)
    with_listen(p)
    p.add_argument("--worker", action="store_true",
                   help="also send the outbox's mail (always done on SQLite; on PostgreSQL run `routecard worker`)")
    p.add_argument("--log-format", choices=("text", "json"), default=None,
                   help="log lines as text or one JSON object each (default: ROUTECARD_LOG_FORMAT, else text)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("worker", help="run SLA escalations, scheduled jobs and the outbox's mail "
                                      "(for PostgreSQL deployments)")
    p.add_argument("dir", nargs="?", default=".")
    with_db(p)
    p.add_argument("--once", action="store_true", help="one round, then stop")
    p.add_argument("--interval", type=float, default=5.0, metavar="S",
                   help="seconds between rounds when idle (default: 5)")
    p.add_argument("--imap", action="store_true",
                   help="also fetch incoming mail from the IMAP mailbox of mail.inbound.imap (docs/mail.md)")
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("export", help="back up the workspace's definitions, data and stored files into one "
                                      "archive (docs/backup.md)")
    p.add_argument("dir", help="the workspace folder")
    with_db(p)
    p.add_argument("--out", required=True, metavar="FILE", help="the archive to write (a new file, e.g. backup.zip)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("import", help="restore an archive into an empty database (docs/backup.md)")
    p.add_argument("dir", help="the workspace folder; a new or empty one gets the archive's definitions")
    with_db(p)
    p.add_argument("file", help="the archive written by `routecard export`")
    p.set_defaults(func=cmd_import)

    def with_workspace(p: argparse.ArgumentParser) -> None:
        p.add_argument("--workspace", "-w", default=".", metavar="DIR",
                       help="the workspace folder (default: the current folder)")
        with_db(p)

    users = sub.add_parser("users", help="manage users").add_subparsers(
        dest="users_command", required=True, parser_class=_Parser)
    p = users.add_parser("add", help="add a user, or add groups and roles to one")
    p.add_argument("username")
    p.add_argument("--group", action="append", default=[], metavar="G", help="a group to join (repeatable)")
    p.add_argument("--role", action="append", default=[], metavar="R", help="a role to hold (repeatable)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--name", help="display name (default: the username)")
    p.add_argument("--email")
    p.add_argument("--customer", metavar="NAME", help="make a customer user of this customer (by its name)")
    with_workspace(p)
    p.set_defaults(func=cmd_users_add)
    tokens = sub.add_parser("tokens", help="manage API tokens").add_subparsers(
        dest="tokens_command", required=True, parser_class=_Parser)
    p = tokens.add_parser("create", help="create an API token; prints only the token")
    p.add_argument("username")
    p.add_argument("--name", default="cli", help="what the token is for (default: cli)")
    with_workspace(p)
    p.set_defaults(func=cmd_tokens_create)
    rules = sub.add_parser("rules", help="automation rules").add_subparsers(
        dest="rules_command", required=True, parser_class=_Parser)
    p = rules.add_parser("replay", help="what the workspace's rules would have done on the changes recorded "
                         "since a date (nothing is written)")
    p.add_argument("dir", help="the workspace folder (its current, possibly not yet applied, rules)")
    p.add_argument("--since", required=True, metavar="DATE", help="replay changes from this date (YYYY-MM-DD)")
    p.add_argument("--until", metavar="DATE", help="and before this date (default: up to now)")
    with_db(p)
    p.set_defaults(func=cmd_rules_replay)
    p = sub.add_parser("diagram", help="draw a queue's workflow as SVG and Mermaid",
                       description="Without --format or --output: write QUEUE.svg and QUEUE.mmd into the current "
                                   "folder. --format mermaid alone prints the Mermaid text; --output - prints the "
                                   "chosen format.")
    p.add_argument("dir", help="the workspace folder")
    p.add_argument("queue", help="the queue's name")
    p.add_argument("--format", choices=sorted(DIAGRAM_SUFFIXES), help="svg or mermaid (default: both, as files)")
    p.add_argument("--output", "-o", metavar="FILE",
                   help="write to FILE (- for standard output); the format follows its suffix (.svg, .mmd) "
                        "unless --format is given")
    p.add_argument("--language", metavar="LANG", help="the labels' language (default: the workspace's)")
    p.set_defaults(func=cmd_diagram)
    p = sub.add_parser("schema", help="write the definition language's JSON Schemas")
    p.add_argument("--out", default="definitions", help="folder to write into (default: definitions)")
    p.set_defaults(func=cmd_schema)
    p = sub.add_parser("plugins", help="list the plugins, their hooks and status")
    p.add_argument("dir", nargs="?", help="a workspace whose plugin settings to check too")
    p.set_defaults(func=cmd_plugins)
    _plugin_commands(sub)
    return parser


def cmd_plugins(args: argparse.Namespace) -> int:
    """List the plugins: name, where from, status (with the reason when disabled), hooks, failures."""
    from .plugins import describe

    plugins = default_plugins()
    if args.dir is not None:  # a workspace's settings are checked against the plugins' schemas
        open_workspace(_workspace_dir(args.dir), plugins=plugins)
    for info in describe(plugins):
        status = info.status if not info.reason else f"{info.status}: {info.reason}"
        print(f"{info.name} ({info.source}) {status}")
        if info.hooks:
            print(f"  hooks: {', '.join(h.removeprefix('routecard_') for h in info.hooks)}")
        for failure in info.failures:
            print(f"  failed: {failure}")
    return 0


def _plugin_commands(sub: argparse._SubParsersAction[_Parser]) -> None:
    """Add the sub-commands plugins provide (``routecard_cli_commands``)."""
    for command in default_plugins().cli_commands(taken=set(sub.choices)):
        p = sub.add_parser(command.name, help=command.help)
        try:
            command.configure(p)
        except Exception as exc:  # noqa: BLE001 - a broken plugin command is reported, not fatal
            default_plugins().fail(command.name, "routecard_cli_commands", f"{type(exc).__name__}: {exc}")
            continue
        p.set_defaults(func=command.run)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    try:
        args = _parser().parse_args(argv)
        return int(args.func(args))
    except DefinitionError as exc:
        _print_diagnostics(exc.diagnostics, sys.stderr)
        print(f"{exc.detail}", file=sys.stderr)
        return exc.exit_code
    except RoutecardError as exc:
        print(f"routecard: error: {exc.detail}", file=sys.stderr)
        if isinstance(exc, ServiceError):
            for problem in exc.errors:
                print(f"  {problem['field']}: {problem['message']}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
