"""Load and faults: 2 servers + 2 workers on one PostgreSQL, a mixed workload, SIGKILLs and a database outage.

What it does (loopback only, bounded in time):

1. creates its own PostgreSQL database, writes a workspace to a temporary folder (one
   template, a two-step queue, an SLA whose warning and breach come due within two
   minutes, outgoing mail to an SMTP sink in this process and inbound mail over HTTP),
   applies it and adds users with tokens;
2. starts 2 `routecard serve` and 2 `routecard worker` processes (logs in bench/out/);
3. drives the workload of bench/fault_load.py from ``--clients`` concurrent clients for
   ``--seconds``; meanwhile it SIGKILLs server 1 and worker 1 and restarts them, and stops
   PostgreSQL for ``--outage`` seconds (servers must answer 503, not 500, and recover);
4. lets the workers drain (outbox, escalation jobs, leases of the killed worker), stops
   everything and checks the invariants of bench/fault_checks.py from the database;
5. prints the figures and exits 1 if an invariant failed.

    .venv/bin/python bench/fault_harness.py [--seconds 180] [--clients 48] [--outage 4]

The PostgreSQL server is this machine's shared one: the outage is short, and PostgreSQL is
started again in a ``finally`` whatever happens.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import email.parser
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api_throughput import free_port  # noqa: E402
from bench.fault_checks import all_checks  # noqa: E402
from bench.fault_load import INBOUND_TOKEN, WEIGHTS, Workload  # noqa: E402
from bench.pgdb import DEFAULT_SERVER  # noqa: E402
from engine.db import connect  # noqa: E402
from engine.migrate import apply_workspace  # noqa: E402
from engine.runtime import Runtime, add_user, create_token  # noqa: E402
from engine.workspace import open_workspace  # noqa: E402

GOAL_RATE = 200.0
AGENTS = ("agent1", "agent2", "agent3", "agent4")
OUT = ROOT / "bench" / "out"
ROUTECARD = str(ROOT / ".venv" / "bin" / "routecard")
CLUSTER = ["pg_ctlcluster", "--skip-systemctl-redirect"]

SETTINGS = """\
kind: Workspace
name: faults
base_url: http://127.0.0.1:8000
mail:
  from_address: desk@faults.example
  smtp: {{host: 127.0.0.1, port: {smtp}, security: none}}
  inbound:
    template: ticket
    token_env: FAULTS_INBOUND_TOKEN
    rate_limit: {{mails: 100000, per: 1h}}
"""
DEFINITIONS = f"""\
kind: Group
name: desk
supervisor: boss
members: [{", ".join(AGENTS)}]
---
kind: Role
name: agent
groups: [desk]
permissions: [order.create, order.edit, order.transition, comment.private, comment.public, email.send]
---
kind: Template
name: ticket
numbering: {{prefix: "T-", digits: 8}}
fields:
  - {{name: summary, type: input}}
  - {{name: contact, type: email}}
  - {{name: tier, type: select, options: [gold, standard]}}
  - {{name: note, type: input}}
  - {{name: amount, type: decimal}}
---
kind: Queue
name: desk_queue
templates: [ticket]
steps:
  - name: triage
    group: desk
    actions: [{{name: check}}, {{name: route}}]
  - name: work
    group: desk
    actions: [{{name: fix}}, {{name: verify}}]
---
# Gold tickets: the first answer is due at once (its warning fires at the first sweep, the
# breach a minute later unless a reply came); the resolution warns after one minute and is
# breached after two - all within the run.
kind: SLA
name: gold
templates: [ticket]
when: {{field: tier, equals: gold}}
targets: {{first_response: 1m, resolution: 2m}}
warn_before: 1m
on_warning:
  - email:
      to: [sla-desk@faults.example]
      subject: "{{{{ number }}}} is due soon"
      body: Ticket {{{{ number }}}} reaches its target soon.
