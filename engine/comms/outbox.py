"""The outbox worker: claims due deliveries with a lease, sends them through their channel, retries.

Each row has a ``kind``, the channel that delivers it: ``email`` (SMTP, defined here) or
one a plugin adds (``webhook``). ``run_once`` does one round: claim up to ``batch`` due
rows (``state = 'pending'``, ``next_attempt_at`` reached, no live lease) of the channels
that can deliver now, hand each channel its rows (mail goes through one SMTP
connection), and record each outcome:

- sent: ``state = 'sent'``, ``sent_at``;
- a temporary failure (connection refused, 4xx): ``attempts`` + 1, ``last_error``,
  ``next_attempt_at`` = now + ``backoff`` x 2^(attempts-1) (capped at six hours);
- a permanent failure (5xx), or ``max_attempts`` reached: ``state = 'failed'``.

The claim is one statement. On PostgreSQL its inner SELECT takes ``FOR UPDATE SKIP
LOCKED``, so any number of workers claim distinct rows; on SQLite the single writer
makes the ``UPDATE ... RETURNING`` atomic. A worker that dies while sending leaves a
lease that expires (``lease`` seconds); another worker then sends the row again with
the same Message-ID. Without SMTP settings nothing is claimed: mail waits, never lost.
Each outcome is recorded in one statement, committed on its own, before the next
delivery goes out (a thread message's delivery state is read from its rows when the
thread is shown: ``engine.comms.thread``). A delivery the far side accepted while the
database is out of reach is recorded as soon as it is back (tried for up to half the
lease), so a database outage sends nothing twice; only a worker killed between the far
side's acceptance and that record leaves a mail to be sent again (at-least-once).

Files a mail carries are read from the worker's file store (``storage``) while the mail
is made: a worker without one leaves such mail for another round (a temporary failure),
and a file that is no longer in the store fails the mail for good.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import secrets
import smtplib
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from .. import metrics
from ..db import Database, unavailable
from ..model.workspace import Mail, Smtp, Workspace
from ..plugin_api import Channel, Delivery, Outcome
from ..runtime.state import now
from ..storage import Storage
from .mail import FileUnavailable, Payload, to_email

MAX_BACKOFF = 6 * 3600.0


class Report(msgspec.Struct, kw_only=True):
    """What one round of the worker did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    waiting: int = 0
    """Mails left pending because no SMTP server is configured."""


