"""Edge cases: odd values must be a ServiceError (never a driver error) and change nothing; races; customers."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from engine.errors import BadQuery, Conflict, Invalid, ServiceError
from engine.runtime.views import list_orders
from tests.runtime_helpers import ORDER, Env, dump, ecommerce, tmp_env  # noqa: F401 - fixtures

FREE = {"defs.yaml": """\
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
    name: note
    label: Note
    numbering: {prefix: N-}
    fields:
      - {name: count, type: number}
      - {name: amount, type: decimal, digits: 10, places: 2}
      - {name: text, type: input}
      - {name: tags, type: multiselect, options: [a, b, c]}
      - {name: moment, type: datetime}
      - {name: day, type: date}
      - {name: who, type: user}
      - {name: ok, type: boolean}
    ---
    kind: Queue
    name: notes
    templates: [note]
    steps:
      - name: write
        group: desk
        actions: [{name: done}]
    """}


async def _refused_cleanly(env: Env, call: Any) -> ServiceError:
    before = await dump(env.db)
    with pytest.raises(ServiceError) as raised:
        await call()
    assert await dump(env.db) == before
    return raised.value


async def test_field_values_of_every_type_round_trip(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(FREE)
    max_ = await env.actor("max")
    fields = {"count": -5, "amount": "12.3", "text": "Grüße ✓", "tags": ["c", "a"],
              "moment": "2026-01-02T03:04:05+02:00", "day": "2026-02-28", "who": 2, "ok": True}
    view = await env.rt.create(max_, "note", {"fields": fields})
    assert view["fields"] == {"count": -5, "amount": "12.30", "text": "Grüße ✓", "tags": ["c", "a"],
                              "moment": "2026-01-02T01:04:05+00:00", "day": "2026-02-28", "who": 2, "ok": True}
    again = await env.rt.get(max_, view["number"])
    assert again["fields"] == view["fields"]
    assert (await env.state(view["number"]))["fields"] == view["fields"]


@pytest.mark.parametrize(("fields", "path"), [
    ({"tags": ["a", "a"]}, "fields.tags"),
    ({"tags": ["d"]}, "fields.tags"),
    ({"tags": "a"}, "fields.tags"),
    ({"moment": "2026-01-02T03:04:05"}, "fields.moment"),  # no time zone
    ({"day": "2026-02-30"}, "fields.day"),
    ({"count": 1.5}, "fields.count"),
    ({"amount": "Infinity"}, "fields.amount"),
    ({"amount": "123456789.00"}, "fields.amount"),  # more than digits - places before the point
    ({"who": 0}, "fields.who"),
    ({"text": "x" * 256}, "fields.text"),
])
async def test_bad_values_of_every_type(tmp_env, fields: dict[str, Any], path: str) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(FREE)
    max_ = await env.actor("max")
    error = await _refused_cleanly(env, lambda: env.rt.create(max_, "note", {"fields": fields}))
    assert isinstance(error, Invalid) and [e["field"] for e in error.errors] == [path]


@pytest.mark.parametrize("value", ["NaN", "sNaN"])
async def test_decimal_nan_is_invalid(tmp_env, value: str) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(FREE)
    max_ = await env.actor("max")
    error = await _refused_cleanly(env, lambda: env.rt.create(max_, "note", {"fields": {"amount": value}}))
    assert isinstance(error, Invalid)


@pytest.mark.parametrize("field", ["count", "who"])
async def test_huge_integers_are_invalid(tmp_env, field: str) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(FREE)
    max_ = await env.actor("max")
    error = await _refused_cleanly(env, lambda: env.rt.create(max_, "note", {"fields": {field: 2**70}}))
    assert isinstance(error, Invalid)


async def test_huge_customer_id_is_invalid(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    error = await _refused_cleanly(ecommerce, lambda: ecommerce.rt.create(
        lukas, "customer_order", {"fields": ORDER, "customer_id": 2**70}))
    assert isinstance(error, Invalid) and error.errors[0]["field"] == "customer_id"


async def test_huge_version_is_a_clean_refusal(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    anna = await ecommerce.actor("anna.gruber")
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    for version in (2**40, 2**70, -1):
        error = await _refused_cleanly(ecommerce, lambda version=version: ecommerce.rt.update(
            anna, view["number"], version, {"title": "x"}))
        assert isinstance(error, (Conflict, Invalid)), error


async def test_nul_characters_are_refused_or_kept(ecommerce: Env) -> None:
    """PostgreSQL cannot store NUL in text: the service must refuse it cleanly (or keep it), never fail."""
    lukas = await ecommerce.actor("lukas.maier")
    try:
        view = await ecommerce.rt.create(lukas, "customer_order",
                                         {"fields": {**ORDER, "order_items": "a\x00b"}, "title": "x\x00y"})
    except ServiceError as error:
        assert isinstance(error, Invalid)
        assert await ecommerce.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0
    else:
        assert view["title"] == "x\x00y" and view["fields"]["order_items"] == "a\x00b"


@pytest.mark.parametrize("value", ["garbage", 5, ["x"], {"a": 1}])
async def test_tampered_cursor_is_invalid(ecommerce: Env, value: Any) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    for _ in range(3):
        await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    cursor = base64.urlsafe_b64encode(json.dumps([value, 1]).encode()).decode()
    with pytest.raises(BadQuery) as invalid:
        await list_orders(ecommerce.rt, lukas, filters={}, sort="-created_at", cursor=cursor, limit=1)
    assert invalid.value.errors[0]["field"] == "cursor"


async def test_concurrent_writes_on_one_version_one_wins(ecommerce: Env) -> None:
    rt = ecommerce.rt
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number, version = view["number"], view["version"]
    results = await asyncio.gather(
        rt.update(anna, number, version, {"fields": {"order_total": "1"}}),
        rt.update(anna, number, version, {"fields": {"order_total": "2"}}),
        rt.process(anna, number, version, "confirm_items"),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(conflicts) == 2, results
    assert (await rt.get(anna, number))["version"] == version + 1
    assert len(await rt.events(anna, number)) == 2


async def test_concurrent_creates_get_distinct_numbers(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    views = await asyncio.gather(*(ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
                                   for _ in range(8)))
    numbers = [v["number"] for v in views]
    assert len(set(numbers)) == 8
    assert sorted(numbers) == [f"WO-{i:05d}" for i in range(1, 9)]
    # round robin hands them out evenly over the five sales agents
    owners = [v["owner"] for v in views]
    assert max(owners.count(o) for o in set(owners)) == 2


# -- customers --------------------------------------------------------------------------------

async def test_customer_user_creates_only_for_itself(ecommerce: Env) -> None:
    own = await ecommerce.customer("own")
    other = await ecommerce.customer("other")
    portal = await ecommerce.user("portal.user", is_staff=False, customer_id=own)
    view = await ecommerce.rt.create(portal, "customer_order", {"fields": ORDER})
    assert view["customer_id"] == own
    with pytest.raises(ServiceError):
        await ecommerce.rt.create(portal, "customer_order", {"fields": ORDER, "customer_id": other})


async def test_customer_user_sees_only_its_own(ecommerce: Env) -> None:
    own = await ecommerce.customer("own")
    other = await ecommerce.customer("other")
    lukas = await ecommerce.actor("lukas.maier")
    mine = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER, "customer_id": own})
    theirs = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER, "customer_id": other})
    portal = await ecommerce.user("portal.user", is_staff=False, customer_id=own)
    assert (await ecommerce.rt.get(portal, mine["number"]))["number"] == mine["number"]
    from engine.errors import NotFound
    with pytest.raises(NotFound):
        await ecommerce.rt.get(portal, theirs["number"])
    listed = await list_orders(ecommerce.rt, portal, filters={})
    assert [i["number"] for i in listed["items"]] == [mine["number"]]
    from engine.errors import Forbidden
    with pytest.raises(Forbidden):
        await ecommerce.rt.update(portal, mine["number"], mine["version"], {"title": "mine now"})
    with pytest.raises(Forbidden):
        await ecommerce.rt.process(portal, mine["number"], mine["version"], "confirm_items")


@pytest.mark.parametrize("value", [{"a": 1}])
async def test_tampered_cursor_on_a_text_sort(ecommerce: Env, value: Any) -> None:
    """A cursor value of the wrong type for a text column is a clean error (or simply matches nothing odd)."""
    lukas = await ecommerce.actor("lukas.maier")
    for _ in range(3):
        await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    cursor = base64.urlsafe_b64encode(json.dumps([value, 1]).encode()).decode()
    try:
        await list_orders(ecommerce.rt, lukas, filters={}, sort="number", cursor=cursor, limit=1)
    except ServiceError as error:
        assert isinstance(error, BadQuery)


async def test_sort_by_priority_follows_urgency(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    for priority in ("low", "urgent", "normal", "high"):
        await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER, "priority": priority})
    page = await list_orders(ecommerce.rt, lukas, filters={}, sort="-priority")
    assert [i["priority"] for i in page["items"]] == ["urgent", "high", "normal", "low"]


async def test_concurrent_creates_with_one_idempotency_key(ecommerce: Env) -> None:
    """Two retries of one POST arriving together: one order, both answered with it."""
    lukas = await ecommerce.actor("lukas.maier")
    results = await asyncio.gather(
        *(ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER}, idempotency_key="same") for _ in range(2)),
        return_exceptions=True)
    assert all(isinstance(r, dict) for r in results), results
    assert results[0]["number"] == results[1]["number"]  # type: ignore[index]
    assert await ecommerce.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1


async def test_a_completed_order_refuses_changes(ecommerce: Env) -> None:
    from engine.errors import Refused

    lukas = await ecommerce.actor("lukas.maier")
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    number = view["number"]
    while view["status"] == "open":
        view = await ecommerce.work_step(view["owner"], number, follow_up=False)
    owner = await ecommerce.actor("lukas.maier")
    before = await dump(ecommerce.db)
    for call in (lambda: ecommerce.rt.update(owner, number, view["version"], {"title": "again"}),
                 lambda: ecommerce.rt.process(owner, number, view["version"], "confirm_delivery"),
                 lambda: ecommerce.rt.advance(owner, number, view["version"]),
                 lambda: ecommerce.rt.return_order(owner, number, view["version"], "previous"),
                 lambda: ecommerce.rt.cancel(owner, number, view["version"])):
        with pytest.raises(Refused):
            await call()
    assert await dump(ecommerce.db) == before
