"""Views: counts per queue, step and status; lists with filters, sorting and cursor pagination; idempotency."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import BadQuery, Invalid
from engine.runtime.views import counts, list_orders
from tests.runtime_helpers import (  # noqa: F401 - fixtures
    DEDICATED,
    HOSTING,
    ORDER,
    Env,
    dump,
    ecommerce,
    hosting,
)


async def _seed(env: Env) -> dict[str, Any]:
    """Seven e-commerce orders in several steps and statuses."""
    rt = env.rt
    lukas = await env.actor("lukas.maier")
    anna = await env.actor("anna.gruber")
    made = [await rt.create(lukas, "customer_order", {"fields": ORDER, "title": f"Order {i}"}) for i in range(7)]
    numbers = [m["number"] for m in made]
    # two move on to payment_check, one of them further to picking
    for number in numbers[:2]:
        view = await rt.get(anna, number)
        await env.work_step(view["owner"], number)
    view = await rt.get(anna, numbers[0])
    await env.work_step(view["owner"], numbers[0])
    # one cancelled, one high priority
    view = await rt.get(anna, numbers[2])
    await rt.cancel(anna, numbers[2], view["version"])
    view = await rt.get(anna, numbers[3])
    await rt.update(anna, numbers[3], view["version"], {"priority": "high"})
    return {"numbers": numbers}


async def test_counts_per_queue_step_and_status(ecommerce: Env) -> None:
    await _seed(ecommerce)
    result = await counts(ecommerce.rt, await ecommerce.actor("anna.gruber"))
    queue = result["queues"]["call_centre_orders"]
    assert queue["open"] == 6
    assert queue["steps"] == {"order_intake": 4, "payment_check": 1, "picking": 1, "shipping": 0, "closing_call": 0}
    assert result["statuses"] == {"open": 6, "cancelled": 1}


async def test_list_filters(ecommerce: Env) -> None:
    seeded = await _seed(ecommerce)
    numbers = seeded["numbers"]
    anna = await ecommerce.actor("anna.gruber")

    async def listed(**filters: str) -> list[str]:
        page = await list_orders(ecommerce.rt, anna, filters=filters, limit=200)
        return sorted(i["number"] for i in page["items"])

    assert await listed() == sorted(numbers)
    assert await listed(step="payment_check") == [numbers[1]]
    assert await listed(status="cancelled") == [numbers[2]]
    assert await listed(priority="high") == [numbers[3]]
    assert await listed(group="warehouse") == [numbers[0]]
    assert await listed(template="customer_order", queue="call_centre_orders", step="picking") == [numbers[0]]
    mine = await listed(owner="me")
    assert mine
    for number in mine:
        assert (await ecommerce.rt.get(anna, number))["owner"] == "anna.gruber"
    assert await listed(owner="ali.demir") == [numbers[0]]
    assert await listed(owner="nobody.here") == []
    assert await listed(status="open", step="order_intake") == sorted(numbers[3:])
    page = await list_orders(ecommerce.rt, anna, filters={"step": "picking"})
    item = page["items"][0]
    assert item["owner"] == "ali.demir" and item["group"] == "warehouse" and "owner_id" not in item
    assert page["next_cursor"] is None


@pytest.mark.parametrize("sort", ["name;DROP TABLE rc_work_order", "id", "-title", "fields.order_total", ""])
async def test_sort_allow_list(ecommerce: Env, sort: str) -> None:
    await _seed(ecommerce)
    before = await dump(ecommerce.db)
    with pytest.raises(BadQuery) as invalid:
        await list_orders(ecommerce.rt, await ecommerce.actor("anna.gruber"), filters={}, sort=sort)
    assert invalid.value.errors[0]["field"] == "sort"
    assert await dump(ecommerce.db) == before


@pytest.mark.parametrize(("filters", "limit", "cursor", "field"), [
    ({"title; DROP TABLE x": "a"}, 10, None, "title; DROP TABLE x"),
    ({"number": "WO-00001"}, 10, None, "number"),
    ({}, 0, None, "limit"),
    ({}, 201, None, "limit"),
    ({}, 10, "not a cursor", "cursor"),
    ({"customer_id": "abc"}, 10, None, "customer_id"),
])
async def test_bad_list_requests(ecommerce: Env, filters: dict[str, str], limit: int, cursor: str | None,
                                 field: str) -> None:
    with pytest.raises(BadQuery) as invalid:
        await list_orders(ecommerce.rt, await ecommerce.actor("anna.gruber"), filters=filters, limit=limit,
                          cursor=cursor)
    assert invalid.value.errors[0]["field"] == field


async def _all_pages(env: Env, sort: str, limit: int, filters: dict[str, str] | None = None) -> list[list[str]]:
    anna = await env.actor("anna.gruber")
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await list_orders(env.rt, anna, filters=filters or {}, sort=sort, cursor=cursor, limit=limit)
        pages.append([i["number"] for i in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "paging does not end"


@pytest.mark.parametrize("sort", ["-created_at", "created_at", "number", "-number", "priority", "-priority",
                                  "step", "-updated_at", "status"])
async def test_cursor_paging_has_no_duplicates_or_gaps(ecommerce: Env, sort: str) -> None:
    seeded = await _seed(ecommerce)
    pages = await _all_pages(ecommerce, sort, limit=3)
    assert len(pages) >= 3
    flat = [n for page in pages for n in page]
    assert len(flat) == len(set(flat)) == 7
    assert set(flat) == set(seeded["numbers"])
    # the same order as one big page
    whole = await list_orders(ecommerce.rt, await ecommerce.actor("anna.gruber"), filters={}, sort=sort, limit=200)
    assert flat == [i["number"] for i in whole["items"]]


async def test_default_sort_is_newest_first(ecommerce: Env) -> None:
    seeded = await _seed(ecommerce)
    flat = [n for page in await _all_pages(ecommerce, "-created_at", limit=2) for n in page]
    assert flat == list(reversed(seeded["numbers"]))
    flat = [n for page in await _all_pages(ecommerce, "number", limit=2) for n in page]
    assert flat == seeded["numbers"]


@pytest.mark.parametrize("sort", ["requested_at", "-requested_at", "planned_at", "-planned_at"])
async def test_cursor_paging_over_empty_dates(ecommerce: Env, sort: str) -> None:
    """Orders with and without a requested/planned date: every one appears once, whatever the database's NULL order."""
    lukas = await ecommerce.actor("lukas.maier")
    numbers = []
    for i in range(6):
        data: dict[str, Any] = {"fields": ORDER}
        if i % 2:
            data["requested_at"] = f"2026-0{i}-01T10:00:00+00:00"
            data["planned_at"] = f"2026-0{i}-02T10:00:00+00:00"
        numbers.append((await ecommerce.rt.create(lukas, "customer_order", data))["number"])
    flat = [n for page in await _all_pages(ecommerce, sort, limit=2) for n in page]
    assert sorted(flat) == sorted(numbers), flat


