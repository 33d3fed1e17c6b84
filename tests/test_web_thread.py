"""The message thread on the work-order page and its JSON API, on SQLite and PostgreSQL.

Comments through the page's form appear in the thread (escaped), refused input comes
back at its input with nothing written, CSRF is enforced, subscribing toggles; the API
lists, posts and subscribes with errors in the API's shape.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from runtime_helpers import ORDER
from web_helpers import Browser, browsing

USERS: dict[str, dict[str, Any]] = {
    login: {"password": "correct horse"} for login in (
        "anna.gruber", "lukas.maier", "sophie.huber", "martin.pichler")
}
AGENT = "lukas.maier"
XSS = "<script>alert(1)</script>"


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("ecommerce-workorders", database_url, USERS) as browser:
        await browser.sign_in(AGENT)
        yield browser


async def _order(web: Browser) -> str:
    response = await web.api.post(AGENT, "/api/templates/customer_order/orders",
                                  {"title": "Teapots", "fields": {**ORDER, "invoice_email": "kunde@example.org"}})
    assert response.status_code == 201, response.text
    return str(response.json()["number"])


async def _snapshot(web: Browser) -> list[Any]:
    db = web.api.db
    return [await db.fetch(f"SELECT * FROM {t} ORDER BY id")
            for t in ("rc_message", "rc_outbox", "rc_event", "rc_subscription", "rc_work_order")]


async def test_comment_through_the_page_appears_in_the_thread(web: Browser) -> None:
    number = await _order(web)
    page = await web.get(AGENT, f"/orders/{number}")
    assert page.status_code == 200
    assert f'hx-get="/orders/{number}/thread" hx-trigger="load"' in page.text
    section = await web.get(AGENT, f"/orders/{number}/thread", htmx=True)
    assert section.status_code == 200
    assert f'hx-post="/orders/{number}/thread/comment"' in section.text
    assert f'hx-post="/orders/{number}/thread/reply"' in section.text
    assert 'value="kunde@example.org"' in section.text  # the reply goes to the contact address by default
    assert "No messages yet." in section.text
    posted = await web.post(AGENT, f"/orders/{number}/thread/comment",
                            {"body": f"{XSS} parcel {{{{7*7}}}}", "client_viewable": "true", "subscribe": "true"})
    assert posted.status_code == 200, posted.text
    text = posted.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; parcel {{7*7}}" in text and XSS not in text
    assert "customer can read" in text and "mail queued" in text
    assert "Unsubscribe" in text
    assert 'id="order-trail"' in text and 'hx-swap-oob="true"' in text
    thread = (await web.api.get(AGENT, f"/api/orders/{number}/messages")).json()
    assert [(m["kind"], m["author"], m["client_viewable"]) for m in thread] == [("comment", AGENT, True)]
    # an agent who may not assign is refused, nothing written; the supervisor assigns with a private comment
    before = await _snapshot(web)
    refused = await web.post(AGENT, f"/orders/{number}/thread/comment", {"body": "mine", "assign_to": "sophie.huber"})
    assert refused.status_code == 403 and await _snapshot(web) == before
    await web.sign_in("anna.gruber")
    second = await web.post("anna.gruber", f"/orders/{number}/thread/comment",
                            {"body": "internal note", "assign_to": "sophie.huber"})
    assert second.status_code == 200, second.text
    assert (await web.api.order(AGENT, number))["owner"] == "sophie.huber"
    assert second.text.index("internal note") < second.text.index("parcel")  # newest first
    assert 'id="order-flow"' in second.text  # the owner changed: the header comes along


async def test_refused_input_comes_back_at_its_input_and_nothing_is_written(web: Browser) -> None:
    number = await _order(web)
    before = await _snapshot(web)
    empty = await web.post(AGENT, f"/orders/{number}/thread/comment", {"body": "   "})
    assert empty.status_code == 422
    assert 'id="comment-body-error"' in empty.text
    injected = await web.post(AGENT, f"/orders/{number}/thread/reply",
                              {"to": "kunde@example.org", "subject": "Hi\r\nBcc: x@example.org", "body": "Hello"})
    assert injected.status_code == 422
    assert 'id="reply-subject-error"' in injected.text and "Hello</textarea>" in injected.text
    assert await _snapshot(web) == before


async def test_csrf_is_enforced(web: Browser) -> None:
    number = await _order(web)
    before = await _snapshot(web)
    refused = await web.post(AGENT, f"/orders/{number}/thread/comment", {"body": "hi"}, csrf=False)
    assert refused.status_code == 403
    refused = await web.post(AGENT, f"/orders/{number}/subscription", {"on": "true"}, csrf=False)
    assert refused.status_code == 403
    assert await _snapshot(web) == before


async def test_subscribe_button_toggles(web: Browser) -> None:
    number = await _order(web)
    on = await web.post(AGENT, f"/orders/{number}/subscription", {"on": "true"})
    assert on.status_code == 200 and "Unsubscribe" in on.text
    off = await web.post(AGENT, f"/orders/{number}/subscription", {"on": "false"})
    assert off.status_code == 200 and ">Subscribe<" in off.text


async def test_the_api_lists_posts_and_subscribes(web: Browser) -> None:
    number = await _order(web)
    api = web.api
    posted = await api.post(AGENT, f"/api/orders/{number}/messages",
                            {"kind": "reply", "body": "Thanks!", "quote": False, "subscribe": True})
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert body["kind"] == "reply" and body["to"] == ["kunde@example.org"] and body["delivery_state"] == "queued"
    assert body["subject"] == f"[{number}] Re: Teapots"
    follow = await api.post(AGENT, f"/api/orders/{number}/messages", {"kind": "follow_up", "body": "FYI"})
    assert follow.status_code == 201
    listed = await api.get(AGENT, f"/api/orders/{number}/messages")
    assert [m["kind"] for m in listed.json()] == ["reply", "follow_up"]
    subscription = await api.get(AGENT, f"/api/orders/{number}/subscription")
    assert subscription.json() == {"subscribed": True, "subscribers": [AGENT]}
    off = await api.post(AGENT, f"/api/orders/{number}/subscription", {"on": False})
    assert off.status_code == 200 and off.json() == {"subscribed": False, "subscribers": []}
    bad = await api.post(AGENT, f"/api/orders/{number}/messages",
                         {"kind": "reply", "body": "x", "to": ["a@example.org\r\nBcc: b@example.org"]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "to.0"
    unknown = await api.post(AGENT, f"/api/orders/{number}/messages", {"kind": "shout", "body": "x"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "invalid"
    missing = await api.get(AGENT, "/api/orders/WO-99999/messages")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    schema = (await api.client.get("/schema/openapi.json")).json()
    assert "/api/orders/{number}/messages" in schema["paths"]
