"""Macros: all or nothing, one audit entry, only for those who may edit; on the page and in the API."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api_helpers import served
from engine.automation.actions import ActionFailed
from engine.automation.macros import apply_macro
from engine.errors import Conflict, Forbidden, NotFound
from helpers_workspace import write_workspace
from tests.runtime_helpers import Env, dump, tmp_env  # noqa: F401 - fixtures
from web_helpers import Browser

DEFINITIONS = {"defs.yaml": """\
    kind: Group
    name: desk
    supervisor: sue
    members: [sue, max]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition, comment.private, comment.public]
    groups: [desk]
    ---
    kind: Template
    name: ticket
    label: Ticket
    numbering: {prefix: T-}
    initial_owner: creator
    edit_limit: owner
    fields:
      - {name: contact, type: email}
      - {name: note, type: input}
    ---
    kind: Template
    name: other
    label: Other
    numbering: {prefix: O-}
    ---
    kind: Queue
    name: tickets
    templates: [ticket, other]
    steps:
      - name: intake
        group: desk
        actions: [{name: check}]
    ---
    kind: Macro
    name: triage
    label: Triage it
    templates: [ticket]
    actions:
      - set_priority: high
      - set_field: {field: note, value: triaged}
      - comment: {text: "Triaged {{ number }}", client_viewable: true}
      - email: {to: [customer], subject: "{{ number }} triaged", body: "We looked at {{ title }}."}
    ---
    kind: Macro
    name: broken
    label: Broken
    templates: [ticket]
    actions:
      - set_priority: urgent
      - comment: {text: "This comment must not stay"}
      - assign: {user: ghost}
    ---
    kind: Macro
    name: for_other
    templates: [other]
    actions:
      - set_priority: low
    """}
USERS: dict[str, dict[str, Any]] = {"sue": {"password": "correct horse"}, "max": {"password": "correct horse"}}


async def _env(tmp_env: Any) -> Env:
    env: Env = await tmp_env(DEFINITIONS)
    return env


async def _ticket(env: Env) -> dict[str, Any]:
    sue = await env.actor("sue")
    return await env.rt.create(sue, "ticket", {"title": "Printer", "fields": {"contact": "cus@example.org"}})


async def test_macro_applies_everything_as_one_audit_entry(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await _ticket(env)
    sue = await env.actor("sue")
    after = await apply_macro(env.rt, sue, view["number"], view["version"], "triage")
    assert after["priority"] == "high" and after["fields"]["note"] == "triaged"
    assert after["version"] == view["version"] + 1
    events = await env.rt.events(sue, view["number"])
    assert [e["kind"] for e in events] == ["created", "macro_applied"]
    macro = events[-1]
    assert macro["source"] == "macro triage" and macro["actor"] == "sue"
    assert macro["before"] == {"priority": "normal", "fields": {"note": None}}
    assert {k: macro["after"][k] for k in ("priority", "fields")} == {"priority": "high", "fields": {"note": "triaged"}}
    assert [n["kind"] for n in macro["after"]["notes"]] == ["comment_added", "email_queued"]
    thread = await env.rt.messages.thread(sue, view["number"])
    assert [(m["body"], m["author"], m["client_viewable"]) for m in thread] == [
        (f"Triaged {view['number']}", "sue", True)]
    mails = [json.loads(r["payload"]) for r in await env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")]
    assert [m["body"] for m in mails if m["subject"] == f"{view['number']} triaged"] == ["We looked at Printer."]


async def test_macro_is_all_or_nothing(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await _ticket(env)
    before = await dump(env.db)
    with pytest.raises(ActionFailed, match="ghost"):
        await apply_macro(env.rt, await env.actor("sue"), view["number"], view["version"], "broken")
    assert await dump(env.db) == before


async def test_macro_needs_edit_rights_a_fresh_version_and_a_macro_for_the_template(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await _ticket(env)
    before = await dump(env.db)
    with pytest.raises(Forbidden):
        await apply_macro(env.rt, await env.actor("max"), view["number"], view["version"], "triage")
    with pytest.raises(NotFound):
        await apply_macro(env.rt, await env.actor("sue"), view["number"], view["version"], "for_other")
    with pytest.raises(NotFound):
        await apply_macro(env.rt, await env.actor("sue"), view["number"], view["version"], "nope")
    with pytest.raises(Conflict):
        await apply_macro(env.rt, await env.actor("sue"), view["number"], view["version"] + 5, "triage")
    assert await dump(env.db) == before


@pytest.fixture
async def web(database_url: str, tmp_path: Path) -> AsyncIterator[Browser]:
    async with served(write_workspace(tmp_path / "ws", DEFINITIONS), database_url, USERS) as api:
        browser = Browser(api)
        await browser.sign_in("sue")
        await browser.sign_in("max")
        yield browser


async def _api_ticket(web: Browser) -> dict[str, Any]:
    response = await web.api.post("sue", "/api/templates/ticket/orders",
                                  {"title": "Printer", "fields": {"contact": "cus@example.org"}})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_api_applies_a_macro(web: Browser) -> None:
    order = await _api_ticket(web)
    url = f"/api/orders/{order['number']}/macros/triage"
    response = await web.api.post("max", url, {"version": order["version"]})
    assert response.status_code == 403, response.text
    response = await web.api.post("sue", url, {"version": order["version"]})
    assert response.status_code == 200, response.text
    assert response.json()["priority"] == "high" and response.json()["fields"]["note"] == "triaged"
    response = await web.api.post("sue", url, {"version": order["version"]})
    assert response.status_code == 409
    response = await web.api.post("sue", f"/api/orders/{order['number']}/macros/nope",
                                  {"version": order["version"] + 1})
    assert response.status_code == 404
    before = await dump(web.api.db)
    response = await web.api.post("sue", f"/api/orders/{order['number']}/macros/broken",
                                  {"version": order["version"] + 1})
    assert response.status_code == 409 and response.json()["error"] == "action_failed", response.text
    assert await dump(web.api.db) == before


async def test_order_page_offers_the_macros_and_applies_one(web: Browser) -> None:
    order = await _api_ticket(web)
    number = order["number"]
    page = await web.get("sue", f"/orders/{number}")
    assert 'data-macro="triage"' in page.text and 'data-macro="broken"' in page.text
    assert 'data-macro="for_other"' not in page.text
    seen_by_max = await web.get("max", f"/orders/{number}")
    assert seen_by_max.status_code == 200 and "data-macro=" not in seen_by_max.text
    response = await web.post("sue", f"/orders/{number}/macros/triage", {"version": str(order["version"])})
    assert response.status_code == 200, response.text
    assert 'id="order-flow"' in response.text and 'data-macro="triage"' in response.text
    current = await web.api.order("sue", number)
    assert current["priority"] == "high" and current["version"] == order["version"] + 1
    before = await dump(web.api.db)
    response = await web.post("sue", f"/orders/{number}/macros/broken", {"version": str(current["version"])})
    assert response.status_code == 422
    assert "ghost" in response.text
    assert await dump(web.api.db) == before
    response = await web.post("max", f"/orders/{number}/macros/triage", {"version": str(current["version"])})
    assert response.status_code == 403
    response = await web.post("sue", f"/orders/{number}/macros/triage", {"version": str(order["version"])})
    assert response.status_code == 409
