"""The PostgreSQL connection pool's size: ``?pool_size=N`` on the database URL (Routecard's
parameter, taken off before the driver sees the URL)."""

from __future__ import annotations

import asyncio

import pytest

from engine.db import POOL_SIZE, _pool_size, connect
from engine.errors import UsageError


def test_pool_size_is_taken_off_the_url_and_checked() -> None:
    url = "postgresql://app:secret@db.internal:5432/routecard"
    assert _pool_size(url) == (url, POOL_SIZE)
    assert _pool_size(url + "?pool_size=32") == (url, 32)
    assert _pool_size(url + "?sslmode=require&pool_size=4&application_name=rc") == (
        url + "?sslmode=require&application_name=rc", 4)
    for bad in ("0", "-1", "1001", "ten", "", "4&pool_size=5"):
        with pytest.raises(UsageError) as refused:
            _pool_size(f"{url}?pool_size={bad}")
        message = str(refused.value)
        assert "pool_size must be one whole number from 1 to 1000" in message
        assert "secret" not in message and "app:***@db.internal" in message


async def test_a_server_holds_at_most_pool_size_connections(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection pool")
    db = await connect(database_url + "?pool_size=3")
    await db.start_pool()
    try:
        assert db.url.endswith("?pool_size=3")  # as given; the driver got it without the parameter
        sessions: set[int] = set()
        busy = 0
        most = 0

        async def hold() -> None:
            nonlocal busy, most
            async with db.transaction():
                busy += 1
                most = max(most, busy)
                sessions.add(int(await db.fetch_value("SELECT pg_backend_pid() AS pid")))
                await db.execute("SELECT pg_sleep(0.05)")
                busy -= 1

        await asyncio.gather(*(hold() for _ in range(12)))
        assert most == 3 and len(sessions) == 3
    finally:
        await db.close()
