"""Database access: a piccolo engine (SQLite or PostgreSQL) and the few raw operations on it.

SQL text handed to ``fetch``/``execute`` is written by the engine itself; values always
travel as parameters (``{}`` placeholders, compiled to the driver's form) and identifiers are
checked and quoted with ``engine.identifiers.quote``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import warnings
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine, PostgresTransaction
from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from .errors import DatabaseError, Invalid, UsageError
from .identifiers import quote
from .sqlite import SharedSQLiteEngine

Dialect = Literal["sqlite", "postgresql"]
DEFAULT_SQLITE = ".routecard/routecard.db"


def default_url(root: Path, configured: str | None) -> str:
    """The workspace's database URL: its ``database`` setting or an SQLite file inside it.

    A relative SQLite path in the workspace setting is relative to the workspace folder.
    """
    if configured:
        if configured.startswith("sqlite:///") and not configured.startswith("sqlite:////"):
            relative = configured.removeprefix("sqlite:///")
            return "sqlite:///" + str((root / relative).resolve())
        return configured
    return "sqlite:///" + str((root / DEFAULT_SQLITE).resolve())


ROW_ID = "ROW_ID"
"""In a child statement of ``Database.insert_family``: the id of the row just inserted."""


def parent_value(column: str) -> str:
    """In a child statement of ``Database.insert_family_returning`` (PostgreSQL): the value of
    one of the columns the parent row returns."""
    return f"(SELECT {quote(column)} FROM parent)"


UNAVAILABLE_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
"""PostgreSQL states of a server going down, starting up or full: admin/crash shutdown, cannot
connect now, too many connections (with every class ``08`` connection exception)."""


def unavailable(exc: BaseException) -> bool:
    """Is ``exc`` (or what caused it) the database being out of reach, rather than a bug?

    True for a refused, reset or timed-out connection, a connection the server closed, and
    a server shutting down or starting up. Requests failing so answer 503 (try again), not 500.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (ConnectionError, TimeoutError, DatabaseError)):
            return True
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str) and (state.startswith("08") or state in UNAVAILABLE_STATES):
            return True
        if type(current).__module__.startswith("asyncpg") and (
                "closed" in str(current) or "released back to the pool" in str(current)
                or type(current).__name__ == "InternalClientError"):
            return True  # "connection is closed", "pool is closed"; a session the server ended under a query
            # (its connection, once closed, is handed back to the pool at once)
        current = current.__cause__ or current.__context__
    return False


POOL_SIZE = 10
"""Connections a server or worker keeps to PostgreSQL, unless its URL says ``?pool_size=N``."""


