"""Threads and outgoing mail through a real SMTP server, on SQLite and PostgreSQL.

Who gets what (client-viewable rules), status notices to the default CC, mail kept while
the SMTP server is down and delivered exactly once when it is back, header injection,
template injection, and what a customer sees of a thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from comms_helpers import SmtpServer, mail_workspace, worker
from engine.errors import Forbidden, Invalid
from engine.runtime.state import now
from tests.runtime_helpers import ORDER, Env, make_env

CONTACT = "kunde@example.org"
CC = "auftraege@lindner-versand.example"


async def _env(tmp_path: Path, database_url: str, port: int | None) -> Env:
    env = await make_env(mail_workspace(tmp_path, port), database_url)
    await env.db.execute("UPDATE rc_user SET email = login || {}", "@staff.example")
    return env


@pytest.fixture
async def env(tmp_path: Path, database_url: str, smtp: SmtpServer) -> AsyncIterator[Env]:
    made = await _env(tmp_path, database_url, smtp.port)
    try:
        yield made
    finally:
        await made.db.close()


async def _order(env: Env, **extra: Any) -> str:
    actor = await env.actor("lukas.maier")
    data = {"title": "Teapot order", "fields": {**ORDER, "invoice_email": CONTACT}, **extra}
    order = await env.rt.create(actor, "customer_order", data)
    return str(order["number"])


async def _snapshot(env: Env) -> list[Any]:
    tables = ("rc_message", "rc_outbox", "rc_event", "rc_subscription", "rc_work_order")
    return [await env.db.fetch(f"SELECT * FROM {t} ORDER BY id") for t in tables]


async def test_client_viewable_comment_reaches_subscribers_and_customer_private_one_does_not(
        env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    messages = env.rt.messages
    sophie = await env.actor("sophie.huber")
    assert await messages.subscribe(sophie, number) is True
    lukas = await env.actor("lukas.maier")
    public = await messages.comment(lukas, number, "Your parcel leaves today.", client_viewable=True,
                                    subscribe=True)
    assert public["delivery_state"] == "queued" and public["kind"] == "comment" and public["author"] == "lukas.maier"
    private = await messages.comment(lukas, number, "Customer was rude on the phone.")
    assert await messages.subscribers(lukas, number) == ["lukas.maier", "sophie.huber"]
    report = await worker(env).run_once()
    assert report.sent == 3 and report.failed == 0
    to_customer = smtp.to(CONTACT)
    assert len(to_customer) == 1
    assert to_customer[0].get_content().startswith(f"lukas.maier commented on work order {number} (Teapot order):")
    assert all("rude" not in m.get_content() for m in to_customer)
    assert "Your parcel leaves today." in to_customer[0].get_content()
    to_sophie = smtp.to("sophie.huber@staff.example")
    assert len(to_sophie) == 2 and "rude" in to_sophie[1].get_content()
    assert smtp.to("lukas.maier@staff.example") == []  # no copy of one's own message
    assert to_customer[0]["Subject"].startswith(f"[{number}] ")
    assert to_customer[0]["From"] == "Lindner Versand <service@lindner-versand.example>"
    thread = await messages.thread(lukas, number)
    assert [(m["body"][:4], m["delivery_state"]) for m in thread] == [("Your", "sent"), ("Cust", "sent")]
    trail = [e["kind"] for e in await env.rt.events(lukas, number)]
    assert trail.count("comment_added") == 2 and "subscribed" in trail


async def test_status_change_mails_the_default_cc(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    owner = (await env.rt.get(await env.actor("lukas.maier"), number))["owner"]
    moved = await env.work_step(owner, number)
    assert moved["step"] == "payment_check"
    rows = await env.db.fetch("SELECT idempotency_key, message_id FROM rc_outbox")
    assert len(rows) == 1 and rows[0]["message_id"] is None
    await worker(env).run_once()
    [notice] = smtp.to(CC)
    assert notice["Subject"] == f"[{number}] Teapot order: moved to step Check payment"
    assert "Status: open" in notice.get_content() and f"/orders/{number}" in notice.get_content()
    assert notice["Auto-Submitted"] == "auto-generated"
    assert notice["References"].startswith("<routecard.ecommerce-workorders.")
    # a cancel is a status change too
    boss = await env.user("boss", roles=("administrator",))
    current = await env.rt.get(boss, number)
    await env.rt.cancel(boss, number, current["version"], "duplicate")
    await worker(env).run_once()
    assert [m["Subject"].split(": ")[-1] for m in smtp.to(CC)] == ["moved to step Check payment", "was cancelled"]


async def test_mail_waits_while_the_server_is_down_and_arrives_exactly_once(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    smtp.stop()
    await env.rt.messages.reply(lukas, number, "We received your order.")
    await env.rt.messages.reply(lukas, number, "It ships tomorrow.", quote=True)
    outbox = worker(env)
    first = await outbox.run_once()
    assert (first.sent, first.retrying) == (0, 2)
    assert {m["delivery_state"] for m in await env.rt.messages.thread(lukas, number)} == {"retrying"}
    assert (await outbox.run_once()).retrying == 0  # not due yet: backoff
    rows = await env.db.fetch("SELECT state, attempts, last_error FROM rc_outbox")
    assert all(r["state"] == "pending" and r["attempts"] == 1 and r["last_error"] for r in rows)
    smtp.start()
    later = worker(env, clock=lambda: now() + dt.timedelta(hours=1))
    again = worker(env, clock=lambda: now() + dt.timedelta(hours=1))
    assert (await later.run_once()).sent == 2
    assert (await again.run_once()).sent == 0 and (await later.run_once()).sent == 0
    assert sorted(smtp.ids().values()) == [1, 1]
    first_mail, second = smtp.to(CONTACT)
    assert "> We received your order." in second.get_content()
    assert second["In-Reply-To"].startswith("<routecard.ecommerce-workorders.")
    assert second["References"].split()[0] == first_mail["References"].split()[0]  # one thread per work order
    assert {m["delivery_state"] for m in await env.rt.messages.thread(lukas, number)} == {"sent"}


async def test_a_mail_that_keeps_failing_is_given_up(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    smtp.stop()
    await env.rt.messages.reply(await env.actor("lukas.maier"), number, "Hello")
    clock = now()
    outbox = worker(env, max_attempts=2, clock=lambda: clock)
    assert (await outbox.run_once()).retrying == 1
    clock += dt.timedelta(hours=1)
    assert (await outbox.run_once()).failed == 1
    assert (await env.db.fetch("SELECT state FROM rc_outbox"))[0]["state"] == "failed"
    assert (await env.rt.messages.thread(await env.actor("lukas.maier"), number))[0]["delivery_state"] == "failed"


@pytest.mark.parametrize("bad", [
    {"subject": "Hi\r\nBcc: victim@example.org"},
    {"to": "kunde@example.org\r\nBcc: victim@example.org"},
    {"to": ["kunde@example.org", "x@example.org\nBcc: y@example.org"]},
    {"body": ""},
    {"body": "x" * 100_001},
])
async def test_header_injection_and_bad_input_are_refused_and_nothing_is_written(
        env: Env, smtp: SmtpServer, bad: dict[str, Any]) -> None:
    number = await _order(env)
    before = await _snapshot(env)
    with pytest.raises(Invalid) as refused:
        await env.rt.messages.reply(await env.actor("lukas.maier"), number, **{"body": "Hello", **bad})
    assert {e["field"].split(".")[0] for e in refused.value.errors} == set(bad)
    assert await _snapshot(env) == before
    await worker(env).run_once()
    assert smtp.received == []


async def test_template_syntax_in_user_text_arrives_literally(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env, title="{{ 7*7 }} teapots")
    lukas = await env.actor("lukas.maier")
    await env.rt.messages.reply(lukas, number, "Total: {{7*7}} {% for x in range(3) %}x{% endfor %}",
                                subject="{{ config }}")
    await worker(env).run_once()
    [mail] = smtp.to(CONTACT)
    assert "Total: {{7*7}} {% for x in range(3) %}x{% endfor %}" in mail.get_content()
    assert "{{ 7*7 }} teapots" in mail.get_content() and "49" not in mail.get_content()
    assert mail["Subject"] == f"[{number}] {{{{ config }}}}"


async def test_a_customer_sees_only_client_viewable_messages(env: Env, smtp: SmtpServer) -> None:
    customer = await env.customer("acme")
    number = await _order(env, customer_id=customer)
    kunde = await env.user("kunde", is_staff=False, customer_id=customer)
    await env.db.execute("UPDATE rc_user SET email = {} WHERE login = 'kunde'", "portal@acme.example")
    lukas = await env.actor("lukas.maier")
    await env.rt.messages.subscribe(kunde, number)
    await env.rt.messages.comment(lukas, number, "internal: check credit", subscribe=True)
    await env.rt.messages.comment(lukas, number, "Thanks for your order", client_viewable=True)
    mine = await env.rt.messages.comment(kunde, number, "When will it arrive?", client_viewable=True)
    assert mine["client_viewable"] is True
    assert [m["body"] for m in await env.rt.messages.thread(kunde, number)] == [
        "Thanks for your order", "When will it arrive?"]
    assert len(await env.rt.messages.thread(lukas, number)) == 3
    assert await env.rt.messages.subscribers(kunde, number) == ["kunde"]
    with pytest.raises(Forbidden):
        await env.rt.messages.comment(kunde, number, "psst", client_viewable=False)
    with pytest.raises(Forbidden):
        await env.rt.messages.reply(kunde, number, "mail someone")
    other = await env.user("stranger", is_staff=False, customer_id=await env.customer("other"))
    from engine.errors import NotFound
    with pytest.raises(NotFound):
        await env.rt.messages.thread(other, number)
    await worker(env).run_once()
    portal = smtp.to("portal@acme.example")
    assert [("Thanks" in m.get_content()) for m in portal] == [True]
    assert all("internal" not in m.get_content() for m in portal)
    assert any("When will it arrive?" in m.get_content() for m in smtp.to("lukas.maier@staff.example"))


async def test_comment_can_assign_and_needs_permission(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    anna = await env.actor("anna.gruber")
    done = await env.rt.messages.comment(anna, number, "Sophie, please call back", assign_to="sophie.huber")
    assert done["kind"] == "comment"
    assert (await env.rt.get(anna, number))["owner"] == "sophie.huber"
    before = await _snapshot(env)
    with pytest.raises(Invalid):
        await env.rt.messages.comment(anna, number, "to a stranger", assign_to="stefan.moser")
    outsider = await env.user("outsider", roles=("controlling",))
    with pytest.raises(Forbidden):
        await env.rt.messages.comment(outsider, number, "hi")
    assert await _snapshot(env) == before


async def test_without_smtp_settings_mail_stays_queued(tmp_path: Path, database_url: str) -> None:
    env = await _env(tmp_path, database_url, None)
    try:
        number = await _order(env)
        await env.rt.messages.reply(await env.actor("lukas.maier"), number, "Hello")
        report = await worker(env).run_once()
        assert report.waiting == 1 and report.sent == 0
        assert [r["state"] for r in await env.db.fetch("SELECT state FROM rc_outbox")] == ["pending"]
    finally:
        await env.db.close()


async def test_two_workers_claim_distinct_rows(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    for index in range(6):
        await env.rt.messages.reply(lukas, number, f"Mail {index}")
    one, two = worker(env, batch=3), worker(env, batch=3)
    claimed = [await one._claim(), await two._claim()]
    ids = [{r["id"] for r in rows} for rows in claimed]
    assert len(ids[0]) == 3 and len(ids[1]) == 3 and not ids[0] & ids[1]
    assert await one._claim() == []  # leases held


def test_the_worker_command_sends_the_outbox(tmp_path: Path, database_url: str, smtp: SmtpServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    from engine.cli import main

    root = mail_workspace(tmp_path, smtp.port)

    async def prepare() -> None:
        env = await make_env(root, database_url)
        try:
            number = await _order(env)
            await env.rt.messages.reply(await env.actor("lukas.maier"), number, "Hello from the command")
        finally:
            await env.db.close()

    asyncio.run(prepare())
    assert main(["worker", str(root), "--db", database_url, "--once"]) == 0
    out = capsys.readouterr().out
    assert f"to {CONTACT}" in out and "sent 1, retrying 0, failed 0" in out
    assert len(smtp.to(CONTACT)) == 1
    assert main(["worker", str(root), "--db", database_url, "--once"]) == 0
    assert "sent 0," in capsys.readouterr().out and len(smtp.to(CONTACT)) == 1


class _GatedSink:
    """An SMTP sink that holds the third mail (as if the worker sending it were stuck or killed) until opened."""

    def __init__(self) -> None:
        import threading

        self.received: list[str] = []
        self.open = threading.Event()
        self.waiting = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import asyncio
        import email

        if len(self.received) == 2:
            self.waiting.set()
            while not self.open.is_set():
                await asyncio.sleep(0.02)
        self.received.append(str(email.message_from_bytes(envelope.content)["Message-ID"]))
        return "250 OK"


async def test_each_mail_is_recorded_as_sent_before_the_next_goes_out(tmp_path: Path, database_url: str) -> None:
    """A worker killed half-way through a batch has recorded every mail the server accepted, so no other worker
    sends those again (the outbox leases' duplicates under faults)."""
    import asyncio
    import json

    from aiosmtpd.controller import Controller

    from comms_helpers import free_port

    sink = _GatedSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    made = await _env(tmp_path, database_url, port)
    try:
        number = await _order(made)
        actor = await made.actor("lukas.maier")
        for index in range(4):
            await made.rt.messages.reply(actor, number, f"Answer {index}")
        pending = await made.db.fetch("SELECT id, payload FROM rc_outbox WHERE state = 'pending' ORDER BY id")
        assert len(pending) >= 4
        sending = asyncio.create_task(worker(made).run_once())
        while not sink.waiting.is_set():
            await asyncio.sleep(0.02)
        # the server accepted two mails and holds the third: both are recorded already, the rest still claimed
        rows = await made.db.fetch("SELECT state, payload FROM rc_outbox ORDER BY next_attempt_at, id")
        sent = {json.loads(r["payload"])["message_id"] for r in rows if r["state"] == "sent"}
        assert sent == set(sink.received) and len(sent) == 2
        sink.open.set()
        report = await sending
        assert report.sent == len(pending) and len(sink.received) == len(set(sink.received)) == len(pending)
    finally:
        sink.open.set()
        controller.stop()
        await made.db.close()


async def test_comments_of_one_user_at_once_subscribe_once(env: Env, smtp: SmtpServer) -> None:
    number = await _order(env)
    messages = env.rt.messages
    sophie = await env.actor("sophie.huber")
    posted = await asyncio.gather(*(messages.comment(sophie, number, f"Note {i}", subscribe=True) for i in range(6)))
    assert len(posted) == 6
    assert await messages.subscribers(sophie, number) == ["sophie.huber"]
    trail = [e["kind"] for e in await env.rt.events(sophie, number)]
    assert trail.count("comment_added") == 6 and trail.count("subscribed") == 1
    assert await messages.subscribe(sophie, number) is True  # already on: nothing changes
    assert await messages.subscribe(sophie, number, on=False) is False
    assert await messages.subscribe(sophie, number, on=False) is False
    kinds = [e["kind"] for e in await env.rt.events(sophie, number)]
    assert kinds.count("subscribed") == 1 and kinds.count("unsubscribed") == 1


class _CuttingSink:
    """An SMTP sink that cuts the worker off its database just before it accepts the first mail."""

    def __init__(self, cut: Any) -> None:
        self.cut = cut
        self.received: list[str] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        import email

        if not self.received:
            self.cut()
        self.received.append(str(email.message_from_bytes(envelope.content)["Message-ID"]))
        return "250 OK"


async def test_a_mail_accepted_while_the_database_is_away_is_not_sent_again(tmp_path: Path,
                                                                             database_url: str) -> None:
    """The server accepts a mail and the database is gone before the worker records it: the worker
    records it once the database is back, so the mail is not sent a second time when the lease runs
    out (the fault harness's duplicate mails after its PostgreSQL stop)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the worker is cut off by pointing its PostgreSQL pool elsewhere")
    from aiosmtpd.controller import Controller

    from comms_helpers import free_port

    loop = asyncio.get_running_loop()
    cut_off = asyncio.Event()
    port = free_port()
    made = await _env(tmp_path, database_url, port)
    await made.db.start_pool()
    pool = made.db.engine.pool
    dsn = made.db.url

    async def cut() -> None:
        pool.set_connect_args(dsn=f"postgresql://postgres@127.0.0.1:{free_port()}/routecard")
        await pool.expire_connections()
        cut_off.set()

    async def restore() -> None:
        await asyncio.sleep(1.5)
        pool.set_connect_args(dsn=dsn)
        await pool.expire_connections()

    sink = _CuttingSink(lambda: asyncio.run_coroutine_threadsafe(cut(), loop).result(10))
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        number = await _order(made)
        for text in ("We received your order.", "It ships tomorrow."):
            await made.rt.messages.reply(await made.actor("lukas.maier"), number, text)
        said: list[str] = []
        sending = asyncio.create_task(worker(made, say=said.append).run_once())
        await asyncio.wait_for(cut_off.wait(), 30)
        back = asyncio.create_task(restore())
        report = await sending
        await back
        assert report.sent >= 1 and any("out of reach" in line for line in said), said
        rows = await made.db.fetch("SELECT state, attempts FROM rc_outbox")
        assert len(rows) >= 2 and all(r["state"] == "sent" and r["attempts"] == 1 for r in rows), rows
        later = worker(made, clock=lambda: now() + dt.timedelta(hours=1))  # every lease long run out
        assert (await later.run_once()).sent == 0
        assert len(sink.received) == len(set(sink.received)) == len(rows)
    finally:
        controller.stop()
        await made.db.close()


async def test_a_message_shows_the_worst_of_its_mails_also_when_two_workers_record_them_at_once(env: Env) -> None:
    """A message's delivery state is read from its mails' rows: each worker records a mail in
    one statement of its own and touches nothing shared. (A summary kept on the message, which
    each worker wrote after its mail, was left "queued" by two workers recording at once.)"""
    number = await _order(env)
    lukas = await env.actor("lukas.maier")
    assert await env.rt.messages.subscribe(await env.actor("sophie.huber"), number) is True
    await env.rt.messages.comment(lukas, number, "Your parcel leaves today.", client_viewable=True)
    rows = await env.db.fetch("SELECT id, kind, payload, attempts, message_id FROM rc_outbox ORDER BY id")
    assert len(rows) == 2 and rows[0]["message_id"] == rows[1]["message_id"]  # the customer and sophie
    workers = [worker(env, name="first"), worker(env, name="second")]

    async def claim() -> None:
        for each, row in zip(workers, rows, strict=True):
            await env.db.execute("UPDATE rc_outbox SET claimed_by = {}, claimed_until = {} WHERE id = {}",
                                 each.name, now() + dt.timedelta(hours=1), row["id"])

    async def shown() -> str:
        return str((await env.rt.messages.thread(lukas, number))[0]["delivery_state"])

    assert await shown() == "queued"
    await claim()
    assert await workers[0]._record(rows[0], None, False) == "sent"
    assert await shown() == "queued"  # one of its two mails is still waiting
    assert await workers[1]._record(rows[1], "421 try later", False) == "retrying"
    assert await shown() == "retrying"
    await claim()
    assert await asyncio.gather(*(each._record(row, None, False) for each, row in zip(workers, rows, strict=True))
                                ) == ["sent", "sent"]
    assert await shown() == "sent"
    await claim()
    assert await workers[1]._record(rows[1], "550 no such user", True) == "failed"
    assert await shown() == "failed"
