"""The e-commerce work order end to end at the engine level (SQLite and PostgreSQL).

Sales -> Finance -> Warehouse -> Logistics -> back to Sales, with a return to the
previous group, transfer-retains-agent both ways, process vs skip, auto-advance.
"""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import pytest

from engine.errors import Forbidden, Refused
from engine.runtime import replay
from tests.runtime_helpers import ORDER, Env, ecommerce, tmp_env  # noqa: F401 - fixtures

SALES = ["anna.gruber", "david.wagner", "emma.bauer", "lukas.maier", "sophie.huber"]  # sorted logins


async def test_sales_agent_creates_into_the_first_step(ecommerce: Env) -> None:
    lukas = await ecommerce.actor("lukas.maier")
    order = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    assert order["number"] == "WO-00001"
    assert order["queue"] == "call_centre_orders" and order["step"] == "order_intake"
    assert order["status"] == "open" and order["group"] == "sales" and order["version"] == 1
    assert order["created_by"] == "lukas.maier"
    # initial_owner: group, assignment: round_robin -> the first sales member in turn
    assert order["owner"] == SALES[0]
    assert [a["name"] for a in order["actions"]] == ["confirm_items", "check_stock", "send_confirmation"]
    assert all(a["state"] == "pending" for a in order["actions"])
    assert order["fields"]["order_total"] == "99.90"
    assert order["fields"]["item_count"] == 1  # default
    assert order["fields"]["gift_wrap"] is False
    second = await ecommerce.rt.create(lukas, "customer_order", {"fields": ORDER})
    assert second["number"] == "WO-00002"
    assert second["owner"] == SALES[1]  # round robin moves on


