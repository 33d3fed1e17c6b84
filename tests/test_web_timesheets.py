"""Time on the screens and over the API, on SQLite and PostgreSQL (contract-agency example).

The same selection summed three ways — the timesheets page, its CSV export and the JSON
report — gives the totals the test computes itself from the entries it booked; CSV cells
that could start a formula are neutralised; timers start, switch and stop into the entry
form; authors, supervisors and customers get what they may and nothing else changes.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from engine.runtime import add_user
from runtime_helpers import dump
from web_helpers import Browser, browsing

DEV, DEV2, ACCOUNTS = "hannah.lee", "finn.oconnor", "rachel.morgan"
USERS: dict[str, dict[str, Any]] = {login: {"password": "correct horse"} for login in (DEV, DEV2, ACCOUNTS)}


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("contract-agency", database_url, USERS) as browser:
        for login in USERS:
            await browser.sign_in(login)
        yield browser


async def customer_ids(web: Browser, customer: str, project: str | None) -> tuple[int, int | None]:
    db = web.api.db
    cid = int(await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", customer))
    pid = None if project is None else int(await db.fetch_value(
        "SELECT id FROM rc_project WHERE customer_id = {} AND name = {}", cid, project))
    return cid, pid


async def new_order(web: Browser, customer: str, project: str | None, title: str = "Request") -> str:
    cid, pid = await customer_ids(web, customer, project)
    body = {"title": title, "customer_id": cid, "fields": {"request_kind": "bug"}}
    if pid is not None:
        body["project_id"] = pid
    response = await web.api.post(ACCOUNTS, "/api/templates/client_request/orders", body)
    assert response.status_code == 201, response.text
    return str(response.json()["number"])


async def book(web: Browser, login: str, order: str, start: str, minutes: int, billable: bool = True,
               note: str | None = None) -> dict[str, Any]:
    response = await web.api.post(login, "/api/time-entries/", {
        "order": order, "started_at": start, "minutes": minutes, "billable": billable, "note": note})
    assert response.status_code == 201, response.text
    return dict(response.json())


# (customer, project, rate that applies)
PLAN = [
    ("acme_logistics", "web_shop", Decimal("110.00")),
    ("acme_logistics", "support_retainer", Decimal("95.00")),   # no project rate: the customer's
    ("bloom_florists", "spring_campaign", Decimal("85.00")),
]
BOOKINGS = [  # (order index, who, local start, minutes, billable)
    (0, DEV, "2026-03-02T09:00", 90, True), (0, DEV2, "2026-03-02T09:00", 45, False),
    (1, DEV, "2026-03-30T14:00", 20, True), (2, DEV, "2026-04-01T10:00", 75, True),
    (2, ACCOUNTS, "2026-04-03T08:15", 50, True), (1, DEV2, "2026-04-20T16:00", 33, True),
]


async def booked(web: Browser) -> list[dict[str, Any]]:
    orders = [await new_order(web, c, p, f"{c} {p}") for c, p, _ in PLAN]
    out = []
    for index, login, start, minutes, billable in BOOKINGS:
        await book(web, login, orders[index], start, minutes, billable)
        customer, project, rate = PLAN[index]
        out.append({"customer": customer, "project": project, "rate": rate, "month": start[:7], "minutes": minutes,
                    "billable": billable, "user": login})
    return out


def expected(entries: list[dict[str, Any]], key: str) -> dict[str, tuple[int, int]]:
    sums: dict[str, tuple[int, int]] = {}
    for e in entries:
        k = e[key] if key != "project" else f"{e['customer']}/{e['project']}"
        minutes, billable = sums.get(k, (0, 0))
        sums[k] = (minutes + e["minutes"], billable + (e["minutes"] if e["billable"] else 0))
    return sums


def page_totals(html: str) -> dict[str, tuple[int, int]]:
    found = re.findall(r'<tbody data-group="([^"]*)">.*?<tr class="subtotal" data-minutes="(\d+)" '
                       r'data-billable-minutes="(\d+)"', html, re.S)
    return {k: (int(m), int(b)) for k, m, b in found}


def csv_totals(text: str) -> dict[str, tuple[int, int]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["group", "date", "user"]
    out = {}
    for row in rows[1:]:
        if row[0].startswith("subtotal "):
            out[row[0].removeprefix("subtotal ")] = (int(row[7]), int(row[9].removeprefix("billable ")))
    return out


@pytest.mark.parametrize("group_by", ["customer", "project", "month", "user"])
async def test_the_same_totals_three_ways(web: Browser, group_by: str) -> None:
    entries = await booked(web)
    want = expected(entries, group_by)
    query = f"group_by={group_by}"
    page = await web.get(ACCOUNTS, f"/timesheets?{query}")
    assert page.status_code == 200, page.text
    api = await web.api.get(ACCOUNTS, f"/api/reports/timesheets?{query}")
    assert api.status_code == 200, api.text
    export = await web.get(ACCOUNTS, f"/timesheets/export.csv?{query}")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    from_api = {g["key"]: (g["totals"]["minutes"], g["totals"]["billable_minutes"]) for g in api.json()["groups"]}
    assert page_totals(page.text) == want
    assert csv_totals(export.text) == want
    assert from_api == want
    summed = await web.api.get(ACCOUNTS, f"/api/reports/summary?{query}")  # the SQL aggregate agrees, too
    assert {s["keys"][0]: (s["minutes"], s["billable_minutes"]) for s in summed.json()} == want
    total = sum(e["minutes"] for e in entries)
    assert api.json()["totals"]["minutes"] == total
    assert f'data-minutes="{total}"' in page.text
    assert export.text.splitlines()[-1].startswith(f"total,,,,,,,{total},")


async def test_filters_and_invoice_agree(web: Browser) -> None:
    entries = await booked(web)
    acme, _ = await customer_ids(web, "acme_logistics", None)
    query = f"customer_id={acme}&billable=yes&from=2026-03-01&to=2026-03-31&group_by=project"
    chosen = [e for e in entries if e["customer"] == "acme_logistics" and e["billable"] and e["month"] == "2026-03"]
    want = expected(chosen, "project")
    api = (await web.api.get(ACCOUNTS, f"/api/reports/timesheets?{query}")).json()
    assert {g["key"]: (g["totals"]["minutes"], g["totals"]["billable_minutes"]) for g in api["groups"]} == want
    assert page_totals((await web.get(ACCOUNTS, f"/timesheets?{query}")).text) == want
    assert csv_totals((await web.get(ACCOUNTS, f"/timesheets/export.csv?{query}")).text) == want
    # The invoice: billable hours at the project's rate, else the customer's.
    amounts: dict[str, Decimal] = {}
    for e in entries:
        if e["billable"]:
            key = f"{e['customer']}/{e['project']}"
            amounts[key] = amounts.get(key, Decimal(0)) + Decimal(e["minutes"]) * e["rate"] / 60
    invoice = (await web.api.get(ACCOUNTS, "/api/reports/invoice")).json()
    got = {f"{c['customer']}/{p['project']}": Decimal(p["amount"]) for c in invoice for p in c["projects"]}
    assert got == {k: v.quantize(Decimal("0.01")) for k, v in amounts.items()}
    page = await web.get(ACCOUNTS, "/timesheets/invoice")
    for customer in invoice:
        assert f'data-amount="{customer["amount"]}"' in page.text


async def test_csv_cells_cannot_start_formulas(web: Browser) -> None:
    number = await new_order(web, "acme_logistics", "web_shop", "=HYPERLINK(\"http://evil\")")
    payloads = ["=1+2", "+SUM(A1)", "-2+3", "@cmd", 'quote " and, comma', "=cmd|' /C calc'!A0"]
    for i, note in enumerate(payloads):
        await book(web, DEV, number, f"2026-03-0{i + 1}T09:00", 10, note=note)
    text = (await web.get(ACCOUNTS, "/timesheets/export.csv")).text
    rows = list(csv.reader(io.StringIO(text)))[1:-1]
    notes = [r[11] for r in rows]
    assert notes == ["'" + n if n[0] in "=+-@\t\r" else n for n in payloads]
    assert all(r[4] == "'=HYPERLINK(\"http://evil\")" for r in rows)
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for cell in r)


async def test_timer_on_the_order_page_into_the_entry_form(web: Browser) -> None:
    first = await new_order(web, "acme_logistics", "web_shop")
    second = await new_order(web, "bloom_florists", "website_care")
    page = await web.get(DEV, f"/orders/{first}")
    assert f'hx-get="/orders/{first}/time"' in page.text
    section = await web.get(DEV, f"/orders/{first}/time", htmx=True)
    assert 'id="timer-start"' in section.text
    refused = await web.post(DEV, f"/orders/{first}/timer/start", csrf=False)  # no CSRF token: nothing starts
    assert refused.status_code == 403 and await web.api.db.fetch_value("SELECT COUNT(*) FROM rc_timer") == 0
    started = await web.post(DEV, f"/orders/{first}/timer/start")
    assert started.status_code == 200 and 'id="timer-stop"' in started.text
    # a minute ago, so that switching books a minute
    await web.api.db.execute("UPDATE rc_timer SET started_at = started_at - INTERVAL '2 minutes'"
                             if web.api.db.dialect == "postgresql" else
                             "UPDATE rc_timer SET started_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', started_at, '-2 minutes')")
    switched = await web.post(DEV, f"/orders/{second}/timer/start")
    assert switched.status_code == 200 and "was stopped: 2 minutes booked" in switched.text
    stopped = await web.post(DEV, "/timer/stop")
    assert stopped.status_code == 204
    target = stopped.headers["hx-redirect"]
    assert target.startswith(f"/timesheets/new?order={second}&")
    form = await web.get(DEV, target)
    assert f'value="{second}"' in form.text and 'name="minutes" inputmode="numeric" value="1"' in form.text
    bad = await web.post(DEV, "/timesheets/new", {"order": second, "started_at": "2026-03-02T09:00", "minutes": "-5"})
    assert bad.status_code == 422 and "between 1 and" in bad.text
    saved = await web.post(DEV, "/timesheets/new", {"order": second, "started_at": "2026-03-02T09:00",
                                                    "minutes": "25", "billable": "yes", "note": "<b>call</b>"})
    assert saved.status_code == 204 and saved.headers["hx-redirect"] == f"/orders/{second}#order-time"
    section = await web.get(DEV, f"/orders/{second}/time", htmx=True)
    assert "&lt;b&gt;call&lt;/b&gt;" in section.text and "<b>call</b>" not in section.text
    listed = await web.get(DEV, "/timesheets")
    assert second in listed.text and "&lt;b&gt;call&lt;/b&gt;" in listed.text


async def test_permissions_and_bad_input(web: Browser) -> None:
    number = await new_order(web, "acme_logistics", "web_shop")
    entry = await book(web, DEV, number, "2026-03-02T09:00", 60)
    api = web.api
    cid, _ = await customer_ids(web, "acme_logistics", None)
    customer = await add_user(api.db, api.runtime.workspace, "buyer", password="correct horse", is_staff=False,
                              customer_id=cid)
    from engine.runtime import create_token
    api.tokens["buyer"] = await create_token(api.db, customer, "tests")
    await web.sign_in("buyer")
    before = await dump(api.db)
    missing = (await api.get(DEV2, "/api/time-entries/999999")).json()
    for login in (DEV2, "buyer"):
        for response in (await api.get(login, f"/api/time-entries/{entry['id']}"),
                         await api.patch(login, f"/api/time-entries/{entry['id']}", {"version": 1, "minutes": 5}),
                         await api.client.delete(f"/api/time-entries/{entry['id']}?version=1", headers=api.auth(login))):
            assert response.status_code == 404, response.text
            assert response.json()["errors"] == missing["errors"]
    assert (await web.get("buyer", f"/orders/{number}/time", htmx=True)).status_code == 404
    assert (await web.get("buyer", "/timesheets")).status_code == 403
    assert (await web.get("buyer", "/timesheets/export.csv")).status_code == 403
    assert (await web.get("buyer", f"/timesheets/{entry['id']}/edit")).status_code == 404
    assert (await web.get("buyer", "/dashboards")).status_code == 404
    assert (await web.post("buyer", f"/orders/{number}/timer/start")).status_code == 404
    assert (await api.get("buyer", "/api/reports/timesheets")).status_code == 403
    assert (await api.get("buyer", "/api/timers/current")).status_code == 404
    assert (await api.post("buyer", "/api/timers/start", {"order": number})).status_code == 404
    cases = [({"minutes": 0}, "minutes"), ({"minutes": -15}, "minutes"), ({"status": "completed"}, "status"),
             ({"started_at": "2026-03-02T09:30"}, "started_at"), ({"percent_complete": 101}, "percent_complete")]
    for change, field in cases:
        body = {"order": number, "started_at": "2026-03-05T09:00", "minutes": 30, **change}
        response = await api.post(DEV, "/api/time-entries/", body)
        assert response.status_code in (400, 422), response.text
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    for query, field in (("sort=name;DROP TABLE rc_user", "sort"), ("sort=(select 1)", "sort"),
                         ("group_by=hour", "group_by"), ("customer.internal_note=x", "customer.internal_note"),
                         ("from=yesterday", "from")):
        response = await api.get(ACCOUNTS, f"/api/reports/timesheets?{query}")
        assert response.status_code == 400, response.text
        assert field in [e["field"] for e in response.json()["errors"]]
        assert (await web.get(ACCOUNTS, f"/timesheets?{query}")).status_code == 400
    assert await dump(api.db) == before
    # The author and an account manager (time.edit_others) may change it.
    assert (await api.patch(DEV, f"/api/time-entries/{entry['id']}", {"version": 1, "minutes": 50})).status_code == 200
    assert (await api.patch(ACCOUNTS, f"/api/time-entries/{entry['id']}",
                            {"version": 2, "billable": False})).json()["billable"] is False
    gone = await api.client.delete(f"/api/time-entries/{entry['id']}?version=3", headers=api.auth(ACCOUNTS))
    assert gone.status_code == 204


async def test_dashboards_are_svg_with_their_numbers(web: Browser) -> None:
    day = (dt.date.today() - dt.timedelta(days=2)).isoformat()
    acme = await new_order(web, "acme_logistics", "web_shop")
    bloom = await new_order(web, "bloom_florists", "website_care")
    await book(web, DEV, acme, f"{day}T09:00", 90)
    await book(web, DEV2, acme, f"{day}T09:00", 45, billable=False)
    await book(web, DEV, bloom, f"{day}T11:00", 30)
    await web.api.db.execute("UPDATE rc_customer SET label = {} WHERE name = {}", "<script>x</script>", "bloom_florists")
    page = await web.get(ACCOUNTS, "/dashboards")
    assert page.status_code == 200, page.text
    svgs = page.text.count('<svg xmlns="http://www.w3.org/2000/svg" role="img"')
    assert svgs >= 4 and page.text.count("<details>") == svgs
    assert '<title id="time-title">Hours per customer</title>' in page.text
    assert "<script>x</script>" not in page.text and "&lt;script&gt;x&lt;/script&gt;" in page.text
    assert '<th scope="row">Acme Logistics Ltd</th><td class="num">2.25</td><td class="num">1.50</td>' in page.text
    assert '<th scope="row">&lt;script&gt;x&lt;/script&gt;</th><td class="num">0.50</td>' in page.text
    # open work: both orders wait in triage
    assert re.search(r'<th scope="row">Client requests › Triage</th><td class="num">2</td>', page.text)
    # customers have no dashboards
    assert (await web.get(DEV, "/dashboards")).status_code == 200


async def test_the_api_is_in_the_openapi_document(web: Browser) -> None:
    schema = (await web.api.client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    for path in ("/api/timers/current", "/api/timers/start", "/api/timers/stop", "/api/time-entries",
                 "/api/time-entries/{entry}", "/api/reports/timesheets", "/api/reports/invoice"):
        assert path in paths, sorted(paths)
    body = paths["/api/time-entries"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("EntryBody")
    names = {p["name"] for p in paths["/api/reports/timesheets"]["get"]["parameters"]}
    assert {"from", "to", "group_by", "sort", "billable", "customer_id"} <= names
