"""SQLite with long-lived connections, used from the event loop's own thread.

piccolo's SQLiteEngine opens a connection (and a thread, through aiosqlite) for every
query and every transaction, and each statement then travels to that thread and back;
that hop costs several times what SQLite itself spends on a small statement. This
engine keeps two connections in WAL mode and runs statements directly:

- the writer: transactions take turns on it (an asyncio lock); a write outside a
  transaction waits for its turn like a transaction;
- the reader: a ``SELECT`` outside a transaction runs at once on a second connection,
  which sees what has been committed (WAL readers never wait for the writer).

Group commit: a commit writes every page the transaction changed to the WAL, and a
work order touches some twenty (its table, ten indexes, its fields, actions, event).
Transactions that come close together share one commit instead: each runs inside a
savepoint of one open write transaction, and the write transaction commits on the
event loop's next round, after the transactions already under way have had their
turn (at most ``GROUP_LIMIT``). A transaction returns only after that commit, so
nothing is acknowledged before it is in the WAL; a failing transaction rolls back to
its own savepoint and takes nobody else's work with it, and raises once the work
before it is committed (a retry then reads what the others made, as if each had run
alone); if the commit fails, every transaction of the group raises.

Checkpoints, which copy the WAL into the database file, run on a thread of their own
(``_Checkpointer``), not in the commit that happens to make the WAL long.

The cost: a long query blocks the event loop while it runs. Routecard's queries are
indexed and paged (lists use keyset cursors), so they stay short; a deployment that
outgrows this moves to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sqlite3
import threading
from collections.abc import Generator, Sequence
from typing import Any

from piccolo.engine.sqlite import (SQLiteEngine, SQLiteTransaction, TransactionType, convert_datetime_in,
                                  dict_factory)


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
    """A transaction on the writer: its turn from start to end, inside its group's write transaction."""

    engine: SharedSQLiteEngine

    async def __aenter__(self) -> SQLiteTransaction:
        if self._parent is not None:
            return self._parent
        engine = self.engine
        await engine.lock.acquire()
        try:
            engine.begin_member()
        except BaseException:
            engine.end_turn()
            raise
        self.connection = _Connection(engine.writer())
        self.context = engine.current_transaction.set(self)
        return self

    async def commit(self) -> None:
        raise NotImplementedError("a Routecard transaction commits when its block ends")

    async def rollback(self) -> None:
        raise NotImplementedError("a Routecard transaction rolls back when its block raises")

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent is not None:
            return exception is None
        engine = self.engine
        engine.current_transaction.reset(self.context)
        committed: asyncio.Future[None] | None = None
        try:
            committed = engine.end_member(failed=exception is not None)
        finally:
            engine.end_turn()
        if committed is not None:
            if exception is None:
                await committed
            else:  # what came before it in the group is committed when it raises, as if run alone
                with contextlib.suppress(GroupLost):
                    await committed
        return exception is None


logger = logging.getLogger(__name__)

_MEMBER = "rc_group_member"
"""The savepoint each transaction of a group runs in."""

GROUP_LIMIT = 64
"""At most this many transactions share one commit."""

CHECKPOINT_PAUSE = 0.05
"""Seconds the checkpointer rests after a checkpoint, so that one copies the work of several commits."""

FALLBACK_CHECKPOINT = 10_000
"""Pages of WAL after which the writer checkpoints itself, should the checkpointer fall behind."""

_PRAGMAS = ("foreign_keys = 1", "journal_mode = WAL", "synchronous = NORMAL", "busy_timeout = 10000",
            "temp_store = MEMORY")
"""``temp_store``: the savepoints' journals stay in memory."""


_last_moment: tuple[dt.datetime, str] | None = None
"""The datetime ``_datetime_in`` converted last, and its text."""


def _datetime_in(value: dt.datetime) -> str:
    """A datetime as SQLite stores it: piccolo's adapter, remembering the last value it converted.

    A write binds one moment to several columns (created and updated, its audit event's
    time), so the text of the last one is kept: ``str`` of a datetime costs some 7,000
    instructions in Python 3.11, more than the rest of binding it.
    """
    global _last_moment
    last = _last_moment
    if last is not None and last[0] is value:
        return last[1]
    text = convert_datetime_in(value)
    _last_moment = (value, text)
    return text


sqlite3.register_adapter(dt.datetime, _datetime_in)  # in place of piccolo's own registration


class _Checkpointer:
    """Copies the WAL into the database file on a thread and connection of its own.

    SQLite checkpoints when a commit has made the WAL long (1,000 pages by default), in
    that commit: copying the pages and syncing the file took 15-25 ms, during which the
    event loop, which runs the commit, stood still for every request. Here the writer
    only wakes this thread after its commits, and the thread runs a PASSIVE checkpoint,
    which waits for no reader or writer and none waits for it (the sqlite3 module lets
    go of the GIL while SQLite works). The writer still checkpoints itself beyond
    ``FALLBACK_CHECKPOINT`` pages, should this thread fall behind or fail.
    """

    def __init__(self, open_connection: Any) -> None:
        self._open = open_connection
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0

    def nudge(self) -> None:
        """Commits were made: checkpoint soon."""
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """End the thread (closing the last connection checkpoints what is left)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping.set()
            self._wake.set()
            thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection = self._open()
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # the writer's own checkpoints take over
                    logger.warning("background checkpoint failed", exc_info=True)
                if self._stopping.wait(CHECKPOINT_PAUSE):
                    break
        finally:
            connection.close()


class GroupLost(sqlite3.OperationalError):
    """The write transaction of a group ended without committing: its transactions' work is gone."""


