"""Files sent with replies, comments and follow-ups, through a real SMTP server, on SQLite and PostgreSQL.

The received MIME parts carry the stored bytes, a safe filename and the detected type;
the payload in the outbox names storage keys only; a worker without a file store
leaves such mail for later; refused files leave nothing behind.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import msgspec
import pytest

from comms_helpers import SmtpServer, mail_workspace, worker
from engine.comms.mail import Payload
from engine.errors import Invalid
from engine.runtime.attachments import Attachments, QuotaExceeded, Upload
from engine.runtime.state import now
from test_storage import PDF, PNG
from tests.runtime_helpers import ORDER, Env, make_env

CONTACT = "kunde@example.org"
PER_MAIL = 4000


@pytest.fixture
async def env(tmp_path: Path, database_url: str, smtp: SmtpServer) -> AsyncIterator[Env]:
    root = mail_workspace(tmp_path, smtp.port)
    with (root / "routecard.yaml").open("a", encoding="utf-8") as settings:
        settings.write(f"attachments:\n  max_per_mail: {PER_MAIL}\n  daily_quota: 20000\n")
    made = await make_env(root, database_url)
    await made.db.execute("UPDATE rc_user SET email = login || {}", "@staff.example")
    made.root = root  # type: ignore[attr-defined]
    try:
        yield made
    finally:
        await made.db.close()


def files_of(env: Env) -> Attachments:
    return Attachments.on_disk(env.rt, env.root)  # type: ignore[attr-defined]


def stored(env: Env) -> list[Path]:
    folder = env.root / ".routecard" / "files"  # type: ignore[attr-defined]
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def _order(env: Env) -> str:
    actor = await env.actor("lukas.maier")
    order = await env.rt.create(actor, "customer_order", {"title": "Teapots", "fields": {**ORDER,
                                                                                        "invoice_email": CONTACT}})
    if order["owner"] != "lukas.maier":  # round robin: the supervisor gives it to lukas, who then may edit it
        await env.rt.assign(await env.actor("anna.gruber"), order["number"], order["version"], "lukas.maier")
    return str(order["number"])


async def _staged_ids(env: Env, login: str, *uploads: Upload) -> list[int]:
    """Files stored and recorded for ``login`` but not yet tied to an order (as the forms do before sending)."""
    files = files_of(env)
    staged = await files.stage(list(uploads))
    async with files.saving(staged):
        return await files.insert(await env.actor(login), staged)


def _parts(message: EmailMessage) -> list[tuple[str | None, str, bytes]]:
    out = []
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        out.append((part.get_filename(), part.get_content_type(), payload))
    return out


async def _snapshot(env: Env) -> list[Any]:
    tables = ("rc_message", "rc_outbox", "rc_event", "rc_attachment", "rc_work_order")
    return [await env.db.fetch(f"SELECT * FROM {t} ORDER BY id") for t in tables]


async def test_a_reply_carries_its_files_as_mime_parts_with_the_stored_bytes(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    sophie = await env.actor("sophie.huber")
    await env.rt.messages.subscribe(sophie, number)
    earlier = await files_of(env).store(lukas, number, Upload(PDF, 'in"voice\r\nBcc: x@evil.example.pdf'))
    [fresh] = await _staged_ids(env, "lukas.maier", Upload(PNG, "../../Straße \u202eraw.png"))
    text = "Gr\u00fc\u00dfe\r\nplain text, no BOM\n".encode()
    [note] = await _staged_ids(env, "lukas.maier", Upload(text, "note.txt"))
    reply = await env.rt.messages.reply(lukas, number, "Your invoice and a photo.",
                                        attachments=[earlier["id"], fresh, note])
    assert [(f["filename"], f["content_type"], f["size"]) for f in reply["attachments"]] == [
        ("in_voiceBcc_ x@evil.example.pdf", "application/pdf", len(PDF)),
        ("Straße raw.png", "image/png", len(PNG)), ("note.txt", "text/plain", len(text))]
    assert reply["attachments"][0]["download"] == f"/api/attachments/{earlier['id']}"
    rows = await env.db.fetch("SELECT id, work_order_id, message_id FROM rc_attachment ORDER BY id")
    assert {r["message_id"] for r in rows} == {reply["id"]} and len({r["work_order_id"] for r in rows}) == 1
    # the outbox holds storage keys, never the bytes
    payloads = [msgspec.json.decode(r["payload"], type=Payload)
                for r in await env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")]
    assert len(payloads) == 2 and all(len(p.attachments) == 3 for p in payloads)
    raw = "".join(str(r["payload"]) for r in await env.db.fetch("SELECT payload FROM rc_outbox"))
    assert base64.b64encode(PDF[:30]).decode()[:20] not in raw and "%PDF" not in raw
    report = await worker(env, storage=files_of(env).storage).run_once()
    assert (report.sent, report.failed) == (2, 0)
    [to_customer] = smtp.to(CONTACT)
    [copy] = smtp.to("sophie.huber@staff.example")
    expected = [("in_voiceBcc_ x@evil.example.pdf", "application/pdf", PDF), ("Straße raw.png", "image/png", PNG),
                ("note.txt", "text/plain", text)]
    assert _parts(to_customer) == expected and _parts(copy) == expected
    assert to_customer.get_body(("plain",)).get_content().startswith("Your invoice and a photo.")  # type: ignore[union-attr]
    assert "Bcc" not in to_customer and all("\r" not in (n or "") for n, _, _ in _parts(to_customer))
    event = [e for e in await env.rt.events(lukas, number) if e["kind"] == "reply_added"][0]
    assert [f["filename"] for f in event["after"]["attachments"]] == [f for f, _, _ in expected]


async def test_files_that_may_not_go_are_refused_and_nothing_is_written(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    other = await _order(env)
    lukas = await env.actor("lukas.maier")
    anna = await env.actor("anna.gruber")
    foreign = await files_of(env).store(lukas, other, Upload(PDF, "other.pdf"))
    by_sophie = await files_of(env).store(anna, number, Upload(PDF, "sophie.pdf"))
    [hers] = await _staged_ids(env, "sophie.huber", Upload(PNG, "unsent.png"))
    big = await _staged_ids(env, "lukas.maier", Upload(PNG + b"\0" * 2500, "a.png"), Upload(PDF + b" " * 2500, "b.pdf"))
    sent = await env.rt.messages.comment(lukas, number, "first", attachments=[by_sophie["id"]], client_viewable=True)
    assert [f["filename"] for f in sent["attachments"]] == ["sophie.pdf"]
    mine = await files_of(env).store(lukas, number, Upload(PNG, "mine.png"))
    before = await _snapshot(env)
    cases: list[tuple[list[Any], bool, str, str]] = [
        ([foreign["id"]], True, "attachments.0", f"not a file of work order {number}"),
        ([hers], True, "attachments.0", f"not a file of work order {number}"),  # staged by someone else
        ([by_sophie["id"]], True, "attachments.0", "sent with another message already"),
        ([999999], True, "attachments.0", "not a file"),
        (big, True, "attachments", f"one message carries at most {PER_MAIL / 1024:.1f} KB"),
        (["1"], True, "attachments.0", "expected a file id"),
        (list(range(1, 30)), True, "attachments", "at most 20 files"),
    ]
    for ids, public, field, words in cases:
        with pytest.raises(Invalid) as refused:
            await env.rt.messages.comment(lukas, number, "with files", attachments=ids, client_viewable=public)
        assert refused.value.errors[0]["field"] == field and words in refused.value.errors[0]["message"], ids
    assert await _snapshot(env) == before
    # someone else's file cannot go on a private message (it would vanish for the customer)
    other_file = await files_of(env).store(anna, number, Upload(PNG, "s.png"))
    before = await _snapshot(env)
    with pytest.raises(Invalid) as private:
        await env.rt.messages.comment(lukas, number, "private", attachments=[other_file["id"]])
    assert "only a message the customer may read" in private.value.errors[0]["message"]
    assert await _snapshot(env) == before
    # an upload field's file stays with the field
    current = await env.rt.get(lukas, number)
    await env.rt.update(lukas, number, current["version"], {"fields": {"delivery_note": [mine["id"]]}})
    with pytest.raises(Invalid) as held:
        await env.rt.messages.comment(lukas, number, "note", attachments=[mine["id"]], client_viewable=True)
    assert "value of the field `delivery_note`" in held.value.errors[0]["message"]


async def test_a_worker_without_a_file_store_leaves_the_mail_and_a_lost_file_fails_it(
        env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    first = await files_of(env).store(lukas, number, Upload(PDF, "a.pdf"))
    await env.rt.messages.reply(lukas, number, "with a file", attachments=[first["id"]])
    without = await worker(env).run_once()
    assert (without.sent, without.retrying, without.failed) == (0, 1, 0) and smtp.received == []
    [row] = await env.db.fetch("SELECT state, last_error FROM rc_outbox")
    assert row["state"] == "pending" and "no file store" in row["last_error"]
    later = worker(env, storage=files_of(env).storage, clock=lambda: now() + dt.timedelta(hours=1))
    assert (await later.run_once()).sent == 1
    assert _parts(smtp.to(CONTACT)[0]) == [("a.pdf", "application/pdf", PDF)]
    # a file gone from the store: that mail fails for good, the others still go
    second = await files_of(env).store(lukas, number, Upload(PNG, "b.png"))
    await env.rt.messages.reply(lukas, number, "lost file", attachments=[second["id"]])
    await env.rt.messages.reply(lukas, number, "no file")
    for path in stored(env):
        if path.name == (await env.db.fetch_value("SELECT storage_key FROM rc_attachment WHERE id = {}", second["id"])):
            path.unlink()
    report = await worker(env, storage=files_of(env).storage).run_once()
    assert (report.sent, report.failed) == (1, 1)
    states = {m["body"]: m["delivery_state"] for m in await env.rt.messages.thread(lukas, number)}
    assert states == {"with a file": "sent", "lost file": "failed", "no file": "sent"}


async def test_the_daily_quota_refuses_uploads_beyond_it_and_keeps_nothing(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    files = files_of(env)
    await files.store(lukas, number, Upload(PNG + b"\0" * 15000, "big.png"))
    count = len(stored(env))
    with pytest.raises(QuotaExceeded) as refused:
        await files.store(lukas, number, Upload(PDF + b" " * 5000, "more.pdf"))
    assert refused.value.status == 413 and refused.value.errors[0]["field"] == "file"
    assert "daily quota of 19.5 KB" in refused.value.errors[0]["message"]
    assert len(stored(env)) == count
    assert await env.db.fetch_value("SELECT COUNT(*) FROM rc_attachment") == 1
    # another user has a quota of their own; uploads older than 24 hours no longer count
    assert (await files.store(await env.actor("anna.gruber"), number, Upload(PDF, "s.pdf")))["size"] == len(PDF)
    await env.db.execute("UPDATE rc_attachment SET created_at = {}", now() - dt.timedelta(hours=25))
    assert (await files.store(lukas, number, Upload(PDF, "next.pdf")))["filename"] == "next.pdf"