class OutboxWorker:
    """Delivers the outbox of one database through its channels, with the settings of one workspace.

    A channel (``engine.plugin_api.Channel``) delivers the rows of one ``kind``: ``email``
    (built in, below) and those plugins add (e.g. ``webhook``). Claiming, leases, backoff
    and recording are the same for every kind; only the delivery differs.
    """

    def __init__(self, db: Database, settings: Callable[[], Workspace], *, name: str | None = None,
                 batch: int = 20, lease: float = 300.0, max_attempts: int = 8, backoff: float = 60.0,
                 timeout: float = 30.0, clock: Callable[[], dt.datetime] = now,
                 say: Callable[[str], None] | None = None, channels: Mapping[str, Channel] | None = None,
                 storage: Storage | None = None) -> None:
        self.db = db
        self.settings = settings
        """Read at every round, so newly applied settings are used without a restart."""
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.batch, self.lease, self.max_attempts, self.backoff = batch, lease, max_attempts, backoff
        self.timeout = timeout
        self.clock = clock
        self.say = say or (lambda _: None)
        self.channels: dict[str, Channel] = {EMAIL_CHANNEL.kind: EMAIL_CHANNEL, **(channels or {})}
        if storage is not None and self.channels[EMAIL_CHANNEL.kind] is EMAIL_CHANNEL:
            self.channels[EMAIL_CHANNEL.kind] = email_channel(storage)  # the built-in one, reading files from here

    async def run_once(self) -> Report:
        """One round: claim, deliver, record. Returns what happened."""
        settings = self.settings()
        ready = sorted(kind for kind, channel in self.channels.items() if channel.ready(settings) is None)
        report = Report(waiting=await self._waiting(settings, ready))
        rows = await self._claim(ready) if ready else []
        for kind in ready:
            claimed = [r for r in rows if r["kind"] == kind]
            if claimed:
                await self._deliver(self.channels[kind], settings, claimed, report)
        for outcome in ("sent", "retrying", "failed"):
            if getattr(report, outcome):
                metrics.MAILS.inc(outcome, by=getattr(report, outcome))
        return report

    async def _deliver(self, channel: Channel, settings: Workspace, rows: list[dict[str, Any]], report: Report) -> None:
        deliveries = [Delivery(id=int(r["id"]), payload=_text(r["payload"]), attempts=int(r["attempts"]))
                      for r in rows]
        if channel.send_each is not None:
            await self._deliver_each(channel, settings, rows, deliveries, report)
            return
        try:
            outcomes = await channel.send(settings, deliveries, self.timeout)
        except Exception as exc:  # noqa: BLE001 - a failing channel retries its rows later
            outcomes = [(f"the {channel.kind} channel failed: {type(exc).__name__}", False)] * len(rows)
        if len(outcomes) != len(rows):
            outcomes = [(f"the {channel.kind} channel gave {len(outcomes)} outcomes for {len(rows)} rows", False)
                        ] * len(rows)
        for row, delivery, outcome in zip(rows, deliveries, outcomes, strict=True):
            await self._note(channel, row, delivery, outcome, report)

    async def _deliver_each(self, channel: Channel, settings: Workspace, rows: list[dict[str, Any]],
                            deliveries: list[Delivery], report: Report) -> None:
        """Record each outcome as soon as the channel knows it, before it sends the next delivery."""
        assert channel.send_each is not None
        loop = asyncio.get_running_loop()
        recorded: set[int] = set()

        def done(index: int, outcome: Outcome) -> None:  # called from the channel's thread
            if index in recorded or not 0 <= index < len(rows):
                return
            recorded.add(index)
            note = self._note(channel, rows[index], deliveries[index], outcome, report)
            asyncio.run_coroutine_threadsafe(note, loop).result()

        failure: Outcome = (f"the {channel.kind} channel gave no outcome", False)
        try:
            await channel.send_each(settings, deliveries, self.timeout, done)
        except Exception as exc:  # noqa: BLE001 - a failing channel retries its rows later
            failure = (f"the {channel.kind} channel failed: {type(exc).__name__}", False)
        for index in range(len(rows)):
            if index not in recorded:
                recorded.add(index)
                await self._note(channel, rows[index], deliveries[index], failure, report)

    async def _note(self, channel: Channel, row: dict[str, Any], delivery: Delivery, outcome: Outcome,
                    report: Report) -> None:
        """Record one delivery's outcome, count it and say it."""
        error, permanent = outcome
        state = await self._record(row, error, permanent)
        setattr(report, state, getattr(report, state) + 1)
        what = _safe_describe(channel, delivery.payload)
        if error is None:
            self.say(f"sent {what}")
        else:
            self.say(f"{'gave up on' if state == 'failed' else 'will retry'} {what}: {error}")

    async def _waiting(self, settings: Workspace, ready: list[str]) -> int:
        """Pending rows no channel can deliver now (not configured, or no such channel): they wait."""
        rows = await self.db.fetch("SELECT kind, COUNT(*) AS n FROM rc_outbox WHERE state = 'pending' GROUP BY kind")
        waiting = 0
        for row in rows:
            kind, count = str(row["kind"]), int(row["n"])
            if kind in ready or not count:
                continue
            waiting += count
            channel = self.channels.get(kind)
            why = channel.ready(settings) if channel is not None else f"no plugin delivers {kind}"
            noun = "mail(s)" if kind == "email" else f"{kind} deliveries"
            self.say(f"{count} {noun} wait in the outbox: {why}")
        return waiting

    async def _claim(self, kinds: list[str] | None = None) -> list[dict[str, Any]]:
        kinds = kinds if kinds is not None else sorted(self.channels)
        moment = self.clock()
        until = moment + dt.timedelta(seconds=self.lease)
        lock = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        async with self.db.transaction():
            return await self.db.fetch(
                "UPDATE rc_outbox SET claimed_by = {}, claimed_until = {} WHERE id IN ("
                "SELECT id FROM rc_outbox WHERE state = 'pending' AND next_attempt_at <= {} "
                f"AND kind IN ({', '.join('{}' for _ in kinds)}) "
                "AND (claimed_until IS NULL OR claimed_until < {}) ORDER BY next_attempt_at, id LIMIT {}"
                f"{lock}) RETURNING id, kind, payload, attempts",
                self.name, until, moment, *kinds, moment, self.batch)

    async def _record(self, row: dict[str, Any], error: str | None, permanent: bool) -> str:
        """Write one outcome (if the lease is still ours); returns ``sent``, ``retrying`` or ``failed``."""
        moment = self.clock()
        attempts = int(row["attempts"]) + 1
        if error is None:
            state, outcome = "sent", "sent"
        elif permanent or attempts >= self.max_attempts:
            state, outcome = "failed", "failed"
        else:
            state, outcome = "pending", "retrying"
        delay = min(self.backoff * 2 ** (attempts - 1), MAX_BACKOFF)
        give_up = time.monotonic() + self.lease / 2
        pause = 0.2
        while True:
            try:
                # one statement, committed on its own: the shortest time between the far side's
                # acceptance and its record (a worker killed in between sends the mail again)
                await self.db.execute(
                    "UPDATE rc_outbox SET state = {}, attempts = {}, last_error = {}, sent_at = {}, "
                    "next_attempt_at = {}, claimed_by = NULL, claimed_until = NULL "
                    "WHERE id = {} AND claimed_by = {}",
                    state, attempts, (error or "")[:1000] or None, moment if error is None else None,
                    moment + dt.timedelta(seconds=delay) if state == "pending" else moment, row["id"], self.name)
                return outcome
            except Exception as exc:
                # A delivery the far side accepted is recorded whatever it takes, within half the
                # lease: left unrecorded, its lease runs out and it goes out a second time. Other
                # outcomes are not worth waiting for (the row is tried again anyway).
                if error is not None or not unavailable(exc) or time.monotonic() + pause > give_up:
                    raise
                self.say(f"the database is out of reach: outbox row {row['id']} was delivered; "
                         f"recording that in {pause:.1f} s")
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)


