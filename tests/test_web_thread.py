"""The message thread on the work-order page and its JSON API, on SQLite and PostgreSQL.

Comments through the page's form appear in the thread (escaped), refused input comes
back at its input with nothing written, CSRF is enforced, subscribing toggles; the API
lists, posts and subscribes with errors in the API's shape.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api_helpers import served
from comms_helpers import SmtpServer, mail_workspace
from engine.comms import OutboxWorker
from engine.runtime.attachments import Attachments
from runtime_helpers import ORDER
from test_storage import PDF, PNG
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
    listed = second.text[second.text.index('<ol class="thread">'):]
    assert listed.index("internal note") < listed.index("parcel")  # newest first
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


# -- files and comment templates ----------------------------------------------------------------


@pytest.fixture
async def mailing(database_url: str, tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Browser]:
    """The example copied (files are stored in its folder), mailing to the test's SMTP server, quota 50 KB."""
    root = mail_workspace(tmp_path, smtp.port)
    with (root / "routecard.yaml").open("a", encoding="utf-8") as settings:
        settings.write("attachments:\n  daily_quota: 50000\n")
    async with served(root, database_url, USERS) as api:
        browser = Browser(api)
        await browser.sign_in(AGENT)
        browser.root = root  # type: ignore[attr-defined]
        yield browser


def _stored(web: Browser) -> list[Path]:
    folder = web.root / ".routecard" / "files"  # type: ignore[attr-defined]
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def _send_mail(web: Browser) -> Any:
    runtime = web.api.runtime
    store = Attachments.on_disk(runtime, web.root).storage  # type: ignore[attr-defined]
    return await OutboxWorker(web.api.db, lambda: runtime.workspace.settings, timeout=5.0, storage=store).run_once()


async def test_a_reply_with_a_file_from_the_page_is_listed_downloaded_and_mailed(
        mailing: Browser, smtp: SmtpServer) -> None:
    web = mailing
    number = await _order(web)
    section = await web.get(AGENT, f"/orders/{number}/thread", htmx=True)
    assert section.text.count('hx-encoding="multipart/form-data"') == 3
    assert 'id="reply-files" name="attachments" multiple' in section.text
    assert '<option value="parcel_shipped">Parcel shipped</option>' in section.text
    assert f'hx-get="/orders/{number}/thread/reply/text"' in section.text
    # the picker fills the text area with the template, placeholders filled in (an unset field: its default)
    picked = await web.get(AGENT, f"/orders/{number}/thread/reply/text?template=parcel_shipped", htmx=True)
    assert picked.status_code == 200
    assert f"your order K0048213 ({number}) has left our warehouse today with our carrier." in picked.text
    assert picked.text.lstrip().startswith('<div id="reply-text"')
    unknown = await web.get(AGENT, f"/orders/{number}/thread/reply/text?template=awaiting_payment", htmx=True)
    assert "no comment template `awaiting_payment` for this reply; offered: parcel_shipped" in unknown.text
    before = await _snapshot(web)
    refused = await web.post(AGENT, f"/orders/{number}/thread/reply", {"body": "see attached"},
                             files=[("attachments", ("x.png", b"<html><script>alert(1)</script>", "image/png"))])
    assert refused.status_code == 422 and 'id="reply-attachments-error"' in refused.text
    assert "files of this type (text/html) are not accepted" in refused.text
    assert await _snapshot(web) == before and _stored(web) == []
    sent = await web.post(AGENT, f"/orders/{number}/thread/reply", {"body": "see attached", "template": ""},
                          files=[("attachments", ("../plan\u202e.pdf", PDF, "text/html")),
                                 ("attachments", ("", b"", "application/octet-stream"))])
    assert sent.status_code == 200, sent.text
    [message] = (await web.api.get(AGENT, f"/api/orders/{number}/messages")).json()
    [file] = message["attachments"]
    assert (file["filename"], file["content_type"], file["size"]) == ("plan.pdf", "application/pdf", len(PDF))
    assert f'<a href="/files/{file["id"]}/plan.pdf" download>plan.pdf</a>' in sent.text
    download = await web.get(AGENT, f"/files/{file['id']}/plan.pdf")
    assert download.content == PDF and download.headers["content-disposition"].startswith("attachment;")
    assert (await _send_mail(web)).sent == 1
    [mail] = smtp.to("kunde@example.org")
    [part] = list(mail.iter_attachments())
    assert part.get_filename() == "plan.pdf" and part.get_content_type() == "application/pdf"
    assert part.get_payload(decode=True) == PDF


