"""SLAs on work orders: selection, deadlines in business hours, pause and resume, escalations fired once."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest

from engine.automation.actions import apply_actions
from engine.automation.escalation import sweep
from engine.automation.sla import read_clock
from engine.automation.worker import Worker
from engine.model.automation import Action
from engine.runtime.state import FINAL
from tests.api_helpers import HOSTING_USERS
from tests.runtime_helpers import EXAMPLES, HOSTING, Env, make_env, tmp_env  # noqa: F401 - fixtures
from tests.web_helpers import browsing

UTC = dt.timezone.utc
MONDAY = dt.datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
"""Monday 2 March 2026, 10:00 UTC (the office calendar is in UTC: no DST here; see test_calendar)."""

WORKSPACE = {"defs.yaml": """\
    kind: Group
    name: desk
    supervisor: sue
    members: [sue, max]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition, order.cancel, email.send, comment.private]
    groups: [desk]
    ---
    kind: Template
    name: ticket
    label: Ticket
    numbering: {prefix: T-}
    fields:
      - {name: tier, type: input}
    ---
    kind: Template
    name: chore
    label: Chore
    numbering: {prefix: C-}
    ---
    kind: Queue
    name: support
    templates: [ticket, chore]
    steps:
      - name: triage
        group: desk
        actions: [{name: look}]
      - name: work
        group: desk
        actions: [{name: fix}]
    ---
    kind: Calendar
    name: office
    timezone: UTC
    hours:
      mon: ["09:00-17:00"]
      tue: ["09:00-17:00"]
      wed: ["09:00-17:00"]
      thu: ["09:00-17:00"]
      fri: ["09:00-17:00"]
    ---
    kind: SLA
    name: gold
    calendar: office
    templates: [ticket]
    when: {field: tier, equals: gold}
    targets: {first_response: 1h, resolution: 4h}
    pause_on: [waiting]
    warn_before: 30m
    on_warning:
      - comment: {text: "{{ number }} is due soon"}
    on_breach:
      - set_priority: urgent
      - comment: {text: "{{ number }} missed its target"}
    priority: 10
    ---
    kind: SLA
    name: standard
    calendar: office
    templates: [ticket]
    targets:
      first_response: 4h
      next_response: 2h
      resolution: 2d
      steps: {triage: 2h}
    pause_on: [waiting, on_hold]
    warn_before: 1h
    priority: 100
    ---
    kind: SLA
    name: fallback
    targets: {resolution: 1h}
    priority: 500
    ---
    kind: SLA
    name: chores
    templates: [chore]
    targets: {resolution: 90m}
    priority: 50
    """}


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


class Clock:
    """The time the SLA clock, the sweep and the worker see (moved by hand)."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


async def setup(tmp_env: Any) -> tuple[Env, Clock, Worker]:
    env: Env = await tmp_env(WORKSPACE)
    clock = Clock(MONDAY)
    env.rt.sla.clock = clock
    return env, clock, Worker(env.rt, outbox=False, clock=clock)


async def create(env: Env, template: str = "ticket", **fields: Any) -> str:
    order = await env.rt.create(await env.actor("max"), template, {"fields": fields})
    return str(order["number"])


async def sla(env: Env, number: str) -> dict[str, Any]:
    order_id = await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
    row = await read_clock(env.rt, int(order_id))
    for key in ("sla_due_at", "sla_warn_at", "sla_next_at", "sla_paused_at"):
        value = row[key]
        row[key] = None if value is None else (dt.datetime.fromisoformat(value) if isinstance(value, str) else value)
        if row[key] is not None and row[key].tzinfo is None:
            row[key] = row[key].replace(tzinfo=UTC)
    return row


def due(row: dict[str, Any], target: str) -> dt.datetime | None:
    entry = row["sla_clock"].get(target)
    return None if entry is None or entry["due"] is None else dt.datetime.fromisoformat(entry["due"])


