"""Loading and saving a change. ``load_order``: the order's row, its custom fields and the
actions of its step's latest round in one query (two when the number's prefix does not
tell the template). ``Change.save``: on PostgreSQL
one statement, each part written only if the order's version is still the one read; parts
that touch each other's rows one after the other; on both databases a stale change writes
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.errors import Conflict, NotFound
from engine.runtime.state import Change, load_order, replay, template_by_number
from engine.workspace import open_workspace
from tests.helpers_workspace import write_workspace
from tests.runtime_helpers import Env, tmp_env  # noqa: F401 - fixtures

LINE = {"routecard.yaml": "name: line\n", "defs.yaml": """\
kind: Group
name: desk
members: [agent]
---
kind: Role
name: agent
groups: [desk]
permissions: [order.create, order.edit, order.transition]
---
kind: Template
name: job
numbering: {prefix: "J-"}
fields:
  - {name: summary, type: input, required: true}
  - {name: amount, type: decimal}
---
kind: Template
name: bare
numbering: {prefix: "B-"}
---
kind: Queue
name: line
templates: [job, bare]
steps:
  - name: intake
    group: desk
    actions: [{name: check}]
  - name: build
    group: desk
    actions: [{name: cut}, {name: weld}, {name: paint}]
    returns: [intake]
"""}


def _writes(sent: list[str]) -> list[str]:
    return [q for q in sent if not q.startswith("SELECT") and q not in ("BEGIN", "COMMIT", "ROLLBACK")]


async def _order(env: Env, number: str) -> Any:
    return await load_order(env.db, env.workspace.templates, env.workspace.queues, env.rt.codecs, number)


async def test_an_order_loads_in_one_query_with_its_latest_round(tmp_env: Any, sent: list[str]) -> None:
    """After a return and a second pass through a step, the loaded actions are the second
    round's (all pending, in the step's order), not the first round's processed ones; the
    fields are the stored values. On PostgreSQL that is one query."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "job", {"fields": {"summary": "frame", "amount": "12.50"}})
    number = view["number"]
    view = await env.rt.process(agent, number, view["version"], "check")
    view = await env.rt.process(agent, number, view["version"], "cut")
    view = await env.rt.return_order(agent, number, view["version"], "intake")
    view = await env.rt.process(agent, number, view["version"], "check")
    assert view["step"] == "build"

    sent.clear()
    order = await _order(env, number)
    if env.db.dialect == "postgresql":
        assert len(sent) == 1 and sent[0].startswith("SELECT"), sent
    assert order.round == 2
    assert list(order.action_rows) == ["cut", "weld", "paint"]
    assert {name: row["state"] for name, row in order.action_rows.items()} == dict.fromkeys(
        ["cut", "weld", "paint"], "pending")
    assert order.state["fields"] == {"summary": "frame", "amount": "12.50"}
    assert order.version == view["version"]


async def test_an_order_without_custom_fields_loads(tmp_env: Any, sent: list[str]) -> None:
    """An order of a template without custom fields (no field table to join) loads with no
    fields and its step's actions, in one query."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "bare", {})
    sent.clear()
    order = await _order(env, view["number"])
    if env.db.dialect == "postgresql":
        assert len(sent) == 1, sent
    assert order.state["fields"] == {} and order.values == {}
    assert list(order.action_rows) == ["check"] and order.round == 1


@pytest.mark.parametrize("number", ["B-900", "OLD-7"])
async def test_a_number_without_its_templates_prefix_loads_its_fields(tmp_env: Any, sent: list[str],
                                                                      number: str) -> None:
    """An order whose number does not begin with its template's prefix (one from before the
    prefix changed, or brought in from another system): first read as another template's
    (``B-``, which has no fields) or as none's, then once more with its own fields."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "job", {"fields": {"summary": "frame", "amount": "12.50"}})
    await env.db.execute("UPDATE rc_work_order SET number = {} WHERE number = {}", number, view["number"])
    sent.clear()
    order = await _order(env, number)
    if env.db.dialect == "postgresql":
        assert len(sent) == 2, sent
    assert order.template.name == "job" and order.number == number
    assert order.state["fields"] == {"summary": "frame", "amount": "12.50"}
    assert list(order.action_rows) == ["check"]
    view = await env.rt.process(agent, number, view["version"], "check")
    assert view["step"] == "build" and view["fields"]["summary"] == "frame"


async def test_an_unknown_number_is_not_found(tmp_env: Any) -> None:
    env = await tmp_env(LINE)
    for number in ("J-404", "X-1"):
        with pytest.raises(NotFound, match=f"no work order {number}"):
            await _order(env, number)


