"""The job scheduler: work to do at a time, run once by whichever worker claims it.

A job is a row of ``rc_job``: a ``kind`` (the name a handler was registered under with
``job_kind``), a ``unique_key`` (``enqueue`` inserts a key once; later calls with the
same key do nothing), the time it is due (``run_at``) and a JSON ``payload``.

``JobWorker.run_once`` runs due jobs, one transaction per job, in two steps:

1. the claim, committed on its own: ``attempts`` + 1 and a lease (``claimed_by``,
   ``claimed_until``). On PostgreSQL the claim's inner SELECT takes ``FOR UPDATE SKIP
   LOCKED``, so concurrent workers claim distinct jobs; on SQLite the single writer makes
   the ``UPDATE ... RETURNING`` atomic.
2. the work: in one transaction the job row is locked again (still ours, still pending),
   the handler runs, and the row is marked ``done`` - the handler's effects and the
   completion commit together or not at all.

A worker killed in step 2 leaves nothing of the handler's effects behind; its lease
expires and another worker runs the job again (the same effect, once). A handler that
raises rolls its effects back; the job is retried after ``backoff`` x 2^(attempts-1)
seconds, and after ``max_attempts`` it is dead-lettered (``state = 'dead'``, the last
error kept) and blocks nothing else (so does a job whose kind this worker does not know).

``TICKS`` are called once per worker round with the time (SLA sweep, schedules): they
find what is due and ``enqueue`` it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import msgspec

from .. import metrics
from ..db import Database
from ..errors import Conflict
from ..runtime.state import now

if TYPE_CHECKING:
    from ..runtime.service import Runtime

JobHandler = Callable[["Runtime", dict[str, Any]], Awaitable[None]]
"""Does a job's work inside the worker's open transaction; raising rolls it back (and retries)."""
Tick = Callable[["Runtime", dt.datetime], Awaitable[None]]
"""Called once per worker round with the current time; enqueues what has become due."""
DeadHandler = Callable[["Runtime", dict[str, Any], str], Awaitable[None]]
"""Called with a job's payload and last error when the job is dead-lettered, in one transaction
with the dead-lettering; raising leaves the job dead without it (see ``when_dead``)."""

JOB_KINDS: dict[str, JobHandler] = {}
"""Handlers by job kind (filled by ``job_kind``)."""
DEAD_HANDLERS: dict[str, DeadHandler] = {}
"""What to do when a job of a kind is dead-lettered (filled by ``when_dead``)."""
TICKS: list[Tick] = []
"""Called once per worker round, in order."""

MAX_BACKOFF = 6 * 3600.0


def job_kind(name: str) -> Callable[[JobHandler], JobHandler]:
    """Register the decorated coroutine function as the handler of jobs of kind ``name``."""
    if not name or len(name) > 40:
        raise ValueError(f"a job kind is 1 to 40 characters: {name!r}")

    def register(handler: JobHandler) -> JobHandler:
        known = JOB_KINDS.get(name)
        if known is not None and known is not handler and known.__qualname__ != handler.__qualname__:
            raise ValueError(f"job kind {name!r} is already handled by {known.__qualname__}")
        JOB_KINDS[name] = handler
        return handler

    return register


def when_dead(name: str) -> Callable[[DeadHandler], DeadHandler]:
    """Register the decorated coroutine function to run when a job of kind ``name`` is dead-lettered.

    A kind whose work must not just stop (an SLA escalation that left its order waiting)
    finishes what it can there. It runs in one transaction with the dead-lettering; if it
    raises too, the job is dead-lettered without it and the worker says so.
    """

    def register(handler: DeadHandler) -> DeadHandler:
        DEAD_HANDLERS[name] = handler
        return handler

    return register


def tick(function: Tick) -> Tick:
    """Register ``function`` to run once per worker round (idempotent)."""
    if all(t.__qualname__ != function.__qualname__ or t.__module__ != function.__module__ for t in TICKS):
        TICKS.append(function)
    return function


async def enqueue(db: Database, kind: str, unique_key: str, run_at: dt.datetime, payload: dict[str, Any]) -> bool:
    """Insert a job once: ``False`` when a job with ``unique_key`` already exists (done or not).

    Runs in the caller's transaction when there is one, so a job is enqueued together with
    the change that asked for it.
    """
    if len(unique_key) > 200:
        raise ValueError("a job's unique key is at most 200 characters")
    rows = await db.fetch(
        "INSERT INTO rc_job (kind, unique_key, payload, state, run_at, attempts) VALUES ({}, {}, {}, 'pending', {}, 0) "
        "ON CONFLICT (unique_key) DO NOTHING RETURNING id",
        kind, unique_key, json.dumps(payload), run_at)
    return bool(rows)


async def enqueue_many(db: Database, jobs: list[tuple[str, str, dt.datetime, dict[str, Any]]]) -> int:
    """``enqueue`` for several jobs (kind, unique key, run at, payload) in one statement; returns how many were new."""
    if not jobs:
        return 0
    if any(len(key) > 200 for _, key, _, _ in jobs):
        raise ValueError("a job's unique key is at most 200 characters")
    rows = await db.fetch(
        "INSERT INTO rc_job (kind, unique_key, payload, state, run_at, attempts) VALUES "
        + ", ".join("({}, {}, {}, 'pending', {}, 0)" for _ in jobs)
        + " ON CONFLICT (unique_key) DO NOTHING RETURNING id",
        *(value for kind, key, run_at, payload in jobs for value in (kind, key, json.dumps(payload), run_at)))
    return len(rows)


class JobReport(msgspec.Struct, kw_only=True):
    """What one round of the job worker did."""

    done: int = 0
    retrying: int = 0
    dead: int = 0
    skipped: int = 0
    """Jobs whose lease ran out before they ran: another worker took them over."""


class _Failed(Exception):
    """A job's handler failed (or its kind is unknown); ``permanent`` skips the retries."""

    def __init__(self, text: str, permanent: bool = False) -> None:
        super().__init__(text)
        self.permanent = permanent


