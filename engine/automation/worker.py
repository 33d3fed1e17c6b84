"""The worker loop: SLA sweep and schedules (ticks), due jobs, and the outbox - one loop for all three.

``routecard worker`` runs it (any number of them on PostgreSQL); ``routecard serve`` runs it
in-process on SQLite. Each round: every tick of ``jobs.TICKS`` (which enqueue what has
become due), then up to a batch of due jobs, then a round of the outbox. A failing part is
reported and the others still run; the next round comes after ``interval`` seconds, or at
once while there is more work than one batch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import importlib.util
from collections.abc import Callable

import msgspec

from ..comms.outbox import OutboxWorker
from ..comms.outbox import Report as OutboxReport
from ..runtime.service import Runtime
from ..runtime.state import now
from ..storage import Storage
from . import escalation  # noqa: F401 - registers the SLA sweep and the escalation jobs
from .jobs import TICKS, JobReport, JobWorker

HANDLER_MODULES = ("engine.automation.delayed", "engine.automation.schedules")
"""Modules that register job kinds or ticks when imported (those of them that exist)."""


def load_handlers() -> None:
    """Import every module that registers job handlers and ticks, so this process can run their jobs."""
    for name in HANDLER_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


class RoundReport(msgspec.Struct, kw_only=True):
    """What one round of the worker did."""

    jobs: JobReport
    outbox: OutboxReport | None = None
    failures: list[str] = msgspec.field(default_factory=list)


class Worker:
    """Runs the ticks, the jobs and the outbox of one runtime."""

    def __init__(self, runtime: Runtime, *, outbox: bool = True, clock: Callable[[], dt.datetime] = now,
                 say: Callable[[str], None] | None = None, jobs: JobWorker | None = None,
                 storage: Storage | None = None) -> None:
        load_handlers()
        self.runtime = runtime
        self.say = say or (lambda _: None)
        self.clock = clock
        self.jobs = jobs or JobWorker(runtime, clock=clock, say=self.say)
        self.name = self.jobs.name
        self.outbox = (OutboxWorker(runtime.db, lambda: runtime.workspace.settings, name=self.name, clock=clock,
                                    say=self.say, channels=runtime.plugins.channels, storage=storage)
                       if outbox else None)

    async def run_once(self) -> RoundReport:
        """One round: ticks, jobs, outbox."""
        failures: list[str] = []
        moment = self.clock()
        for tick in list(TICKS):
            try:
                await tick(self.runtime, moment)
            except Exception as exc:  # noqa: BLE001 - one failing tick must not stop the others
                failures.append(f"{tick.__module__}.{tick.__qualname__}: {type(exc).__name__}: {exc}")
        try:
            jobs = await self.jobs.run_once()
        except Exception as exc:  # noqa: BLE001
            failures.append(f"jobs: {type(exc).__name__}: {exc}")
            jobs = JobReport()
        report = RoundReport(jobs=jobs, failures=failures)
        if self.outbox is not None:
            try:
                report.outbox = await self.outbox.run_once()
            except Exception as exc:  # noqa: BLE001
                failures.append(f"outbox: {type(exc).__name__}: {exc}")
        for failure in failures:
            self.say(f"worker round: {failure}")
        return report

    def busy(self, report: RoundReport) -> bool:
        """Whether a round found a full batch (so the next one should come at once)."""
        done = report.jobs.done + report.jobs.retrying + report.jobs.dead + report.jobs.skipped
        sent = report.outbox.sent + report.outbox.retrying + report.outbox.failed if report.outbox else 0
        return done >= self.jobs.batch or sent >= (self.outbox.batch if self.outbox else 1 << 30)

    async def run(self, interval: float = 5.0) -> None:
        """Rounds until cancelled."""
        while True:
            try:
                busy = self.busy(await self.run_once())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not stop the worker
                self.say(f"worker round failed: {type(exc).__name__}: {exc}")
                busy = False
            if not busy:
                await asyncio.sleep(interval)
