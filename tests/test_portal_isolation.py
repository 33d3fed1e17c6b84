"""Isolation between customers, route by route.

The agency example with two customers. Bob (Bloom Florists) has an order with comments, chat, a file, a
time entry, a project he follows, a draft and a resume link. Alice (Acme Logistics) then calls every
route the app has — enumerated from the app itself, so a route added later is checked too — through the
screens (her session) and the API (her token), with Bob's ids and keys in the path. Each answer must be
what she gets for an id that does not exist (404 for orders, drafts, files and links), must not carry
any of Bob's data, and nothing of Bob's may change. Lists without ids must not show Bob's data either.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api_helpers import Api, served
from engine.runtime import create_token
from portal_helpers import PASSWORD, add_customer_user, customer_id, redirected
from web_helpers import Browser

STAFF = {"rachel.morgan": {"password": PASSWORD, "email": "rachel@fernwood.example"},
         "sam.okafor": {"password": PASSWORD}}
MARKERS = ("ZEBRA-SECRET-42", "BOBCHAT-XYZ", "CLIENT-NOTE-QQ", "PRIVATE-NOTE-RR", "bloom-plan-77.txt",
           "bob@bloomflorists.example", "Spring campaign")
"""Texts only Bob's data contains (his order's title, chat, comments, file, address, project)."""
PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
SKIPPED = ("/static", "/schema")
NEUTRAL = {"name": "new_request", "action": "classify", "part": "title", "kind": "comment", "index": "0",
           "page": "request_page", "page_name": "request_page", "template": "client_request", "token_id": "1"}
"""Path parameters that name no customer's data: the same value for Bob's try and the made-up one."""


class World:
    def __init__(self, web: Browser, bob: dict[str, Any]) -> None:
        self.web = web
        self.bob = bob

    @property
    def api(self) -> Api:
        return self.web.api


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    async with served("contract-agency", database_url, STAFF) as api:
        for login, customer, email in (("alice", "acme_logistics", "alice@acme.example"),
                                       ("bob", "bloom_florists", "bob@bloomflorists.example")):
            user = await add_customer_user(api.db, api.runtime, login, customer, email)
            api.tokens[login] = await create_token(api.db, user, "tests")
        web = Browser(api)
        for login in ("alice", "bob", "rachel.morgan"):
            await web.sign_in(login)
        yield World(web, await _bobs_things(web))


async def _bobs_things(web: Browser) -> dict[str, Any]:
    api = web.api
    db = api.db
    bloom = await customer_id(db, "bloom_florists")
    project = int(await db.fetch_value("SELECT id FROM rc_project WHERE customer_id = {} AND name = {}",
                                       bloom, "spring_campaign"))
    bob = int(await db.fetch_value("SELECT id FROM rc_user WHERE login = 'bob'"))
    await db.execute("INSERT INTO rc_project_follower (project_id, user_id) VALUES ({}, {})", project, bob)
    draft = (await api.post("bob", "/api/forms/new_request/drafts")).json()
    saved = await api.client.put(f"/api/drafts/{draft['key']}/pages/request_page", headers=api.auth("bob"), json={
        "version": draft["version"], "fields": {"request_kind": "new_feature", "client_ticket_ref": "ZEBRA-SECRET-42"}})
    assert saved.status_code == 200, saved.text
    planning = await api.client.put(f"/api/drafts/{draft['key']}/pages/planning_page", headers=api.auth("bob"),
                                    json={"version": saved.json()["version"], "fields": {}})
    assert planning.status_code == 200, planning.text
    order = await api.post("bob", f"/api/drafts/{draft['key']}/submit",
                           {"version": planning.json()["version"], "project_id": project})
    assert order.status_code == 201, order.text
    number = order.json()["number"]
    await api.patch("rachel.morgan", f"/api/orders/{number}", {"version": order.json()["version"],
                                                               "title": "ZEBRA-SECRET-42 spring flyers"})
    assert (await api.post("bob", f"/api/orders/{number}/chat", {"body": "BOBCHAT-XYZ"})).status_code == 201
    for body, visible in (("CLIENT-NOTE-QQ", True), ("PRIVATE-NOTE-RR", False)):
        said = await api.post("rachel.morgan", f"/api/orders/{number}/messages",
                              {"kind": "comment", "body": body, "client_viewable": visible})
        assert said.status_code == 201, said.text
    uploaded = await api.client.post(f"/api/orders/{number}/attachments", headers=api.auth("rachel.morgan"),
                                     files={"file": ("bloom-plan-77.txt", b"spring plan", "text/plain")})
    assert uploaded.status_code == 201, uploaded.text
    attachment = uploaded.json()[0]["id"]
    order_id = int(await db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number))
    rachel = int(await db.fetch_value("SELECT id FROM rc_user WHERE login = 'rachel.morgan'"))
    entry = int(await db.fetch_value(
        "INSERT INTO rc_time_entry (work_order_id, user_id, started_at, minutes, billable, version, created_at) "
        "VALUES ({}, {}, CURRENT_TIMESTAMP, 30, {}, 1, CURRENT_TIMESTAMP) RETURNING id", order_id, rachel, True))
    second = (await api.post("bob", "/api/forms/new_request/drafts")).json()
    sent = await api.post("rachel.morgan", f"/api/drafts/{second['key']}/send-link")
    assert sent.status_code == 202, sent.text
    payload = str(await db.fetch_value("SELECT payload FROM rc_outbox WHERE idempotency_key LIKE 'resume:%'"))
    token = re.search(r"/portal/resume/([A-Za-z0-9_-]+)", payload)
    assert token
    return {"number": number, "key": second["key"], "token": token.group(1), "attachment_id": attachment,
            "customer": bloom, "project": project, "user": bob, "entry": entry, "order_id": order_id}


def _fake(name: str) -> str:
    """A value of path parameter ``name`` that names nothing."""
    return {"number": "REQ-99999", "key": "x" * 32, "token": "y" * 43}.get(name, "987654")


def _url(path: str, values: dict[str, Any]) -> str:
    return PARAM.sub(lambda m: str(values[m.group(1)]), path)


async def _snapshot(world: World) -> list[Any]:
    db = world.api.db
    bob = world.bob
    return [
        await db.fetch("SELECT version, title, status, owner_id, project_id FROM rc_work_order WHERE id = {}",
                       bob["order_id"]),
        await db.fetch_value("SELECT COUNT(*) FROM rc_message WHERE work_order_id = {}", bob["order_id"]),
        await db.fetch("SELECT id, work_order_id, message_id FROM rc_attachment WHERE id = {}", bob["attachment_id"]),
        await db.fetch("SELECT version, answers, submitted_at FROM rc_form_draft WHERE key = {}", bob["key"]),
        await db.fetch_value("SELECT COUNT(*) FROM rc_resume_token WHERE used_at IS NOT NULL"),
        await db.fetch("SELECT minutes, version FROM rc_time_entry WHERE id = {}", bob["entry"]),
        await db.fetch("SELECT name, label FROM rc_project WHERE id = {}", bob["project"]),
        await db.fetch("SELECT name, label, email_domains FROM rc_customer WHERE id = {}", bob["customer"]),
        await db.fetch("SELECT project_id FROM rc_project_follower ORDER BY id"),
        await db.fetch("SELECT login, is_active, email FROM rc_user WHERE id = {}", bob["user"]),
    ]


async def _call(world: World, method: str, url: str) -> Any:
    """Alice calls ``url``: the API with her token, the screens with her session (and CSRF token)."""
    if url.startswith("/api/"):
        headers = world.api.auth("alice")
        if method in ("GET", "DELETE"):
            return await world.api.client.request(method, url, headers=headers)
        return await world.api.client.request(method, url, headers=headers, json={})
    client, csrf = world.web.clients["alice"]
    headers = {"hx-request": "true"}
    if method != "GET":
        headers["x-csrftoken"] = csrf
    return await client.request(method, url, headers=headers, follow_redirects=False)


def _routes(world: World) -> list[tuple[str, str]]:
    out = []
    for route in world.api.client.app.routes:
        if route.path.startswith(SKIPPED):
            continue
        for method in sorted(set(route.methods) - {"HEAD", "OPTIONS"}):
            out.append((method, route.path))
    return out


async def test_every_route_answers_alice_about_bobs_things_as_about_nothing(world: World) -> None:
    before = await _snapshot(world)
    checked = 0
    owned = {"number", "key", "token", "attachment_id", "customer", "project", "user", "entry"}
    for method, path in _routes(world):
        params = PARAM.findall(path)
        unknown = [p for p in params if p not in owned and p not in NEUTRAL]
        assert not unknown, f"{method} {path}: say in this test what {unknown} names (a customer's data or not)"
        if not set(params) & owned:
            continue
        bobs = _url(path, {**NEUTRAL, **world.bob})
        nothing = _url(path, {**NEUTRAL, **{p: _fake(p) for p in owned}})
        answer = await _call(world, method, bobs)
        baseline = await _call(world, method, nothing)
        where = f"{method} {bobs}"
        assert answer.status_code == baseline.status_code, (where, answer.status_code, answer.text[:300])
        assert answer.status_code >= 400 or answer.status_code in (303,) and "/login" in str(
            answer.headers.get("location")), (where, answer.status_code)
        if set(params) & {"number", "key", "token", "attachment_id"}:
            # 422: refused before anything is looked up (the body), as for the made-up id (asserted above)
            assert answer.status_code in (404, 405, 422), (where, answer.status_code, answer.text[:300])
        for marker in MARKERS:
            assert marker not in answer.text, (where, marker)
        checked += 1
    assert checked >= 40  # the screens' and the API's order, draft, file, link and customer routes
    assert await _snapshot(world) == before


async def test_lists_show_alice_none_of_bobs_things(world: World) -> None:
    pages = 0
    for method, path in _routes(world):
        if method != "GET" or PARAM.search(path) or path in ("/health", "/healthz", "/readyz", "/metrics"):
            continue
        answer = await _call(world, "GET", path)
        for marker in MARKERS:
            assert marker not in answer.text, (path, marker)
        pages += 1
    assert pages >= 20
    for tab in ("running", "archived"):
        assert world.bob["number"] not in (await _call(world, "GET", f"/portal?tab={tab}")).text
        assert world.bob["number"] not in (await _call(world, "GET", f"/api/portal/orders?tab={tab}")).text
    guessed = await _call(world, "GET", f"/api/orders?customer_id={world.bob['customer']}")
    assert guessed.status_code == 200 and guessed.json()["items"] == []


async def test_bob_sees_his_own_and_the_chat_but_never_private_notes(world: World) -> None:
    api = world.api
    number = world.bob["number"]
    thread = await api.get("bob", f"/api/orders/{number}/messages")
    bodies = [m["body"] for m in thread.json()]
    assert "BOBCHAT-XYZ" in bodies and "CLIENT-NOTE-QQ" in bodies and "PRIVATE-NOTE-RR" not in bodies
    page = await world.web.get("bob", f"/portal/orders/{number}")
    assert "CLIENT-NOTE-QQ" in page.text and "PRIVATE-NOTE-RR" not in page.text
    listed = await api.get("bob", "/api/portal/orders?tab=running")
    assert [o["number"] for o in listed.json()] == [number]


async def test_followed_projects_and_organisation_widen_the_view_only_as_declared(world: World) -> None:
    api = world.api
    db = api.db
    # a colleague of Bob at Bloom sees Bob's order (visibility: organisation)
    colleague = await add_customer_user(db, api.runtime, "bea", "bloom_florists", "bea@bloomflorists.example")
    api.tokens["bea"] = await create_token(db, colleague, "tests")
    assert (await api.get("bea", f"/api/orders/{world.bob['number']}")).status_code == 200
    # following a project of another customer is refused, so it opens nothing
    acme_project = int(await db.fetch_value(
        "SELECT p.id FROM rc_project p JOIN rc_customer c ON c.id = p.customer_id WHERE c.name = 'acme_logistics' "
        "ORDER BY p.id LIMIT 1"))
    alice = int(await db.fetch_value("SELECT id FROM rc_user WHERE login = 'alice'"))
    refused = await api.post("rachel.morgan", f"/api/projects/{world.bob['project']}/followers/{alice}")
    assert refused.status_code in (403, 404, 422), refused.text
    assert (await api.get("alice", f"/api/orders/{world.bob['number']}")).status_code == 404
    followed = await api.post("rachel.morgan", f"/api/projects/{acme_project}/followers/{alice}")
    assert followed.status_code in (200, 201, 204), followed.text


async def test_a_visitor_without_a_login_reaches_nothing_of_bobs(world: World) -> None:
    client = world.api.client
    for method, path in _routes(world):
        if not PARAM.search(path) or method != "GET":
            continue
        url = _url(path, {**NEUTRAL, **world.bob})
        answer = await client.get(url, follow_redirects=False)
        assert answer.status_code in (303, 401, 404), (url, answer.status_code)
        if answer.status_code == 303:
            assert redirected(answer).startswith("/login"), url
        for marker in MARKERS:
            assert marker not in answer.text, (url, marker)


def _visitor(world: World) -> AsyncTestClient[Any]:
    """A browser without an account (its own cookies), on the same running app."""
    client: AsyncTestClient[Any] = AsyncTestClient(app=world.api.client.app)
    client.blocking_portal = world.api.client.blocking_portal
    client.exit_stack = None
    return client


async def test_a_visitor_sends_the_public_enquiry_and_its_draft_stays_in_its_browser(world: World) -> None:
    visitor = _visitor(world)
    intro = await visitor.get("/portal/forms/website_enquiry")
    assert intro.status_code == 200 and "Not a client yet?" in intro.text
    assert (await visitor.get("/portal/forms/new_request", follow_redirects=False)).status_code == 303  # customers'
    foreign = await visitor.post("/portal/forms/website_enquiry", headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403
    started = await visitor.post("/portal/forms/website_enquiry", follow_redirects=False)
    assert started.status_code == 303 and "rc_drafts" in started.cookies
    page_url = started.headers["location"]
    key = page_url.split("/")[3]
    page = await visitor.get(page_url)
    assert page.status_code == 200 and 'name="fields.request_kind"' in page.text
    version = re.search(r'name="version" value="(\d+)"', page.text).group(1)  # type: ignore[union-attr]
    saved = await visitor.post(page_url, data={"fields.request_kind": "new_feature", "version": version,
                                               "fields.affected_url": "https://shop.example/", "go": "summary"},
                               follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"].endswith("/summary")

    # nobody else opens it: another visitor, a signed-in customer, the API
    assert (await _visitor(world).get(f"/portal/drafts/{key}/summary")).status_code == 404
    assert (await world.web.get("alice", f"/portal/drafts/{key}/summary")).status_code == 404
    assert (await world.api.get("alice", f"/api/drafts/{key}")).status_code == 404

    summary = await visitor.get(f"/portal/drafts/{key}/summary")
    version = re.search(r'name="version" value="(\d+)"', summary.text).group(1)  # type: ignore[union-attr]
    no_address = await visitor.post(f"/portal/drafts/{key}/submit", data={"version": version})
    assert no_address.status_code == 422 and 'data-field="email"' in no_address.text
    sent = await visitor.post(f"/portal/drafts/{key}/submit", data={"version": version,
                                                                    "email": "new.client@prospect.example"})
    assert sent.status_code == 200 and "Thank you" in sent.text
    rows = await world.api.db.fetch("SELECT number, sender, created_by, customer_id FROM rc_work_order "
                                    "WHERE sender = 'new.client@prospect.example'")
    assert len(rows) == 1 and rows[0]["created_by"] is None and rows[0]["customer_id"] is None
    assert (await visitor.get(f"/portal/orders/{rows[0]['number']}", follow_redirects=False)).status_code in (303, 401)
