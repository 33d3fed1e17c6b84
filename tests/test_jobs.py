"""The job scheduler: enqueue once, run once with the effect, retries, dead letters, leases, killed workers."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine.automation.jobs import DEAD_HANDLERS, JobWorker, enqueue
from engine.errors import Conflict
from engine.runtime.state import now
from tests.runtime_helpers import Env, tmp_env  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent
CHILD = ROOT / "tests" / "job_worker_child.py"

WORKSPACE = {"defs.yaml": """\
    kind: Group
    name: desk
    supervisor: sue
    members: [sue, max]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition, order.cancel]
    groups: [desk]
    ---
    kind: Template
    name: ticket
    label: Ticket
    numbering: {prefix: T-}
    ---
    kind: Queue
    name: support
    templates: [ticket]
    steps:
      - name: triage
        group: desk
        actions: [{name: look}]
    ---
    kind: SLA
    name: fast
    targets: {first_response: 30m, resolution: 1h}
    warn_before: 10m
    on_warning:
      - comment: {text: "{{ number }} is due soon"}
    on_breach:
      - set_priority: urgent
      - comment: {text: "{{ number }} missed its target"}
      - email: {to: [ops@example.com], subject: "{{ number }} missed its SLA", body: "Look at {{ number }}."}
    """}


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


async def notes(env: Env) -> list[str]:
    """The effects the test handlers leave: one rc_counter row per run, named after the job."""
    rows = await env.db.fetch("SELECT name FROM rc_counter WHERE name LIKE 'ran:%' ORDER BY name")
    return [r["name"] for r in rows]


async def jobs(env: Env) -> dict[str, dict[str, Any]]:
    rows = await env.db.fetch("SELECT unique_key, state, attempts, last_error FROM rc_job")
    return {r["unique_key"]: r for r in rows}


async def test_enqueue_once_and_run_once_with_the_effect(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())

    async def note(runtime: Any, payload: dict[str, Any]) -> None:
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)", f"ran:{payload['n']}")

    worker = JobWorker(env.rt, kinds={"note": note}, clock=clock)
    assert await enqueue(env.db, "note", "a", clock.moment, {"n": "a"}) is True
    assert await enqueue(env.db, "note", "a", clock.moment, {"n": "other"}) is False  # the key exists
    assert await enqueue(env.db, "note", "later", clock.moment + dt.timedelta(hours=1), {"n": "later"}) is True
    report = await worker.run_once()
    assert (report.done, report.retrying, report.dead) == (1, 0, 0)
    assert await notes(env) == ["ran:a"]
    assert (await worker.run_once()).done == 0  # done is done; "later" is not due
    clock.moment += dt.timedelta(hours=1)
    assert (await worker.run_once()).done == 1
    assert await notes(env) == ["ran:a", "ran:later"]
    assert {k: (j["state"], j["attempts"]) for k, j in (await jobs(env)).items()} == {
        "a": ("done", 1), "later": ("done", 1)}
    assert await enqueue(env.db, "note", "a", clock.moment, {"n": "a"}) is False  # done keys stay taken


async def test_enqueue_joins_the_callers_transaction(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    with pytest.raises(RuntimeError):
        async with env.db.transaction():
            await enqueue(env.db, "note", "rolled-back", now(), {})
            raise RuntimeError("the change fails")
    assert await jobs(env) == {}


async def test_failures_roll_back_retry_with_backoff_then_dead_letter(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())
    calls: list[int] = []

    async def flaky(runtime: Any, payload: dict[str, Any]) -> None:
        calls.append(1)
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)", f"ran:{len(calls)}")
        raise ConnectionError("SMTP down")

    async def note(runtime: Any, payload: dict[str, Any]) -> None:
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ('ran:fine', 1)")

    worker = JobWorker(env.rt, kinds={"flaky": flaky, "note": note}, clock=clock, max_attempts=3, backoff=10)
    await enqueue(env.db, "flaky", "f", clock.moment, {})
    await enqueue(env.db, "note", "n", clock.moment, {})
    report = await worker.run_once()
    assert (report.done, report.retrying) == (1, 1)  # the failing job blocks nothing else
    job = (await jobs(env))["f"]
    assert (job["state"], job["attempts"], job["last_error"]) == ("pending", 1, "ConnectionError: SMTP down")
    assert await notes(env) == ["ran:fine"]  # the failed attempt's effect was rolled back
    assert (await worker.run_once()).retrying == 0  # backoff: not due again for 10 s
    clock.moment += dt.timedelta(seconds=10)
    assert (await worker.run_once()).retrying == 1
    clock.moment += dt.timedelta(seconds=19)
    assert (await worker.run_once()).retrying == 0  # the second wait is 20 s
    clock.moment += dt.timedelta(seconds=1)
    assert (await worker.run_once()).dead == 1
    job = (await jobs(env))["f"]
    assert (job["state"], job["attempts"]) == ("dead", 3)
    clock.moment += dt.timedelta(days=1)
    assert (await worker.run_once()).dead == 0 and len(calls) == 3


async def test_an_expired_lease_is_reclaimed_and_a_stale_worker_does_not_run_it(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())

    async def note(runtime: Any, payload: dict[str, Any]) -> None:
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)", f"ran:{payload['n']}")

    first = JobWorker(env.rt, name="first", kinds={"note": note}, clock=clock, lease=60)
    second = JobWorker(env.rt, name="second", kinds={"note": note}, clock=clock, lease=60)
    await enqueue(env.db, "note", "x", clock.moment, {"n": "x"})
    claimed = await first._claim()  # the first worker claims, then stalls (or dies)
    assert len(claimed) == 1
    assert await second._claim() == []  # leased
    clock.moment += dt.timedelta(seconds=61)
    (job,) = await second._claim()
    assert await first._run(claimed[0]) == "skipped"  # the lease is no longer the first worker's
    assert await second._run(job) == "done"
    assert await notes(env) == ["ran:x"]
    assert (await jobs(env))["x"]["attempts"] == 2


async def test_a_job_that_kills_its_worker_each_time_is_dead_lettered(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())
    worker = JobWorker(env.rt, kinds={}, clock=clock, lease=5, max_attempts=2)
    await enqueue(env.db, "crash", "c", clock.moment, {})
    for _ in range(2):  # claimed, then the worker "dies" before running it: the lease runs out
        assert len(await worker._claim()) == 1
        clock.moment += dt.timedelta(seconds=6)
    (job,) = await worker._claim()
    assert await worker._run(job) == "dead"
    assert (await jobs(env))["c"]["state"] == "dead"
    assert "stopped during each of 2 attempts" in (await jobs(env))["c"]["last_error"]


async def test_an_unknown_job_kind_is_retried_then_dead(tmp_env: Any) -> None:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())
    worker = JobWorker(env.rt, kinds={}, clock=clock, max_attempts=1)
    await enqueue(env.db, "nobody.knows", "u", clock.moment, {})
    assert (await worker.run_once()).dead == 1
    assert "no handler for job kind 'nobody.knows'" in (await jobs(env))["u"]["last_error"]


def _start(root: Path, url: str, log: Path, hold: Path | None = None) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(CHILD), str(root), url, *([str(hold)] if hold else [])]
    with log.open("wb") as output:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})


async def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_two_worker_processes_one_killed_mid_escalation(tmp_env: Any, tmp_path: Path, dialect: str,
                                                              database_url: str) -> None:
    """Three worker loops; one is SIGKILLed inside an escalation: each escalation (and its mail) happens once."""
    env: Env = await tmp_env(WORKSPACE)
    env.rt.sla.clock = lambda: now() - dt.timedelta(hours=3)  # created three hours ago: everything is due
    numbers = [(await env.rt.create(await env.actor("max"), "ticket", {}))["number"] for _ in range(12)]
    root = tmp_path / "ws0"
    hold = tmp_path / "held"
    killed = _start(root, database_url, tmp_path / "a.log", hold)
    others: list[subprocess.Popen[bytes]] = []
    try:
        await _wait(lambda: asyncio.sleep(0, hold.exists()), 60, "the first worker to hold an escalation")
        held = hold.read_text()
        others = [_start(root, database_url, tmp_path / f"{name}.log") for name in ("b", "c")]
        await asyncio.sleep(4)  # the first worker's other leases (2 s) run out; the others take those jobs
        if dialect == "postgresql":  # the held job stays locked: the other workers did everything else
            done = await env.db.fetch_value("SELECT COUNT(*) AS n FROM rc_job WHERE state = 'done'")
            assert done == len(numbers) - 1, (tmp_path / "b.log").read_text()
        assert await breaches(env, held) == 0  # the held escalation's effects are not committed
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)

        async def all_done() -> bool:
            return bool(await env.db.fetch_value("SELECT COUNT(*) AS n FROM rc_job WHERE state = 'done'")
                        == len(numbers))

        await _wait(all_done, 60, "the other workers to finish every escalation")
    finally:
        (root / "stop").write_text("")
        for process in (killed, *others):
            if process.poll() is None:
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
    for number in numbers:
        kinds = await env.db.fetch(
            "SELECT e.kind, e.after FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
            "WHERE w.number = {} ORDER BY e.id", number)
        fired = sorted((k["kind"], json.loads(k["after"])["sla"]["target"] if isinstance(k["after"], str)
                        else k["after"]["sla"]["target"]) for k in kinds if k["kind"].startswith("sla_"))
        assert fired == [("sla_breach", "first_response"), ("sla_breach", "resolution"),
                         ("sla_warning", "first_response"), ("sla_warning", "resolution")], number
        assert sum(1 for k in kinds if k["kind"] == "comment_added") == 4, number  # 2 warnings + 2 breaches
    outbox = await env.db.fetch("SELECT payload FROM rc_outbox")
    subjects = sorted(json.loads(r["payload"])["subject"] if isinstance(r["payload"], str) else r["payload"]["subject"]
                      for r in outbox)
    assert subjects == sorted(f"{n} missed its SLA" for n in numbers for _ in range(2))  # one per breach
    rows = await env.db.fetch("SELECT unique_key, attempts, state FROM rc_job")
    assert len(rows) == len(numbers) and all(r["state"] == "done" for r in rows)
    held_id = await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", held)
    assert [r["attempts"] for r in rows if r["unique_key"].startswith(f"sla:{held_id}:")] == [2]


async def breaches(env: Env, number: str) -> int:
    return int(await env.db.fetch_value(
        "SELECT COUNT(*) AS n FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
        "WHERE w.number = {} AND e.kind = 'sla_breach'", number))


async def test_a_job_that_meets_a_concurrent_change_runs_again_at_once(tmp_env: Any) -> None:
    """An escalation whose save meets a user's edit of the order is no failure: it runs again in a new
    transaction, without a backoff, and only what the successful run did stays."""
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())
    calls: list[int] = []

    async def racing(runtime: Any, payload: dict[str, Any]) -> None:
        calls.append(1)
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)", f"ran:{len(calls)}")
        if len(calls) < 3:
            raise Conflict("work order X-1 was changed by someone else meanwhile", 2, ["title"])

    worker = JobWorker(env.rt, kinds={"racing": racing}, clock=clock)
    await enqueue(env.db, "racing", "r", clock.moment, {})
    report = await worker.run_once()
    assert (report.done, report.retrying) == (1, 0) and len(calls) == 3
    job = (await jobs(env))["r"]
    assert (job["state"], job["attempts"]) == ("done", 1)
    assert await notes(env) == ["ran:3"]  # the two raced runs were rolled back

    async def always(runtime: Any, payload: dict[str, Any]) -> None:
        calls.append(1)
        raise Conflict("work order X-1 was changed by someone else meanwhile", 2, ["title"])

    calls.clear()
    worker = JobWorker(env.rt, kinds={"always": always}, clock=clock)
    await enqueue(env.db, "always", "a", clock.moment, {})
    assert (await worker.run_once()).retrying == 1 and len(calls) == 4  # then the usual backoff


async def test_a_dead_letter_handler_commits_with_the_dead_lettering_or_not_at_all(tmp_env: Any) -> None:
    """``when_dead``: what a kind does once its job is dead-lettered runs in one transaction with
    it; when that fails too, the job is dead-lettered without it, and the worker says so."""
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(now())
    said: list[str] = []

    async def failing(runtime: Any, payload: dict[str, Any]) -> None:
        raise ConnectionError("down")

    async def finish(runtime: Any, payload: dict[str, Any], error: str) -> None:
        await runtime.db.execute("INSERT INTO rc_counter (name, value) VALUES ({}, 1)",
                                 f"ran:after {payload['n']}: {error}")
        if payload["n"] == 2:
            raise RuntimeError("the handler fails too")

    DEAD_HANDLERS["doomed"] = finish
    try:
        worker = JobWorker(env.rt, kinds={"doomed": failing}, clock=clock, max_attempts=1, say=said.append)
        await enqueue(env.db, "doomed", "one", clock.moment, {"n": 1})
        await enqueue(env.db, "doomed", "two", clock.moment, {"n": 2})
        assert (await worker.run_once()).dead == 2
    finally:
        del DEAD_HANDLERS["doomed"]
    assert {key: job["state"] for key, job in (await jobs(env)).items()} == {"one": "dead", "two": "dead"}
    assert await notes(env) == ["ran:after 1: ConnectionError: down"]  # the second one's insert rolled back
    assert any("what follows its dead-lettering failed: RuntimeError: the handler fails too" in line
               for line in said), said