async def test_filtered_paging(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    made = [(await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER}))["number"] for _ in range(5)]
    owned = [n for n in made if (await ecommerce.rt.get(lukas, n))["owner"] == "anna.gruber"]
    pages = await _all_pages(ecommerce, "number", limit=1, filters={"owner": "anna.gruber"})
    assert [n for p in pages for n in p] == owned


# -- idempotency ------------------------------------------------------------------------------

async def test_create_twice_with_the_same_key_makes_one_order(hosting: Env) -> None:
    tom = await hosting.actor("tom.berger")
    first = await hosting.rt.create(tom, "hosting_order", {"fields": HOSTING}, idempotency_key="req-1")
    again = await hosting.rt.create(tom, "hosting_order", {"fields": HOSTING}, idempotency_key="req-1")
    assert again["number"] == first["number"]
    assert await hosting.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1
    assert await hosting.db.fetch_value("SELECT COUNT(*) AS n FROM rc_event") == 1
    # another key, or another user with the same key: a new order
    other = await hosting.rt.create(tom, "hosting_order", {"fields": HOSTING}, idempotency_key="req-2")
    lea = await hosting.actor("lea.schmitt")
    third = await hosting.rt.create(lea, "hosting_order", {"fields": HOSTING}, idempotency_key="req-1")
    assert len({first["number"], other["number"], third["number"]}) == 3
    assert await hosting.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 3


async def test_idempotent_retry_after_the_order_moved_returns_it_as_it_is(hosting: Env) -> None:
    tom = await hosting.actor("tom.berger")
    first = await hosting.rt.create(tom, "dedicated_server_order", {"fields": DEDICATED}, idempotency_key="k")
    await hosting.work_step(first["owner"], first["number"])
    again = await hosting.rt.create(tom, "dedicated_server_order", {"fields": DEDICATED}, idempotency_key="k")
    assert again["number"] == first["number"] and again["step"] == "provision_server"
    assert await hosting.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1


async def test_idempotency_key_too_long(hosting: Env) -> None:
    tom = await hosting.actor("tom.berger")
    before = await dump(hosting.db)
    with pytest.raises(Invalid):
        await hosting.rt.create(tom, "hosting_order", {"fields": HOSTING}, idempotency_key="k" * 201)
    assert await dump(hosting.db) == before
