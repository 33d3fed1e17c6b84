"""The PostgreSQL connection pool's size: ``?pool_size=N`` on the database URL (Routecard's
parameter, taken off before the driver sees the URL)."""

from __future__ import annotations

import asyncio

import asyncpg
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

        async with asyncio.timeout(60):  # a connection never given back fails here, not hangs
            await asyncio.gather(*(hold() for _ in range(12)))
        assert most == 3 and len(sessions) == 3
    finally:
        await db.close()


async def test_connections_go_to_requests_in_the_order_they_asked(database_url: str) -> None:
    """A request that asks for a connection while others wait goes behind them, even when it
    asks at the very moment one comes back (asyncpg's pool alone hands it to the newcomer)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection pool")
    db = await connect(database_url + "?pool_size=1")
    await db.start_pool()
    loop = asyncio.get_running_loop()
    served: list[str] = []
    holding, give_back = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with db.transaction():
            await db.execute("SELECT 1")
            holding.set()
            await give_back.wait()

    async def ask(name: str, kind: int) -> None:
        """One statement, in a transaction, alone or in a read snapshot (which wait in the
        same line); with one connection they run one after the other, so the order they end
        in is the order served."""
        if kind == 1:
            await db.execute("SELECT 1")
        elif kind == 2:
            async with db.snapshot():
                await db.execute("SELECT 1")
        else:
            async with db.transaction():
                await db.execute("SELECT 1")
        served.append(name)

    try:
        holder = asyncio.create_task(hold())
        await holding.wait()
        waiting = asyncio.create_task(ask("waiting", 0))
        await asyncio.sleep(0)  # it asked and waits for the one connection
        newcomers: list[asyncio.Task[None]] = []
        flooded = loop.create_future()

        def flood() -> None:
            """A newcomer asking in each turn of the event loop, from when the connection is given back."""
            if len(newcomers) < 30:
                newcomers.append(asyncio.create_task(ask(f"newcomer {len(newcomers)}", len(newcomers) % 3)))
                loop.call_soon(flood)
            else:
                flooded.set_result(None)

        give_back.set()
        loop.call_soon(flood)
        async with asyncio.timeout(30):  # a connection never given back fails here, not hangs
            await flooded
            await asyncio.gather(holder, waiting, *newcomers)
        assert served == ["waiting", *(f"newcomer {i}" for i in range(30))]
    finally:
        await db.close()


async def test_a_request_cancelled_in_line_or_holding_gives_its_place_back(database_url: str) -> None:
    """Cancelled while waiting for the one connection, or while using it: the next request
    still gets it (no place in the line is lost for good)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite has no connection pool")
    db = await connect(database_url + "?pool_size=1")
    await db.start_pool()
    try:
        holding = asyncio.Event()

        async def hold() -> None:
            async with db.transaction():
                await db.execute("SELECT 1")
                holding.set()
                await db.execute("SELECT pg_sleep(30)")

        holder = asyncio.create_task(hold())
        await holding.wait()
        in_line = asyncio.create_task(db.execute("SELECT 1"))
        await asyncio.sleep(0.05)
        in_line.cancel()
        holder.cancel()
        for task in (in_line, holder):
            with pytest.raises(asyncio.CancelledError):
                await task
        for _ in range(3):  # the place is free again, each time (a deadlock fails here, not hangs)
            assert await asyncio.wait_for(db.fetch_value("SELECT 7 AS n"), timeout=10) == 7
            async with asyncio.timeout(10), db.transaction():
                assert await db.fetch_value("SELECT 8 AS n") == 8
    finally:
        await db.close()


async def test_a_snapshot_sees_one_view_of_the_database(database_url: str) -> None:
    """Reads inside ``Database.snapshot`` do not see what another connection commits meanwhile."""
    if not database_url.startswith("postgresql"):
        pytest.skip("on SQLite the snapshot is a deferred transaction of the one file")
    db = await connect(database_url)
    await db.start_pool()
    other = await asyncpg.connect(database_url)
    try:
        await db.execute("CREATE TABLE snap_t (n integer)")
        await db.execute("INSERT INTO snap_t VALUES (1)")
        async with db.snapshot():
            assert await db.fetch_value("SELECT count(*) AS c FROM snap_t") == 1
            await other.execute("INSERT INTO snap_t VALUES (2)")
            assert await db.fetch_value("SELECT count(*) AS c FROM snap_t") == 1
        assert await db.fetch_value("SELECT count(*) AS c FROM snap_t") == 2
    finally:
        await other.close()
        await db.close()
