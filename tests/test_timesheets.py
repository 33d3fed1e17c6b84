"""Timers and timesheet entries on the contract-agency example, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.errors import Forbidden, Invalid, NotFound, Refused
from engine.runtime.timesheets import MAX_TIMER_HOURS, Timesheets
from tests.runtime_helpers import EXAMPLES, Env, dump, make_env

DEV, DEV2, DEV_LEAD, ACCOUNTS = "hannah.lee", "finn.oconnor", "sam.okafor", "rachel.morgan"


@pytest.fixture
async def agency(database_url: str) -> AsyncIterator[Env]:
    env = await make_env(EXAMPLES / "contract-agency", database_url)
    try:
        yield env
    finally:
        await env.db.close()


async def ids(env: Env, customer: str, project: str | None = None) -> tuple[int, int | None]:
    cid = int(await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", customer))
    pid = None if project is None else int(await env.db.fetch_value(
        "SELECT id FROM rc_project WHERE customer_id = {} AND name = {}", cid, project))
    return cid, pid


async def new_order(env: Env, customer: str = "acme_logistics", project: str | None = "web_shop",
                    by: str = ACCOUNTS) -> dict[str, Any]:
    cid, pid = await ids(env, customer, project)
    return await env.rt.create(await env.actor(by), "client_request", {
        "title": f"Work for {customer}", "customer_id": cid, "project_id": pid, "fields": {"request_kind": "bug"}})


async def set_timer_start(env: Env, login: str, ago: dt.timedelta) -> None:
    """Move a running timer's start back (as if it had run ``ago``)."""
    moment = dt.datetime.now(dt.timezone.utc) - ago
    await env.db.execute("UPDATE rc_timer SET started_at = {} WHERE user_id = {}", moment, await env.user_id(login))


