"""SQLite with one long-lived connection, used from the event loop's own thread.

piccolo's SQLiteEngine opens a connection (and a thread, through aiosqlite) for every
query and every transaction, and each statement then travels to that thread and back;
that hop costs several times what SQLite itself spends on a small statement. This
engine keeps one connection in WAL mode and runs statements directly: transactions
take turns on it (an asyncio lock), statements outside a transaction wait for the
running one to finish. SQLite allows one writer at a time anyway.

The cost: a long query blocks the event loop while it runs. Routecard's queries are
indexed and paged (lists use keyset cursors), so they stay short; a deployment that
outgrows this moves to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Generator
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory


class _Cursor:
    """An executed statement, usable the way piccolo uses aiosqlite's (awaited or ``async with``)."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    def __await__(self) -> Generator[Any, None, _Cursor]:
        if False:  # pragma: no cover - makes this a generator
            yield
        return self

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._cursor.close()

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid


class _Connection:
    """The shared connection as piccolo's transaction sees it: closing it only hands it back."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, parameters: Any = ()) -> _Cursor:
        return _Cursor(self._connection.execute(sql, parameters))

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
        self._connection: sqlite3.Connection | None = None

    def _shared(self) -> sqlite3.Connection:
        if self._connection is None:
            options = {k: v for k, v in self.connection_kwargs.items() if k != "isolation_level"}
            connection = sqlite3.connect(**options, isolation_level=None, check_same_thread=False)
            connection.row_factory = dict_factory
            for pragma in ("foreign_keys = 1", "journal_mode = WAL", "synchronous = NORMAL",
                           "busy_timeout = 10000"):
                connection.execute(f"PRAGMA {pragma}")
            self._connection = connection
        return self._connection

    async def get_connection(self) -> Any:
        return _Connection(self._shared())

    async def _run_in_existing_connection(self, connection: Any, query: str, args: list[Any] | None = None,
                                          query_type: str = "generic", table: Any = None) -> Any:
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()

    async def _run_in_new_connection(self, query: str, args: list[Any] | None = None,
                                     query_type: str = "generic", table: Any = None) -> Any:
        async with self.lock:
            cursor = self._shared().execute(query, args or [])
            try:
                return cursor.fetchall()
            finally:
                cursor.close()

    def transaction(self, transaction_type: TransactionType = TransactionType.deferred,
                    allow_nested: bool = True) -> SQLiteTransaction:
        return _TakingTurns(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def close(self) -> None:
        """Close the shared connection (a later query opens it again)."""
        async with self.lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
