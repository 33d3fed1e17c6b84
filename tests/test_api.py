"""The JSON API end to end on the hosting example, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.api_helpers import HOSTING_USERS, SERVER_FIELDS, SUPERVISORS, Api, served
from tests.migration_helpers import dump

HOSTING = {"domain_name": "example.org", "contact_email": "web@example.org", "monthly_price": "9.90"}


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        yield api


async def create(api: Api, template: str = "hosting_order", fields: dict[str, Any] | None = None,
                 login: str = "jana.kowalski", **extra: Any) -> dict[str, Any]:
    body = {"fields": fields or (SERVER_FIELDS if template == "dedicated_server_order" else HOSTING), **extra}
    response = await api.post(login, f"/api/templates/{template}/orders", body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_and_get(api: Api) -> None:
    order = await create(api, title="Shop website", priority="high")
    assert order["number"] == "VH-000001"
    assert order["fields"]["hosting_plan"] == "starter"  # the default
    assert (order["title"], order["priority"], order["version"], order["step"]) == (
        "Shop website", "high", 1, "order_review")
    assert await api.order("jana.kowalski", "VH-000001") == order


async def test_idempotency_key_makes_one_order(api: Api) -> None:
    url = "/api/templates/hosting_order/orders"
    first = await api.post("jana.kowalski", url, {"fields": HOSTING}, headers={"Idempotency-Key": "abc-1"})
    again = await api.post("jana.kowalski", url, {"fields": HOSTING}, headers={"Idempotency-Key": "abc-1"})
    assert first.status_code == again.status_code == 201
    assert first.json()["number"] == again.json()["number"]
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1


async def test_list_pages_with_a_cursor(api: Api) -> None:
    numbers = {(await create(api))["number"] for _ in range(5)}
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, "sort": "number"}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("jana.kowalski", "/api/orders", params=params)).json()
        seen += [item["number"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(numbers)
    filtered = (await api.get("jana.kowalski", "/api/orders", params={"step": "order_review", "owner": "none"})).json()
    assert filtered["items"] == []
    counts = (await api.get("jana.kowalski", "/api/orders/counts")).json()
    assert counts["queues"]["virtual_hosting"]["steps"]["order_review"] == 5


async def test_bad_sort_and_unknown_filter_are_400_listing_what_is_allowed(api: Api) -> None:
    await create(api)
    for params, field in (({"sort": "name;DROP TABLE x"}, "sort"), ({"sort": "(select 1)"}, "sort"),
                          ({"password_hash": "x"}, "password_hash"), ({"limit": "1000"}, "limit")):
        response = await api.get("jana.kowalski", "/api/orders", params=params)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_query"
        assert [e["field"] for e in response.json()["errors"]] == [field]
    body = (await api.get("jana.kowalski", "/api/orders", params={"sort": "name;DROP TABLE x"})).json()
    assert "created_at" in body["errors"][0]["message"]
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1


async def test_stale_version_is_a_conflict_naming_what_changed(api: Api) -> None:
    order = await create(api)
    url = f"/api/orders/{order['number']}"
    first = await api.patch("jana.kowalski", url, {"version": 1, "fields": {"mailbox_count": 9}, "title": "New"})
    assert first.status_code == 200, first.text
    assert first.json()["version"] == 2
    before = await dump(api.db)
    stale = await api.patch("tom.berger", url, {"version": 1, "fields": {"mailbox_count": 3}})
    assert stale.status_code == 409
    body = stale.json()
    assert body["error"] == "conflict" and body["current_version"] == 2
    assert set(body["changed"]) == {"fields.mailbox_count", "title"}
    assert await dump(api.db) == before


async def test_patch_refuses_workflow_and_audit_keys(api: Api) -> None:
    order = await create(api)
    before = await dump(api.db)
    for key, value in (("status", "completed"), ("created_by", 1), ("step", "invoicing"), ("fields", "x"),
                       ("priority", "yesterday")):
        body = {"version": 1, key: value}
        response = await api.patch("jana.kowalski", f"/api/orders/{order['number']}", body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == key
    wrong = await api.patch("jana.kowalski", f"/api/orders/{order['number']}",
                            {"version": 1, "fields": {"mailbox_count": {"a": 1}, "nope": 1}})
    assert wrong.status_code == 422
    assert {e["field"] for e in wrong.json()["errors"]} == {"fields.mailbox_count", "fields.nope"}
    assert await dump(api.db) == before


async def test_dedicated_server_walks_every_step_to_complete_with_one_skip(api: Api) -> None:
    order = await create(api, "dedicated_server_order")
    number = order["number"]
    skipped = False
    for _ in range(30):
        order = await api.order("jana.kowalski", number)
        if order["status"] == "completed":
            break
        login = SUPERVISORS[order["group"]]
        action = next(a for a in order["actions"] if a["state"] == "pending")
        skip = not skipped and action["skippable"]
        skipped = skipped or skip
        response = await api.post(login, f"/api/orders/{number}/actions/{action['name']}",
                                  {"version": order["version"], "skip": skip, "note": "done"})
        assert response.status_code == 200, response.text
    assert order["status"] == "completed"
    assert order["path"] == ["fraud_check", "provision_server", "configure_network", "invoicing", "handover"]
    kinds = [e["kind"] for e in (await api.get("jana.kowalski", f"/api/orders/{number}/events")).json()]
    assert kinds[0] == "created" and kinds[-1] == "completed" and "action_skipped" in kinds


async def test_advance_to_a_chosen_step_and_return(api: Api) -> None:
    number = (await create(api))["number"]
    done = await api.post("jana.kowalski", f"/api/orders/{number}/actions/check_domain", {"version": 1})
    assert done.status_code == 200 and done.json()["step"] == "order_review"
    version = done.json()["version"]
    which = await api.post("jana.kowalski", f"/api/orders/{number}/advance", {"version": version})
    assert which.status_code == 422 and which.json()["errors"][0]["field"] == "to"
    moved = await api.post("jana.kowalski", f"/api/orders/{number}/advance", {"version": version, "to": "domain_transfer"})
    assert moved.status_code == 200, moved.text
    assert (moved.json()["step"], moved.json()["group"]) == ("domain_transfer", "provisioning")
    nowhere = await api.post("piotr.nowak", f"/api/orders/{number}/return",
                             {"version": moved.json()["version"], "to": "invoicing"})
    assert nowhere.status_code == 409
    back = await api.post("piotr.nowak", f"/api/orders/{number}/return", {"version": moved.json()["version"], "to": "previous"})
    assert back.status_code == 200, back.text
    assert (back.json()["step"], back.json()["group"]) == ("order_review", "sales")


async def test_assign_within_the_group(api: Api) -> None:
    order = await create(api)
    url = f"/api/orders/{order['number']}/assign"
    given = await api.post("jana.kowalski", url, {"version": 1, "owner": "lea.schmitt"})
    assert given.status_code == 200 and given.json()["owner"] == "lea.schmitt"
    outside = await api.post("jana.kowalski", url, {"version": 2, "owner": "piotr.nowak"})
    assert outside.status_code == 422 and outside.json()["errors"][0]["field"] == "owner"
    nobody = await api.post("jana.kowalski", url, {"version": 2, "owner": None})
    assert nobody.status_code == 200 and nobody.json()["owner"] is None


async def test_cancel_is_final(api: Api) -> None:
    number = (await create(api))["number"]
    cancelled = await api.post("jana.kowalski", f"/api/orders/{number}/cancel", {"version": 1, "reason": "fraud"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    before = await dump(api.db)
    for method, url, body in (
        ("patch", "", {"version": 2, "title": "again"}),
        ("post", "/actions/check_domain", {"version": 2}),
        ("post", "/cancel", {"version": 2}),
        ("post", "/assign", {"version": 2, "owner": "tom.berger"}),
    ):
        call = api.patch if method == "patch" else api.post
        response = await call("jana.kowalski", f"/api/orders/{number}{url}", body)
        assert response.status_code == 409, response.text
        assert response.json()["error"] == "refused"
    assert await dump(api.db) == before


async def test_unknown_things_and_bad_fields(api: Api) -> None:
    missing = await api.post("jana.kowalski", "/api/templates/no_such/orders", {"fields": {}})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    bad = await api.post("jana.kowalski", "/api/templates/hosting_order/orders",
                         {"fields": {"domain_name": "not a domain", "hosting_plan": "huge", "colour": "red"},
                          "status": "completed"})
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert fields == {"status", "fields.domain_name", "fields.hosting_plan", "fields.colour",
                      "fields.contact_email", "fields.monthly_price"}
    assert (await api.get("jana.kowalski", "/api/orders/VH-999999")).status_code == 404
    number = (await create(api))["number"]
    action = await api.post("jana.kowalski", f"/api/orders/{number}/actions/fly", {"version": 1})
    assert action.status_code == 422 and action.json()["errors"][0]["field"] == "action"
    assert (await api.get("outsider", f"/api/orders/{number}")).status_code == 404
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1


async def test_malformed_huge_and_unauthenticated_requests(api: Api) -> None:
    url = "/api/templates/hosting_order/orders"
    headers = {**api.auth("jana.kowalski"), "Content-Type": "application/json"}
    broken = await api.client.post(url, content=b'{"fields": {', headers=headers)
    assert broken.status_code == 400 and broken.json()["error"] == "bad_request"
    patch = await api.client.patch("/api/orders/VH-000001", content=b"[1, 2", headers=headers)
    assert patch.status_code == 400 and "Traceback" not in patch.text
    huge = await api.client.post(url, content=b'{"title": "' + b"x" * (2 * 1024 * 1024) + b'"}', headers=headers)
    assert huge.status_code == 413 and huge.json()["error"] == "too_large"
    assert (await api.client.get("/api/orders")).status_code == 401
    assert (await api.client.get("/api/orders?x=/health")).status_code == 401
    assert (await api.client.get("/api/orders", headers={"Authorization": "Bearer rc_wrong"})).status_code == 401
    assert (await api.client.get("/api/orders", headers={"Authorization": "Basic abc"})).status_code == 401
    unknown = await api.client.get("/api/nothing/here")
    assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0


async def test_links_and_events(api: Api) -> None:
    first, second = (await create(api))["number"], (await create(api))["number"]
    linked = await api.post("jana.kowalski", f"/api/orders/{first}/links", {"number": second})
    assert linked.status_code == 200, linked.text
    links = (await api.get("jana.kowalski", f"/api/orders/{second}/links")).json()
    assert [link["number"] for link in links] == [first]
    events = (await api.get("jana.kowalski", f"/api/orders/{first}/events")).json()
    assert [e["kind"] for e in events] == ["created", "linked"]


async def test_definitions_and_customer_search(api: Api) -> None:
    templates = (await api.get("tom.berger", "/api/templates")).json()
    assert {t["name"] for t in templates} == {"hosting_order", "dedicated_server_order"}
    queues = (await api.get("tom.berger", "/api/queues")).json()
    assert queues[0]["steps"][0]["name"] == "fraud_check"
    for name, label, domains in (("acme", "ACME Corp", '["acme.example"]'), ("beta_co", "Beta, 50%", "[]")):
        await api.db.execute("INSERT INTO rc_customer (name, label, email_domains) VALUES ({}, {}, {})",
                             name, label, domains)
    found = (await api.get("tom.berger", "/api/customers", params={"q": "ACME"})).json()
    assert [c["name"] for c in found] == ["acme"] and found[0]["email_domains"] == ["acme.example"]
    by_domain = (await api.get("tom.berger", "/api/customers", params={"q": "acme.example"})).json()
    assert [c["name"] for c in by_domain] == ["acme"]
    percent = (await api.get("tom.berger", "/api/customers", params={"q": "%"})).json()
    assert [c["name"] for c in percent] == ["beta_co"]
    by_id = (await api.get("tom.berger", "/api/customers", params={"q": str(found[0]["id"])})).json()
    assert [c["name"] for c in by_id] == ["acme"]