async def events(env: Env, number: str, *kinds: str) -> list[dict[str, Any]]:
    rows = await env.db.fetch(
        "SELECT e.kind, e.after, e.source FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
        "WHERE w.number = {} ORDER BY e.id", number)
    out = []
    for row in rows:
        if row["kind"] in kinds:
            row["after"] = json.loads(row["after"]) if isinstance(row["after"], str) else row["after"]
            out.append(row)
    return out


async def set_status(env: Env, number: str, status: str) -> None:
    await apply_actions(env.rt, number, (Action(set_status=status),), source="test")  # type: ignore[arg-type]


async def test_selection_by_template_condition_and_priority(tmp_env: Any) -> None:
    env, _, _ = await setup(tmp_env)
    gold = await create(env, tier="gold")
    silver = await create(env, tier="silver")
    chore = await create(env, "chore")
    assert (await sla(env, gold))["sla_name"] == "gold"  # gold (10) and standard (100) match: the lower wins
    assert (await sla(env, silver))["sla_name"] == "standard"  # gold's condition fails
    assert (await sla(env, chore))["sla_name"] == "chores"  # chores (50) before fallback (500)
    # a change that makes the condition hold selects the SLA again
    view = await env.rt.get(await env.actor("max"), silver)
    await env.rt.update(await env.actor("max"), silver, view["version"], {"fields": {"tier": "gold"}})
    row = await sla(env, silver)
    assert row["sla_name"] == "gold"
    assert due(row, "first_response") == at("2026-03-02T11:00")


async def test_deadlines_in_business_hours(tmp_env: Any) -> None:
    env, clock, _ = await setup(tmp_env)
    clock.moment = at("2026-03-06T15:00")  # Friday 15:00, two office hours left in the week
    number = await create(env, tier="silver")
    row = await sla(env, number)
    assert row["sla_state"] == "running"
    assert due(row, "first_response") == at("2026-03-09T11:00")  # 2h Friday + 2h Monday
    assert due(row, "step:triage") == at("2026-03-06T17:00")
    assert due(row, "resolution") == at("2026-03-10T15:00")  # two business days: Tuesday, same time
    assert row["sla_target"] == "step:triage" and row["sla_due_at"] == at("2026-03-06T17:00")
    assert row["sla_warn_at"] == at("2026-03-06T16:00")
    assert row["sla_next_at"] == at("2026-03-06T16:00")
    # entering the next step replaces the step target (work has none)
    clock.moment = at("2026-03-06T16:30")
    await env.work_step("max", number)
    row = await sla(env, number)
    assert set(row["sla_clock"]) == {"first_response", "resolution"}
    assert row["sla_target"] == "first_response"


async def test_pause_and_resume_keep_the_remaining_time(tmp_env: Any) -> None:
    env, clock, _ = await setup(tmp_env)
    number = await create(env, tier="silver")  # Monday 10:00: resolution due Wednesday 10:00
    assert due(await sla(env, number), "resolution") == at("2026-03-04T10:00")
    clock.moment = at("2026-03-02T12:00")
    await set_status(env, number, "waiting")
    row = await sla(env, number)
    assert row["sla_state"] == "paused" and row["sla_paused_at"] == at("2026-03-02T12:00")
    assert row["sla_next_at"] is None  # the sweep never sees a paused order
    assert row["sla_clock"]["resolution"]["remaining"] == 14 * 3600  # 5h Monday + 8h Tuesday + 1h Wednesday
    assert row["sla_clock"]["first_response"]["remaining"] == 2 * 3600
    clock.moment = at("2026-03-05T09:00")  # Thursday morning: the customer answered
    await set_status(env, number, "open")
    row = await sla(env, number)
    assert row["sla_state"] == "running" and row["sla_paused_at"] is None
    assert due(row, "first_response") == at("2026-03-05T11:00")
    assert due(row, "resolution") == at("2026-03-06T15:00")  # 8h Thursday + 6h Friday
    # a second pause inside the same week keeps counting down from what was left
    clock.moment = at("2026-03-05T10:00")
    await set_status(env, number, "on_hold")
    assert (await sla(env, number))["sla_clock"]["resolution"]["remaining"] == 13 * 3600
    clock.moment = at("2026-03-09T09:00")
    await set_status(env, number, "open")
    assert due(await sla(env, number), "resolution") == at("2026-03-10T14:00")


