"""Bad input gets a clear error naming the field, and changes nothing (a dump of every table proves it)."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from engine.errors import Conflict, Forbidden, Invalid, NotFound, Refused, ServiceError
from tests.runtime_helpers import DEDICATED, ORDER, Env, dump, ecommerce, hosting  # noqa: F401 - fixtures


async def unchanged(env: Env, call: Callable[[], Awaitable[Any]], error: type[ServiceError]) -> ServiceError:
    """Run ``call``; it must raise exactly ``error`` and leave every table as it was."""
    before = await dump(env.db)
    with pytest.raises(ServiceError) as raised:
        await call()
    assert type(raised.value) is error, (raised.value, raised.value.detail)
    assert await dump(env.db) == before
    return raised.value


def paths(error: ServiceError) -> list[str]:
    return [e["field"] for e in error.errors]


CREATE_CASES = [
    ("unknown template", "no_such_template", {"fields": ORDER}, NotFound, []),
    ("unknown field", "customer_order", {"fields": {**ORDER, "colour": "red"}}, Invalid, ["fields.colour"]),
    ("unknown core key", "customer_order", {"fields": ORDER, "owner": "anna.gruber"}, Invalid, ["owner"]),
    ("number as text", "customer_order", {"fields": {**ORDER, "item_count": "many"}}, Invalid, ["fields.item_count"]),
    ("number out of bounds", "customer_order", {"fields": {**ORDER, "item_count": 100}}, Invalid,
     ["fields.item_count"]),
    ("decimal as text", "customer_order", {"fields": {**ORDER, "order_total": "lots"}}, Invalid,
     ["fields.order_total"]),
    ("decimal places", "customer_order", {"fields": {**ORDER, "order_total": "1.234"}}, Invalid,
     ["fields.order_total"]),
    ("decimal below min", "customer_order", {"fields": {**ORDER, "order_total": "-1"}}, Invalid,
     ["fields.order_total"]),
    ("boolean as list", "customer_order", {"fields": {**ORDER, "gift_wrap": [1]}}, Invalid, ["fields.gift_wrap"]),
    ("bad date", "customer_order", {"fields": {**ORDER, "delivery_date": "31.12.2025"}}, Invalid,
     ["fields.delivery_date"]),
    ("pattern", "customer_order", {"fields": {**ORDER, "customer_ref": "12345"}}, Invalid, ["fields.customer_ref"]),
    ("email", "customer_order", {"fields": {**ORDER, "invoice_email": "not-an-email"}}, Invalid,
     ["fields.invoice_email"]),
    ("fields not an object", "customer_order", {"fields": ["x"]}, Invalid, ["fields"]),
    ("missing required", "customer_order", {"fields": {"customer_ref": "K0048213"}}, Invalid,
     ["fields.shipping_address", "fields.order_items", "fields.order_total", "fields.payment_method"]),
    ("required set to null", "customer_order", {"fields": {**ORDER, "order_total": None}}, Invalid,
     ["fields.order_total"]),
    ("bad priority", "customer_order", {"fields": ORDER, "priority": "asap"}, Invalid, ["priority"]),
    ("bad requested_at", "customer_order", {"fields": ORDER, "requested_at": "tomorrow"}, Invalid, ["requested_at"]),
    ("unknown customer", "customer_order", {"fields": ORDER, "customer_id": 999}, Invalid, ["customer_id"]),
    ("title too long", "customer_order", {"fields": ORDER, "title": "x" * 301}, Invalid, ["title"]),
    ("unknown queue", "customer_order", {"fields": ORDER, "queue": "elsewhere"}, Invalid, ["queue"]),
    ("several field problems at once", "customer_order",
     {"fields": {**ORDER, "item_count": 0, "colour": "red", "order_total": "x"}}, Invalid,
     ["fields.item_count", "fields.colour", "fields.order_total"]),
    ("several core problems at once", "customer_order",
     {"fields": ORDER, "priority": "asap", "title": 5, "planned_at": "soon"}, Invalid,
     ["priority", "title", "planned_at"]),
]


@pytest.mark.parametrize(("case", "template", "data", "error", "fields"), CREATE_CASES, ids=[c[0] for c in CREATE_CASES])
async def test_bad_create_changes_nothing(ecommerce: Env, case: str, template: str, data: dict[str, Any],
                                          error: type[ServiceError], fields: list[str]) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})  # something in the tables
    raised = await unchanged(ecommerce, lambda: ecommerce.rt.create(lukas, template, data), error)
    assert sorted(paths(raised)) == sorted(fields), raised.errors
    assert all(e["message"] for e in raised.errors)


async def test_select_options_unless_can_enter(hosting: Env, ecommerce: Env) -> None:
    tom = await hosting.actor("tom.berger")
    raised = await unchanged(hosting, lambda: hosting.rt.create(
        tom, "dedicated_server_order", {"fields": {**DEDICATED, "server_line": "mainframe"}}), Invalid)
    assert paths(raised) == ["fields.server_line"]
    assert "entry" in raised.errors[0]["message"]  # the options are named
    raised = await unchanged(hosting, lambda: hosting.rt.create(
        tom, "dedicated_server_order", {"fields": {**DEDICATED, "contract_months": "36"}}), Invalid)
    assert paths(raised) == ["fields.contract_months"]
    # can_enter: a value that is not an option is taken as typed
    lukas = await ecommerce.actor("lukas.maier")
    view = await ecommerce.rt.create(lukas, "customer_order",
                                     {"fields": {**ORDER, "payment_method": "voucher", "carrier": "bike courier"}})
    assert view["fields"]["payment_method"] == "voucher" and view["fields"]["carrier"] == "bike courier"


async def test_bad_updates_change_nothing(ecommerce: Env) -> None:
    rt = ecommerce.rt
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number, version = view["number"], view["version"]
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"fields": {"colour": "red"}}, ["fields.colour"]),
        ({"fields": {"order_total": None}}, ["fields.order_total"]),
        ({"fields": {"item_count": "x", "order_total": "1.001"}}, ["fields.item_count", "fields.order_total"]),
        ({"status": "completed"}, ["status"]),
        ({"step": "picking"}, ["step"]),
        ({"owner_id": 1}, ["owner_id"]),
        ({"version": 7}, ["version"]),
        ({"priority": 3}, ["priority"]),
    ]
    for data, fields in cases:
        raised = await unchanged(ecommerce, lambda data=data: rt.update(anna, number, version, data), Invalid)
        assert sorted(paths(raised)) == sorted(fields), (data, raised.errors)
    await unchanged(ecommerce, lambda: rt.update(anna, "WO-99999", version, {"title": "x"}), NotFound)
    await unchanged(ecommerce, lambda: rt.update(anna, number, version + 5, {"title": "x"}), Conflict)


async def test_bad_actions_change_nothing(ecommerce: Env) -> None:
    rt = ecommerce.rt
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number, version = view["number"], view["version"]
    raised = await unchanged(ecommerce, lambda: rt.process(anna, number, version, "dance"), Invalid)
    assert paths(raised) == ["action"] and "confirm_items" in raised.errors[0]["message"]
    # an action of another step
    raised = await unchanged(ecommerce, lambda: rt.process(anna, number, version, "pick_items"), Invalid)
    assert paths(raised) == ["action"]
    await unchanged(ecommerce, lambda: rt.process(anna, number, version, "confirm_items", skip=True), Refused)
    await unchanged(ecommerce, lambda: rt.advance(anna, number, version), Refused)  # actions pending
    await unchanged(ecommerce, lambda: rt.return_order(anna, number, version, "previous"), Refused)
    await unchanged(ecommerce, lambda: rt.assign(anna, number, version, "julia.steiner"), Invalid)
    await unchanged(ecommerce, lambda: rt.process(anna, "WO-99999", version, "confirm_items"), NotFound)
    lukas = await ecommerce.actor("lukas.maier")
    await unchanged(ecommerce, lambda: rt.process(lukas, number, version, "confirm_items"), Forbidden)
    view = await rt.process(anna, number, version, "confirm_items")
    await unchanged(ecommerce, lambda: rt.process(anna, number, view["version"], "confirm_items"), Refused)


async def test_unknown_user_is_not_found(ecommerce: Env) -> None:
    from engine.runtime import load_actor

    with pytest.raises(NotFound):
        await load_actor(ecommerce.db, ecommerce.workspace, login="ghost")


async def test_bad_link_changes_nothing(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    await unchanged(ecommerce, lambda: rt.link(lukas, view["number"], view["number"]), Invalid)
    await unchanged(ecommerce, lambda: rt.link(lukas, view["number"], "WO-99999"), NotFound)


async def test_core_and_field_problems_are_reported_together(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    raised = await unchanged(ecommerce, lambda: ecommerce.rt.create(
        lukas, "customer_order", {"fields": {**ORDER, "item_count": 0, "colour": "red"}, "priority": "asap"}),
        Invalid)
    assert sorted(paths(raised)) == ["fields.colour", "fields.item_count", "priority"]


def test_field_messages_are_in_plain_words() -> None:
    from pathlib import Path

    from engine.errors import Invalid
    from engine.runtime.fields import FieldCodec
    from engine.workspace import open_workspace

    workspace = open_workspace(Path(__file__).resolve().parent.parent / "examples" / "ecommerce-workorders")
    codec = FieldCodec(workspace.templates["customer_order"])
    cases = {"customer_ref": ("X-1", "does not have the form this field asks for (the pattern ^K\\d{6,10}$)"),
             "tracking_code": ("x" * 41, "at most 40 characters"),
             "item_count": (0, "at least 1"), "payment_method": (5, "Expected `str`, got `int`")}
    for name, (value, message) in cases.items():
        try:
            codec.validate({name: value}, partial=True)
        except Invalid as exc:
            assert exc.errors == [{"field": f"fields.{name}", "message": message}]
        else:
            raise AssertionError(f"{name}={value!r} was accepted")


async def test_text_with_the_nul_character_is_refused_alike_on_both_databases(ecommerce: Env) -> None:
    """PostgreSQL cannot store U+0000 and SQLite would: the database layer refuses it for both, as 422."""
    before = await dump(ecommerce.db)
    with pytest.raises(Invalid) as refused:
        await ecommerce.db.execute("UPDATE rc_customer SET label = {} WHERE id = {}", "Acme\x00Ltd", 1)
    assert refused.value.errors == [{"field": "request",
                                     "message": "text may not contain the NUL character (U+0000)"}]
    assert await dump(ecommerce.db) == before