async def test_the_api_sends_files_by_id_and_uploaded_along_with_a_template(mailing: Browser, smtp: SmtpServer) -> None:
    web = mailing
    api = web.api
    number = await _order(web)
    boss = "anna.gruber"  # the supervisor may always edit, so may upload to the order
    uploaded = await api.client.post(f"/api/orders/{number}/attachments", headers=api.auth(boss),
                                     files=[("file", ("photo.png", PNG, "image/png"))])
    assert uploaded.status_code == 201, uploaded.text
    [photo] = uploaded.json()
    texts = await api.get(boss, f"/api/orders/{number}/comment-templates?kind=comment")
    assert [t["name"] for t in texts.json()] == ["awaiting_payment", "parcel_shipped"]
    assert texts.json()[0]["body"] == f"Waiting for the payment of 99.90 EUR (invoice) before {number} moves on."
    posted = await api.post(boss, f"/api/orders/{number}/messages",
                            {"kind": "comment", "template": "parcel_shipped", "attachments": [photo["id"]]})
    assert posted.status_code == 201, posted.text
    comment = posted.json()
    assert comment["client_viewable"] is True and comment["body"].startswith("Hello,\n\nyour order K0048213")
    assert [f["filename"] for f in comment["attachments"]] == ["photo.png"]
    again = await api.post(boss, f"/api/orders/{number}/messages",
                           {"kind": "comment", "body": "again", "attachments": [photo["id"]], "template": "nope"})
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "template"
    twice = await api.post(boss, f"/api/orders/{number}/messages",
                           {"kind": "comment", "body": "again", "attachments": [photo["id"]], "client_viewable": True})
    assert twice.status_code == 422 and twice.json()["errors"][0]["field"] == "attachments.0"
    along = await api.client.post(
        f"/api/orders/{number}/messages/with-files", headers=api.auth(boss),
        data={"message": json.dumps({"kind": "reply", "body": "Your invoice.", "subject": "Invoice"})},
        files=[("file", ("invoice.pdf", PDF, "application/pdf")), ("file", ("notes.txt", b"a\nb\n", "text/plain"))])
    assert along.status_code == 201, along.text
    assert [f["filename"] for f in along.json()["attachments"]] == ["invoice.pdf", "notes.txt"]
    broken = await api.client.post(f"/api/orders/{number}/messages/with-files", headers=api.auth(boss),
                                   data={"message": json.dumps({"kind": "reply", "bodyy": "x"})},
                                   files=[("file", ("a.pdf", PDF, "application/pdf"))])
    assert broken.status_code == 422 and broken.json()["errors"][0]["field"] == "message.bodyy"
    assert (await _send_mail(web)).sent == 2  # the client-viewable comment and the reply reach the customer
    parts = {str(m["Subject"]): [(p.get_filename(), p.get_payload(decode=True)) for p in m.iter_attachments()]
             for m in smtp.to("kunde@example.org")}
    assert parts[f"[{number}] Invoice"] == [("invoice.pdf", PDF), ("notes.txt", b"a\nb\n")]
    assert parts[f"[{number}] Teapots"] == [("photo.png", PNG)]


async def test_uploads_beyond_the_daily_quota_are_refused_with_413_and_nothing_is_kept(mailing: Browser) -> None:
    web = mailing
    api = web.api
    number = await _order(web)
    boss = "anna.gruber"
    first = await api.client.post(f"/api/orders/{number}/attachments", headers=api.auth(boss),
                                  files=[("file", ("a.png", PNG + b"\0" * 40000, "image/png"))])
    assert first.status_code == 201, first.text
    kept = _stored(web)
    before = await _snapshot(web)
    over = await api.client.post(f"/api/orders/{number}/attachments", headers=api.auth(boss),
                                 files=[("file", ("b.pdf", PDF + b" " * 12000, "application/pdf"))])
    assert over.status_code == 413, over.text
    body = over.json()
    assert body["error"] == "quota_exceeded" and body["errors"][0]["field"] == "file"
    assert "daily quota of 48.8 KB" in body["errors"][0]["message"]
    assert _stored(web) == kept and await _snapshot(web) == before
    # the page's form says so at the files' input, keeps the text, stores nothing
    page = await web.post(AGENT, f"/orders/{number}/thread/comment", {"body": "big file"},
                          files=[("attachments", ("c.pdf", PDF + b" " * 60000, "application/pdf"))])
    assert page.status_code == 422 and 'id="comment-attachments-error"' in page.text
    assert "big file</textarea>" in page.text
    assert _stored(web) == kept and await _snapshot(web) == before


async def test_the_orders_files_can_be_ticked_to_go_along(mailing: Browser) -> None:
    web = mailing
    api = web.api
    number = await _order(web)
    uploaded = await api.client.post(f"/api/orders/{number}/attachments", headers=api.auth("anna.gruber"),
                                     files=[("file", ("scan.pdf", PDF, "application/pdf"))])
    [scan] = uploaded.json()
    section = await web.get(AGENT, f"/orders/{number}/thread", htmx=True)
    assert f'name="attachment_ids" value="{scan["id"]}"> scan.pdf' in section.text
    # someone else's file cannot go on a private comment: refused at the files' input, the box stays ticked
    private = await web.post(AGENT, f"/orders/{number}/thread/comment",
                             {"body": "internal", "attachment_ids": str(scan["id"])})
    assert private.status_code == 422 and 'id="comment-attachments-error"' in private.text
    assert f'value="{scan["id"]}" checked>' in private.text
    sent = await web.post(AGENT, f"/orders/{number}/thread/reply", {"body": "The scan.",
                                                                    "attachment_ids": str(scan["id"])})
    assert sent.status_code == 200, sent.text
    assert f'<a href="/files/{scan["id"]}/scan.pdf" download>scan.pdf</a>' in sent.text
    assert 'name="attachment_ids"' not in sent.text  # sent with a message: no longer offered
