"""Who may do what: edit limit, range, supervisors, cancel and its irreversibility, stale versions."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import pytest

from engine.errors import Conflict, Forbidden, Invalid, NotFound, Refused
from tests.runtime_helpers import (  # noqa: F401 - fixtures
    DEDICATED,
    ORDER,
    Env,
    dump,
    ecommerce,
    hosting,
    tmp_env,
)

# -- edit limit -------------------------------------------------------------------------------

async def test_edit_limit_everyone_lets_others_edit_but_not_move(hosting: Env) -> None:
    rt = hosting.rt
    tom = await hosting.actor("tom.berger")
    view = await rt.create(tom, "dedicated_server_order", {"fields": DEDICATED})
    assert view["owner"] == "jana.kowalski"
    number = view["number"]
    ahmed = await hosting.actor("ahmed.yilmaz")  # provisioning: in range, not owner, not in the step's group
    view = await rt.update(ahmed, number, view["version"], {"fields": {"order_notes": "rack B please"}})
    assert view["fields"]["order_notes"] == "rack B please" and view["version"] == 2
    with pytest.raises(Forbidden):
        await rt.process(ahmed, number, view["version"], "verify_identity")
    with pytest.raises(Forbidden):
        await rt.return_order(ahmed, number, view["version"], "previous")
    # a sales agent who is not the owner may edit too, but not process either
    lea = await hosting.actor("lea.schmitt")
    view = await rt.update(lea, number, view["version"], {"priority": "high"})
    assert view["priority"] == "high"
    with pytest.raises(Forbidden):
        await rt.process(lea, number, view["version"], "verify_identity")
    assert view["owner"] == "jana.kowalski"
    events = await rt.events(tom, number)
    assert [(e["kind"], e["actor"]) for e in events[1:]] == [("updated", "ahmed.yilmaz"), ("updated", "lea.schmitt")]


async def test_edit_limit_owner_keeps_others_out(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    number = view["number"]
    assert view["owner"] == "anna.gruber"
    view = await rt.assign(await ecommerce.actor("anna.gruber"), number, view["version"], "emma.bauer")
    assert view["owner"] == "emma.bauer"
    snapshot = await dump(ecommerce.db)
    for login in ("lukas.maier", "sophie.huber", "julia.steiner", "martin.pichler"):
        # the creator, another sales agent, finance (even its supervisor: not this step's group)
        with pytest.raises(Forbidden):
            await rt.update(await ecommerce.actor(login), number, view["version"], {"fields": {"gift_wrap": True}})
    assert await dump(ecommerce.db) == snapshot
    # others may still read it
    assert (await rt.get(await ecommerce.actor("sophie.huber"), number))["owner"] == "emma.bauer"
    emma = await ecommerce.actor("emma.bauer")
    view = await rt.update(emma, number, view["version"], {"fields": {"gift_wrap": True}})
    assert view["fields"]["gift_wrap"] is True
    # the supervisor of the order's group always may
    view = await rt.update(await ecommerce.actor("anna.gruber"), number, view["version"],
                           {"fields": {"customer_phone": "+43 1 234567"}})
    assert view["fields"]["customer_phone"] == "+43 1 234567"
    # and may move it although another agent owns it
    view = await rt.process(await ecommerce.actor("anna.gruber"), number, view["version"], "confirm_items")
    assert view["actions"][0]["state"] == "processed"


async def test_supervisor_of_the_next_group_takes_over_edits(ecommerce: Env) -> None:
    rt = ecommerce.rt
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    view = await ecommerce.work_step(view["owner"], view["number"])
    assert view["group"] == "finance" and view["owner"] == "julia.steiner"
    martin = await ecommerce.actor("martin.pichler")
    view = await rt.update(martin, view["number"], view["version"], {"fields": {"credit_approved": True}})
    assert view["fields"]["credit_approved"] is True
    with pytest.raises(Forbidden):  # anna supervises sales, not finance
        await rt.update(await ecommerce.actor("anna.gruber"), view["number"], view["version"], {"title": "x"})


# -- range ------------------------------------------------------------------------------------

RANGE = {"defs.yaml": """\
    kind: Group
    name: red
    supervisor: rita
    members: [rita, rob]
    ---
    kind: Group
    name: blue
    supervisor: bea
    members: [bea, bill]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition, order.cancel, order.assign]
    groups: [red, blue]
    ---
    kind: Template
    name: red_job
    label: Red job
    range: [red]
    numbering: {prefix: R-}
    fields: [{name: note, type: input}]
    ---
    kind: Template
    name: blue_job
    label: Blue job
    range: [blue]
    numbering: {prefix: B-}
    fields: [{name: note, type: input}]
    ---
    kind: Queue
    name: red_q
    templates: [red_job]
    steps: [{name: only, group: red, actions: [{name: act}]}]
    ---
    kind: Queue
    name: blue_q
    templates: [blue_job]
    steps: [{name: only, group: blue, actions: [{name: act}]}]
    """}


async def test_outside_the_range_not_found_and_forbidden(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(RANGE)
    rob = await env.actor("rob")
    bill = await env.actor("bill")
    red = await env.rt.create(rob, "red_job", {})
    snapshot = await dump(env.db)
    with pytest.raises(Forbidden):
        await env.rt.create(bill, "red_job", {})
    with pytest.raises(NotFound):
        await env.rt.get(bill, red["number"])
    with pytest.raises(NotFound):
        await env.rt.events(bill, red["number"])
    with pytest.raises(NotFound):
        await env.rt.update(bill, red["number"], red["version"], {"title": "mine"})
    with pytest.raises(NotFound):
        await env.rt.process(bill, red["number"], red["version"], "act")
    with pytest.raises(NotFound):
        await env.rt.cancel(bill, red["number"], red["version"])
    with pytest.raises(NotFound):
        await env.rt.assign(bill, red["number"], red["version"], "bill")
    # not found looks the same as a number that does not exist
    with pytest.raises(NotFound) as missing:
        await env.rt.get(bill, "R-999999")
    with pytest.raises(NotFound) as hidden:
        await env.rt.get(bill, red["number"])
    assert type(missing.value) is type(hidden.value)
    assert await dump(env.db) == snapshot
    # a supervisor of another group is outside the range as well
    with pytest.raises(NotFound):
        await env.rt.get(await env.actor("bea"), red["number"])
    # and the list and counts do not show it
    from engine.runtime.views import counts, list_orders
    assert (await list_orders(env.rt, bill, filters={}))["items"] == []
    assert (await counts(env.rt, bill))["statuses"] == {}


async def test_user_without_groups_can_do_nothing(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(RANGE)
    nobody = await env.user("nobody")
    order = await env.rt.create(await env.actor("rob"), "red_job", {})
    with pytest.raises(Forbidden):
        await env.rt.create(nobody, "red_job", {})
    with pytest.raises(NotFound):
        await env.rt.get(nobody, order["number"])


async def test_assign_only_to_members_of_the_current_group(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(RANGE)
    rob = await env.actor("rob")
    view = await env.rt.create(rob, "red_job", {})
    with pytest.raises(Invalid) as invalid:
        await env.rt.assign(rob, view["number"], view["version"], "bill")
    assert invalid.value.errors[0]["field"] == "owner"
    view = await env.rt.assign(rob, view["number"], view["version"], "rita")
    assert view["owner"] == "rita"
    view = await env.rt.assign(rob, view["number"], view["version"], None)  # order.assign permission
    assert view["owner"] is None


# -- cancel -----------------------------------------------------------------------------------

async def test_cancel_is_irreversible(ecommerce: Env) -> None:
    rt = ecommerce.rt
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number = view["number"]
    view = await rt.process(anna, number, view["version"], "confirm_items")
    view = await rt.cancel(anna, number, view["version"], reason="customer withdrew")
    assert view["status"] == "cancelled" and view["cancelled_at"] is not None
    assert view["next"] == [] and view["returns"] == []
    version = view["version"]
    snapshot = await dump(ecommerce.db)
    attempts = [
        rt.update(anna, number, version, {"fields": {"gift_wrap": True}}),
        rt.process(anna, number, version, "check_stock"),
        rt.process(anna, number, version, "check_stock", skip=True),
        rt.advance(anna, number, version),
        rt.return_order(anna, number, version, "previous"),
        rt.assign(anna, number, version, "emma.bauer"),
        rt.cancel(anna, number, version),
    ]
    for attempt in attempts:
        with pytest.raises(Refused):
            await attempt
    assert await dump(ecommerce.db) == snapshot
    events = await rt.events(anna, number)
    assert events[-1]["kind"] == "cancelled"
    assert events[-1]["after"]["status"] == "cancelled" and events[-1]["before"]["status"] == "open"
    assert events[-1]["source"] == "customer withdrew" and events[-1]["actor"] == "anna.gruber"
    assert (await rt.get(anna, number))["status"] == "cancelled"


async def test_cancel_needs_the_permission_and_owner_or_supervisor(ecommerce: Env) -> None:
    rt = ecommerce.rt
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number = view["number"]
    with pytest.raises(Forbidden):  # sales agent, not the owner (anna) nor supervisor
        await rt.cancel(await ecommerce.actor("lukas.maier"), number, view["version"])
    with pytest.raises(Forbidden):  # finance has no order.cancel
        await rt.cancel(await ecommerce.actor("martin.pichler"), number, view["version"])
    assert (await rt.get(await ecommerce.actor("anna.gruber"), number))["status"] == "open"


# -- stale version ----------------------------------------------------------------------------

async def test_stale_version_is_a_conflict_naming_what_changed(ecommerce: Env) -> None:
    rt = ecommerce.rt
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    number = view["number"]
    old = view["version"]
    view = await rt.update(anna, number, old, {"fields": {"order_total": "120.00"}})
    snapshot = await dump(ecommerce.db)
    with pytest.raises(Conflict) as conflict:
        await rt.update(anna, number, old, {"fields": {"gift_wrap": True}})
    assert conflict.value.changed == ["fields.order_total"]
    assert conflict.value.current_version == view["version"]
    assert conflict.value.errors[0]["field"] == "version"
    assert await dump(ecommerce.db) == snapshot
    middle = view["version"]
    view = await ecommerce.work_step("anna.gruber", number)
    assert view["step"] == "payment_check"
    with pytest.raises(Conflict) as conflict:
        await rt.process(anna, number, middle, "confirm_items")
    changed = conflict.value.changed
    assert "step" in changed and "actions.confirm_items" in changed and "owner_id" in changed
    assert "fields.order_total" not in changed  # changed before ``middle``
    with pytest.raises(Conflict) as conflict:
        await rt.update(anna, number, old, {"title": "x"})
    assert {"fields.order_total", "step"} <= set(conflict.value.changed)


async def test_version_must_be_a_number(ecommerce: Env) -> None:
    anna = await ecommerce.actor("anna.gruber")
    view = await ecommerce.rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    for bad in (None, "1", True, 1.0):
        with pytest.raises(Invalid) as invalid:
            await ecommerce.rt.update(anna, view["number"], bad, {"title": "x"})
        assert invalid.value.errors[0]["field"] == "version"
