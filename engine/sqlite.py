"""SQLite with one long-lived connection, shared by every query and transaction.

piccolo's SQLiteEngine opens a connection (and a thread) for every query and every
transaction, which caps a server at a few hundred writes per second. This engine
keeps one connection in WAL mode; transactions take turns on it (an asyncio lock),
and statements outside a transaction wait for the running one to finish. SQLite
allows one writer at a time anyway, so nothing is lost by serialising.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiosqlite
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory


class _Borrowed:
    """The shared connection as a transaction sees it: closing it only hands it back."""

    def __init__(self, connection: aiosqlite.Connection) -> None:
        self._connection = connection

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    async def close(self) -> None:
        return None


class _TakingTurns(SQLiteTransaction):
    """A transaction that holds the engine's lock from BEGIN to COMMIT or ROLLBACK."""

    engine: SharedSQLiteEngine

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        await self.engine.lock.acquire()
        try:
            return await super().__aenter__()
        except BaseException:
            self.engine.lock.release()
            raise

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return await super().__aexit__(exception_type, exception, traceback)
        try:
            return await super().__aexit__(exception_type, exception, traceback)
        finally:
            self.engine.lock.release()


class SharedSQLiteEngine(SQLiteEngine):
    """A piccolo SQLite engine over one persistent connection (see the module docstring)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self.lock = asyncio.Lock()
        self._connection: aiosqlite.Connection | None = None

    async def _shared(self) -> aiosqlite.Connection:
        if self._connection is None:
            connection = await aiosqlite.connect(**{**self.connection_kwargs, "isolation_level": None})
            connection.row_factory = dict_factory  # type: ignore[assignment]
            for pragma in ("foreign_keys = 1", "journal_mode = WAL", "synchronous = NORMAL",
                           "busy_timeout = 10000"):
                await connection.execute(f"PRAGMA {pragma}")
            self._connection = connection
        return self._connection

    async def get_connection(self) -> Any:
        return _Borrowed(await self._shared())

    async def _run_in_existing_connection(self, connection: Any, query: str, args: list[Any] | None = None,
                                          query_type: str = "generic", table: Any = None) -> Any:
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()

    async def _run_in_new_connection(self, query: str, args: list[Any] | None = None,
                                     query_type: str = "generic", table: Any = None) -> Any:
        async with self.lock:
            connection = await self._shared()
            async with connection.execute(query, args or []) as cursor:
                return await cursor.fetchall()

    def transaction(self, transaction_type: TransactionType = TransactionType.deferred,
                    allow_nested: bool = True) -> SQLiteTransaction:
        return _TakingTurns(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def close(self) -> None:
        """Close the shared connection (a later query opens it again)."""
        async with self.lock:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None
