"""A database out of reach is a 503 (try again), not a 500: found by bench/fault_harness.py, where
stopping PostgreSQL made every request answer 500 "internal error"."""

from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from engine.db import Database, connect, unavailable
from tests.api_helpers import HOSTING_USERS, served


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the socket is closed


async def _pg(database_url: str) -> Database:
    if not database_url.startswith("postgresql"):
        pytest.skip("the driver's connection errors are PostgreSQL's")
    return await connect(database_url)


async def test_connection_failures_are_unavailable_and_bugs_are_not(database_url: str) -> None:
    db = await _pg(database_url)
    try:
        with pytest.raises(OSError) as refused:
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{_closed_port()}/x", timeout=5)
        assert unavailable(refused.value)
        victim = await asyncpg.connect(database_url)
        pid = victim.get_server_pid()
        await db.execute("SELECT pg_terminate_backend({})", pid)  # what a server shutdown does to a session
        with pytest.raises(Exception) as ended:  # at once: the driver may not have read the end yet
            await victim.fetch("SELECT 1")
        assert unavailable(ended.value), repr(ended.value)
        for _ in range(100):
            if victim.is_closed():
                break
            await asyncio.sleep(0.05)
        with pytest.raises(asyncpg.InterfaceError) as closed:
            await victim.fetch("SELECT 1")
        assert unavailable(closed.value), repr(closed.value)
        with pytest.raises(asyncpg.PostgresError) as broken:
            await db.execute("SELECT no_such_column FROM rc_work_order")
        assert not unavailable(broken.value)
        assert not unavailable(ZeroDivisionError())
    finally:
        await db.close()


async def test_requests_answer_503_while_the_database_is_out_of_reach(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the server's database is cut off by pointing its PostgreSQL engine elsewhere")
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        assert (await api.get("tom.berger", "/api/orders")).status_code == 200
        pool = api.runtime.db.engine.pool  # the server's own pool, on the app's event loop
        dsn = api.runtime.db.url
        # its connections are replaced, and the new ones go to a port nobody listens on
        pool.set_connect_args(dsn=f"postgresql://postgres@127.0.0.1:{_closed_port()}/routecard")
        await pool.expire_connections()
        try:
            listed = await api.get("tom.berger", "/api/orders")
            assert listed.status_code == 503, listed.text
            assert listed.json()["error"] == "unavailable" and listed.headers["retry-after"] == "1"
            assert "Connect" not in listed.text  # no driver message leaves the server
            created = await api.post("tom.berger", "/api/templates/hosting_order/orders", {"fields": {}})
            assert created.status_code == 503, created.text
            assert (await api.client.get("/readyz")).status_code == 503
            assert (await api.client.get("/healthz")).status_code == 200
        finally:
            pool.set_connect_args(dsn=dsn)
            await pool.expire_connections()
        assert (await api.get("tom.berger", "/api/orders")).status_code == 200


async def test_a_task_goes_on_after_its_session_ends_inside_a_transaction(database_url: str) -> None:
    """A worker's loop is one task for its whole life: a transaction whose session the database
    ended (a restart, an outage) must not stay that task's transaction. With piccolo's own
    transaction it did, and every later statement of the task failed."""
    db = await _pg(database_url)
    await db.start_pool()
    try:
        with pytest.raises(Exception) as ended:
            async with db.transaction():
                pid = await db.fetch_value("SELECT pg_backend_pid() AS pid")
                await db.execute("CREATE TEMPORARY TABLE rc_gone (n integer)")
                killer = await asyncpg.connect(database_url)
                try:
                    await killer.execute("SELECT pg_terminate_backend($1)", pid)
                finally:
                    await killer.close()
                for _ in range(100):  # until the driver has read that the session is gone
                    await db.execute("INSERT INTO rc_gone (n) VALUES (1)")
                    await asyncio.sleep(0.05)
        assert unavailable(ended.value), repr(ended.value)
        assert db.engine.current_transaction.get() is None
        async with db.transaction():
            assert await db.fetch_value("SELECT pg_backend_pid() AS pid") != pid
        assert await db.fetch_value("SELECT 2 AS two") == 2
    finally:
        await db.close()
