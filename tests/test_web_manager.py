"""The Order Manager, my work orders and the supervisors' assignment view, as HTML."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from api_helpers import HOSTING_USERS
from runtime_helpers import HOSTING
from web_helpers import Browser, browsing

ROW = re.compile(r'<td><a href="/orders/([^"]+)">')


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as browser:
        await browser.sign_in("jana.kowalski")
        yield browser


async def create(web: Browser, title: str = "", priority: str = "normal", login: str = "jana.kowalski") -> dict:
    response = await web.api.post(login, "/api/templates/hosting_order/orders",
                                  {"fields": HOSTING, "title": title, "priority": priority})
    assert response.status_code == 201, response.text
    return dict(response.json())


def numbers(html: str) -> list[str]:
    return ROW.findall(html)


async def test_side_panel_counts_open_work_per_queue_step_and_status(web: Browser) -> None:
    first = await create(web, "one")
    await create(web, "two")
    cancelled = await create(web, "three")
    await web.api.post("jana.kowalski", f"/api/orders/{cancelled['number']}/cancel", {"version": 1})
    page = await web.get("jana.kowalski", "/manager")
    assert page.status_code == 200
    panel = page.text.split('id="list"')[0]
    step = first["step"]
    assert re.search(rf'data-step="{step}"[^>]*>[^<]+</a>\s*<span class="count">2</span>', panel), panel
    # Open work is counted at once; the totals of final statuses follow in their own request.
    assert re.search(r'status=open"[^>]*>Open</a>\s*<span class="count">2</span>', panel)
    assert re.search(r'status=cancelled"[^>]*>Cancelled</a>\s*<span class="count">…</span>', panel)
    assert 'hx-get="/manager/statuses?status=open" hx-trigger="load"' in panel
    totals = await web.get("jana.kowalski", "/manager/statuses?status=open", htmx=True)
    assert re.search(r'status=cancelled"[^>]*>Cancelled</a>\s*<span class="count">1</span>', totals.text)
    assert re.search(r'status=completed"[^>]*>Completed</a>\s*<span class="count">0</span>', totals.text)
    assert 'hx-trigger="load"' not in totals.text


async def test_a_step_lists_its_open_orders_and_sorts_and_filters(web: Browser) -> None:
    a = await create(web, "alpha", "low")
    b = await create(web, "beta", "urgent")
    gone = await create(web, "gamma")
    await web.api.post("jana.kowalski", f"/api/orders/{gone['number']}/cancel", {"version": 1})
    url = f"/manager?queue=virtual_hosting&step={a['step']}"
    fragment = await web.get("jana.kowalski", url, htmx=True, **{"hx-target": "list"})
    assert "<aside" not in fragment.text and "<html" not in fragment.text  # only the list
    assert numbers(fragment.text) == [b["number"], a["number"]]  # open only, newest first
    ascending = await web.get("jana.kowalski", url + "&sort=number", htmx=True, **{"hx-target": "list"})
    assert numbers(ascending.text) == [a["number"], b["number"]]
    by_priority = await web.get("jana.kowalski", url + "&sort=-priority")
    assert numbers(by_priority.text) == [b["number"], a["number"]]
    urgent = await web.get("jana.kowalski", url + "&priority=urgent")
    assert numbers(urgent.text) == [b["number"]]
    everything = await web.get("jana.kowalski", url + "&status=any")
    assert set(numbers(everything.text)) == {a["number"], b["number"], gone["number"]}
    assert "status=any" in everything.text.split('<tbody id="rows">')[0]  # sort links keep the filter


async def test_long_lists_page_on_with_show_more(web: Browser) -> None:
    made = [await create(web, f"order {i}") for i in range(53)]
    page = await web.get("jana.kowalski", "/manager?queue=virtual_hosting&sort=number")
    first = numbers(page.text)
    assert first == [o["number"] for o in made[:50]]
    more = re.search(r'hx-get="(/manager/rows\?[^"]+)"', page.text)
    assert more, "no Show more button"
    rest = await web.get("jana.kowalski", more.group(1).replace("&amp;", "&"), htmx=True)
    assert numbers(rest.text) == [o["number"] for o in made[50:]]
    assert "Show more" not in rest.text


async def test_user_text_is_escaped_in_lists(web: Browser) -> None:
    await create(web, "<script>alert(1)</script><img src=x onerror=alert(2)>")
    page = await web.get("jana.kowalski", "/manager")
    assert "<script>alert(1)" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;" in page.text


async def test_bad_list_parameters_are_refused_readably(web: Browser) -> None:
    page = await web.get("jana.kowalski", "/manager?sort=password_hash")
    assert page.status_code == 400 and "sort by one of" in page.text
    unknown = await web.get("jana.kowalski", "/manager?title=x", htmx=True)
    assert unknown.status_code == 400 and unknown.headers["hx-retarget"] == "#toast"
    assert "filter by one of" in unknown.text


async def test_my_work_orders_are_the_signed_in_owners(web: Browser) -> None:
    await web.sign_in("tom.berger")
    orders = [await create(web, f"mine? {i}") for i in range(4)]  # round robin over sales
    mine = {o["number"] for o in orders if o["owner"] == "tom.berger"}
    assert mine and len(mine) < 4
    page = await web.get("tom.berger", "/my")
    assert set(numbers(page.text)) == mine
    assert "My work orders" in page.text


async def test_supervisor_assigns_unassigned_work_by_hand_and_by_rule(web: Browser) -> None:
    first = await create(web, "first")
    second = await create(web, "second")
    for order in (first, second):  # nobody's: back to the group
        done = await web.api.post("jana.kowalski", f"/api/orders/{order['number']}/assign",
                                  {"version": order["version"], "owner": None})
        assert done.status_code == 200, done.text
    view = await web.get("jana.kowalski", "/assign")
    assert view.status_code == 200
    assert set(numbers(view.text)) == {first["number"], second["number"]}
    assert '<option value="lea.schmitt">' in view.text  # the group's members to choose from
    by_hand = await web.post("jana.kowalski", f"/assign/{first['number']}",
                             {"version": str(first["version"] + 1), "owner": "lea.schmitt"})
    assert by_hand.status_code == 200 and "assigned to lea.schmitt" in by_hand.text
    by_rule = await web.post("jana.kowalski", f"/assign/{second['number']}",
                             {"version": str(second["version"] + 1), "owner": "lea.schmitt", "rule": "least_open"})
    assert by_rule.status_code == 200
    owner = (await web.api.order("jana.kowalski", second["number"]))["owner"]
    assert owner in ("jana.kowalski", "tom.berger")  # lea has one open order now; the rule picks another
    assert numbers((await web.get("jana.kowalski", "/assign")).text) == []
    stale = await web.post("jana.kowalski", f"/assign/{first['number']}",
                           {"version": str(first["version"]), "owner": "tom.berger"})
    assert stale.status_code == 409
    outsider = await web.post("jana.kowalski", f"/assign/{first['number']}",
                              {"version": str(first["version"] + 2), "owner": "piotr.nowak"})
    assert outsider.status_code == 422 and "not a member of sales" in outsider.text


async def test_the_assignment_view_is_for_supervisors_and_assigners(web: Browser) -> None:
    await web.sign_in("ben.otto")  # billing: neither supervisor nor holder of order.assign
    page = await web.get("ben.otto", "/assign")
    assert page.status_code == 403
    assert 'href="/assign"' not in (await web.get("ben.otto", "/manager")).text
    await web.sign_in("tom.berger")  # sales staff hold order.assign: every group
    assert (await web.get("tom.berger", "/assign")).text.count('<section class="card" id="group-') == 3


async def test_api_assignment_by_rule(web: Browser) -> None:
    order = await create(web, "api")
    neither = await web.api.post("jana.kowalski", f"/api/orders/{order['number']}/assign",
                                 {"version": order["version"]})
    assert neither.status_code == 422 and neither.json()["errors"][0]["field"] == "owner"
    done = await web.api.post("jana.kowalski", f"/api/orders/{order['number']}/assign",
                              {"version": order["version"], "rule": "round_robin"})
    assert done.status_code == 200, done.text
    assert done.json()["owner"] in ("jana.kowalski", "tom.berger", "lea.schmitt")
    bad = await web.api.post("jana.kowalski", f"/api/orders/{order['number']}/assign",
                             {"version": done.json()["version"], "rule": "random"})
    assert bad.status_code in (400, 422)
