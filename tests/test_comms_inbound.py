"""Incoming mail, on SQLite and PostgreSQL: threading, new work orders, loop protection, limits, the endpoint.

Mails are built as real RFC 822 bytes and go through ``Inbound.receive`` (the engine) or
``POST /api/inbound/email`` over HTTP (the app served in-process).
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import shutil
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from typing import Any

import pytest

from comms_helpers import SmtpServer
from engine.comms import OutboxWorker
from engine.comms.inbound import Delivered, Inbound
from engine.model.common import duration_span
from engine.comms.mail import Payload, thread_id, to_email
from engine.comms.parse import MailTooLarge, Unreadable, html_text, parse
from engine.runtime.attachments import Attachments
from engine.storage import DiskStorage
from engine.workspace import open_workspace
from tests.api_helpers import served
from tests.web_helpers import browsing
from tests.inbound_helpers import OURS, PDF, PNG, TOKEN, WORKSPACE, mail
from tests.migration_helpers import write_workspace
from tests.runtime_helpers import Env, make_env

class Desk:
    """The test workspace on a database, with its inbound service."""

    def __init__(self, env: Env, root: Path) -> None:
        self.env = env
        self.root = root
        self.files = Attachments(env.rt, DiskStorage(root / "files"))
        self.inbound = Inbound(env.rt, self.files)

    async def receive(self, raw: bytes) -> Delivered:
        return await self.inbound.receive(raw, source="test")

    async def orders(self) -> list[dict[str, Any]]:
        return await self.env.db.fetch("SELECT id, number, title, sender, customer_id, version FROM rc_work_order "
                                       "ORDER BY id")

    async def messages(self, number: str) -> list[dict[str, Any]]:
        rows = await self.env.db.fetch(
            "SELECT m.id, m.kind, m.body, m.author_id, m.client_viewable, m.headers FROM rc_message m "
            "JOIN rc_work_order w ON w.id = m.work_order_id WHERE w.number = {} ORDER BY m.id", number)
        for row in rows:
            row["headers"] = json.loads(row["headers"]) if isinstance(row["headers"], str) else row["headers"]
        return rows

    async def events(self, number: str, kind: str) -> list[dict[str, Any]]:
        rows = await self.env.db.fetch(
            "SELECT e.kind, e.after, e.actor_id FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
            "WHERE w.number = {} AND e.kind = {} ORDER BY e.id", number, kind)
        for row in rows:
            row["after"] = json.loads(row["after"]) if isinstance(row["after"], str) else row["after"]
        return rows


@pytest.fixture
async def desk(database_url: str, tmp_path: Path) -> AsyncIterator[Desk]:
    root = write_workspace(tmp_path / "desk", WORKSPACE)
    env = await make_env(root, database_url)
    await env.db.execute("UPDATE rc_user SET email = login || {}", "@ours.example")
    try:
        yield Desk(env, root)
    finally:
        await env.db.close()


def root_id(number: str) -> str:
    return thread_id("desk", number, OURS)


# -- new mail ------------------------------------------------------------------------------------


async def test_new_mail_creates_an_order_for_the_customer_of_the_senders_domain(desk: Desk) -> None:
    got = await desk.receive(mail("Anna Berg <Anna@Acme.example>", "Checkout is broken", ident="<a1@acme.example>"))
    assert got.outcome == "created" and got.number == "RQ-00001" and got.auto is False
    [order] = await desk.orders()
    acme = await desk.env.db.fetch_value("SELECT id FROM rc_customer WHERE name = 'acme'")
    assert (order["title"], order["sender"], order["customer_id"]) == ("Checkout is broken", "anna@acme.example", acme)
    state = await desk.env.state("RQ-00001")
    assert state["fields"]["contact"] == "anna@acme.example"  # replies go back to the sender
    [message] = await desk.messages("RQ-00001")
    assert message["kind"] == "email" and message["body"] == "Hello,\nplease help." and message["client_viewable"]
    assert message["headers"]["from"] == "anna@acme.example" and message["headers"]["message_id"] == "<a1@acme.example>"
    [event] = await desk.events("RQ-00001", "email_received")
    assert event["after"]["message"] == message["id"] and event["after"]["auto"] is False
    assert event["after"]["sender"] == "anna@acme.example"
    # a subdomain of the customer's domain is the customer too; an unknown domain is no customer
    sub = await desk.receive(mail("ops@mail.acme.example", "Another one"))
    other = await desk.receive(mail("someone@elsewhere.example", "Hi"))
    rows = {r["number"]: r["customer_id"] for r in await desk.orders()}
    assert rows[str(sub.number)] == acme and rows[str(other.number)] is None


async def test_the_same_mail_twice_makes_one_order(desk: Desk) -> None:
    raw = mail("anna@acme.example", "Once", ident="<same@acme.example>")
    first = await desk.receive(raw)
    again = await desk.receive(raw)
    assert first.outcome == "created" and again.outcome == "duplicate" and again.number == first.number
    assert len(await desk.orders()) == 1


# -- replies ---------------------------------------------------------------------------------------


async def test_reply_threads_by_headers_and_by_the_number_in_the_subject(desk: Desk) -> None:
    first = await desk.receive(mail("anna@acme.example", "Checkout is broken", ident="<a1@acme.example>"))
    number = str(first.number)
    # a reply to our mail: In-Reply-To/References name the thread's Message-ID, the subject lost its number
    by_headers = await desk.receive(mail("anna@acme.example", "Re: your answer", "Still broken.",
                                         ident="<a2@acme.example>", In_Reply_To=root_id(number),
                                         References=root_id(number)))
    # a colleague answers her own first mail (References name a mail received before)
    by_earlier = await desk.receive(mail("bob@acme.example", "Re: Checkout is broken", "Me too.",
                                         ident="<b1@acme.example>", References="<a1@acme.example>"))
    # no headers at all, only the number in the subject
    by_subject = await desk.receive(mail("anna@acme.example", f"Re: [{number}] Checkout is broken", "Any news?"))
    assert [d.outcome for d in (by_headers, by_earlier, by_subject)] == ["threaded"] * 3
    assert {d.number for d in (by_headers, by_earlier, by_subject)} == {number}
    assert len(await desk.orders()) == 1
    bodies = [m["body"] for m in await desk.messages(number)]
    assert bodies == ["Hello,\nplease help.", "Still broken.", "Me too.", "Any news?"]
    events = await desk.events(number, "email_received")
    assert [e["after"]["from"] for e in events] == ["anna@acme.example", "anna@acme.example", "bob@acme.example",
                                                     "anna@acme.example"]
    assert "sender" not in events[1]["after"]  # a reply does not change who the order came from
    assert (await desk.orders())[0]["sender"] == "anna@acme.example"


async def test_a_strangers_reply_never_joins_someone_elses_order(desk: Desk) -> None:
    first = await desk.receive(mail("anna@acme.example", "Invoice question"))
    number = str(first.number)
    before = await desk.messages(number)
    # the thread's Message-ID is guessable and the number is in the subject: neither is enough
    stranger = await desk.receive(mail("mallory@evil.example", f"Re: [{number}] Invoice question", "Pay to me.",
                                       In_Reply_To=root_id(number), References=root_id(number)))
    assert stranger.outcome == "created" and stranger.number != number
    assert await desk.messages(number) == before
    new = next(o for o in await desk.orders() if o["number"] == stranger.number)
    assert new["sender"] == "mallory@evil.example" and new["customer_id"] is None


async def test_staff_and_subscribers_may_write_to_an_order(desk: Desk) -> None:
    number = str((await desk.receive(mail("anna@acme.example", "Logo update"))).number)
    # sue is staff in the order's group: her mail lands on it, with her as the author
    got = await desk.receive(mail("sue@ours.example", f"[{number}] Logo update", "Done, see staging."))
    assert got.outcome == "threaded" and got.number == number
    sue = await desk.env.user_id("sue")
    assert (await desk.messages(number))[-1]["author_id"] == sue
    assert (await desk.events(number, "email_received"))[-1]["actor_id"] == sue
    # a customer user of another customer is not allowed; once subscribed, it is
    other = await desk.env.customer("globex")
    await desk.env.user("gina", is_staff=False, customer_id=other)
    await desk.env.db.execute("UPDATE rc_user SET email = {} WHERE login = 'gina'", "gina@globex.example")
    refused = await desk.receive(mail("gina@globex.example", f"[{number}] Logo update", "Hello?"))
    assert refused.outcome == "created" and refused.number != number
    order_id = await desk.env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
    await desk.env.db.execute("INSERT INTO rc_subscription (work_order_id, user_id) VALUES ({}, {})", order_id,
                              await desk.env.user_id("gina"))
    allowed = await desk.receive(mail("gina@globex.example", f"[{number}] Logo update", "Hello again"))
    assert allowed.outcome == "threaded" and allowed.number == number


async def test_subscribers_get_a_copy_of_a_customers_mail(desk: Desk) -> None:
    number = str((await desk.receive(mail("anna@acme.example", "Need a report"))).number)
    order_id = await desk.env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
    await desk.env.db.execute("INSERT INTO rc_subscription (work_order_id, user_id) VALUES ({}, {})", order_id,
                              await desk.env.user_id("max"))
    await desk.receive(mail("anna@acme.example", f"[{number}] Need a report", "For March, please."))
    rows = await desk.env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")
    payloads = [json.loads(r["payload"]) if isinstance(r["payload"], str) else r["payload"] for r in rows]
    assert [p["to"] for p in payloads] == [["max@ours.example"]]
    assert "For March, please." in payloads[0]["body"] and payloads[0]["automatic"] is True


# -- loop protection --------------------------------------------------------------------------------

AUTO_HEADERS = [
    {"Auto_Submitted": "auto-replied"},
    {"Auto_Submitted": "auto-generated"},
    {"Precedence": "bulk"},
    {"Precedence": "junk"},
    {"Precedence": "list"},
    {"X_Autoreply": "yes"},
    {"X_Auto_Response_Suppress": "All"},
    {"List_Id": "<news.acme.example>"},
]


@pytest.mark.parametrize("headers", AUTO_HEADERS, ids=lambda h: next(iter(h)))
def test_mail_from_machines_is_recognised(headers: dict[str, str]) -> None:
    received = parse(mail("anna@acme.example", "Out of office", **headers))
    assert received.auto is True and received.bounce is False and received.why_auto


def test_ordinary_mail_and_auto_submitted_no_are_not_automatic() -> None:
    assert parse(mail("anna@acme.example", "Hi")).auto is False
    assert parse(mail("anna@acme.example", "Hi", Auto_Submitted="no")).auto is False


def bounce(number: str) -> bytes:
    """A delivery status notification, as an MTA sends it."""
    report = EmailMessage(policy=SMTP)
    report["From"] = "Mail Delivery System <MAILER-DAEMON@mx.mailhost.example>"
    report["To"] = OURS
    report["Subject"] = f"Undelivered Mail Returned to Sender [{number}]"
    report["References"] = root_id(number)
    report.set_content("This is the mail system. Your message could not be delivered.")
    report.make_mixed()
    status = email.message_from_bytes(b"Content-Type: message/delivery-status\r\n\r\n"
                                      b"Reporting-MTA: dns; mx.mailhost.example\r\n\r\n"
                                      b"Final-Recipient: rfc822; gone@acme.example\r\nAction: failed\r\n"
                                      b"Status: 5.1.1\r\n", policy=default)
    report.attach(status)
    raw = report.as_bytes().replace(b"multipart/mixed", b"multipart/report; report-type=delivery-status", 1)
    return raw


async def test_auto_replies_stay_on_the_thread_flagged_and_bounces_start_nothing(desk: Desk) -> None:
    number = str((await desk.receive(mail("anna@acme.example", "Website down"))).number)
    # her out-of-office answers our reply: kept on the thread, marked automatic, copied to nobody
    ooo = await desk.receive(mail("anna@acme.example", "Out of office", "Back on Monday.",
                                  Auto_Submitted="auto-replied", In_Reply_To=root_id(number)))
    assert ooo.outcome == "threaded" and ooo.auto is True and ooo.number == number
    event = (await desk.events(number, "email_received"))[-1]
    assert event["after"]["auto"] is True
    assert (await desk.messages(number))[-1]["headers"]["auto"] is True
    # machine mail without a thread still becomes an order (monitoring alerts), flagged automatic
    alert = await desk.receive(mail("alerts@monitor.example", "Site down", Auto_Submitted="auto-generated"))
    assert alert.outcome == "created" and alert.auto is True
    assert (await desk.events(str(alert.number), "email_received"))[0]["after"]["auto"] is True
    # a bounce from a stranger's MTA: parsed as such, attached to nothing, creates nothing, kept raw
    raw = bounce(number)
    parsed = parse(raw)
    assert parsed.bounce and parsed.auto
    count = len(await desk.orders())
    got = await desk.receive(raw)
    assert got.outcome == "ignored" and got.auto is True and "bounce" in str(got.detail)
    assert len(await desk.orders()) == count
    kept = await desk.env.db.fetch_value("SELECT raw_key FROM rc_inbound_mail WHERE outcome = 'ignored'")
    with desk.files.storage.open(str(kept)) as stored:
        assert stored.read() == raw
    assert await desk.env.db.fetch_value("SELECT COUNT(*) AS n FROM rc_outbox") == 0


async def test_mail_from_our_own_address_is_ignored(desk: Desk) -> None:
    got = await desk.receive(mail(f"The Desk <{OURS.upper()}>", "[RQ-00001] Your request"))
    assert got.outcome == "ignored" and "own address" in str(got.detail)
    assert await desk.orders() == []


async def test_a_sender_over_the_rate_limit_is_kept_but_starts_nothing(desk: Desk) -> None:
    outcomes = [(await desk.receive(mail("flood@spam.example", f"Mail {i}"))).outcome for i in range(7)]
    assert outcomes == ["created"] * 5 + ["limited"] * 2
    assert len(await desk.orders()) == 5
    rows = await desk.env.db.fetch("SELECT outcome, raw_key FROM rc_inbound_mail WHERE outcome = 'limited'")
    assert len(rows) == 2 and all(r["raw_key"] for r in rows)
    # another sender is not limited
    assert (await desk.receive(mail("calm@acme.example", "Hello"))).outcome == "created"
    assert duration_span("1d2h3m").total_seconds() == 93780 and duration_span("1h").total_seconds() == 3600


async def test_the_same_mail_delivered_twice_at_once_makes_one_order(desk: Desk) -> None:
    raw = mail("anna@acme.example", "Twice at once", ident="<race@acme.example>")
    results = await asyncio.gather(desk.receive(raw), desk.receive(raw))
    assert sorted(r.outcome for r in results) == ["created", "duplicate"]
    assert len(await desk.orders()) == 1 and len({r.number for r in results}) == 1


async def test_mail_the_template_cannot_take_is_kept_as_failed(database_url: str, tmp_path: Path) -> None:
    files = {**WORKSPACE, "defs.yaml": WORKSPACE["defs.yaml"].replace(
        "{name: notes, type: text, label: Notes}", "{name: notes, type: text, label: Notes, required: true}")}
    root = write_workspace(tmp_path / "strict", files)
    env = await make_env(root, database_url)
    try:
        desk = Desk(env, root)
        raw = mail("anna@acme.example", "Needs notes")
        got = await desk.receive(raw)
        assert got.outcome == "failed" and "fields.notes" in str(got.detail)
        assert await desk.orders() == [] and await env.db.fetch_value("SELECT COUNT(*) AS n FROM rc_message") == 0
        kept = await env.db.fetch_value("SELECT raw_key FROM rc_inbound_mail WHERE outcome = 'failed'")
        with desk.files.storage.open(str(kept)) as stored:
            assert stored.read() == raw
        assert (await desk.receive(raw)).outcome == "duplicate"  # looked at once
    finally:
        await env.db.close()


# -- reading the mail -------------------------------------------------------------------------------


async def test_attachments_are_kept_checked_and_counted(desk: Desk) -> None:
    files = [("report.pdf", PDF, "application/pdf"), ("../../etc/shot.png", PNG, "image/png"),
             ("tool.exe", b"MZ\x90\x00" + bytes(range(256)) * 4, "application/octet-stream"),
             ("a.pdf", PDF, "application/pdf"), ("b.pdf", PDF, "application/pdf")]
    got = await desk.receive(mail("anna@acme.example", "Files", attachments=files))
    rows = await desk.env.db.fetch("SELECT filename, content_type, size, message_id, work_order_id FROM rc_attachment "
                                   "ORDER BY id")
    assert [(r["filename"], r["content_type"]) for r in rows] == [("report.pdf", "application/pdf"),
                                                                   ("shot.png", "image/png")]
    assert {r["message_id"] for r in rows} == {got.message}
    [message] = await desk.messages(str(got.number))
    assert message["headers"]["refused_attachments"] == ["tool.exe"]  # its type is not accepted
    assert message["headers"]["dropped_attachments"] == ["a.pdf", "b.pdf"]  # beyond max_attachments (3)
    assert (await desk.events(str(got.number), "email_received"))[0]["after"]["attachments"] == ["report.pdf",
                                                                                                 "shot.png"]


def _many(count: int) -> bytes:
    """A mail with ``count`` small attachments, written by hand (a mail program would take long)."""
    parts = "".join(f'--b0\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename="f{i}.txt"'
                    "\r\n\r\nx\r\n" for i in range(count))
    return ("From: anna@acme.example\r\nSubject: Many\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b0"\r\n\r\n--b0\r\nContent-Type: text/plain\r\n\r\n'
            f"body\r\n{parts}--b0--\r\n").encode()


def test_a_thousand_attachments_are_counted_not_kept() -> None:
    received = parse(_many(1000), max_attachments=3)
    assert received.text == "body"
    assert [p.filename for p in received.attachments] == ["f0.txt", "f1.txt", "f2.txt"]
    assert len(received.dropped) == 200 and received.dropped[0] == "f3.txt"
    with pytest.raises(Unreadable, match="parts"):
        parse(_many(2500))


def test_an_html_body_becomes_text_without_scripts() -> None:
    html = ("<html><head><style>p{color:red}</style><script>alert('x')</script></head><body>"
            "<p>Hello <b>there</b> &amp; welcome</p><img src=x onerror=alert(1)><p>Line two</p></body></html>")
    raw = mail("anna@acme.example", "HTML", html=html)
    message = email.message_from_bytes(raw, policy=default)
    assert isinstance(message, EmailMessage)
    only_html = EmailMessage(policy=SMTP)
    for name in ("From", "To", "Subject"):
        only_html[name] = message[name]
    only_html.set_content(html, subtype="html")
    text = parse(only_html.as_bytes()).text
    assert text == "Hello there & welcome\n\nLine two"
    assert "alert" not in text and "<" not in text and "color" not in text
    assert html_text("<p>a<script>b</script>c</p>") == "ac"
    # with both, the plain text wins
    assert parse(raw).text == "Hello,\nplease help."


def test_unreadable_and_oversized_mail_is_refused() -> None:
    for raw in (b"", b"   \r\n", b"just some words without any header\r\n",
                b"Subject: no sender\r\n\r\nbody\r\n", b"From: not an address\r\nSubject: x\r\n\r\nbody\r\n"):
        with pytest.raises(Unreadable):
            parse(raw)


async def test_the_size_limit_applies_before_parsing(desk: Desk) -> None:
    with pytest.raises(MailTooLarge):
        await desk.receive(mail("anna@acme.example", "Big", "x" * 210_000))
    assert await desk.env.db.fetch_value("SELECT COUNT(*) AS n FROM rc_inbound_mail") == 0


async def test_line_breaks_in_a_subject_stay_one_header_line_in_any_reply(desk: Desk) -> None:
    evil = "=?utf-8?q?Help=0D=0ABcc:_victim@else.example=0D=0A=0D=0Abody?="
    raw = (f"From: anna@acme.example\r\nTo: {OURS}\r\nSubject: {evil}\r\nMessage-ID: <evil@acme.example>\r\n"
           "\r\nHello\r\n").encode()
    got = await desk.receive(raw)
    assert got.outcome == "created"
    [order] = await desk.orders()
    assert "\r" not in order["title"] and "\n" not in order["title"] and order["title"].startswith("Help")
    sue = await desk.env.actor("sue")
    await desk.env.rt.messages.reply(sue, str(got.number), "We are on it.")
    [row] = await desk.env.db.fetch("SELECT payload FROM rc_outbox")
    payload = Payload(**(json.loads(row["payload"]) if isinstance(row["payload"], str) else row["payload"]))
    wire = to_email(payload).as_bytes()
    headers = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert [h for h in headers if h.lower().startswith(b"bcc")] == []
    assert len([h for h in headers if h.startswith(b"Subject:")]) == 1
    assert payload.to == ["anna@acme.example"]


# -- the endpoint -----------------------------------------------------------------------------------


async def test_the_endpoint_over_http(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_INBOUND_TOKEN", TOKEN)
    root = write_workspace(tmp_path / "desk", WORKSPACE)
    users = {"sue": {"email": "sue@ours.example"}}
    async with served(root, database_url, users) as api:
        client = api.client
        url = "/api/inbound/email"
        raw = mail("anna@acme.example", "Broken", ident="<h1@acme.example>",
                   attachments=[("report.pdf", PDF, "application/pdf")])
        rfc822 = {"Content-Type": "message/rfc822"}
        tables = ("rc_work_order", "rc_message", "rc_event", "rc_inbound_mail", "rc_attachment", "rc_outbox")
        before = [await api.db.fetch(f"SELECT * FROM {t} ORDER BY id") for t in tables]
        for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Basic {TOKEN}"},
                        {"Authorization": api.auth("sue")["Authorization"]}):
            answer = await client.post(url, content=raw, headers={**rfc822, **headers})
            assert answer.status_code == 401, answer.text
        assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_inbound_mail") == 0
        good = {**rfc822, "Authorization": f"Bearer {TOKEN}"}
        too_big = await client.post(url, content=b"x" * 200_001, headers=good)
        assert too_big.status_code == 413 and too_big.json()["error"] == "too_large"
        unreadable = await client.post(url, content=b"this is not a mail", headers=good)
        assert unreadable.status_code == 400
        assert unreadable.json()["detail"] == "the mail has no headers"
        wrong_type = await client.post(url, content=raw, headers={**good, "Content-Type": "application/json"})
        assert wrong_type.status_code == 415
        assert [await api.db.fetch(f"SELECT * FROM {t} ORDER BY id") for t in tables] == before  # nothing written
        created = await client.post(url, content=raw, headers=good)
        assert created.status_code == 201, created.text
        number = created.json()["number"]
        assert created.json()["outcome"] == "created" and number == "RQ-00001"
        again = await client.post(url, content=raw, headers=good)
        assert again.status_code == 202 and again.json() == {**again.json(), "outcome": "duplicate", "number": number}
        reply = mail("anna@acme.example", "Re: Broken", "More detail.", In_Reply_To=root_id(number))
        threaded = await client.post(url, content=reply, headers=good)
        assert threaded.status_code == 202 and threaded.json()["outcome"] == "threaded"
        # staff read the thread and download the attachment through the API
        thread = await api.get("sue", f"/api/orders/{number}/messages")
        assert [m["kind"] for m in thread.json()] == ["email", "email"]
        files = (await api.get("sue", f"/api/orders/{number}/attachments")).json()
        assert [f["filename"] for f in files] == ["report.pdf"] and files[0]["message_id"] == thread.json()[0]["id"]
        download = await api.get("sue", files[0]["download"])
        assert download.status_code == 200 and download.content == PDF
        assert download.headers["content-disposition"].startswith("attachment;")


async def test_the_endpoint_is_closed_without_a_token_setting(database_url: str, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_INBOUND_TOKEN", raising=False)
    root = write_workspace(tmp_path / "desk", WORKSPACE)
    async with served(root, database_url, {}) as api:
        raw = mail("anna@acme.example", "Hi")
        for token in ("", "Bearer ", "Bearer anything"):
            answer = await api.client.post("/api/inbound/email", content=raw,
                                           headers={"Content-Type": "message/rfc822", "Authorization": token})
            assert answer.status_code == 401
        assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0


async def test_the_order_page_shows_a_received_mail_as_text(database_url: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_INBOUND_TOKEN", TOKEN)
    root = write_workspace(tmp_path / "desk", WORKSPACE)
    async with browsing(root, database_url, {"sue": {"password": "correct horse"}}) as web:  # type: ignore[arg-type]
        await web.sign_in("sue")
        raw = mail("Anna <anna@acme.example>", "<b>Broken</b>", "<script>alert(1)</script> see <img src=x>",
                   html="<p onclick=alert(2)>html part</p>")
        answer = await web.api.client.post("/api/inbound/email", content=raw, headers={
            "Content-Type": "message/rfc822", "Authorization": f"Bearer {TOKEN}"})
        number = answer.json()["number"]
        section = await web.get("sue", f"/orders/{number}/thread", htmx=True)
        assert section.status_code == 200
        text = section.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt; see &lt;img src=x&gt;" in text
        assert "<script>alert(1)" not in text and "<img src=x" not in text and "<b>Broken" not in text
        assert "&lt;b&gt;Broken&lt;/b&gt;" in text and "anna@acme.example" in text and "Email received" in text


async def test_files_are_uploaded_to_an_order_through_the_api(database_url: str, tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "desk", WORKSPACE)
    async with served(root, database_url, {"sue": {}, "outsider": {}}) as api:
        created = await api.post("sue", "/api/templates/request/orders", {"title": "Files please"})
        assert created.status_code == 201, created.text
        number = created.json()["number"]
        url = f"/api/orders/{number}/attachments"
        sent = await api.client.post(url, headers=api.auth("sue"), files=[
            ("file", ("report.pdf", PDF, "application/pdf")), ("file", ("../shot.png", PNG, "text/plain"))])
        assert sent.status_code == 201, sent.text
        assert [(f["filename"], f["content_type"]) for f in sent.json()] == [("report.pdf", "application/pdf"),
                                                                              ("shot.png", "image/png")]
        download = await api.get("sue", sent.json()[0]["download"])
        assert download.content == PDF
        # one refused file keeps none; someone who cannot see the order gets 404; no file is 422
        refused = await api.client.post(url, headers=api.auth("sue"), files=[
            ("file", ("ok.pdf", PDF, "application/pdf")), ("file", ("page.html", b"<html><script>x</script>", "image/png"))])
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "file"
        hidden = await api.client.post(url, headers=api.auth("outsider"), files=[("file", ("a.pdf", PDF, "application/pdf"))])
        assert hidden.status_code == 404
        empty = await api.client.post(url, headers=api.auth("sue"), data={"note": "x"}, files=[])
        assert empty.status_code in (400, 422)
        assert [f["filename"] for f in (await api.get("sue", url)).json()] == ["report.pdf", "shot.png"]


# -- the agency example, end to end ----------------------------------------------------------------

AGENCY = Path(__file__).resolve().parent.parent / "examples" / "contract-agency"


def _agency(tmp_path: Path, port: int) -> Path:
    """A copy of the agency example whose mail goes to the test's SMTP server on 127.0.0.1."""
    root = tmp_path / "contract-agency"
    shutil.copytree(AGENCY, root)
    settings = root / "routecard.yaml"
    text = settings.read_text(encoding="utf-8")
    smtp = re.search(r"  smtp:\n(    .*\n)+", text)
    assert smtp is not None
    text = text.replace(smtp[0], f"  smtp:\n    host: 127.0.0.1\n    port: {port}\n    security: none\n")
    settings.write_text(text, encoding="utf-8")
    return root