def _text(value: Any) -> bytes:
    return value.encode() if isinstance(value, str) else msgspec.json.encode(value)


def _safe_describe(channel: Channel, payload: bytes) -> str:
    try:
        return channel.describe(payload) or f"a {channel.kind} delivery"
    except Exception:  # noqa: BLE001 - only for the log
        return f"a {channel.kind} delivery"


# -- the email channel ----------------------------------------------------------------------------


def _email_ready(settings: Workspace) -> str | None:
    mail = settings.mail
    return None if mail is not None and mail.smtp is not None else "no SMTP server is configured (mail.smtp)"


def _describe_email(payload: bytes) -> str:
    mail = msgspec.json.decode(payload, type=Payload)
    files = f", {len(mail.attachments)} file(s)" if mail.attachments else ""
    return f"{mail.subject!r} to {', '.join(mail.to)} ({mail.message_id}{files})"


def email_channel(storage: Storage | None) -> Channel:
    """Mail through the workspace's SMTP server (``mail.smtp``), its files read from ``storage``."""
    reader = _reader(storage) if storage is not None else None

    async def send(settings: Workspace, deliveries: list[Delivery], timeout: float) -> list[Outcome]:
        mail = settings.mail
        assert mail is not None and mail.smtp is not None  # ready() said so
        payloads = [msgspec.json.decode(d.payload, type=Payload) for d in deliveries]
        return await asyncio.to_thread(_send_all, mail, mail.smtp, payloads, timeout, reader)

    async def send_each(settings: Workspace, deliveries: list[Delivery], timeout: float,
                        done: Callable[[int, Outcome], None]) -> None:
        """As ``send``, each mail recorded as soon as the server accepted it (before the next goes out)."""
        mail = settings.mail
        assert mail is not None and mail.smtp is not None
        payloads = [msgspec.json.decode(d.payload, type=Payload) for d in deliveries]
        await asyncio.to_thread(_send_all, mail, mail.smtp, payloads, timeout, reader, done)

    return Channel(kind="email", send=send, ready=_email_ready, describe=_describe_email, send_each=send_each)