class _Raced(Exception):
    """A job's handler met a concurrent change of its work order: run it again at once."""


RACE_RETRIES = 3
"""Immediate reruns of a job whose handler met a concurrent change, before it counts as a failed attempt."""


class JobWorker:
    """Runs the due jobs of one runtime's database."""

    def __init__(self, runtime: Runtime, *, name: str | None = None, batch: int = 50, lease: float = 120.0,
                 max_attempts: int = 5, backoff: float = 30.0, clock: Callable[[], dt.datetime] = now,
                 kinds: dict[str, JobHandler] | None = None, say: Callable[[str], None] | None = None) -> None:
        self.runtime = runtime
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.batch, self.lease, self.max_attempts, self.backoff = batch, lease, max_attempts, backoff
        self.clock = clock
        self.kinds = JOB_KINDS if kinds is None else kinds
        """Read at every job, so handlers registered later are found."""
        self.say = say or (lambda _: None)

    @property
    def db(self) -> Database:
        return self.runtime.db

    async def run_once(self) -> JobReport:
        """Claim up to ``batch`` due jobs and run each in its own transaction."""
        report = JobReport()
        for job in await self._claim():
            outcome = await self._run(job)
            metrics.JOBS.inc(str(job["kind"]), outcome)
            setattr(report, outcome, getattr(report, outcome) + 1)
        return report

    async def _claim(self) -> list[dict[str, Any]]:
        moment = self.clock()
        until = moment + dt.timedelta(seconds=self.lease)
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction():
            rows = await self.db.fetch(
                "UPDATE rc_job SET claimed_by = {}, claimed_until = {}, attempts = attempts + 1 WHERE id IN ("
                "SELECT id FROM rc_job WHERE state = 'pending' AND run_at <= {} "
                "AND (claimed_until IS NULL OR claimed_until < {}) ORDER BY run_at, id LIMIT {}"
                f"{lock}) RETURNING id, kind, payload, attempts",
                self.name, until, moment, moment, self.batch)
        return sorted(rows, key=lambda r: int(r["id"]))

    async def _run(self, job: dict[str, Any]) -> str:
        """Run one claimed job; returns ``done``, ``retrying`` or ``dead``.

        A handler that meets a concurrent change of its work order (``Conflict``: somebody
        saved the order between the handler's read and its save) is run again at once, in
        a new transaction, up to ``RACE_RETRIES`` times: that is no failure worth a backoff.
        """
        for attempt in range(RACE_RETRIES + 1):
            try:
                return await self._run_once(job)
            except _Raced as raced:
                if attempt == RACE_RETRIES:
                    return await self._failed(job, str(raced), False)
        raise AssertionError("unreachable")

    async def _run_once(self, job: dict[str, Any]) -> str:
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        try:
            async with self.db.transaction():
                mine = await self.db.fetch(
                    f"SELECT id FROM rc_job WHERE id = {{}} AND claimed_by = {{}} AND state = 'pending'{lock}",
                    job["id"], self.name)
                if not mine:
                    return "skipped"
                if int(job["attempts"]) > self.max_attempts:
                    raise _Failed(f"the worker stopped during each of {int(job['attempts']) - 1} attempts",
                                  permanent=True)
                handler = self.kinds.get(str(job["kind"]))
                if handler is None:
                    raise _Failed(f"no handler for job kind {job['kind']!r} in this worker")
                try:
                    await handler(self.runtime, _payload(job))
                except _Failed:
                    raise
                except Conflict as exc:
                    raise _Raced(f"{type(exc).__name__}: {exc}"[:1000]) from exc
                except Exception as exc:  # noqa: BLE001 - any failure of a handler is retried per policy
                    raise _Failed(f"{type(exc).__name__}: {exc}"[:1000]) from exc
                await self.db.execute(
                    "UPDATE rc_job SET state = 'done', claimed_until = NULL, last_error = NULL WHERE id = {}",
                    job["id"])
            return "done"
        except _Failed as failure:
            return await self._failed(job, str(failure), failure.permanent)

    async def _failed(self, job: dict[str, Any], error: str, permanent: bool) -> str:
        attempts = int(job["attempts"])
        dead = permanent or attempts >= self.max_attempts
        delay = min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        on_dead = DEAD_HANDLERS.get(str(job["kind"])) if dead else None

        async def mark(with_handler: bool) -> None:
            async with self.db.transaction():
                marked = await self.db.fetch(
                    "UPDATE rc_job SET state = {}, last_error = {}, run_at = {}, claimed_until = NULL "
                    "WHERE id = {} AND claimed_by = {} AND state = 'pending' RETURNING id",
                    "dead" if dead else "pending", error, self.clock() + dt.timedelta(seconds=0 if dead else delay),
                    job["id"], self.name)
                if marked and with_handler and on_dead is not None:
                    await on_dead(self.runtime, _payload(job), error)

        try:
            await mark(with_handler=True)
        except Exception as exc:  # noqa: BLE001 - the dead-letter handler failed: dead-letter without it
            if on_dead is None:
                raise
            self.say(f"job {job['kind']} #{job['id']}: what follows its dead-lettering failed: "
                     f"{type(exc).__name__}: {exc}"[:1000])
            await mark(with_handler=False)
        self.say(f"job {job['kind']} #{job['id']} {'dead-lettered' if dead else 'will be retried'}: {error}")
        return "dead" if dead else "retrying"


def _payload(job: dict[str, Any]) -> dict[str, Any]:
    value = job["payload"]
    return json.loads(value) if isinstance(value, str) else dict(value or {})
