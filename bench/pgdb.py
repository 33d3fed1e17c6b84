"""The databases a benchmark runs on: SQLite in a folder, and a throw-away PostgreSQL database."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

TICKET_DEFS = """\
kind: Group
name: desk
members: [agent]
---
kind: Template
name: ticket
label: Ticket
numbering: {prefix: T-}
---
kind: Queue
name: support
templates: [ticket]
steps:
  - name: triage
    group: desk
"""
"""One group, one template without fields and a one-step queue: the smallest workspace a benchmark fills."""

DEFAULT_SERVER = os.environ.get("ROUTECARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str | None]:
    """The URL of a new, empty database on ``server_url`` (dropped afterwards), or ``None``
    (after saying why) when the server cannot be reached."""
    try:
        admin = await asyncpg.connect(server_url)
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"PostgreSQL: skipped ({exc})")
        yield None
        return
    name = f"routecard_bench_{os.getpid()}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def each_database(files: Mapping[str, str], server_url: str, *, sqlite_only: bool = False,
                        postgres_only: bool = False) -> AsyncIterator[tuple[str, str, Path]]:
    """``(label, database URL, workspace folder)`` for SQLite, then PostgreSQL when reachable
    (either alone when asked); each with its own copy of the workspace ``files`` (name -> text)
    in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        for label in ("SQLite", "PostgreSQL"):
            if label == "PostgreSQL" and sqlite_only:
                break
            if label == "SQLite" and postgres_only:
                continue
            root = Path(tmp) / label
            root.mkdir()
            for name, text in files.items():
                (root / name).write_text(text)
            if label == "SQLite":
                yield label, f"sqlite:///{root}/bench.db", root
                continue
            async with scratch_database(server_url) as url:
                if url is not None:
                    yield label, url, root
