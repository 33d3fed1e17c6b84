"""The ``routecard`` command: init, check, plan, apply, demo, schema.

Exit codes: 0 fine, 1 definition errors or a refused plan, 2 usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import NoReturn, TextIO

from .diagnostics import Diagnostics
from .errors import DefinitionError, RoutecardError, UsageError
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
    for entry in starter.iterdir():
        if entry.name.endswith(".yaml"):
            (target / entry.name).write_text(entry.read_text(encoding="utf-8"), encoding="utf-8")
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
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="routecard", description="Order and work-order workflows described in YAML.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

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
    p = sub.add_parser("demo", help="check and apply an example workspace and show what it created")
    p.add_argument("dir", nargs="?", default="examples/ecommerce-workorders")
    with_db(p)
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("schema", help="write the definition language's JSON Schemas")
    p.add_argument("--out", default="definitions", help="folder to write into (default: definitions)")
    p.set_defaults(func=cmd_schema)
    return parser


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
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
