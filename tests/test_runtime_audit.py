"""The audit trail: every change an event with actor and version; replaying the events rebuilds the order."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

from typing import Any


from engine.runtime import replay
from tests.runtime_helpers import (
    ORDER,
    Env,
    ecommerce,  # noqa: F401 - fixtures
)


async def _long_flow(env: Env) -> str:
    """An order that is edited in every way, routed forward and back, reassigned, and completed."""
    rt = env.rt
    customer = await env.customer("acme")
    lukas = await env.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER, "requested_at": "2026-03-01T09:00:00+01:00"})
    number = view["number"]
    anna = await env.actor("anna.gruber")
    order_id = await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
    notes = [int(await env.db.fetch_value(
        "INSERT INTO rc_attachment (work_order_id, storage_key, filename, content_type, size, created_at) "
        "VALUES ({}, {}, 'note.pdf', 'application/pdf', 1, CURRENT_TIMESTAMP) RETURNING id", order_id, key))
        for key in ("note-1", "note-2")]
    view = await rt.update(anna, number, view["version"], {
        "title": "  Teapots for ACME  ", "priority": "high", "customer_id": customer,
        "planned_at": "2026-03-02T12:00:00Z",
        "fields": {"order_total": "1234.5", "delivery_date": "2026-03-05", "item_count": "3",
                   "shipped_at": "2026-03-04T08:30:00+01:00", "delivery_note": notes, "express_delivery": True,
                   "carrier": "dhl", "invoice_email": "billing@acme.example"}})
    assert view["fields"]["order_total"] == "1234.50"
    view = await rt.update(anna, number, view["version"], {"fields": {"invoice_email": None, "delivery_note": []}})
    view = await rt.assign(anna, number, view["version"], "emma.bauer")
    view = await env.work_step("emma.bauer", number, skip=["check_stock"])
    julia = await env.actor(view["owner"])
    view = await rt.process(julia, number, view["version"], "check_credit", note="ok up to 5000")
    view = await rt.return_order(julia, number, view["version"], "supervisor")
    view = await rt.return_order(await env.actor("martin.pichler"), number, view["version"], "previous")
    view = await env.work_step(view["owner"], number)
    view = await env.work_step(view["owner"], number)
    view = await rt.update(await env.actor(view["owner"]), number, view["version"], {"requested_at": None})
    view = await env.work_step(view["owner"], number, skip=["wrap_gifts"])
    view = await env.work_step(view["owner"], number, skip=["print_labels"])
    view = await rt.update(await env.actor(view["owner"]), number, view["version"],
                           {"fields": {"tracking_code": "00340434", "payment_received": "2026-03-06"}})
    view = await env.work_step(view["owner"], number, follow_up=False)
    assert view["status"] == "completed"
    return number


async def test_replay_of_a_long_flow_rebuilds_every_key(ecommerce: Env) -> None:
    number = await _long_flow(ecommerce)
    events = await ecommerce.rt.events(await ecommerce.actor("anna.gruber"), number)
    assert len(events) > 20
    for event in events:
        assert event["actor"], event
        assert isinstance(event["version"], int) and event["version"] >= 1, event
        assert event["at"]
    versions = [e["version"] for e in events]
    assert versions == sorted(versions)
    assert versions[-1] == (await ecommerce.rt.get(await ecommerce.actor("anna.gruber"), number))["version"]
    state = await ecommerce.state(number)
    replayed = replay(events)
    for key, value in state.items():
        assert replayed.get(key) == value, key
    assert set(replayed) <= set(state), set(replayed) - set(state)


async def test_replay_equals_the_view(ecommerce: Env) -> None:
    """The same comparison against ``get()``, mapped to the state's keys."""
    number = await _long_flow(ecommerce)
    anna = await ecommerce.actor("anna.gruber")
    view = await ecommerce.rt.get(anna, number)
    replayed = replay(await ecommerce.rt.events(anna, number))
    ids = {int(r["id"]): r["login"] for r in await ecommerce.db.fetch("SELECT id, login FROM rc_user")}
    for key in ("number", "template", "queue", "step", "status", "priority", "title", "customer_id",
                "project_id", "created_at", "requested_at", "planned_at", "completed_at", "cancelled_at", "path",
                "fields"):
        assert replayed.get(key) == view[key], key
    assert ids[replayed["owner_id"]] == view["owner"]
    assert ids[replayed["created_by"]] == view["created_by"]
    assert replayed["group_name"] == view["group"]
    assert replayed["actions"] == {a["name"]: a["state"] for a in view["actions"]}