on_breach:
  - set_priority: urgent
  - comment: {{text: "{{{{ number }}}} missed its target"}}
  - email:
      to: [customer]
      subject: "{{{{ number }}}}: we are on it"
      body: We are still working on {{{{ number }}}}.
"""


# -- the SMTP sink ---------------------------------------------------------------------------------


class Sink:
    """aiosmtpd handler: counts every received mail by Message-ID."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.parser = email.parser.BytesHeaderParser()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = self.parser.parsebytes(envelope.original_content or envelope.content)
        with self.lock:
            self.received[str(headers.get("Message-ID", "")).strip()] += 1
        return "250 OK"


# -- processes -------------------------------------------------------------------------------------


class Fleet:
    """The servers and workers: started, killed and restarted; output to bench/out/ (never a pipe)."""

    def __init__(self, workspace: Path, url: str, servers: int, workers: int) -> None:
        self.workspace, self.url = workspace, url
        self.ports = [free_port() for _ in range(servers)]
        self.servers: list[subprocess.Popen[bytes] | None] = [None] * servers
        self.workers: list[subprocess.Popen[bytes] | None] = [None] * workers
        self.env = {**os.environ, "FAULTS_INBOUND_TOKEN": INBOUND_TOKEN}
        self.cpu: dict[str, float] = {"servers": 0.0, "workers": 0.0}
        """CPU seconds used by the servers and the workers (counted when each stops)."""
        OUT.mkdir(exist_ok=True)

    def _start(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with open(OUT / log, "ab") as out:
            out.write(f"\n==== {dt.datetime.now().isoformat()} {' '.join(args[1:3])}\n".encode())
            out.flush()
            return subprocess.Popen([ROUTECARD, *args], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=self.env)

    def start_server(self, index: int) -> None:
        self.servers[index] = self._start(["serve", str(self.workspace), "--db", self.url, "--port",
                                           str(self.ports[index]), "--log-format", "json"],
                                          f"fault_serve_{index + 1}.log")

    def start_worker(self, index: int) -> None:
        self.workers[index] = self._start(["worker", str(self.workspace), "--db", self.url, "--interval", "1"],
                                          f"fault_worker_{index + 1}.log")

    def start(self) -> None:
        for index in range(len(self.servers)):
            self.start_server(index)
        for index in range(len(self.workers)):
            self.start_worker(index)

    def _count_cpu(self, process: subprocess.Popen[bytes]) -> None:
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return
        role = "servers" if process in self.servers else "workers"
        self.cpu[role] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def kill(self, process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            self._count_cpu(process)
            process.send_signal(signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        processes = [p for p in (*self.servers, *self.workers) if p is not None]
        for process in processes:
            if process.poll() is None:
                self._count_cpu(process)
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(process)

    async def ready(self, index: int, timeout: float = 60.0) -> float:
        """Wait until server ``index`` answers /readyz with 200; the seconds it took."""
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() - started < timeout:
                with contextlib.suppress(httpx.TransportError):
                    response = await client.get(f"http://127.0.0.1:{self.ports[index]}/readyz")
                    if response.status_code == 200:
                        return time.monotonic() - started
                await asyncio.sleep(0.2)
        raise RuntimeError(f"server {index + 1} not ready after {timeout:.0f} s (see {OUT})")


# -- PostgreSQL ------------------------------------------------------------------------------------


def _cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run([*CLUSTER, version, "main", action], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def postgres_restarted_on_exit() -> Any:
    """Whatever happens inside (an exception, Ctrl+C, SIGTERM), PostgreSQL runs again afterwards."""
    state = {"stopped": False}

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupted)
    try:
        yield state
    finally:
        if state["stopped"]:
            _cluster("start")
            state["stopped"] = False
            print("PostgreSQL started again (after an interruption)", flush=True)
        signal.signal(signal.SIGTERM, previous)


# -- the run ---------------------------------------------------------------------------------------


class Timeline:
    """When the faults happened, and what /readyz said meanwhile."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []
        self.outage: tuple[float, float] | None = None
        """From the stop command to both servers ready again."""
        self.ready_answers: list[tuple[float, int, int]] = []
        self.kill_window: tuple[float, float] | None = None

    def note(self, what: str, start: float) -> None:
        self.events.append((time.monotonic() - start, what))
        print(f"  [{time.monotonic() - start:6.1f} s] {what}", flush=True)


async def probe(fleet: Fleet, timeline: Timeline, until: float) -> None:
    """Ask every server's /readyz every 0.25 s."""
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < until:
            for index, port in enumerate(fleet.ports):
                try:
                    status = (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code
                except httpx.TransportError:
                    status = 0
                timeline.ready_answers.append((time.monotonic(), index, status))
            await asyncio.sleep(0.25)


async def faults(fleet: Fleet, timeline: Timeline, seconds: float, outage: float, pg: dict[str, bool],
                 start: float) -> None:
    """SIGKILL server 1 and worker 1 at 20% of the run and restart them; stop PostgreSQL at 55%."""
    await asyncio.sleep(seconds * 0.2)
    killed = time.monotonic()
    fleet.kill(fleet.servers[0])
    fleet.kill(fleet.workers[0])
    timeline.note("SIGKILL server 1 and worker 1", start)
    await asyncio.sleep(1.0)
    fleet.start_server(0)
    fleet.start_worker(0)
    took = await fleet.ready(0)
    timeline.kill_window = (killed, time.monotonic())
    timeline.note(f"server 1 and worker 1 restarted (server ready after {took:.1f} s)", start)
    await asyncio.sleep(max(0.0, start + seconds * 0.55 - time.monotonic()))
    stopped = time.monotonic()
    pg["stopped"] = True
    try:
        await asyncio.to_thread(_cluster, "stop")
        timeline.note("PostgreSQL stopped", start)
        await asyncio.sleep(outage)
    finally:
        await asyncio.to_thread(_cluster, "start")
        pg["stopped"] = False
    timeline.note(f"PostgreSQL started ({time.monotonic() - stopped:.1f} s after the stop)", start)
    took = max([await fleet.ready(i) for i in range(len(fleet.ports))])
    timeline.outage = (stopped, time.monotonic())
    timeline.note(f"both servers ready again ({took:.1f} s after PostgreSQL started)", start)


async def drain(url: str, ended: float, limit: float) -> float:
    """Wait until the outbox is empty and no job or SLA level is due (leases of killed workers run out)."""
    db = await connect(url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < limit:
            moment = dt.datetime.now(dt.timezone.utc)
            mail = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_outbox WHERE state = 'pending'")
            jobs = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_job WHERE state = 'pending' AND run_at <= {}",
                                        moment)
            sla = await db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order WHERE sla_state IN "
                                       "('running', 'escalating') AND sla_next_at <= {}", moment)
            if not (mail or jobs or sla):
                break
            await asyncio.sleep(2.0)
    finally:
        await db.close()
    return time.monotonic() - started


@contextlib.asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """A new database on ``server_url``, dropped afterwards over a fresh connection (the server restarts
    in between, so bench/pgdb.py's one admin connection would not survive)."""
    name = f"routecard_faults_{os.getpid()}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlunsplit(urlsplit(server_url)._replace(path="/" + name))
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def smtp_sink() -> AsyncIterator[tuple[Sink, int]]:
    sink = Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


async def prepare(url: str, folder: Path, smtp: int) -> tuple[list[str], str]:
    (folder / "routecard.yaml").write_text(SETTINGS.format(smtp=smtp))
    (folder / "defs.yaml").write_text(DEFINITIONS)
    workspace = open_workspace(folder)
    await apply_workspace(workspace, url)
    db = await connect(url)
    try:
        tokens = []
        for login in AGENTS:
            user = await add_user(db, workspace, login, email=f"{login}@faults.example", roles=("agent",))
            tokens.append(await create_token(db, user, "faults"))
        boss = await add_user(db, workspace, "boss", email="boss@faults.example", roles=("agent",))
        return tokens, await create_token(db, boss, "faults")
    finally:
        await db.close()


def _in(window: tuple[float, float] | None, moment: float, margin: float = 0.5) -> bool:
    return window is not None and window[0] - margin <= moment <= window[1] + margin


def report(load: Workload, timeline: Timeline, seconds: float, checks: list[Any], drained: float,
           received: Counter[str], started: float, cpu: dict[str, float]) -> bool:
    answers = load.ledger.answers
    total = len(answers)
    print(f"\nLoad: {seconds:.0f} s, {total:,} operations, {total / seconds:,.0f} ops/s "
          f"(goal >= {GOAL_RATE:.0f} ops/s with 2 servers + 2 workers: "
          f"{'met' if total / seconds >= GOAL_RATE else 'NOT met'})")
    by_kind = Counter(a.kind for a in answers)
    for kind in WEIGHTS:
        mine = [a for a in answers if a.kind == kind]
        classes = Counter("no answer" if a.status == 0 else f"{a.status // 100}xx" for a in mine)
        latencies = sorted(a.ended - a.started for a in mine if a.status)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000 if latencies else 0.0
        p50 = latencies[len(latencies) // 2] * 1000 if latencies else 0.0
        print(f"  {kind:<8} {by_kind[kind]:>7,}  {by_kind[kind] / seconds:6.1f}/s  p50 {p50:6.1f} ms  "
              f"p99 {p99:7.1f} ms  " + ", ".join(f"{k}: {v:,}" for k, v in sorted(classes.items())))
    statuses = Counter(a.status for a in answers)
    print("  status   " + ", ".join(f"{'no answer' if s == 0 else s}: {n:,}" for s, n in sorted(statuses.items())))
    ledger = load.ledger
    print(f"  conflicts (409 stale version): {sum(v for k, v in ledger.conflicts.items() if 'refused' not in k):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(ledger.conflicts.items()))})")
    if ledger.refused:
        print("  other 4xx: " + ", ".join(f"{k}: {v:,}" for k, v in sorted(ledger.refused.items())))
    for what, detail in sorted(ledger.samples.items()):
        print(f"    first {what}: {detail}")
    acked = (f"{len(ledger.creates):,} creates, {len(ledger.edits):,} edits, {len(ledger.processed):,} actions, "
             f"{len(ledger.messages):,} messages, {len(ledger.inbound):,} inbound mails")
    print(f"  acknowledged writes: {acked}")
    inside = [a for a in answers if a.status >= 500 and _in(timeline.outage, a.ended)]
    outside = [a for a in answers if a.status >= 500 and not _in(timeline.outage, a.ended)]
    no_answer_kill = sum(1 for a in answers if a.status == 0 and _in(timeline.kill_window, a.ended, 1.0))
    no_answer_other = sum(1 for a in answers if a.status == 0) - no_answer_kill
    print(f"  5xx inside the outage window: {len(inside):,} ({dict(Counter(a.status for a in inside))}); "
          f"outside: {len(outside):,} ({dict(Counter(a.status for a in outside))})")
    print(f"  no answer (connection refused/reset): {no_answer_kill:,} around the SIGKILL, {no_answer_other:,} other")
    if timeline.outage is not None:
        down = [(t, s) for t, _, s in timeline.ready_answers if _in(timeline.outage, t, 0.0)]
        print(f"  /readyz during the outage: {dict(Counter(s for _, s in down))}; "
              f"outage window {timeline.outage[1] - timeline.outage[0]:.1f} s")
    print(f"  drain after the load: {drained:.0f} s; SMTP sink received {sum(received.values()):,} mails")
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"  CPU seconds: servers {cpu['servers']:.0f}, workers {cpu['workers']:.0f}, "
          f"this harness (clients, SMTP sink, checks) {own.ru_utime + own.ru_stime:.0f}; "
          f"machine load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  total run (setup to checks): {time.monotonic() - started:.0f} s")
    print(f"\nInvariants ({len(checks)}):")
    for check in checks:
        print(check.line())
    server_errors = [a for a in outside if a.status >= 500] + [a for a in inside if a.status == 500]
    held = all(c.held for c in checks)
    ok = held and not server_errors
    print(f"\n{sum(c.held for c in checks)} of {len(checks)} invariants held; "
          f"5xx outside the outage: {len(outside)}; 500 inside it: {sum(1 for a in inside if a.status == 500)} "
          f"-> {'PASS' if ok else 'FAIL'}")
    return ok


async def run(args: argparse.Namespace) -> bool:
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        async with scratch_database(args.postgres) as url, smtp_sink() as (sink, smtp):
            folder = Path(tmp)
            tokens, boss = await prepare(url, folder, smtp)
            fleet = Fleet(folder, url, 2, 2)
            load = Workload(fleet.ports, tokens, boss)
            timeline = Timeline()
            tasks: list[asyncio.Task[None]] = []
            try:
                fleet.start()
                for index in range(len(fleet.ports)):
                    await fleet.ready(index)
                print(f"2 servers (ports {', '.join(map(str, fleet.ports))}) + 2 workers on {url}; "
                      f"{args.clients} clients for {args.seconds:.0f} s; logs in {OUT}", flush=True)
                begin = time.monotonic()
                with postgres_restarted_on_exit() as pg:
                    tasks = [asyncio.create_task(load.run(args.clients, args.seconds)),
                             asyncio.create_task(probe(fleet, timeline, begin + args.seconds))]
                    if not args.no_faults:
                        tasks.append(asyncio.create_task(
                            faults(fleet, timeline, args.seconds, args.outage, pg, begin)))
                    try:
                        await asyncio.gather(*tasks)
                    finally:
                        for task in tasks:
                            task.cancel()
                        await asyncio.gather(*tasks, return_exceptions=True)
                seconds = time.monotonic() - begin
                timeline.note("load ended; draining", begin)
                drained = await drain(url, time.monotonic(), args.drain)
                timeline.note(f"drained in {drained:.0f} s", begin)
            finally:
                await load.close()
                fleet.stop()
            ended = dt.datetime.now(dt.timezone.utc)
            db = await connect(url)
            try:
                await db.start_pool()
                runtime = Runtime(open_workspace(folder), db)
                with sink.lock:
                    received = Counter(sink.received)
                checks = await all_checks(db, runtime, load.ledger, received, ended)
                retried = await db.fetch("SELECT kind, attempts, state, last_error FROM rc_job WHERE attempts > 1 "
                                         "ORDER BY attempts DESC")
                for row in retried[:3]:
                    print(f"  job retried: {row['kind']} {row['attempts']} attempts, {row['state']}: "
                          f"{(row['last_error'] or '')[:150]}")
                print(f"  jobs run more than once: {len(retried)}")
            finally:
                await db.close()
            return report(load, timeline, seconds, checks, drained, received, started, fleet.cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the load phase (default 180)")
    parser.add_argument("--clients", type=int, default=48, help="concurrent clients (default 48)")
    parser.add_argument("--outage", type=float, default=4.0, help="seconds PostgreSQL is stopped (default 4)")
    parser.add_argument("--drain", type=float, default=330.0,
                        help="at most this long to wait for the outbox and jobs afterwards (default 330: the "
                             "outbox lease of a killed worker is 300 s)")
    parser.add_argument("--postgres", default=DEFAULT_SERVER)
    parser.add_argument("--no-faults", action="store_true", help="load only: no kills, no outage")
    args = parser.parse_args()
    sys.exit(0 if asyncio.run(run(args)) else 1)


if __name__ == "__main__":
    main()
