"""The ``routecard`` command: init, check, plan, apply, demo, schema, serve, worker, users, tokens, diagram,
plugins, export, import, and the commands plugins add.

Exit codes: 0 fine, 1 definition errors or a refused plan, 2 usage errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import (
    DefinitionError,
    RoutecardError,
    ServiceError,
    UsageError,
)
from ..plugins import default_plugins
from ..workspace import open_workspace
from .common import print_diagnostics, workspace_dir
from .data import cmd_export, cmd_import, cmd_rules_replay, cmd_tokens_create, cmd_users_add
from .definitions import DIAGRAM_SUFFIXES, cmd_apply, cmd_check, cmd_diagram, cmd_init, cmd_plan, cmd_schema, cmd_test
from .running import cmd_demo, cmd_serve, cmd_worker


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(message)


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
    from ..plugins import describe

    plugins = default_plugins()
    if args.dir is not None:  # a workspace's settings are checked against the plugins' schemas
        open_workspace(workspace_dir(args.dir), plugins=plugins)
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
        print_diagnostics(exc.diagnostics, sys.stderr)
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
