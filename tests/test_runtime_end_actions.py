"""End actions: nothing, a new work order for the same customer, or the agent decides."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

from typing import Any

import pytest

from engine.runtime import replay
from tests.runtime_helpers import ORDER, Env, ecommerce, tmp_env  # noqa: F401 - fixtures


def _workspace(end_action: str, end_template: str | None = None, follow_required: bool = False) -> dict[str, str]:
    end = f"end_template: {end_template}\n        " if end_template else ""
    required = "required: true" if follow_required else "default: 1"
    return {"defs.yaml": f"""\
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
        name: sale
        label: Sale
        end_action: {end_action}
        {end}numbering: {{prefix: S-}}
        fields:
          - {{name: item, type: input}}
        ---
        kind: Template
        name: aftercare
        label: Aftercare
        numbering: {{prefix: A-}}
        fields:
          - {{name: visits, type: number, {required}}}
        ---
        kind: Queue
        name: sales
        templates: [sale]
        steps:
          - name: sell
            group: desk
            actions: [{{name: deliver}}]
        ---
        kind: Queue
        name: care
        templates: [aftercare]
        steps:
          - name: visit
            group: desk
            actions: [{{name: call}}]
        """}


async def _complete(env: Env, *, follow_up: bool | None = None, customer: int | None = None) -> dict[str, Any]:
    max_ = await env.actor("max")
    data: dict[str, Any] = {"fields": {"item": "bike"}}
    if customer is not None:
        data["customer_id"] = customer
    view = await env.rt.create(max_, "sale", data)
    view = await env.rt.process(max_, view["number"], view["version"], "deliver", follow_up=follow_up)
    assert view["status"] == "completed"
    return view


async def _orders(env: Env, template: str) -> list[dict[str, Any]]:
    return await env.db.fetch("SELECT number, customer_id, created_by, title, step, status FROM rc_work_order "
                              "WHERE template = {} ORDER BY id", template)


async def test_new_work_order_for_the_same_customer(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_workspace("new_work_order", "aftercare"))
    customer = await env.customer("acme")
    done = await _complete(env, customer=customer)
    follow = await _orders(env, "aftercare")
    assert len(follow) == 1
    assert follow[0]["customer_id"] == customer
    assert follow[0]["step"] == "visit" and follow[0]["status"] == "open"
    assert done["number"] in follow[0]["title"]
    max_ = await env.actor("max")
    follow_view = await env.rt.get(max_, follow[0]["number"])
    assert follow_view["fields"]["visits"] == 1
    events = await env.rt.events(max_, follow[0]["number"])
    assert events[0]["kind"] == "created" and isinstance(events[0]["version"], int)


async def test_new_work_order_without_customer(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_workspace("new_work_order", "aftercare"))
    await _complete(env)
    follow = await _orders(env, "aftercare")
    assert len(follow) == 1 and follow[0]["customer_id"] is None


@pytest.mark.parametrize(("follow_up", "expected"), [(True, 1), (False, 0), (None, 0)])
async def test_agent_decides(tmp_env, follow_up: bool | None, expected: int) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_workspace("agent_decides"))
    await _complete(env, follow_up=follow_up)
    # end_template defaults to the template itself
    assert len(await _orders(env, "sale")) == 1 + expected


async def test_nothing_makes_nothing(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_workspace("nothing"))
    await _complete(env, follow_up=True)
    assert len(await _orders(env, "sale")) == 1
    assert len(await _orders(env, "aftercare")) == 0


async def test_agent_decides_through_advance(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env({"defs.yaml": """\
        kind: Group
        name: desk
        supervisor: sue
        members: [sue, max]
        ---
        kind: Role
        name: agent
        permissions: [order.create, order.edit, order.transition]
        groups: [desk]
        ---
        kind: Template
        name: sale
        label: Sale
        end_action: agent_decides
        numbering: {prefix: S-}
        fields: []
        ---
        kind: Queue
        name: sales
        templates: [sale]
        steps:
          - name: sell
            group: desk
            next: [complete, sell_more]
          - name: sell_more
            group: desk
        """})
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "sale", {})
    view = await env.rt.advance(max_, view["number"], view["version"], to="complete", follow_up=True)
    assert view["status"] == "completed"
    assert len(await _orders(env, "sale")) == 2


async def test_follow_up_with_required_fields_is_recorded_as_failed(tmp_env) -> None:  # type: ignore[no-untyped-def]
    """A follow-up whose template has required fields without defaults cannot be made; the order says so."""
    env = await tmp_env(_workspace("new_work_order", "aftercare", follow_required=True))
    done = await _complete(env)
    assert await _orders(env, "aftercare") == []
    events = await env.rt.events(await env.actor("max"), done["number"])
    assert events[-1]["kind"] == "follow_up_failed"
    assert (await env.rt.get(await env.actor("max"), done["number"]))["status"] == "completed"


async def test_replay_after_a_failed_follow_up(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env = await tmp_env(_workspace("new_work_order", "aftercare", follow_required=True))
    done = await _complete(env)
    replayed = replay(await env.rt.events(await env.actor("max"), done["number"]))
    assert replayed["template"] == "sale"


async def test_ecommerce_agent_decides_follow_up_cannot_be_made(ecommerce: Env) -> None:
    """customer_order's follow-up is a customer_order, whose required fields have no defaults."""
    rt = ecommerce.rt
    lukas = await ecommerce.actor("lukas.maier")
    view = await rt.create(lukas, "customer_order", {"fields": ORDER})
    number = view["number"]
    while view["step"] != "closing_call":
        view = await ecommerce.work_step(view["owner"], number)
    view = await ecommerce.work_step(view["owner"], number, follow_up=True)
    assert view["status"] == "completed"
    assert await ecommerce.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 1
    assert (await rt.events(lukas, number))[-1]["kind"] == "follow_up_failed"
