"""The commands on a database's data: users add, tokens create, rules replay, export, import."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from ..errors import UsageError
from ..workspace import open_workspace
from .common import database_url, runtime_db, workspace_dir


def cmd_users_add(args: argparse.Namespace) -> int:
    from ..db import connect
    from ..runtime import add_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")

    if args.customer and (args.group or args.role):
        raise UsageError("--customer: a customer user holds no groups or roles")

    async def run() -> int:
        linked, url = await runtime_db(args)
        db = await connect(url)
        try:
            if args.customer:  # a customer user, made (and audited) as staff would make one in the UI
                from ..runtime import SYSTEM
                from ..runtime.customers import Customers

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
    from ..db import connect
    from ..runtime import create_token
    from ..runtime.actors import user_id

    async def run() -> str:
        _, url = await runtime_db(args)
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

    from ..automation.replay import replay_rules, report
    from ..db import connect

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
    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)

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
    from ..archive import Summary, export_archive
    from ..db import connect
    from ..runtime.attachments import disk_store
    from ..storage import size_words

    root = workspace_dir(args.dir)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)
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

    from ..archive import Summary, import_archive, open_archive
    from ..db import connect
    from ..runtime.attachments import disk_store
    from ..storage import size_words

    root = Path(args.dir)
    fresh = not root.exists() or (root.is_dir() and not any(root.iterdir()))
    with open_archive(Path(args.file)) as archive:
        restored = []
        try:
            if fresh:
                restored = archive.write_definitions(root)
            root = workspace_dir(args.dir)
            linked = open_workspace(root)
            url = database_url(args, root, linked.settings.database)

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