async def test_reply_meets_first_response_and_customer_mail_starts_next(tmp_env: Any) -> None:
    env, clock, _ = await setup(tmp_env)
    number = await create(env, tier="silver")
    clock.moment = at("2026-03-02T11:00")
    await env.rt.messages.reply(await env.actor("max"), number, "We are on it.", to="c@example.com")
    row = await sla(env, number)
    assert "first_response" not in row["sla_clock"]
    clock.moment = at("2026-03-02T16:00")
    order = await env.rt._load(await env.actor("max"), number)
    await env.rt.sla.message_added(order, "email", None)  # what inbound mail from the customer does
    assert due(await sla(env, number), "next_response") == at("2026-03-03T10:00")  # 1h Monday + 1h Tuesday
    await env.rt.messages.reply(await env.actor("max"), number, "Done.", to="c@example.com")
    assert "next_response" not in (await sla(env, number))["sla_clock"]


async def test_warning_and_breach_fire_exactly_once(tmp_env: Any) -> None:
    env, clock, worker = await setup(tmp_env)
    number = await create(env, tier="gold")  # first response due 11:00 (warning 10:30), resolution 14:00
    clock.moment = at("2026-03-02T10:29")
    await worker.run_once()
    assert await events(env, number, "sla_warning", "sla_breach") == []
    clock.moment = at("2026-03-02T10:31")
    for _ in range(3):  # the sweep and the jobs run again: nothing more
        await worker.run_once()
    warnings = await events(env, number, "sla_warning")
    assert [(e["after"]["sla"]["target"], e["source"]) for e in warnings] == [
        ("first_response", "sla gold warning (first_response)")]
    assert len(await events(env, number, "comment_added")) == 1  # on_warning ran once
    assert (await sla(env, number))["sla_state"] == "running"
    clock.moment = at("2026-03-02T11:05")
    await worker.run_once()
    await worker.run_once()
    breaches = await events(env, number, "sla_breach")
    assert [e["after"]["sla"]["target"] for e in breaches] == ["first_response"]
    view = await env.rt.get(await env.actor("max"), number)
    assert view["priority"] == "urgent"  # on_breach ran
    assert len(await events(env, number, "comment_added")) == 2
    priority_changes = [e for e in await events(env, number, "updated") if "priority" in e["after"]]
    assert len(priority_changes) == 1
    # hours later everything left is due at once: resolution's warning and breach, once each
    clock.moment = at("2026-03-03T12:00")
    for _ in range(2):
        await worker.run_once()
    fired = [(e["kind"], e["after"]["sla"]["target"]) for e in await events(env, number, "sla_warning", "sla_breach")]
    assert sorted(fired) == sorted([("sla_warning", "first_response"), ("sla_breach", "first_response"),
                                    ("sla_warning", "resolution"), ("sla_breach", "resolution")])
    row = await sla(env, number)
    assert row["sla_next_at"] is None and row["sla_due_at"] == at("2026-03-02T11:00")  # overdue since then
    jobs = await env.db.fetch("SELECT state, attempts FROM rc_job WHERE kind = 'sla.escalate'")
    assert jobs and all(j["state"] == "done" and j["attempts"] == 1 for j in jobs)


async def test_a_paused_or_finished_order_does_not_escalate(tmp_env: Any) -> None:
    env, clock, worker = await setup(tmp_env)
    paused = await create(env, tier="gold")
    done = await create(env, tier="gold")
    await set_status(env, paused, "waiting")
    await env.rt.cancel(await env.actor("sue"), done, (await env.rt.get(await env.actor("sue"), done))["version"])
    assert (await sla(env, done))["sla_state"] == "stopped"
    clock.moment = at("2026-03-09T10:00")
    assert await sweep(env.rt, clock.moment) == 0
    await worker.run_once()
    for number in (paused, done):
        assert await events(env, number, "sla_warning", "sla_breach") == []
    assert "cancelled" in FINAL