class Database:
    """One database, reached through a piccolo engine."""

    def __init__(self, url: str, engine: Engine[Any], dialect: Dialect, *, pool_size: int = POOL_SIZE) -> None:
        self.url = url
        self.engine = engine
        self.dialect: Dialect = dialect
        self.pool_size = pool_size
        self._turns: asyncio.Semaphore | None = None
        """Once the pool is started: one place per connection, taken in the order asked (``start_pool``)."""
        self._statements: dict[str, str] = {}

    @property
    def display_url(self) -> str:
        """The URL without any password, for messages."""
        return _without_password(self.url)

    def _compile(self, sql: str) -> str:
        """``{}`` placeholders in the dialect's form (``?`` or ``$n``), cached per statement."""
        compiled = self._statements.get(sql)
        if compiled is None:
            parts = sql.split("{}")
            if self.dialect == "sqlite":
                compiled = "?".join(parts)
            else:
                compiled = parts[0] + "".join(f"${i}{part}" for i, part in enumerate(parts[1:], start=1))
            if len(self._statements) < 4096:
                self._statements[sql] = compiled
        return compiled

    async def fetch(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        """Run one statement with ``{}`` placeholders bound to ``args``; return its rows.

        Inside ``transaction()`` it runs on the transaction's connection. Text holding the
        NUL character is refused (``Invalid``) on both databases alike: PostgreSQL cannot
        store it, and SQLite would.
        """
        _refuse_nul(args)
        query = self._compile(sql)
        engine: Any = self.engine
        current = engine.current_transaction.get()
        if self.dialect == "sqlite":
            if current is not None:
                rows: list[dict[str, Any]] = engine.run_in_transaction(query, args)  # it holds the writer
            else:
                rows = await engine._run_in_new_connection(query, list(args))
            return rows
        if isinstance(current, _Transaction):
            records = await (await current.begun()).fetch(query, *args)
        elif current is not None:
            records = await current.connection.fetch(query, *args)
        elif engine.pool is not None:
            async with self._turn(), engine.pool.acquire() as connection:
                records = await connection.fetch(query, *args)
        else:
            connection = await engine.get_new_connection()
            try:
                records = await connection.fetch(query, *args)
            finally:
                await connection.close()
        return [dict(record) for record in records]

    async def fetch_value(self, sql: str, *args: Any) -> Any:
        rows = await self.fetch(sql, *args)
        return next(iter(rows[0].values())) if rows else None

    async def execute(self, sql: str, *args: Any) -> None:
        """Run one statement that returns nothing of interest."""
        await self.fetch(sql, *args)

    def may_go_alone(self) -> bool:
        """Would ``fetch_alone`` send a statement alone now?"""
        return self._lone() is not None

    def _lone(self) -> _Transaction | None:
        """The current transaction, if a statement may go alone in it (see ``fetch_alone``)."""
        current = self.engine.current_transaction.get()
        return current if isinstance(current, _Transaction) and current.fresh and not current.nested else None

    async def fetch_alone(self, sql: str, *args: Any) -> list[dict[str, Any]] | None:
        """Run one statement as the current transaction's only one, committed by itself; its rows.

        On PostgreSQL, in a transaction that has sent nothing yet, the statement goes on the
        transaction's connection without BEGIN and COMMIT (one statement is atomic by
        itself): two round trips to the server fewer. The transaction then sends nothing
        more: a later statement in it raises ``RuntimeError`` (it could not be part of what
        has been committed). Anywhere else (SQLite, outside ``transaction()``, a transaction
        under way, a ``transaction()`` nested in a caller's, which the caller may go on
        with) it cannot, and ``None`` says so: the caller runs the statement in the
        transaction instead.
        """
        current = self._lone()
        if current is None:
            return None
        _refuse_nul(args)
        records = await current.connection.fetch(self._compile(sql), *args)
        current.sealed = True
        return [dict(record) for record in records]

    async def execute_apart(self, sql: str) -> None:
        """PostgreSQL: run one statement without parameters on a connection of its own (not
        the pool's), committed by itself, whatever transaction the caller is in."""
        engine = self.engine
        assert isinstance(engine, PostgresEngine)
        connection = await engine.get_new_connection()
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    async def insert_family(self, parent: str, args: Sequence[Any],
                            children: Sequence[tuple[str, Sequence[Any]]]) -> int:
        """Insert a row and rows referring to it, all or none; return the row's id.

        ``parent`` is an ``INSERT`` of one row into a table whose key is ``id``; each child an
        ``INSERT`` whose SQL writes ``ROW_ID`` where the new id goes. On PostgreSQL all of them
        are one statement (data-modifying ``WITH``), one round trip to the server instead of
        one per row; on SQLite, which runs in this process, they are run one after the other
        in a transaction, the id read from the cursor (cheaper than ``RETURNING``).
        """
        if self.dialect == "postgresql":
            return int((await self.insert_family_returning(parent, args, children))["id"])
        engine = self.engine
        assert isinstance(engine, SharedSQLiteEngine)
        _refuse_nul(args)
        for _, child_args in children:
            _refuse_nul(child_args)
        async with self.transaction():
            new_id = engine.insert_in_transaction(self._compile(parent), args)
            for sql, child_args in children:
                engine.run_in_transaction(_with_row_id(sql), (new_id, *child_args))
        return new_id

    async def insert_family_returning(self, parent: str, args: Sequence[Any],
                                      children: Sequence[tuple[str, Sequence[Any]]], returning: tuple[str, ...] = (),
                                      *, alone: bool = False) -> dict[str, Any]:
        """PostgreSQL: ``insert_family`` in one statement, giving the parent row's ``id`` and
        ``returning`` columns, which children may use as ``parent_value(column)``.

        With ``alone``, the statement is the transaction's only one if it can be
        (``fetch_alone``); otherwise it runs in the transaction.
        """
        assert self.dialect == "postgresql"
        values = [*args, *(value for _, child_args in children for value in child_args)]
        statement = _family(parent, tuple(sql for sql, _ in children), ("id", *returning))
        rows = await self.fetch_alone(statement, *values) if alone else None
        if rows is None:
            rows = await self.fetch(statement, *values)
        return rows[0]

    def transaction(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A write transaction: everything inside commits together or not at all."""
        transaction: contextlib.AbstractAsyncContextManager[Any]
        if isinstance(self.engine, SQLiteEngine):
            transaction = self.engine.transaction(transaction_type=TransactionType.immediate)
        else:
            assert isinstance(self.engine, PostgresEngine)
            transaction = _Transaction(self.engine, self._turns)
        return transaction

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[None]:
        """One consistent view of the database for the reads inside, blocking no writer: on
        SQLite a deferred (read) transaction, on PostgreSQL a ``REPEATABLE READ, READ ONLY``
        one (which waits its turn for a connection like any other). Inside a transaction
        already, that transaction's view."""
        engine: Any = self.engine
        if engine.current_transaction.get() is not None:
            yield
        elif self.dialect == "sqlite":
            async with engine.transaction(transaction_type=TransactionType.deferred):
                yield
        else:
            async with self.transaction():
                await self.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                yield

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """A place in the line for a pooled connection (``start_pool``)."""
        return self._turns if self._turns is not None else contextlib.nullcontext()

    async def start_pool(self) -> None:
        """Keep PostgreSQL connections open for reuse (servers and workers; not needed by one-off commands).

        At most ``pool_size`` connections: a request that finds them all busy waits its
        turn: connections go to requests in the order they asked. (asyncpg's pool alone gives
        a connection coming back to whoever asks first after, ahead of those already waiting:
        under load some requests were passed over again and again; docs/deploy.md has the
        latencies.) A request holds its place from asking until its connection is back.

        A connection handed back to the pool is not reset with a query (asyncpg's default
        runs ``RESET ALL; UNLISTEN *; ...``, one more round trip per use): Routecard leaves
        no session state behind. It never runs ``SET`` outside a transaction, ``LISTEN``, or
        session advisory locks; an open transaction is still rolled back by asyncpg.
        """
        if isinstance(self.engine, PostgresEngine) and self._turns is None:
            await self.engine.start_connection_pool(reset=_keep_session, min_size=min(self.pool_size, POOL_SIZE),
                                                    max_size=self.pool_size)
            self._turns = asyncio.Semaphore(self.pool_size)  # fair: a newcomer goes behind those waiting

    async def close(self) -> None:
        if isinstance(self.engine, SharedSQLiteEngine):
            await self.engine.close()
        if isinstance(self.engine, PostgresEngine) and self._turns is not None:
            await self.engine.close_connection_pool()
            self._turns = None


async def _keep_session(connection: Any) -> None:
    """The pool's reset: nothing to undo (see ``Database.start_pool``)."""


def _refuse_nul(args: Sequence[Any]) -> None:
    for arg in args:
        if isinstance(arg, str) and "\x00" in arg:
            raise Invalid("text may not contain the NUL character (U+0000)",
                          [{"field": "request", "message": "text may not contain the NUL character (U+0000)"}])


class _Transaction(PostgresTransaction):
    """piccolo's PostgreSQL transaction, begun when first used and ended whatever its COMMIT or
    ROLLBACK raises.

    BEGIN is sent just before the transaction's first statement (``Database.fetch`` asks for
    ``begun``): a transaction that sends no statement sends nothing, and one whose only
    statement goes alone (``Database.fetch_alone``) sends it without BEGIN and COMMIT.
    Statements must go through ``Database``: piccolo's own queries would run on
    ``connection`` outside the transaction while it has not begun.

    piccolo hands the connection back and forgets the transaction only when COMMIT or
    ROLLBACK succeeds. When the database goes away under a transaction, ROLLBACK fails on the
    closed connection, and the task that ran it - a worker's loop runs in one task for its
    whole life - kept a dead transaction as its current one: every later statement of that
    task failed ("connection has been released back to the pool"). Here the connection goes
    back to the pool and the transaction is forgotten in every case. A ROLLBACK that fails
    after an error raises nothing of its own (the server ends a transaction whose session
    ends); the error that caused it propagates.

    With a pool, the transaction waits its turn (``turns``, see ``Database.start_pool``)
    before taking a connection, and gives it up once the connection is back.
    """

    def __init__(self, engine: PostgresEngine, turns: asyncio.Semaphore | None) -> None:
        super().__init__(engine)
        self.turns = turns

    async def __aenter__(self) -> PostgresTransaction:
        if self._parent is not None:  # the transaction already open (piccolo's own too)
            if isinstance(self._parent, _Transaction):
                self._parent.nested += 1
            return self._parent
        self._started = False
        self.sealed = False
        """Its only statement went alone (``Database.fetch_alone``): nothing more may be sent."""
        self.nested: int = 0
        """How many ``transaction()`` blocks inside it are running (they are part of it)."""
        if self.turns is not None:
            await self.turns.acquire()
        try:
            self.connection = await self.get_connection()  # type: ignore[no-untyped-call]
        except BaseException:
            self._end_turn()
            raise
        self.transaction = self.connection.transaction()
        self.context = self.engine.current_transaction.set(self)
        return self

    @property
    def fresh(self) -> bool:
        """Nothing sent yet (BEGIN included)."""
        return not self._started and not self.sealed

    async def begun(self) -> Any:
        """The transaction's connection, with BEGIN sent."""
        if not self._started:
            if self.sealed:
                raise RuntimeError("a statement after the transaction's only one, which went alone and is "
                                   "committed: it cannot be part of it")
            await self.begin()  # type: ignore[no-untyped-call]
            self._started = True
        return self.connection

    async def _end(self) -> None:
        if self._started:
            await self.commit()  # type: ignore[no-untyped-call]
        self._committed = True

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            if isinstance(self._parent, _Transaction):
                self._parent.nested -= 1
            return exception is None
        try:
            if exception is not None:
                if self._started and not self._rolled_back:
                    with contextlib.suppress(Exception):
                        await self.rollback()  # type: ignore[no-untyped-call]
            elif not self._committed and not self._rolled_back:
                try:
                    await self._end()
                except BaseException:
                    if self._started:
                        with contextlib.suppress(Exception):
                            await self.rollback()  # type: ignore[no-untyped-call]
                    raise
        finally:
            try:
                if self.engine.pool:
                    with contextlib.suppress(Exception):  # a connection closed under us is released already
                        await self.engine.pool.release(self.connection)
                else:
                    await self.connection.close()
            finally:
                self.engine.current_transaction.reset(self.context)
                self._end_turn()
        return exception is None

    def _end_turn(self) -> None:
        if self.turns is not None:
            self.turns.release()


@functools.lru_cache(maxsize=1024)
def _family(parent: str, children: tuple[str, ...], returning: tuple[str, ...]) -> str:
    """``Database.insert_family``'s one statement on PostgreSQL (a data-modifying ``WITH``)."""
    columns = ", ".join(quote(column) for column in returning)
    parts = [f"parent AS ({parent} RETURNING {columns})"] + [
        f"child{i} AS ({sql.replace(ROW_ID, parent_value('id'))})" for i, sql in enumerate(children)]
    return f"WITH {', '.join(parts)} SELECT {columns} FROM parent"


@functools.lru_cache(maxsize=1024)
def _with_row_id(sql: str) -> str:
    """A child of ``Database.insert_family`` on SQLite, compiled: ``ROW_ID`` is the first
    parameter (``?1``), the child's own values the others (``?2``, ``?3``, ... for ``{}``)."""
    pieces = sql.replace(ROW_ID, "?1").split("{}")
    return pieces[0] + "".join(f"?{i}{piece}" for i, piece in enumerate(pieces[1:], start=2))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(parts.netloc, parts.netloc.replace(f":{parts.password}@", ":***@"))
    return url


def _pool_size(url: str) -> tuple[str, int]:
    """A PostgreSQL URL without its ``pool_size`` parameter (Routecard's, not the driver's), and that size."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = [value for name, value in query if name == "pool_size"]
    if not given:
        return url, POOL_SIZE
    if len(given) > 1 or not given[0].isdigit() or not 1 <= int(given[0]) <= 1000:
        raise UsageError(f"{_without_password(url)}: pool_size must be one whole number from 1 to 1000")
    rest = urlencode([(name, value) for name, value in query if name != "pool_size"])
    return urlunsplit(parts._replace(query=rest)), int(given[0])


async def connect(url: str) -> Database:
    """Open the database at ``url`` and check that it answers."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = url.removeprefix("sqlite://")
        if not path.startswith("/") or path in ("/", "/:memory:"):
            raise UsageError(f"{url}: give an SQLite file as sqlite:///relative/path.db or sqlite:////absolute/path.db")
        file = Path(path[1:]).resolve()  # "//abs" is absolute; "/rel" relative to the current folder
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for {file}: {exc.strerror}") from None
        database = Database(url, SharedSQLiteEngine(path=str(file), log_queries=False), "sqlite")
    elif parts.scheme in ("postgresql", "postgres"):
        dsn, pool_size = _pool_size(url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # piccolo warns when it cannot read the server version
            engine = PostgresEngine(config={"dsn": dsn}, log_queries=False)
        database = Database(url, engine, "postgresql", pool_size=pool_size)
    else:
        raise UsageError(f"{url}: unsupported database; use sqlite:///path.db or postgresql://user@host/db")
    try:
        await database.fetch("SELECT 1 AS ok")
    except Exception as exc:  # noqa: BLE001 - any driver error means "cannot reach it"
        raise DatabaseError(f"cannot reach the database {database.display_url}: {exc}") from None
    return database