async def test_a_change_is_one_statement_on_postgresql(tmp_env: Any, sent: list[str]) -> None:
    """Processing the last action of a step (the action, the order's row, the next step's
    actions, two events) writes in one statement on PostgreSQL; what it wrote is what the
    statements one after the other wrote: the actions in order, the events in order, a
    replay equal to the state."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "job", {"fields": {"summary": "frame"}})
    number = view["number"]
    sent.clear()
    view = await env.rt.process(agent, number, view["version"], "check", note="fine")
    if env.db.dialect == "postgresql":
        assert len(_writes(sent)) == 1, sent
        assert _writes(sent)[0].startswith("WITH w AS (UPDATE rc_work_order")
    assert view["step"] == "build" and view["version"] == 2
    assert [a["name"] for a in view["actions"]] == ["cut", "weld", "paint"]
    order = await _order(env, number)
    assert list(order.action_rows) == ["cut", "weld", "paint"]
    ids = await env.db.fetch(
        "SELECT action FROM rc_step_action WHERE work_order_id = {} AND step = 'build' ORDER BY id", order.id)
    assert [r["action"] for r in ids] == ["cut", "weld", "paint"]
    events = await env.rt.events(agent, number)
    assert [e["kind"] for e in events] == ["created", "action_processed", "step_entered"]
    assert [e["version"] for e in events] == [1] + [2] * (len(events) - 1)
    state = order.state
    replayed = replay(events)
    assert {k: replayed.get(k) for k in state} == state
    processed = await env.db.fetch(
        "SELECT state, processed_by, result FROM rc_step_action WHERE work_order_id = {} AND action = 'check'",
        order.id)
    assert processed[0]["state"] == "processed" and processed[0]["processed_by"] == agent.id


async def test_a_stale_change_writes_nothing_even_outside_a_transaction(tmp_env: Any) -> None:
    """A change read at version 1 of an order now at version 2: refused, and none of its
    parts written, even with no transaction to roll them back (each statement then commits
    by itself)."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "job", {"fields": {"summary": "frame", "amount": "3.00"}})
    number = view["number"]
    stale = await _order(env, number)
    await env.rt.update(agent, number, 1, {"title": "someone else's"})
    before = {table: await env.db.fetch(f"SELECT * FROM {table} ORDER BY id")
              for table in ("rc_work_order", "tpl_job", "rc_step_action", "rc_event")}
    change = Change(stale, agent.id, env.workspace.fingerprint)
    change.update_action("check", "processed", {"note": "late"})
    change.record("action_processed", {"actions": {"check": "processed"}, "priority": "high"},
                  values={"amount": "9.99"})
    change.enter_round(env.workspace.queues["line"].steps[1], 1)
    change.record("step_entered", {"step": "build"})
    with pytest.raises(Conflict):
        await change.save(env.db)
    after = {table: await env.db.fetch(f"SELECT * FROM {table} ORDER BY id") for table in before}
    assert after == before


async def test_parts_that_touch_each_others_rows_are_saved_one_after_the_other(tmp_env: Any) -> None:
    """A change that enters a step and processes one of the actions it adds (the parts of one
    statement would not see the added rows) is written part after part, and its action is
    processed."""
    env = await tmp_env(LINE)
    agent = await env.actor("agent")
    view = await env.rt.create(agent, "job", {"fields": {"summary": "frame"}})
    order = await _order(env, view["number"])
    build = env.workspace.queues["line"].steps[1]
    async with env.db.transaction():
        change = Change(order, agent.id, env.workspace.fingerprint)
        change.record("step_entered", {"step": "build"})
        change.enter_round(build, 1)
        change.update_action("cut", "processed", None)
        change.record("action_processed", {"actions": {"cut": "processed"}})
        assert await change.save(env.db) == 2
    rows = await env.db.fetch(
        "SELECT action, state FROM rc_step_action WHERE work_order_id = {} AND step = 'build' ORDER BY id", order.id)
    assert [(r["action"], r["state"]) for r in rows] == [("cut", "processed"), ("weld", "pending"),
                                                         ("paint", "pending")]


def test_the_longest_prefix_tells_the_template(tmp_path: Path) -> None:
    """``template_by_number``: of ``J-`` and ``JX-``, ``JX-1`` is the second's, ``J-1`` the
    first's; a number no prefix begins tells none."""
    job, bare = open_workspace(write_workspace(tmp_path, LINE)).templates.values()
    longer = msgspec.structs.replace(bare, prefix="JX-")
    assert template_by_number([job, longer], "JX-1") is longer
    assert template_by_number([longer, job], "JX-1") is longer
    assert template_by_number([job, longer], "J-1") is job
    assert template_by_number([job, bare], "Q-1") is None
