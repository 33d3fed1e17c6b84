"""Shared fixtures: databases on SQLite (always) and PostgreSQL (when configured).

Set ``ROUTECARD_TEST_POSTGRES`` to a PostgreSQL URL (a server URL; the database in it
is used only to create and drop this session's own database). With
``ROUTECARD_REQUIRE_POSTGRES=1`` or ``CI=true`` an unreachable PostgreSQL fails the
run instead of skipping the PostgreSQL half of the tests.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from comms_helpers import SmtpServer
from engine.db import Database, connect

PG_URL = os.environ.get("ROUTECARD_TEST_POSTGRES", "")
REQUIRE_PG = os.environ.get("ROUTECARD_REQUIRE_POSTGRES") == "1" or os.environ.get("CI") == "true"
ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(PG_URL)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    """A database of this session's own on the PostgreSQL server (dropped at the end)."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("ROUTECARD_TEST_POSTGRES is not set, but PostgreSQL is required in CI")
        yield None
        return
    name = f"routecard_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable: {exc}")
        yield None
        return
    try:
        yield _with_database(PG_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("dialect", ["sqlite", "postgresql"], scope="function")


@pytest.fixture
def database_url(dialect: str, tmp_path: Path, postgres_server_url: str | None) -> Iterator[str]:
    """An empty database of ``dialect``: a fresh SQLite file, or a reset PostgreSQL schema."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'routecard.db'}"
        return
    if postgres_server_url is None:
        pytest.skip("PostgreSQL not configured (set ROUTECARD_TEST_POSTGRES)")

    async def reset() -> None:
        connection = await asyncpg.connect(postgres_server_url)
        try:
            await connection.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        finally:
            await connection.close()

    asyncio.run(reset())
    yield postgres_server_url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A connected ``Database`` on ``database_url``."""
    database = await connect(database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every query asyncpg sends to PostgreSQL during the test, as sent (without a final semicolon)."""
    queries: list[str] = []
    for name in ("execute", "fetch"):
        original = getattr(asyncpg.connection.Connection, name)

        def recording(self: Any, query: str, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            queries.append(query.strip().rstrip(";"))
            return _original(self, query, *args, **kwargs)

        monkeypatch.setattr(asyncpg.connection.Connection, name, recording)
    yield queries


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback for the test, keeping what it receives."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
