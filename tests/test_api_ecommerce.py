"""The e-commerce work order end to end through the JSON API, on SQLite and PostgreSQL.

The API version of tests/test_runtime_ecommerce.py: Sales -> Finance -> Warehouse ->
Logistics -> back to Sales, with a return to the previous group, transfer-retains-agent
both ways, cancel, the owner edit limit, a stale version and the audit trail replayed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.runtime import replay
from engine.runtime.state import load_order
from tests.api_helpers import Api, served
from tests.migration_helpers import dump
from tests.runtime_helpers import ORDER

ECOMMERCE_USERS: dict[str, dict[str, Any]] = {
    login: {"password": "correct horse"} for login in (
        "anna.gruber", "lukas.maier", "sophie.huber", "david.wagner", "emma.bauer",  # sales
        "martin.pichler", "julia.steiner",  # finance
        "stefan.moser", "ali.demir", "karin.hofer", "jan.novak",  # warehouse
        "eva.leitner", "paul.fuchs")  # logistics
}
"""The e-commerce example's staff, by login as its groups.yaml names them."""


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with served("ecommerce-workorders", database_url, ECOMMERCE_USERS) as api:
        yield api


async def create(api: Api, login: str = "lukas.maier", **extra: Any) -> dict[str, Any]:
    response = await api.post(login, "/api/templates/customer_order/orders", {"fields": ORDER, **extra})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def act(api: Api, login: str, order: dict[str, Any], action: str, *, skip: bool = False,
              **extra: Any) -> dict[str, Any]:
    response = await api.post(login, f"/api/orders/{order['number']}/actions/{action}",
                              {"version": order["version"], "skip": skip, **extra})
    assert response.status_code == 200, response.text
    body = dict(response.json())
    assert body["version"] > order["version"]
    return body


async def work_step(api: Api, login: str, order: dict[str, Any], *, skip: tuple[str, ...] = (),
                    **extra: Any) -> dict[str, Any]:
    """``login`` processes (or skips) every pending action of the current step through the API."""
    step = order["step"]
    for name in [a["name"] for a in order["actions"] if a["state"] == "pending"]:
        order = await act(api, login, order, name, skip=name in skip, **extra)
        if order["step"] != step or order["status"] != "open":
            break
    return order


async def test_full_flow_through_the_api_with_return_and_replay(api: Api) -> None:
    created = await create(api, title="Teapots")
    number = created["number"]
    assert number == "WO-00001"
    assert (created["queue"], created["step"], created["group"], created["status"], created["version"]) == (
        "call_centre_orders", "order_intake", "sales", "open", 1)
    assert created["created_by"] == "lukas.maier"
    # initial_owner: group, round robin in sales -> the first member by login, not the creator
    assert created["owner"] == "anna.gruber"
    assert [a["name"] for a in created["actions"]] == ["confirm_items", "check_stock", "send_confirmation"]

    # confirm_items may not be skipped: refused, nothing changes
    refused = await api.post("anna.gruber", f"/api/orders/{number}/actions/confirm_items",
                             {"version": 1, "skip": True})
    assert refused.status_code == 409 and refused.json()["error"] == "refused"
    assert (await api.order("lukas.maier", number))["version"] == 1

    # Sales -> Finance: neither the creator nor the owner is in finance, so the group assigns (round robin)
    view = await work_step(api, "anna.gruber", created)
    assert (view["step"], view["group"], view["owner"]) == ("payment_check", "finance", "julia.steiner")
    assert view["path"] == ["order_intake"]

    # finance sends it back to the previous group: the creator (in sales) gets it, a new round
    back = await api.post("julia.steiner", f"/api/orders/{number}/return", {"version": view["version"], "to": "previous"})
    assert back.status_code == 200, back.text
    view = back.json()
    assert (view["step"], view["group"], view["owner"]) == ("order_intake", "sales", "lukas.maier")
    assert view["path"] == []
    assert all(a["state"] == "pending" for a in view["actions"])

    view = await work_step(api, "lukas.maier", view, skip=("send_confirmation",))
    assert (view["step"], view["owner"]) == ("payment_check", "martin.pichler")  # round robin moved on
    view = await work_step(api, "martin.pichler", view, skip=("confirm_payment",))
    assert (view["step"], view["group"], view["owner"]) == ("picking", "warehouse", "ali.demir")
    view = await work_step(api, "ali.demir", view, skip=("wrap_gifts",))
    assert (view["step"], view["group"], view["owner"]) == ("shipping", "logistics", "eva.leitner")
    view = await work_step(api, "eva.leitner", view)
    # back in sales at closing_call: transfer retains the creator, who owns it again
    assert (view["step"], view["group"], view["owner"]) == ("closing_call", "sales", "lukas.maier")
    assert view["path"] == ["order_intake", "payment_check", "picking", "shipping"]
    view = await work_step(api, "lukas.maier", view, follow_up=False)
    assert view["status"] == "completed" and view["completed_at"] is not None
    assert view["path"] == ["order_intake", "payment_check", "picking", "shipping", "closing_call"]
    assert await api.order("lukas.maier", number) == view

    response = await api.get("lukas.maier", f"/api/orders/{number}/events")
    assert response.status_code == 200, response.text
    events = response.json()
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "created" and kinds[-1] == "completed"
    assert "returned" in kinds and "action_skipped" in kinds and kinds.count("step_entered") == 5
    assert [e["version"] for e in events] == sorted(e["version"] for e in events)

    replayed = replay(events)
    runtime = api.runtime
    order = await load_order(api.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs, number)
    for key in ("step", "status", "owner_id", "fields"):
        assert replayed.get(key) == order.state[key], key
    assert (replayed["step"], replayed["status"]) == (view["step"], view["status"])
    owner_id = await api.db.fetch_value("SELECT id FROM rc_user WHERE login = {}", view["owner"])
    assert replayed["owner_id"] == owner_id
    assert replayed["fields"] == view["fields"]