async def test_agency_mail_from_a_customer_is_routed_and_confirmed_exactly_once(
        database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("engine.automation.rules", reason="needs the rules runtime (engine/automation/rules.py)")
    monkeypatch.setenv("FERNWOOD_INBOUND_TOKEN", TOKEN)
    smtp = SmtpServer()
    smtp.start()
    try:
        root = _agency(tmp_path, smtp.port)
        async with served(root, database_url, {"rachel.morgan": {"email": "rachel@fernwood.example"}}) as api:
            headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {TOKEN}"}
            tom = "Tom Hale <tom.hale@acme-logistics.example>"
            created = await api.client.post("/api/inbound/email", headers=headers, content=mail(
                tom, "Basket total is wrong in the shop", "Since this morning.", ident="<t1@acme-logistics.example>"))
            assert created.status_code == 201, created.text
            number = created.json()["number"]
            [filed] = await api.db.fetch(
                "SELECT c.name AS customer, p.name AS project, w.group_name, w.sender FROM rc_work_order w "
                "JOIN rc_customer c ON c.id = w.customer_id JOIN rc_project p ON p.id = w.project_id "
                "WHERE w.number = {}", number)
            assert filed == {"customer": "acme_logistics", "project": "web_shop", "group_name": "development",
                             "sender": "tom.hale@acme-logistics.example"}
            # his out-of-office answers our confirmation; a reply of his own follows: neither is confirmed again
            ooo = mail(tom, f"Automatic reply: [{number}] We have your request", "I am away until Monday.",
                       Auto_Submitted="auto-replied", In_Reply_To=root_id_of("contract-agency", number))
            assert (await api.client.post("/api/inbound/email", headers=headers, content=ooo)).json()["outcome"] \
                == "threaded"
            reply = mail(tom, f"Re: [{number}] We have your request", "One more detail.")
            assert (await api.client.post("/api/inbound/email", headers=headers, content=reply)).json()["outcome"] \
                == "threaded"
            # an auto-responder writing afresh still files a request, but gets no answer
            robot = await api.client.post("/api/inbound/email", headers=headers, content=mail(
                "noreply@acme-logistics.example", "Weekly shop report", Auto_Submitted="auto-generated"))
            assert robot.status_code == 201 and robot.json()["auto"] is True
            workspace = open_workspace(root)
            report = await OutboxWorker(api.db, lambda: workspace.settings, timeout=5.0).run_once()
            assert report.failed == 0
            confirmations = smtp.to("tom.hale@acme-logistics.example")
            assert len(confirmations) == 1
            assert confirmations[0]["Subject"] == f"[{number}] We have your request"
            assert confirmations[0]["Auto-Submitted"] == "auto-generated"
            assert smtp.to("noreply@acme-logistics.example") == []
            thread = await api.get("rachel.morgan", f"/api/orders/{number}/messages")
            assert [m["kind"] for m in thread.json()].count("email") == 3
    finally:
        smtp.stop()


def root_id_of(workspace: str, number: str) -> str:
    return thread_id(workspace, number, "desk@fernwood.example")