async def test_timer_start_stop_switch(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    first, second = await new_order(agency), await new_order(agency, "bloom_florists", "website_care")
    dev = await agency.actor(DEV)
    assert await ts.current(dev) is None
    started = await ts.start(dev, first["number"])
    assert started["timer"]["order"] == first["number"] and started["stopped"] is None
    await set_timer_start(agency, DEV, dt.timedelta(minutes=42))
    current = await ts.current(dev)
    assert current is not None and current["order"] == first["number"] and not current["over_limit"]
    # Starting a second timer stops the first and books its time; one timer per user.
    switched = await ts.start(dev, second["number"])
    assert switched["stopped"]["order"] == first["number"] and switched["stopped"]["minutes"] == 42
    assert switched["booked"]["minutes"] == 42 and switched["booked"]["order"] == first["number"]
    assert await agency.db.fetch_value("SELECT COUNT(*) FROM rc_timer WHERE user_id = {}",
                                       await agency.user_id(DEV)) == 1
    kinds = [e["kind"] for e in await agency.rt.events(dev, first["number"])]
    assert kinds[-1] == "time_logged"
    await set_timer_start(agency, DEV, dt.timedelta(minutes=15, seconds=20))
    draft = await ts.stop(dev)
    assert draft == {**draft, "order": second["number"], "minutes": 15, "capped": False}
    assert await ts.current(dev) is None
    with pytest.raises(Refused):
        await ts.stop(dev)


async def test_timer_over_the_policy_is_flagged_and_capped(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    order = await new_order(agency)
    dev = await agency.actor(DEV)
    await ts.start(dev, order["number"])
    await set_timer_start(agency, DEV, dt.timedelta(days=3))
    current = await ts.current(dev)
    assert current is not None and current["over_limit"]
    draft = await ts.stop(dev)
    assert draft["capped"] and draft["minutes"] == MAX_TIMER_HOURS * 60


async def test_entry_with_percent_and_status_change_is_one_audited_change(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    order = await new_order(agency)
    accounts = await agency.actor(ACCOUNTS)
    view = await agency.rt.get(accounts, order["number"])
    entry = await ts.create(accounts, {
        "order": order["number"], "started_at": "2026-03-02T09:00", "minutes": 90, "billable": True,
        "note": "triage call", "percent_complete": 20, "process_action": "classify", "version": view["version"]})
    # local time (Europe/London, winter: UTC+0) stored as UTC
    assert entry["started_at"] == "2026-03-02T09:00:00+00:00" and entry["percent_complete"] == 20
    after = await agency.rt.get(accounts, order["number"])
    assert next(a for a in after["actions"] if a["name"] == "classify")["state"] == "processed"
    kinds = [e["kind"] for e in await agency.rt.events(accounts, order["number"])]
    assert kinds[-2:] == ["action_processed", "time_logged"]
    # A status change that fails takes the entry with it (stale version): nothing written.
    before = await dump(agency.db)
    with pytest.raises(Exception) as failed:
        await ts.create(accounts, {"order": order["number"], "started_at": "2026-03-02T11:00", "minutes": 30,
                                   "process_action": "estimate", "version": view["version"]})
    assert "version" in str(failed.value)
    assert await dump(agency.db) == before


async def test_bad_entries_are_refused_with_field_paths(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    order = await new_order(agency)
    dev = await agency.actor(DEV)
    await ts.create(dev, {"order": order["number"], "started_at": "2026-03-02T09:00", "minutes": 60})
    before = await dump(agency.db)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"minutes": 0}, "minutes"), ({"minutes": -30}, "minutes"), ({"minutes": "ten"}, "minutes"),
        ({"started_at": "yesterday"}, "started_at"), ({"percent_complete": 140}, "percent_complete"),
        ({"billable": "maybe"}, "billable"), ({"status": "completed"}, "status"),
        ({"started_at": "2026-03-02T09:30"}, "started_at"),  # overlaps the entry above
        ({"started_at": "2026-03-29T01:30"}, "started_at"),  # skipped by the clock change in London
    ]
    for change, path in cases:
        data = {"order": order["number"], "started_at": "2026-03-03T09:00", "minutes": 30, **change}
        with pytest.raises(Invalid) as refused:
            await ts.create(dev, data)
        assert path in [e["field"] for e in refused.value.errors], (change, refused.value.errors)
    assert await dump(agency.db) == before
    # Right after the earlier entry ends is fine (no overlap); summer time is UTC+1 in London.
    entry = await ts.create(dev, {"order": order["number"], "started_at": "2026-03-02T10:00", "minutes": 5})
    assert entry["minutes"] == 5
    summer = await ts.create(dev, {"order": order["number"], "started_at": "2026-07-01T10:00", "minutes": 5})
    assert summer["started_at"] == "2026-07-01T09:00:00+00:00"


async def test_who_may_book_and_edit(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    order = await new_order(agency)
    dev, dev2, lead = await agency.actor(DEV), await agency.actor(DEV2), await agency.actor(DEV_LEAD)
    entry = await ts.create(dev, {"order": order["number"], "started_at": "2026-03-02T09:00", "minutes": 60})
    cid, _ = await ids(agency, "acme_logistics")
    customer = await agency.user("buyer@acme", is_staff=False, customer_id=cid)
    before = await dump(agency.db)
    # Another member of the group may neither see nor change it: the same answer as for no entry at all.
    for call in (ts.get(dev2, entry["id"]), ts.update(dev2, entry["id"], 1, {"minutes": 10}),
                 ts.delete(dev2, entry["id"], 1), ts.get(dev2, 999_999)):
        with pytest.raises(NotFound):
            await call
    with pytest.raises(Forbidden):
        await ts.create(dev2, {"order": order["number"], "started_at": "2026-03-05T09:00", "minutes": 5,
                               "user": DEV})
    # A customer user never sees time.
    for call in (ts.current(customer), ts.get(customer, entry["id"]), ts.entries_of(customer, order["number"])):
        with pytest.raises(NotFound):
            await call
    assert await dump(agency.db) == before
    # The author edits; the order is at triage (account management), so the development
    # supervisor is no supervisor of it, but an account manager (time.edit_others) is.
    edited = await ts.update(dev, entry["id"], 1, {"minutes": 45, "billable": False})
    assert (edited["minutes"], edited["billable"], edited["version"]) == (45, False, 2)
    with pytest.raises(NotFound):
        await ts.update(lead, entry["id"], 2, {"minutes": 50})
    with pytest.raises(Invalid):
        await ts.update(dev, entry["id"], 1, {"minutes": 50})  # stale version
    accounts = await agency.actor(ACCOUNTS)
    assert (await ts.update(accounts, entry["id"], 2, {"minutes": 50}))["minutes"] == 50
    await ts.delete(accounts, entry["id"], 3)
    kinds = [e["kind"] for e in await agency.rt.events(accounts, order["number"])]
    assert kinds[-3:] == ["time_edited", "time_edited", "time_deleted"]


async def test_cancelled_orders_take_no_time(agency: Env) -> None:
    ts = Timesheets(agency.rt)
    order = await new_order(agency)
    accounts = await agency.actor(ACCOUNTS)
    entry = await ts.create(accounts, {"order": order["number"], "started_at": "2026-03-02T09:00", "minutes": 60})
    await agency.rt.cancel(accounts, order["number"], order["version"], "duplicate")
    before = await dump(agency.db)
    for call in (ts.create(accounts, {"order": order["number"], "started_at": "2026-03-03T09:00", "minutes": 5}),
                 ts.start(accounts, order["number"]), ts.update(accounts, entry["id"], 1, {"minutes": 5}),
                 ts.delete(accounts, entry["id"], 1)):
        with pytest.raises(Refused):
            await call
    assert await dump(agency.db) == before


async def test_concurrent_starts_leave_one_running_timer(agency: Env) -> None:
    import asyncio

    ts = Timesheets(agency.rt)
    orders = [(await new_order(agency))["number"] for _ in range(4)]
    dev = await agency.actor(DEV)
    results = await asyncio.gather(*(ts.start(dev, number) for number in orders), return_exceptions=True)
    assert [r for r in results if isinstance(r, BaseException)] == []
    rows = await agency.db.fetch("SELECT work_order_id FROM rc_timer WHERE user_id = {}", await agency.user_id(DEV))
    assert len(rows) == 1
    current = await ts.current(dev)
    assert current is not None and current["order"] in orders
