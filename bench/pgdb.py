"""A throw-away PostgreSQL database for a benchmark run, created and dropped around it."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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