async def test_around_the_clock_sla(tmp_env: Any) -> None:
    env, clock, worker = await setup(tmp_env)
    clock.moment = at("2026-03-07T23:00")  # Saturday night: no calendar, so the clock runs
    number = await create(env, "chore")
    row = await sla(env, number)
    assert due(row, "resolution") == at("2026-03-08T00:30")
    assert row["sla_warn_at"] is None  # no warn_before: only the breach
    clock.moment = at("2026-03-08T00:31")
    await worker.run_once()
    assert [e["kind"] for e in await events(env, number, "sla_warning", "sla_breach")] == ["sla_breach"]


async def test_a_workspace_without_slas_leaves_the_columns_empty(tmp_env: Any) -> None:
    files = {"defs.yaml": WORKSPACE["defs.yaml"].split("    kind: Calendar")[0].rstrip().rstrip("-")}
    env: Env = await tmp_env(files)
    number = await create(env, tier="gold")
    row = await sla(env, number)
    assert row["sla_name"] is None and row["sla_state"] is None


async def test_the_order_page_and_the_manager_show_the_sla(database_url: str) -> None:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as web:
        await web.sign_in("jana.kowalski")

        async def create() -> str:
            response = await web.api.post("jana.kowalski", "/api/templates/hosting_order/orders", {"fields": HOSTING})
            assert response.status_code == 201, response.text
            return str(response.json()["number"])

        fresh = await create()
        page = (await web.get("jana.kowalski", f"/orders/{fresh}")).text
        assert "Web hosting delivery" in page and "first response" in page
        assert re.search(r"(59 min|1 h 0 min) left", page)
        service = web.api.runtime.sla
        real = service.clock
        service.clock = lambda: dt.datetime.now(UTC) - dt.timedelta(days=30)
        late = await create()
        service.clock = real
        page = (await web.get("jana.kowalski", f"/orders/{late}")).text
        assert "overdue by" in page and "order-sla overdue" in page
        listing = (await web.get("jana.kowalski", "/manager?status=open")).text
        rows = dict(re.findall(r'<td><a href="/orders/([^"]+)">[^<]*</a></td>(.*?)</tr>', listing, re.S))
        assert "sla-overdue" in rows[late] and "sla-overdue" not in rows[fresh]


async def test_escalation_and_agent_changes_interleaved(tmp_env: Any) -> None:
    """Sweep x transition x comment: a stale agent write conflicts; a change before the job wins cleanly."""
    from engine.errors import Conflict

    env, clock, worker = await setup(tmp_env)
    max_ = await env.actor("max")
    first = await create(env, tier="gold")
    second = await create(env, tier="gold")
    read = await env.rt.get(max_, first)  # the agent reads version N ...
    clock.moment = at("2026-03-02T11:05")
    await worker.run_once()  # ... the escalation fires meanwhile (a new version) ...
    with pytest.raises(Conflict):
        await env.rt.process(max_, first, read["version"], "look")  # ... so the stale transition is refused
    assert len(await events(env, first, "sla_breach")) == 1
    # the sweep queues the second order's resolution escalation; the agent cancels the order before the job runs
    clock.moment = at("2026-03-02T15:00")
    await sweep(env.rt, clock.moment)
    assert (await sla(env, second))["sla_state"] == "escalating"
    view = await env.rt.get(max_, second)
    await env.rt.messages.comment(max_, second, "Looking at it")
    await env.rt.cancel(max_, second, view["version"])
    await worker.run_once()
    fired = [e["after"]["sla"]["target"] for e in await events(env, second, "sla_warning", "sla_breach")]
    assert fired == ["first_response", "first_response"]  # from 11:05; resolution's were queued, then cancelled
    assert [j["state"] for j in await env.db.fetch("SELECT state FROM rc_job")] == ["done"] * 4  # 2 sweeps x 2
    assert (await sla(env, second))["sla_state"] == "stopped"


