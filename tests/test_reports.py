"""Timesheet reports and dashboard figures in the engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import BadQuery, Forbidden
from engine.runtime.dashboards import ageing, sla_compliance, throughput
from engine.runtime.reports import Selection, csv_cell, invoice, selection, summary, summary_keys, timesheet
from engine.runtime.timesheets import Timesheets
from tests.runtime_helpers import EXAMPLES, Env, make_env

DEV, DEV2, DEV_LEAD, ACCOUNTS, DESIGNER = "hannah.lee", "finn.oconnor", "sam.okafor", "rachel.morgan", "marcus.reid"


@pytest.fixture
async def agency(database_url: str) -> AsyncIterator[Env]:
    env = await make_env(EXAMPLES / "contract-agency", database_url)
    try:
        yield env
    finally:
        await env.db.close()


async def order(env: Env, customer: str, project: str | None) -> dict[str, Any]:
    cid = int(await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", customer))
    pid = None if project is None else int(await env.db.fetch_value(
        "SELECT id FROM rc_project WHERE customer_id = {} AND name = {}", cid, project))
    return await env.rt.create(await env.actor(ACCOUNTS), "client_request", {
        "title": "Work", "customer_id": cid, "project_id": pid, "fields": {"request_kind": "bug"}})


async def book(env: Env, login: str, number: str, start: str, minutes: int, billable: bool = True) -> None:
    await Timesheets(env.rt).create(await env.actor(login), {
        "order": number, "started_at": start, "minutes": minutes, "billable": billable})


async def test_periods_are_counted_in_the_workspace_time_zone(agency: Env) -> None:
    number = (await order(agency, "acme_logistics", "web_shop"))["number"]
    # 31 March 23:30 UTC is 1 April 00:30 in London (summer time): April, week 14, day 1 April
    await book(agency, DEV, number, "2026-03-31T23:30:00+00:00", 20)
    await book(agency, DEV, number, "2026-03-31T22:30:00+00:00", 10)  # 23:30 local: still March
    accounts = await agency.actor(ACCOUNTS)

    async def keys(group_by: str) -> dict[str, int]:
        report = await timesheet(agency.rt, accounts, selection(agency.rt, {"group_by": group_by}))
        return {g.key: g.totals.minutes for g in report.groups}

    assert await keys("month") == {"2026-03": 10, "2026-04": 20}
    assert await keys("day") == {"2026-03-31": 10, "2026-04-01": 20}
    assert await keys("week") == {"2026-W14": 30}
    # the date filter is in local days too: "to 2026-03-31" ends at local midnight
    report = await timesheet(agency.rt, accounts, selection(agency.rt, {"to": "2026-03-31"}))
    assert report.totals.minutes == 10


async def test_who_sees_which_entries(agency: Env) -> None:
    triage = (await order(agency, "acme_logistics", "web_shop"))["number"]
    moved = await order(agency, "bloom_florists", "website_care")
    await book(agency, DEV, triage, "2026-03-02T09:00", 60)
    await book(agency, DEV2, triage, "2026-03-02T09:00", 30)
    await book(agency, DESIGNER, moved["number"], "2026-03-02T09:00", 15)
    # the second order moves on to development (its group's supervisor is sam.okafor)
    accounts = await agency.actor(ACCOUNTS)
    view = await agency.rt.get(accounts, moved["number"])
    for action in ("classify", "estimate"):
        view = await agency.rt.process(accounts, moved["number"], view["version"], action)
    await agency.rt.advance(accounts, moved["number"], view["version"], "implementation")

    async def seen(login: str) -> int:
        return (await timesheet(agency.rt, await agency.actor(login), Selection())).totals.minutes

    assert await seen(DEV) == 60          # only their own
    assert await seen(DEV2) == 30
    assert await seen(DEV_LEAD) == 15     # entries on orders of the group they supervise
    assert await seen(ACCOUNTS) == 105    # report.view: everything they can see
    cid = int(await agency.db.fetch_value("SELECT id FROM rc_customer WHERE name = 'acme_logistics'"))
    customer = await agency.user("buyer@acme", is_staff=False, customer_id=cid)
    with pytest.raises(Forbidden):
        await timesheet(agency.rt, customer, Selection())


@pytest.mark.parametrize("params", [
    {"sort": "name;DROP TABLE rc_time_entry"}, {"sort": "(select password_hash from rc_user)"},
    {"sort": "-note"}, {"group_by": "hour"}, {"assignee.password_hash": "x"}, {"customer_id": "1 OR 1=1"},
    {"billable": "maybe"}, {"from": "2026-02-30"}, {"template": "nope"}, {"user": "x" * 300},
])
async def test_unknown_sorts_filters_and_groups_are_refused(agency: Env, params: dict[str, str]) -> None:
    with pytest.raises(BadQuery) as refused:
        selection(agency.rt, params)
    field = next(iter(params))
    assert [e["field"] for e in refused.value.errors] == [field]
    if field == "sort":
        assert "started_at" in refused.value.errors[0]["message"]  # the allowed keys are listed
    assert await agency.db.fetch_value("SELECT COUNT(*) FROM rc_time_entry") == 0


async def test_sorting_and_invoice_amounts(agency: Env) -> None:
    shop = (await order(agency, "acme_logistics", "web_shop"))["number"]          # 110.00 per hour
    retainer = (await order(agency, "acme_logistics", "support_retainer"))["number"]  # customer's 95.00
    kestrel = (await order(agency, "kestrel_housing", "tenant_portal"))["number"]
    await agency.db.execute("UPDATE rc_customer SET hourly_rate = NULL WHERE name = 'kestrel_housing'")
    await book(agency, DEV, shop, "2026-03-02T09:00", 50)
    await book(agency, DEV, shop, "2026-03-02T10:00", 7)
    await book(agency, DEV, retainer, "2026-03-03T09:00", 40)
    await book(agency, DEV, retainer, "2026-03-03T10:00", 30, billable=False)
    await book(agency, DEV, kestrel, "2026-03-04T09:00", 45)
    accounts = await agency.actor(ACCOUNTS)
    report = await timesheet(agency.rt, accounts, selection(agency.rt, {"sort": "-minutes"}))
    assert [r["minutes"] for g in report.groups for r in g.rows] == [50, 45, 40, 30, 7]
    bills = {c["customer"]: c for c in invoice(report)}
    acme = {p["project"]: p for p in bills["acme_logistics"]["projects"]}
    assert acme["web_shop"]["amount"] == str((Decimal(57) * 110 / 60).quantize(Decimal("0.01")))  # 104.50
    assert acme["support_retainer"]["amount"] == "63.33" and acme["support_retainer"]["billable_minutes"] == 40
    assert bills["acme_logistics"]["amount"] == "167.83"
    assert bills["kestrel_housing"]["amount"] == "0.00" and bills["kestrel_housing"]["unpriced_minutes"] == 45


def test_csv_cells_are_neutralised() -> None:
    assert [csv_cell(v) for v in ("=1", "+1", "-1", "@x", "\tx", "\rx", "ok", None, 5)] == [
        "'=1", "'+1", "'-1", "'@x", "'\tx", '"\'\rx"', "ok", "", "5"]
    assert csv_cell('a "b", c') == '"a ""b"", c"'


async def test_dashboard_figures(agency: Env) -> None:
    at = dt.datetime.now(dt.timezone.utc)
    numbers = [(await order(agency, "acme_logistics", "web_shop"))["number"] for _ in range(4)]
    ages = [dt.timedelta(hours=2), dt.timedelta(days=2), dt.timedelta(days=10), dt.timedelta(days=40)]
    for number, age in zip(numbers, ages, strict=True):
        await agency.db.execute("UPDATE rc_work_order SET created_at = {} WHERE number = {}", at - age, number)
    accounts = await agency.actor(ACCOUNTS)
    assert [b["orders"] for b in await ageing(agency.rt, accounts, at)] == [1, 1, 0, 1, 1]
    # two completed this week by development (one of them breached its SLA), one long ago
    for number, when in ((numbers[0], at), (numbers[1], at), (numbers[2], at - dt.timedelta(weeks=20))):
        await agency.db.execute(
            "UPDATE rc_work_order SET status = 'completed', completed_at = {}, group_name = 'development', "
            "sla_name = 'standard' WHERE number = {}", when, number)
    order_id = await agency.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", numbers[1])
    await agency.db.execute("INSERT INTO rc_event (work_order_id, kind, at) VALUES ({}, 'sla_breach', {})",
                            order_id, at)
    flow = await throughput(agency.rt, accounts, at)
    assert flow["groups"] == {"development": {**dict.fromkeys(flow["weeks"], 0), flow["weeks"][-1]: 2}}
    sla = await sla_compliance(agency.rt, accounts, at)
    assert sla is not None
    week = sla["weeks"][-1]
    assert (sla["completed"][week], sla["met"][week], sla["percent"][week]) == (2, 1, 50)
    assert [b["orders"] for b in await ageing(agency.rt, accounts, at)] == [0, 0, 0, 0, 1]  # only the 40-day-old order is still open


async def test_the_sql_summary_agrees_with_the_report(agency: Env) -> None:
    numbers = [(await order(agency, c, p))["number"] for c, p in (
        ("acme_logistics", "web_shop"), ("acme_logistics", None), ("bloom_florists", "spring_campaign"))]
    starts = ["2026-01-31T23:30", "2026-03-29T00:30", "2026-03-29T02:30", "2026-03-31T23:45", "2026-10-25T01:30",
              "2026-12-31T23:59"]
    for i, start in enumerate(starts):
        for j, number in enumerate(numbers):
            await book(agency, (DEV, DEV2, ACCOUNTS)[j], number, start, 5 + i + j, billable=(i + j) % 2 == 0)
    accounts = await agency.actor(ACCOUNTS)
    for by in ("customer,month", "project,week", "day", "user,customer", "month"):
        keys = summary_keys(by)
        got = {tuple(s["keys"]): (s["minutes"], s["billable_minutes"], s["entries"])
               for s in await summary(agency.rt, accounts, Selection(), keys)}
        want: dict[tuple[str, ...], tuple[int, int, int]] = {}
        first = await timesheet(agency.rt, accounts, Selection(group_by=keys[0]))
        for group in first.groups:
            for row in group.rows:
                key = (group.key,)
                if len(keys) == 2:
                    report = await timesheet(agency.rt, accounts, Selection(group_by=keys[1]))
                    key += (next(g.key for g in report.groups if row["id"] in {r["id"] for r in g.rows}),)
                m, b, n = want.get(key, (0, 0, 0))
                want[key] = (m + row["minutes"], b + (row["minutes"] if row["billable"] else 0), n + 1)
        assert got == want, by
    for bad in ("", "none", "hour", "user,user", "user,customer,month", "day,month", "customer;drop"):
        with pytest.raises(BadQuery):
            summary_keys(bad)