async def test_full_flow_with_return_and_creator_back_at_closing(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    created = await rt.create(lukas, "customer_order", {"fields": ORDER, "title": "Teapots"})
    number = created["number"]
    owner = created["owner"]
    assert owner == "anna.gruber"  # round robin; not the creator

    view = await ecommerce.work_step(owner, number)
    # transfer retains agent: creator lukas not in finance, owner anna not in finance -> round robin in finance
    assert view["step"] == "payment_check" and view["group"] == "finance"
    assert view["owner"] == "julia.steiner"
    assert view["path"] == ["order_intake"]

    # finance sends it back to the previous group
    julia = await ecommerce.actor("julia.steiner")
    view = await rt.return_order(julia, number, view["version"], "previous")
    assert view["step"] == "order_intake" and view["group"] == "sales" and view["path"] == []
    # the creator is in sales: he gets it (creator first)
    assert view["owner"] == "lukas.maier"
    assert all(a["state"] == "pending" for a in view["actions"])  # a new round

    view = await ecommerce.work_step("lukas.maier", number, skip=["send_confirmation"])
    assert view["step"] == "payment_check"
    assert view["owner"] == "martin.pichler"  # round robin in finance moved on
    view = await ecommerce.work_step("martin.pichler", number, skip=["confirm_payment"])
    assert view["step"] == "picking" and view["group"] == "warehouse"
    warehouse_owner = view["owner"]
    assert warehouse_owner == "ali.demir"
    view = await ecommerce.work_step(warehouse_owner, number, skip=["wrap_gifts"])
    assert view["step"] == "shipping" and view["owner"] == "eva.leitner"
    view = await ecommerce.work_step("eva.leitner", number)
    # (a) back to sales at closing_call: the creator owns it again
    assert view["step"] == "closing_call" and view["group"] == "sales"
    assert view["owner"] == "lukas.maier"
    assert view["path"] == ["order_intake", "payment_check", "picking", "shipping"]
    view = await ecommerce.work_step("lukas.maier", number, follow_up=False)
    assert view["status"] == "completed" and view["completed_at"] is not None
    assert view["next"] == [] and view["returns"] == []
    assert view["path"] == ["order_intake", "payment_check", "picking", "shipping", "closing_call"]

    events = await rt.events(lukas, number)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "created" and kinds[-1] == "completed"
    assert "returned" in kinds and kinds.count("step_entered") == 5
    assert all(e["actor"] for e in events) and all(isinstance(e["version"], int) for e in events)
    state = await ecommerce.state(number)
    replayed = replay(events)
    for key, value in state.items():
        assert replayed.get(key) == value, key


async def test_process_versus_skip_and_twice(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    anna = await ecommerce.actor("anna.gruber")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    number = view["number"]
    with pytest.raises(Refused) as refused:
        await rt.process(anna, number, view["version"], "confirm_items", skip=True)
    assert "may not be skipped" in refused.value.detail
    assert (await rt.get(anna, number))["version"] == view["version"]
    view = await rt.process(anna, number, view["version"], "confirm_items", note="read back")
    actions = {a["name"]: a for a in view["actions"]}
    assert actions["confirm_items"]["state"] == "processed"
    assert actions["confirm_items"]["result"] == {"note": "read back"}
    assert view["version"] == 2
    with pytest.raises(Refused, match="already processed"):
        await rt.process(anna, number, view["version"], "confirm_items")
    view = await rt.process(anna, number, view["version"], "check_stock", skip=True)
    with pytest.raises(Refused, match="already skipped"):
        await rt.process(anna, number, view["version"], "check_stock")
    assert view["step"] == "order_intake"  # one action still pending
    view = await rt.process(anna, number, view["version"], "send_confirmation")
    assert view["step"] == "payment_check"  # all done: auto-advance


async def test_only_the_owner_or_supervisor_moves_the_order(ecommerce: Env) -> None:
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    assert view["owner"] == "anna.gruber"
    # the creator is not the owner: he may not process
    with pytest.raises(Forbidden):
        await rt.process(lukas, view["number"], view["version"], "confirm_items")
    julia = await ecommerce.actor("julia.steiner")  # finance: in range, not in this step's group
    with pytest.raises(Forbidden):
        await rt.process(julia, view["number"], view["version"], "confirm_items")


async def test_every_processed_action_is_recorded_in_step_actions(ecommerce: Env) -> None:
    """Each action processed or skipped is stored with its state, processor and result (also the step's last)."""
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    await ecommerce.work_step("anna.gruber", view["number"])
    rows = [r for r in await ecommerce.step_actions(view["number"]) if r["step"] == "order_intake"]
    assert [r["action"] for r in rows] == ["confirm_items", "check_stock", "send_confirmation"]
    anna = await ecommerce.user_id("anna.gruber")
    assert [(r["state"], r["processed_by"]) for r in rows[:2]] == [("processed", anna)] * 2
    # the last action of the step, whose processing moved the order on
    assert (rows[2]["state"], rows[2]["processed_by"]) == ("processed", anna), rows[2]
    assert rows[2]["result"]["plugin"] == "erp.order_confirmation"


# -- transfer-retains-agent in a small workspace -------------------------------------------

def _two_groups(retains: bool, assignment: str = "round_robin", initial: str = "creator") -> dict[str, str]:
    return {"defs.yaml": f"""\
        kind: Group
        name: front
        supervisor: fiona
        members: [fiona, amy, bob]
        ---
        kind: Group
        name: back
        supervisor: victor
        members: [victor, bob, carl, dora]
        ---
        kind: Role
        name: agent
        permissions: [order.create, order.edit, order.transition, order.cancel]
        groups: [front, back]
        ---
        kind: Template
        name: job
        label: Job
        range: [front, back]
        initial_owner: {initial}
        assignment: {assignment}
        transfer_retains_agent: {str(retains).lower()}
        numbering: {{prefix: J-, digits: 3}}
        fields:
          - {{name: note, type: input}}
        ---
        kind: Queue
        name: jobs
        templates: [job]
        steps:
          - name: intake
            group: front
            actions: [{{name: check}}]
          - name: work
            group: back
            actions: [{{name: do}}]
          - name: wrap
            group: front
            actions: [{{name: close}}]
        """}


async def test_current_agent_in_next_group_keeps_the_order(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_two_groups(True))
    amy = await env.actor("amy")
    view = await env.rt.create(amy, "job", {})
    assert view["owner"] == "amy"  # initial_owner: creator
    bob = await env.actor("bob")
    view = await env.rt.assign(amy, view["number"], view["version"], "bob")
    assert view["owner"] == "bob"
    view = await env.work_step("bob", view["number"])
    # the creator amy is not in back; bob, the current agent, is: he keeps it
    assert view["step"] == "work" and view["owner"] == "bob"
    view = await env.work_step("bob", view["number"])
    # back in front: creator first
    assert view["step"] == "wrap" and view["owner"] == "amy"
    assert bob.login == "bob"


async def test_creator_beats_current_agent(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_two_groups(True))
    bob = await env.actor("bob")
    view = await env.rt.create(bob, "job", {})
    view = await env.rt.assign(bob, view["number"], view["version"], "amy")
    view = await env.work_step("amy", view["number"])
    assert view["owner"] == "bob"  # creator bob is in back; amy is not


@pytest.mark.parametrize(("assignment", "expected"), [
    ("round_robin", ["bob", "carl"]),
    ("least_open", ["carl", "dora"]),  # bob owns the order being moved: one open order already
    ("supervisor", [None, None]),
])
async def test_without_retain_the_group_assigns(tmp_env, assignment: str,  # type: ignore[no-untyped-def]
                                                 expected: list[str | None]) -> None:
    env = await tmp_env(_two_groups(False, assignment))
    amy = await env.actor("amy")
    owners = []
    for _ in range(2):
        view = await env.rt.create(amy, "job", {})
        view = await env.rt.assign(amy, view["number"], view["version"], "bob")
        view = await env.work_step("bob", view["number"])
        assert view["step"] == "work"
        owners.append(view["owner"])
    # bob is a member of back but transfer does not retain him: the group chooses
    assert owners == expected


async def test_unassigned_order_is_taken_by_the_member_who_acts(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_two_groups(False, "supervisor"))
    amy = await env.actor("amy")
    view = await env.rt.create(amy, "job", {})
    view = await env.work_step("amy", view["number"])
    assert view["step"] == "work" and view["owner"] is None
    fiona = await env.actor("fiona")  # front's supervisor: not of back
    with pytest.raises(Forbidden):
        await env.rt.process(fiona, view["number"], view["version"], "do")
    view = await env.rt.process(await env.actor("dora"), view["number"], view["version"], "do")
    assert view["step"] == "wrap"
    events = await env.rt.events(amy, view["number"])
    taken = [e for e in events if e["kind"] == "assigned" and e["source"] == "taken"]
    assert taken and taken[-1]["actor"] == "dora"


async def test_initial_owner_group_round_robin_and_least_open(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_two_groups(True, "least_open", initial="group"))
    amy = await env.actor("amy")
    owners = [(await env.rt.create(amy, "job", {}))["owner"] for _ in range(4)]
    # front: amy, bob, fiona; least open work, ties by login
    assert owners == ["amy", "bob", "fiona", "amy"]


async def test_advance_with_several_next_steps_requires_to(tmp_env) -> None:  # type: ignore[no-untyped-def]
    from engine.errors import Invalid

    env = await tmp_env({"defs.yaml": """\
        kind: Group
        name: team
        supervisor: sam
        members: [sam, tia]
        ---
        kind: Role
        name: agent
        permissions: [order.create, order.edit, order.transition]
        groups: [team]
        ---
        kind: Template
        name: ticket
        label: Ticket
        numbering: {prefix: T-}
        fields: []
        ---
        kind: Queue
        name: q
        templates: [ticket]
        steps:
          - name: triage
            group: team
            actions: [{name: look}]
            next: [fix, reject]
          - name: fix
            group: team
            actions: [{name: repair}]
            next: complete
          - name: reject
            group: team
            next: complete
        """})
    tia = await env.actor("tia")
    view = await env.rt.create(tia, "ticket", {})
    number = view["number"]
    with pytest.raises(Refused, match="pending"):
        await env.rt.advance(tia, number, view["version"], "fix")
    view = await env.rt.process(tia, number, view["version"], "look")
    assert view["step"] == "triage"  # several next steps: no auto-advance
    assert view["next"] == ["fix", "reject"]
    with pytest.raises(Invalid) as invalid:
        await env.rt.advance(tia, number, view["version"])
    assert invalid.value.errors[0]["field"] == "to"
    with pytest.raises(Refused):
        await env.rt.advance(tia, number, view["version"], "nowhere")
    view = await env.rt.advance(tia, number, view["version"], "reject")
    assert view["step"] == "reject" and view["actions"] == []
    # a step without actions is advanced by hand, to complete
    view = await env.rt.advance(tia, number, view["version"])
    assert view["status"] == "completed"