async def test_the_agency_examples_slas_are_selected_by_kind_and_customer(database_url: str) -> None:
    env = await make_env(EXAMPLES / "contract-agency", database_url)
    try:
        rachel = await env.user("rachel.morgan", roles=("account_manager",))
        acme = await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = 'acme_logistics'")
        bloom = await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = 'bloom_florists'")
        chosen = {}
        for customer, kind in ((acme, "hosting_issue"), (acme, "bug"), (bloom, "bug")):
            order = await env.rt.create(rachel, "client_request", {
                "title": "Help", "customer_id": int(customer), "fields": {"request_kind": kind}})
            chosen[(customer, kind)] = (await sla(env, order["number"]))["sla_name"]
        assert chosen == {(acme, "hosting_issue"): "hosting_incident",  # priority 10 wins over the retainer
                          (acme, "bug"): "retainer_priority", (bloom, "bug"): "standard_contract"}
    finally:
        await env.db.close()


async def test_sla_columns_cannot_be_written_through_the_api(tmp_env: Any) -> None:
    """SECURITY C13: `sla_due_at` and friends in an update are refused with the field named; nothing changes."""
    from engine.errors import Invalid

    env, _, _ = await setup(tmp_env)
    number = await create(env, tier="gold")
    before = await sla(env, number)
    view = await env.rt.get(await env.actor("max"), number)
    for key, value in (("sla_due_at", "2030-01-01T00:00:00+00:00"), ("sla_state", "stopped"), ("sla_name", "x")):
        with pytest.raises(Invalid) as refused:
            await env.rt.update(await env.actor("max"), number, view["version"], {key: value})
        assert refused.value.errors[0]["field"] == key
    assert await sla(env, number) == before
    assert (await env.rt.get(await env.actor("max"), number))["version"] == view["version"]


async def test_a_reply_during_an_escalation_keeps_what_the_escalation_fired(tmp_env: Any) -> None:
    """A reply updates the clock too. On PostgreSQL it read the clock before a running escalation
    committed and wrote it back after: the fired warning was forgotten and the order stayed
    ``escalating`` with no job left, so its later levels never fired (found by the fault harness)."""
    import asyncio

    from engine.automation.escalation import fire_due

    env, clock, worker = await setup(tmp_env)
    number = await create(env, tier="gold")  # first response due 11:00 (warning 10:30), resolution 14:00
    clock.moment = at("2026-03-02T10:31")
    assert await sweep(env.rt, clock.moment) == 1
    entered, release = asyncio.Event(), asyncio.Event()

    async def pause_after_save(change: Any) -> None:
        if any(kind == "sla_warning" for kind, *_ in change.events):
            entered.set()
            await release.wait()

    env.rt.after_change.append(pause_after_save)

    async def escalate() -> list[tuple[str, str]]:
        async with env.db.transaction():  # as the job runs it
            return await fire_due(env.rt, number, clock.moment)

    job = asyncio.create_task(escalate())
    await asyncio.wait_for(entered.wait(), 10)
    reply = asyncio.create_task(env.rt.messages.reply(await env.actor("max"), number, "On it.", to="c@example.com"))
    await asyncio.sleep(0.5)  # the reply reaches the order's row and waits for the escalation
    release.set()
    assert await job == [("first_response", "warning")]
    await reply
    env.rt.after_change.remove(pause_after_save)
    row = await sla(env, number)
    assert row["sla_state"] == "running", row
    assert "first_response" not in row["sla_clock"] and row["sla_next_at"] == at("2026-03-02T13:30")
    clock.moment = at("2026-03-02T14:05")
    for _ in range(2):
        await worker.run_once()
    fired = [(e["kind"], e["after"]["sla"]["target"]) for e in await events(env, number, "sla_warning", "sla_breach")]
    assert fired == [("sla_warning", "first_response"), ("sla_warning", "resolution"), ("sla_breach", "resolution")]