class SharedSQLiteEngine(SQLiteEngine):
    """A piccolo SQLite engine over a writer and a reader connection (see the module docstring)."""

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self.lock = asyncio.Lock()
        self.group: list[asyncio.Future[None]] | None = None
        """The open write transaction's finished transactions, waiting for its commit (``None``: none open)."""
        self._commit_due = False
        self.commits = 0
        """Write transactions committed (a group counts once)."""
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self.checkpointer = _Checkpointer(self._open)

    def _open(self) -> sqlite3.Connection:
        options = {k: v for k, v in self.connection_kwargs.items() if k != "isolation_level"}
        connection: sqlite3.Connection = sqlite3.connect(**options, isolation_level=None, check_same_thread=False)
        connection.row_factory = dict_factory
        for pragma in _PRAGMAS:
            connection.execute(f"PRAGMA {pragma}")
        return connection

    def writer(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = self._open()
            self._writer.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_CHECKPOINT}")
        return self._writer

    def reader(self) -> sqlite3.Connection:
        if self._reader is None:
            self._reader = self._open()
        return self._reader

    # -- groups (the caller holds the lock, except in _commit_soon) -------------------

    def begin_member(self) -> None:
        connection = self.writer()
        if self.group is None:
            connection.execute("BEGIN IMMEDIATE")
            self.group = []
        connection.execute(f"SAVEPOINT {_MEMBER}")

    def end_member(self, *, failed: bool) -> asyncio.Future[None] | None:
        """Close the transaction's savepoint (rolled back if it ``failed``); a future of the group's commit."""
        connection = self.writer()
        try:
            if failed:
                connection.execute(f"ROLLBACK TO {_MEMBER}")
            connection.execute(f"RELEASE {_MEMBER}")
        except sqlite3.Error as exc:  # SQLite ended the whole transaction (disk full, I/O error)
            self._end_group(exc)
            if failed:
                return None
            raise
        committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        assert self.group is not None
        self.group.append(committed)
        if len(self.group) >= GROUP_LIMIT:
            self.commit_group()
        return committed

    def end_turn(self) -> None:
        """Give up the writer; a group left open commits on the event loop's next round."""
        self.lock.release()
        if self.group is not None and not self._commit_due:
            self._commit_due = True
            asyncio.get_running_loop().call_soon(self._commit_soon)

    def _commit_soon(self) -> None:
        self._commit_due = False
        if self.group is not None and not self.lock.locked():
            self.commit_group()
        # else a transaction has the writer: its end_turn calls again

    def commit_group(self) -> None:
        """Commit the open write transaction, if any, and tell its transactions."""
        if self.group is None:
            return
        connection = self.writer()
        try:
            if not connection.in_transaction:
                raise GroupLost("the write transaction ended before its commit")
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            self._end_group(exc)
            return
        self.commits += 1
        self.checkpointer.nudge()
        group, self.group = self.group, None
        for member in group:
            if not member.done():
                member.set_result(None)

    def _end_group(self, exc: sqlite3.Error) -> None:
        """The group's work is lost: roll back what is left and fail its transactions."""
        group, self.group = self.group, None
        connection = self.writer()
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        for member in group or []:
            if not member.done():
                member.set_exception(GroupLost(f"the transaction was not committed: {exc}"))

    # -- piccolo's entry points -------------------------------------------------------

    async def get_connection(self) -> Any:
        return _Connection(self.writer())

    def run_in_transaction(self, query: str, args: Sequence[Any]) -> list[Any]:
        """A statement of the running transaction (which has the writer)."""
        return _run(self.writer(), query, args)

    def insert_in_transaction(self, query: str, args: Sequence[Any]) -> int:
        """An ``INSERT`` of one row in the running transaction; the row's id."""
        cursor = self.writer().execute(query, args)
        try:
            row_id = cursor.lastrowid
        finally:
            cursor.close()
        assert row_id is not None
        return row_id

    async def _run_in_existing_connection(self, connection: Any, query: str, args: list[Any] | None = None,
                                          query_type: str = "generic", table: Any = None) -> Any:
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()

    async def _run_in_new_connection(self, query: str, args: list[Any] | None = None,
                                     query_type: str = "generic", table: Any = None) -> Any:
        if query.lstrip()[:6].upper() == "SELECT":
            return _run(self.reader(), query, args)
        async with self.lock:  # a write on its own: after the open group's commit
            self.commit_group()
            rows = _run(self.writer(), query, args)
            self.checkpointer.nudge()
            return rows

    def transaction(self, transaction_type: TransactionType = TransactionType.deferred,
                    allow_nested: bool = True) -> SQLiteTransaction:
        return _TakingTurns(engine=self, transaction_type=transaction_type, allow_nested=allow_nested)

    async def close(self) -> None:
        """Close the connections (a later query opens them again)."""
        async with self.lock:
            self.commit_group()
            self.checkpointer.stop()
            for connection in (self._writer, self._reader):
                if connection is not None:
                    connection.close()
            self._writer = self._reader = None


def _run(connection: sqlite3.Connection, query: str, args: Sequence[Any] | None) -> list[Any]:
    cursor = connection.execute(query, args or [])
    try:
        return cursor.fetchall()
    finally:
        cursor.close()