async def test_cancelled_order_refuses_edits_and_actions(api: Api) -> None:
    await create(api)
    second = await create(api)
    number = second["number"]
    assert second["owner"] == "david.wagner"  # round robin moves on
    cancelled = await api.post("david.wagner", f"/api/orders/{number}/cancel", {"version": 1, "reason": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    version = cancelled.json()["version"]
    before = await dump(api.db)
    for call, url, body in (
        (api.patch, "", {"version": version, "title": "again"}),
        (api.post, "/actions/confirm_items", {"version": version}),
        (api.post, "/actions/check_stock", {"version": version, "skip": True}),
        (api.post, "/cancel", {"version": version}),
    ):
        response = await call("david.wagner", f"/api/orders/{number}{url}", body)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "refused"
    assert await dump(api.db) == before
    assert (await api.order("david.wagner", number))["status"] == "cancelled"


async def test_edit_limit_owner_forbids_other_sales_agents(api: Api) -> None:
    order = await create(api)
    assert order["owner"] == "anna.gruber"
    url = f"/api/orders/{order['number']}"
    before = await dump(api.db)
    for login in ("sophie.huber", "lukas.maier"):  # sales agents, not the owner (lukas is the creator)
        response = await api.patch(login, url, {"version": 1, "title": "mine now", "fields": {"item_count": 3}})
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "forbidden"
    assert await dump(api.db) == before
    owned = await api.patch("anna.gruber", url, {"version": 1, "fields": {"item_count": 3}})
    assert owned.status_code == 200, owned.text
    assert owned.json()["fields"]["item_count"] == 3 and owned.json()["version"] == 2


async def test_stale_version_patch_is_a_conflict(api: Api) -> None:
    order = await create(api)
    url = f"/api/orders/{order['number']}"
    first = await api.patch("anna.gruber", url, {"version": 1, "title": "New", "fields": {"gift_wrap": True}})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    before = await dump(api.db)
    stale = await api.patch("anna.gruber", url, {"version": 1, "fields": {"item_count": 2}})
    assert stale.status_code == 409, stale.text
    body = stale.json()
    assert body["error"] == "conflict" and body["current_version"] == 2
    assert set(body["changed"]) == {"fields.gift_wrap", "title"}
    stale_action = await api.post("anna.gruber", f"{url}/actions/confirm_items", {"version": 1})
    assert stale_action.status_code == 409 and stale_action.json()["error"] == "conflict"
    assert await dump(api.db) == before