async def test_an_escalation_during_a_reply_sees_the_reply(tmp_env: Any) -> None:
    """The other order of the same race: the escalation job starts while a reply's transaction is
    open. It waits for the reply, and then finds the first response met: nothing to fire."""
    import asyncio

    from engine.automation.escalation import fire_due

    env, clock, _ = await setup(tmp_env)
    number = await create(env, tier="gold")
    clock.moment = at("2026-03-02T10:31")
    assert await sweep(env.rt, clock.moment) == 1
    entered, release = asyncio.Event(), asyncio.Event()

    async def pause_after_message(order: Any, kind: str, actor: Any) -> None:
        entered.set()
        await release.wait()

    env.rt.after_message.append(pause_after_message)  # after the SLA clock's own listener
    reply = asyncio.create_task(env.rt.messages.reply(await env.actor("max"), number, "On it.", to="c@example.com"))
    await asyncio.wait_for(entered.wait(), 10)

    async def escalate() -> list[tuple[str, str]]:
        async with env.db.transaction():
            return await fire_due(env.rt, number, clock.moment)

    job = asyncio.create_task(escalate())
    await asyncio.sleep(0.5)
    release.set()
    await reply
    assert await job == []
    env.rt.after_message.remove(pause_after_message)
    row = await sla(env, number)
    assert "first_response" not in row["sla_clock"] and row["sla_state"] == "running", row
    assert await events(env, number, "sla_warning", "sla_breach") == []


async def test_an_escalation_dead_lettered_fires_its_levels_without_their_actions_and_the_sla_goes_on(
        tmp_env: Any) -> None:
    """An on_warning action that fails at every attempt used to leave the order `escalating`
    for good once its job was dead-lettered: no event of the warning, and its later levels
    never fired. Now the dead-lettering fires the levels that were due, without their
    actions and with the error in their events, and the breach after it fires as usual."""
    failing = WORKSPACE["defs.yaml"].replace('- comment: {text: "{{ number }} is due soon"}', "- assign: {user: gone}")
    assert failing != WORKSPACE["defs.yaml"]
    env: Env = await tmp_env({**WORKSPACE, "defs.yaml": failing})
    clock = Clock(MONDAY)
    env.rt.sla.clock = clock
    worker = Worker(env.rt, outbox=False, clock=clock)
    number = await create(env, tier="gold")  # first response: warning 10:30, breach 11:00
    clock.moment = at("2026-03-02T10:31")
    attempts = 0
    while attempts < 10:
        report = await worker.run_once()
        attempts += 1
        if report.jobs.dead:
            break
        assert await events(env, number, "sla_warning") == []  # each failed attempt rolled back
        assert (await sla(env, number))["sla_state"] == "escalating"
        clock.moment += dt.timedelta(minutes=10)  # past the backoff of the next attempt
    assert attempts == 5  # the job worker's max_attempts
    warnings = await events(env, number, "sla_warning")
    assert [(e["after"]["sla"]["target"], e["after"]["sla"]["actions_failed"]) for e in warnings] == [
        ("first_response", "ActionFailed: assign: no active staff user gone")]
    assert await events(env, number, "sla_breach") == []  # due at 11:00, after the job was queued
    assert (await sla(env, number))["sla_state"] == "running"
    await worker.run_once()  # the sweep finds the breach due, its job fires it with its actions
    breaches = await events(env, number, "sla_breach")
    assert [e["after"]["sla"]["target"] for e in breaches] == ["first_response"]
    assert "actions_failed" not in breaches[0]["after"]["sla"]
    assert (await env.rt.get(await env.actor("max"), number))["priority"] == "urgent"
    dead = await env.db.fetch("SELECT state, last_error FROM rc_job WHERE state = 'dead'")
    assert len(dead) == 1 and "no active staff user gone" in dead[0]["last_error"]