async def test_replay_at_every_version_matches_the_state_then(ecommerce: Env) -> None:
    """Replaying a prefix of the events gives the order as it was at that version."""
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    number = view["number"]
    snapshots = {view["version"]: await ecommerce.state(number)}
    anna = await ecommerce.actor("anna.gruber")
    for data in ({"fields": {"gift_wrap": True}}, {"priority": "urgent"}, {"fields": {"order_total": "5"}}):
        view = await rt.update(anna, number, view["version"], data)
        snapshots[view["version"]] = await ecommerce.state(number)
    for action in ("confirm_items", "check_stock", "send_confirmation"):
        view = await rt.process(anna, number, view["version"], action)
        snapshots[view["version"]] = await ecommerce.state(number)
    events = await rt.events(lukas, number)
    for version, state in snapshots.items():
        replayed = replay([e for e in events if e["version"] <= version])
        assert {k: replayed.get(k) for k in state} == state, version


async def test_events_carry_before_and_after(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    view = await rt.update(anna, view["number"], view["version"], {"priority": "low", "fields": {"order_total": "7"}})
    event = (await rt.events(lukas, view["number"]))[-1]
    assert event["kind"] == "updated" and event["actor"] == "anna.gruber" and event["version"] == 2
    assert event["before"] == {"priority": "normal", "fields": {"order_total": "99.90"}}
    assert event["after"] == {"priority": "low", "fields": {"order_total": "7.00"}}
    # an update that changes nothing records nothing and keeps the version
    again = await rt.update(anna, view["number"], view["version"], {"priority": "low",
                                                                    "fields": {"order_total": "7.0"}})
    assert again["version"] == view["version"]
    assert len(await rt.events(lukas, view["number"])) == 2


async def test_replay_is_exactly_the_state(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    view = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    assert replay(await ecommerce.rt.events(lukas, view["number"])) == await ecommerce.state(view["number"])


async def test_replay_after_linking(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    first = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    second = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    await ecommerce.rt.link(lukas, first["number"], second["number"])
    state = await ecommerce.state(first["number"])
    replayed = replay(await ecommerce.rt.events(lukas, first["number"]))
    assert {k: replayed.get(k) for k in state} == state
    assert set(replayed) <= set(state), set(replayed) - set(state)


async def test_links_both_ways(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    first = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    second = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    result = await ecommerce.rt.link(lukas, second["number"], first["number"])
    assert [link["number"] for link in result["links"]] == [first["number"]]
    again = await ecommerce.rt.link(lukas, first["number"], second["number"])  # already linked: once
    assert [link["number"] for link in again["links"]] == [second["number"]]
    assert await ecommerce.db.fetch_value("SELECT COUNT(*) AS n FROM rc_link") == 1
    kinds = [e["kind"] for e in await ecommerce.rt.events(lukas, first["number"])]
    assert kinds.count("linked") == 1


def _assert_replays(state: dict[str, Any], replayed: dict[str, Any]) -> None:
    for key, value in state.items():
        assert replayed.get(key) == value, key


async def test_the_state_listeners_see_on_create_is_the_state_loaded_afterwards(ecommerce: Env) -> None:
    rt = ecommerce.rt
    seen: list[dict[str, Any]] = []

    async def listen(change: Any) -> None:
        seen.append(change.order.state)

    rt.after_change.append(listen)
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER, "requested_at": "2026-03-01T09:00:00+01:00"})
    loaded = await rt._load(lukas, view["number"])
    assert seen == [loaded.state]