def _reader(storage: Storage) -> Callable[[str], bytes]:
    def read(key: str) -> bytes:
        try:
            with storage.open(key) as stream:
                return stream.read()
        except (FileNotFoundError, ValueError):
            raise FileUnavailable(f"an attached file is no longer stored ({key[:8]}…)", permanent=True) from None
        except OSError as exc:
            raise FileUnavailable(f"an attached file cannot be read: {type(exc).__name__}", permanent=False) from None
    return read


EMAIL_CHANNEL = email_channel(None)
"""Mail through the workspace's SMTP server; the built-in ``email`` plugin offers it. A worker given a file
store (``OutboxWorker(storage=...)``) uses ``email_channel(storage)`` instead, so mail can carry files."""


# -- SMTP (runs in a thread) ------------------------------------------------------------------


def connect_smtp(smtp: Smtp, timeout: float) -> smtplib.SMTP:
    """A logged-in connection to the configured server (the outbox's and the SMTP test's only way out)."""
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "ssl":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=timeout, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        if smtp.security == "starttls":
            client.starttls(context=context)
    if smtp.username:
        password = os.environ.get(smtp.password_env or "") if smtp.password_env else None
        if password is None:
            client.close()
            raise SmtpConfigError(f"the environment variable {smtp.password_env or '(mail.smtp.password_env)'} "
                               "holding the SMTP password is not set")
        client.login(smtp.username, password)
    return client


class SmtpConfigError(Exception):
    """The settings do not let us log in; worth retrying once an admin fixed them."""


def _describe(exc: BaseException) -> Outcome:
    """An SMTP failure as (text, permanent); never the server's full answer or any secret."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return f"recipient refused ({', '.join(str(c) for c in codes)})", all(c >= 500 for c in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP {exc.smtp_code}", exc.smtp_code >= 500 and exc.smtp_code != 530
    if isinstance(exc, SmtpConfigError):
        return str(exc), False
    return f"{type(exc).__name__}: {exc}"[:300], False


def _send_all(mail: Mail, smtp: Smtp, payloads: list[Payload], timeout: float,
              read: Callable[[str], bytes] | None = None,
              done: Callable[[int, Outcome], None] | None = None) -> list[Outcome]:
    """Send ``payloads`` over one connection: one outcome each, also told to ``done`` as soon as it is known."""
    outcomes = _Told(done)
    try:
        client = connect_smtp(smtp, timeout)
    except (OSError, smtplib.SMTPException, SmtpConfigError) as exc:
        outcomes.extend([_describe(exc)] * len(payloads))
        return list(outcomes)
    try:
        for payload in payloads:
            payload.sender, payload.sender_name = mail.from_address, mail.from_name or payload.sender_name
            try:
                message = to_email(payload, read)
                client.send_message(message, from_addr=mail.from_address, to_addrs=payload.to + payload.cc)
                outcomes.append((None, False))
            except FileUnavailable as exc:
                outcomes.append((f"not sendable: {exc}"[:300], exc.permanent))
            except ValueError as exc:
                outcomes.append((f"not sendable: {exc}"[:300], True))
            except (OSError, smtplib.SMTPException) as exc:
                outcomes.append(_describe(exc))
                if isinstance(exc, smtplib.SMTPServerDisconnected) or not isinstance(exc, smtplib.SMTPException):
                    outcomes.extend([outcomes[-1]] * (len(payloads) - len(outcomes)))
                    break
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    return list(outcomes)


class _Told(list[Outcome]):
    """Outcomes in order; each one added is told to ``done`` (its index, the outcome) at once."""

    def __init__(self, done: Callable[[int, Outcome], None] | None) -> None:
        super().__init__()
        self.done = done

    def append(self, outcome: Outcome) -> None:
        super().append(outcome)
        if self.done is not None:
            self.done(len(self) - 1, outcome)

    def extend(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.append(outcome)
