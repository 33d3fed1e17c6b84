"""The hosting orders end to end at the engine level: every step to Complete, plugin actions, returns."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import pytest

from engine.errors import Invalid, Refused
from engine.runtime import replay
from tests.runtime_helpers import DEDICATED, HOSTING, ORDER, Env, ecommerce, hosting  # noqa: F401 - fixtures


async def test_dedicated_server_through_every_step(hosting: Env) -> None:
    rt = hosting.rt
    tom = await hosting.actor("tom.berger")
    view = await rt.create(tom, "dedicated_server_order", {"fields": DEDICATED})
    number = view["number"]
    assert number == "DS-100001"  # prefix, digits and start of the numbering
    assert view["owner"] == "jana.kowalski"  # least_open in sales, ties by login
    assert view["fields"]["ram_gb"] == 32 and view["fields"]["setup_fee"] == "0.00"
    seen = [view["step"]]
    skipped = False
    while view["status"] == "open":
        owner = view["owner"]
        assert owner is not None
        skip = []
        if view["step"] == "provision_server":
            skip = ["add_services"]  # the one skipped action
            skipped = True
        view = await hosting.work_step(owner, number, skip=skip)
        if view["status"] == "open":
            seen.append(view["step"])
    assert skipped
    assert seen == ["fraud_check", "provision_server", "configure_network", "invoicing", "handover"]
    assert view["status"] == "completed"
    assert view["path"] == seen
    rows = await hosting.step_actions(number)
    assert len(rows) == 14 and all(r["state"] != "pending" for r in rows)
    assert [r["action"] for r in rows if r["state"] == "skipped"] == ["add_services"]
    bound = {a.name: a.plugin for s in hosting.workspace.queues["dedicated_servers"].steps for a in s.actions}
    for row in rows:
        if bound[row["action"]] and row["state"] == "processed":
            assert row["result"]["plugin"] == bound[row["action"]], row
            # a built-in plugin provides invoice.generate; the others are done by hand
            assert row["result"]["ran"] is (bound[row["action"]] in rt.plugins.actions), row
            assert row["result"]["ok"] is not False or not row["result"]["ran"], row
        elif row["state"] == "skipped":
            assert row["result"] is None or "plugin" not in row["result"]
    events = await rt.events(tom, number)
    assert [e["kind"] for e in events].count("action_skipped") == 1
    assert events[-1]["kind"] == "completed"
    state = await hosting.state(number)
    replayed = replay(events)
    assert {k: replayed.get(k) for k in state} == state


async def test_hosting_order_branches_and_completes(hosting: Env) -> None:
    rt = hosting.rt
    lea = await hosting.actor("lea.schmitt")
    view = await rt.create(lea, "hosting_order", {"fields": HOSTING})
    number = view["number"]
    assert number == "VH-000001"
    owner = await hosting.actor(view["owner"])
    view = await rt.process(owner, number, view["version"], "check_domain")
    assert view["step"] == "order_review" and view["next"] == ["setup_account", "domain_transfer"]
    view = await rt.advance(owner, number, view["version"], to="domain_transfer")
    assert view["step"] == "domain_transfer" and view["group"] == "provisioning"
    view = await hosting.work_step(view["owner"], number)
    assert view["step"] == "setup_account"
    # the plugin result of an action is shown on the order while the step is current
    provisioner = await hosting.actor(view["owner"])
    view = await rt.process(provisioner, number, view["version"], "provision_account")
    result = next(a for a in view["actions"] if a["name"] == "provision_account")["result"]
    assert result["plugin"] == "panel.create_account" and result["ran"] is False
    view = await hosting.work_step(view["owner"], number, skip=["add_services"])
    assert view["step"] == "invoicing" and view["group"] == "billing"
    view = await hosting.work_step(view["owner"], number)
    assert view["status"] == "completed"
    assert view["path"] == ["order_review", "domain_transfer", "setup_account", "invoicing"]
    rows = await hosting.step_actions(number)
    register = next(r for r in rows if r["action"] == "register_domain")
    assert register["state"] == "processed" and register["result"]["plugin"] == "domains.register"


async def test_return_to_supervisor(hosting: Env) -> None:
    rt = hosting.rt
    tom = await hosting.actor("tom.berger")
    view = await rt.create(tom, "dedicated_server_order", {"fields": DEDICATED})
    number = view["number"]
    view = await hosting.work_step(view["owner"], number)
    assert view["step"] == "provision_server"
    agent = await hosting.actor(view["owner"])
    assert agent.login != "piotr.nowak"
    before_step = view["step"]
    view = await rt.return_order(agent, number, view["version"], "supervisor")
    assert view["owner"] == "piotr.nowak"  # provisioning's supervisor decides
    assert view["step"] == before_step and view["group"] == "provisioning"
    # configure_network allows only [previous]
    view = await hosting.work_step("piotr.nowak", number)
    assert view["step"] == "configure_network"
    with pytest.raises(Refused) as refused:
        await rt.return_order(await hosting.actor(view["owner"]), number, view["version"], "supervisor")
    assert "allows no return to supervisor" in refused.value.detail
    assert (await rt.get(tom, number))["version"] == view["version"]


async def test_first_step_allows_no_return(ecommerce: Env) -> None:
    anna = await ecommerce.actor("anna.gruber")
    view = await ecommerce.rt.create(await ecommerce.actor("lukas.maier"), "customer_order", {"fields": ORDER})
    for to in ("previous", "supervisor", "order_intake"):
        with pytest.raises(Refused):
            await ecommerce.rt.return_order(anna, view["number"], view["version"], to)


async def test_return_to_a_named_earlier_step(hosting: Env) -> None:
    rt = hosting.rt
    tom = await hosting.actor("tom.berger")
    view = await rt.create(tom, "dedicated_server_order", {"fields": DEDICATED})
    number = view["number"]
    for _ in range(3):
        view = await hosting.work_step(view["owner"], number)
    assert view["step"] == "invoicing"
    billing = await hosting.actor(view["owner"])
    with pytest.raises(Refused):
        await rt.return_order(billing, number, view["version"], "previous")  # not among its returns
    view = await rt.return_order(billing, number, view["version"], "provision_server")
    assert view["step"] == "provision_server" and view["path"] == ["fraud_check"]
    assert all(a["state"] == "pending" for a in view["actions"])
    rounds = {(r["step"], r["round"]) for r in await hosting.step_actions(number)}
    assert ("provision_server", 2) in rounds
    # the returned-to step is worked again, and the order goes on from there
    view = await hosting.work_step(view["owner"], number)
    assert view["step"] == "configure_network"
    assert view["path"] == ["fraud_check", "provision_server"]
    events = await rt.events(tom, number)
    assert {k: replay(events).get(k) for k in await hosting.state(number)} == await hosting.state(number)


async def test_unknown_return_target_is_refused(hosting: Env) -> None:
    tom = await hosting.actor("tom.berger")
    view = await hosting.rt.create(tom, "dedicated_server_order", {"fields": DEDICATED})
    view = await hosting.work_step(view["owner"], view["number"])
    with pytest.raises((Refused, Invalid)):
        await hosting.rt.return_order(await hosting.actor(view["owner"]), view["number"], view["version"],
                                      "nowhere")
