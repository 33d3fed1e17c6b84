"""Incoming mail: a received message lands in its work order's thread, or becomes a new work order.

``Inbound.receive(raw)`` is the one way in, for the HTTP endpoint (an MTA pipe, a mail
service's webhook) and the IMAP poller alike:

1. refused when larger than ``mail.inbound.max_bytes`` (``MailTooLarge``) or unreadable
   (``Unreadable``); otherwise read by ``parse``;
2. handled once per Message-ID (or, without one, per content): ``rc_inbound_mail``
   remembers every mail, and the same mail again is a ``duplicate``;
3. mail from our own address is ignored (a loop through ourselves); a sender over the
   rate limit gets its mail kept (raw, in the file store) but starts nothing;
4. a reply finds its work order by its headers (In-Reply-To/References naming the
   thread's Message-ID, ``mail.thread_id``, or a mail received on it before), else by the
   number in the subject (``[REQ-00012]``). It lands there only if the sender may write
   to that order: its sender, the customer's contact address, an address of the
   customer's mail domains, a subscriber, a customer user of that customer, or a staff
   user who can see the order. Anything else is new mail: a stranger's mail never joins
   someone else's order;
5. new mail creates a work order of ``mail.inbound.template`` for the customer whose
   ``email_domains`` hold the sender's domain (or whose user the sender is), titled by
   the subject, with the sender kept in ``rc_work_order.sender``; a bounce that finds no
   order is only kept;
6. the mail is an ``email`` message in the thread (client-viewable), its attachments
   stored through ``Attachments`` (type and size checked, at most ``max_attachments``),
   and an ``email_received`` event is recorded through ``Runtime._save`` in the same
   transaction, so rules fire. The event carries ``auto: true`` for mail sent by a
   machine (auto-replies, bounces, lists): automatic answers skip such mail.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import re
from typing import Any

import msgspec

from ..errors import Conflict, Invalid, NotFound, Refused
from ..model.common import duration_span
from ..model.workspace import Inbound as InboundSettings
from ..runtime.actors import SYSTEM, Actor, load_actor
from ..runtime.attachments import Attachments, Staged, Upload
from ..runtime.lookups import like_pattern
from ..runtime.service import Runtime
from ..runtime.state import Change, Order, load_order, now
from ..storage import new_key
from .mail import render, subject_line
from .notices import Notices, contact_address
from .parse import MailTooLarge, Received, parse

DELIVERY_ATTEMPTS = 3
"""Tries to thread a mail onto an order that others change at the same moment (each a whole transaction)."""
_SUBJECT_NUMBER = re.compile(r"\[([A-Za-z0-9][A-Za-z0-9_.-]{0,39})\]")
_SAFE = re.compile(r"[^A-Za-z0-9.-]")


class Delivered(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What became of one received mail."""

    outcome: str
    """``created`` (a new work order), ``threaded`` (a message on an existing one), ``duplicate`` (seen
    before), ``ignored`` (our own mail, a bounce for no order), ``limited`` (over the sender's rate limit)
    or ``failed`` (the work order could not be created; the mail is kept)."""
    number: str | None = None
    message: int | None = None
    auto: bool = False
    detail: str | None = None


def mail_key(mail: Received, raw: bytes) -> str:
    """The key that makes a mail count once: its Message-ID, or its bytes when it has none."""
    if mail.message_ident:
        return "mid:" + hashlib.sha256(mail.message_ident.lower().encode()).hexdigest()
    return "raw:" + hashlib.sha256(raw).hexdigest()


def domain_matches(address: str, domains: list[str]) -> bool:
    """Is ``address`` at one of ``domains`` (or a subdomain of one)?"""
    domain = address.rpartition("@")[2].lower()
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in domains if d)


def _domains(value: Any) -> list[str]:
    loaded = json.loads(value) if isinstance(value, str) else value
    return [str(d) for d in loaded] if isinstance(loaded, list) else []


class Inbound:
    """Receiving mail for one runtime; attachments go to ``files``."""

    def __init__(self, runtime: Runtime, files: Attachments) -> None:
        self.runtime = runtime
        self.files = files

    @property
    def settings(self) -> InboundSettings:
        mail = self.runtime.workspace.settings.mail
        if mail is None or mail.inbound is None:
            raise Refused("this workspace receives no mail (no mail.inbound in routecard.yaml)")
        return mail.inbound

    # -- the way in -----------------------------------------------------------------------------

    async def receive(self, raw: bytes, *, source: str = "api") -> Delivered:
        """Take one raw RFC 822 message (see the module's description); what became of it."""
        settings = self.settings
        if len(raw) > settings.max_bytes:
            raise MailTooLarge(f"the mail is larger than {settings.max_bytes} bytes",
                               [{"field": "body", "message": f"at most {settings.max_bytes} bytes"}])
        mail = await asyncio.to_thread(parse, raw, max_attachments=settings.max_attachments)
        key = mail_key(mail, raw)
        known = await self._known(key)
        if known is not None:
            return known
        own = self.runtime.workspace.settings.mail
        if own is not None and mail.sender == own.from_address.lower():
            return await self._record(key, mail, source, "ignored", detail="sent from our own address")
        limit = settings.rate_limit
        if await self._over_limit(mail.sender, limit.mails, int(duration_span(limit.per).total_seconds())):
            return await self._record(key, mail, source, "limited", raw=raw,
                                      detail=f"more than {limit.mails} mails from {mail.sender} within {limit.per}")
        for attempt in range(1, DELIVERY_ATTEMPTS + 1):
            try:
                return await self._take(raw, mail, key, source)
            except Conflict:
                # somebody changed the order the mail threads onto at the same moment: the whole delivery was
                # rolled back (nothing kept), so take it again on the order as it is now
                if attempt == DELIVERY_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    async def _take(self, raw: bytes, mail: Received, key: str, source: str) -> Delivered:
        """Thread the mail onto its order, or open a new one, in one transaction."""
        settings = self.settings
        target = await self._find_thread(mail)
        if target is None and mail.bounce:
            return await self._record(key, mail, source, "ignored", raw=raw, auto=True,
                                      detail=f"a bounce for no work order ({mail.why_auto})")
        staged, refused = await self._stage(mail)
        try:
            async with self.files.saving(staged):
                await self._record(key, mail, source, "pending")
                if target is not None:
                    order, author = await self._load(target[0].number), target[1]  # as it is now, inside the transaction
                    outcome = "threaded"
                else:
                    order, author = await self._create(mail, settings), await self._user_of(mail.sender)
                    outcome = "created"
                message = await self._deliver(order, author, mail, staged, refused, created=outcome == "created")
                await self.runtime.db.execute(
                    "UPDATE rc_inbound_mail SET outcome = {}, work_order_id = {}, message_id = {} WHERE mail_key = {}",
                    outcome, order.id, message, key)
        except Invalid as exc:
            again = await self._known(key)
            if again is not None:
                return again
            detail = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors) or exc.detail
            return await self._record(key, mail, source, "failed", raw=raw,
                                      detail=f"no work order could be created: {detail}"[:300])
        except Exception:
            again = await self._known(key)  # the same mail, delivered twice at once: the other one won
            if again is not None:
                return again
            raise
        return Delivered(outcome=outcome, number=order.number, message=message, auto=mail.auto)

    # -- bookkeeping ----------------------------------------------------------------------------

    async def _known(self, key: str) -> Delivered | None:
        rows = await self.runtime.db.fetch(
            "SELECT i.outcome, i.message_id, w.number FROM rc_inbound_mail i "
            "LEFT JOIN rc_work_order w ON w.id = i.work_order_id WHERE i.mail_key = {}", key)
        if not rows:
            return None
        row = rows[0]
        return Delivered(outcome="duplicate", number=row["number"], message=row["message_id"],
                         detail=f"received before ({row['outcome']})")

    async def _record(self, key: str, mail: Received, source: str, outcome: str, *, raw: bytes | None = None,
                      auto: bool = False, detail: str | None = None) -> Delivered:
        """Remember the mail (``rc_inbound_mail``); ``raw`` is kept in the file store when given."""
        await self.note(key, source, outcome, raw=raw, ident=mail.message_ident, sender=mail.sender)
        return Delivered(outcome=outcome, auto=auto or mail.auto, detail=detail)

    async def note(self, key: str, source: str, outcome: str, *, raw: bytes | None = None, ident: str | None = None,
                   sender: str = "") -> None:
        """Remember a mail under ``key`` (once: a second note of the same key fails), keeping ``raw`` if given.

        The IMAP poller notes mail it cannot take (too large, unreadable) this way, so it
        is looked at once only.
        """
        raw_key = None
        if raw is not None:
            raw_key = new_key()
            await asyncio.to_thread(self.files.storage.put, raw_key, iter([raw]))
        try:
            await self.runtime.db.execute(
                "INSERT INTO rc_inbound_mail (mail_key, message_ident, sender, outcome, raw_key, source, received_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {})", key, ident, sender, outcome, raw_key, source[:300], now())
        except Exception:
            if raw_key is not None:
                await asyncio.to_thread(self.files.storage.delete, raw_key)
            raise

    async def seen(self, key: str) -> bool:
        """Has a mail been noted under ``key``?"""
        return await self.runtime.db.fetch_value("SELECT id FROM rc_inbound_mail WHERE mail_key = {}", key) is not None

    async def _over_limit(self, sender: str, mails: int, window: int) -> bool:
        count = await self.runtime.db.fetch_value(
            "SELECT COUNT(*) AS n FROM rc_inbound_mail WHERE sender = {} AND received_at >= {}",
            sender, now() - dt.timedelta(seconds=window))
        return int(count or 0) >= mails

    # -- where it belongs -----------------------------------------------------------------------

    async def _find_thread(self, mail: Received) -> tuple[Order, int | None] | None:
        """The work order the mail answers, and the sender's user (if any), when the sender may write to it."""
        runtime = self.runtime
        numbers: list[str] = []
        workspace = _SAFE.sub("-", runtime.workspace.settings.name)
        root = re.compile(rf"^<routecard\.{re.escape(workspace)}\.([A-Za-z0-9.-]{{1,40}})@[^<>@]+>$")
        mentioned = [*mail.in_reply_to, *reversed(mail.references)]
        numbers += [m[1] for m in (root.match(i) for i in mentioned) if m]
        if mentioned:
            marks = ", ".join("{}" for _ in mentioned)
            rows = await runtime.db.fetch(
                "SELECT w.number FROM rc_inbound_mail i JOIN rc_work_order w ON w.id = i.work_order_id "
                f"WHERE i.message_ident IN ({marks}) ORDER BY i.id DESC", *mentioned)
            numbers += [str(r["number"]) for r in rows]
        numbers += _SUBJECT_NUMBER.findall(mail.subject)
        for number in dict.fromkeys(numbers):
            try:
                order = await self._load(number)
            except NotFound:
                continue
            allowed, user = await self._may_write(mail.sender, order)
            if allowed:
                return order, user
        return None

    async def _load(self, number: str) -> Order:
        runtime = self.runtime
        return await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs,
                                number)

    async def _user_of(self, address: str) -> int | None:
        found = await self.runtime.db.fetch_value(
            "SELECT id FROM rc_user WHERE LOWER(email) = {} AND is_active = {} ORDER BY id LIMIT 1", address, True)
        return int(found) if found is not None else None

    async def _may_write(self, sender: str, order: Order) -> tuple[bool, int | None]:
        """May ``sender`` add mail to ``order``? And the sender's user, if it has one."""
        db = self.runtime.db
        user = await self._user_of(sender)
        started = await db.fetch_value("SELECT sender FROM rc_work_order WHERE id = {}", order.id)
        contact = contact_address(order)
        if sender in {str(started or "").lower(), (contact or "").lower()}:
            return True, user
        customer = order.state["customer_id"]
        if customer is not None:
            domains = await db.fetch_value("SELECT email_domains FROM rc_customer WHERE id = {}", customer)
            if domain_matches(sender, _domains(domains)):
                return True, user
        if user is None:
            return False, None
        if await db.fetch_value("SELECT id FROM rc_subscription WHERE work_order_id = {} AND user_id = {}",
                                order.id, user) is not None:
            return True, user
        try:
            actor = await load_actor(db, self.runtime.workspace, id=user)
        except NotFound:
            return False, None
        return self.runtime.can_see(actor, order), user

    async def customer_of(self, sender: str) -> int | None:
        """The customer a new mail from ``sender`` is for: the sender's customer user, else its mail domain."""
        db = self.runtime.db
        found = await db.fetch_value(
            "SELECT customer_id FROM rc_user WHERE LOWER(email) = {} AND is_active = {} AND customer_id IS NOT NULL "
            "ORDER BY id LIMIT 1", sender, True)
        if found is not None:
            return int(found)
        labels = sender.rpartition("@")[2].split(".")
        suffixes = [".".join(labels[i:]) for i in range(len(labels) - 1)][:8]
        clause = " OR ".join("LOWER(CAST(email_domains AS TEXT)) LIKE {} ESCAPE '\\'" for _ in suffixes)
        rows = await db.fetch(f"SELECT id, email_domains FROM rc_customer WHERE {clause} ORDER BY id",
                              *(like_pattern(f'"{s}"') for s in suffixes))
        for row in rows:
            if domain_matches(sender, _domains(row["email_domains"])):
                return int(row["id"])
        return None

    # -- writing ----------------------------------------------------------------------------------

    async def _stage(self, mail: Received) -> tuple[list[Staged], list[str]]:
        """Store the attachments one by one; those refused (type, size) are named, not kept."""
        staged: list[Staged] = []
        refused: list[str] = []
        try:
            for part in mail.attachments:
                try:
                    staged += await self.files.stage([Upload(part.data, part.filename, "attachments")])
                except Invalid:
                    refused.append(part.filename)
        except BaseException:
            await self.files.discard(staged)
            raise
        return staged, refused

    async def _create(self, mail: Received, settings: InboundSettings) -> Order:
        runtime = self.runtime
        template = runtime.workspace.templates.get(settings.template)
        if template is None:
            raise Invalid(f"mail.inbound.template names no template: {settings.template}",
                          [{"field": "mail.inbound.template", "message": "no such template"}])
        data: dict[str, Any] = {"title": mail.subject or f"Mail from {mail.sender}", "fields": {}}
        customer = await self.customer_of(mail.sender)
        if customer is not None:
            data["customer_id"] = customer
        if settings.queue is not None:
            data["queue"] = settings.queue
        contact = next((f.name for f in template.fields if f.type == "email"), None)
        if contact is not None:
            data["fields"][contact] = mail.sender
        view = await runtime.create(SYSTEM, template.name, data)
        await runtime.db.execute("UPDATE rc_work_order SET sender = {} WHERE number = {}", mail.sender,
                                 str(view["number"]))
        return await self._load(str(view["number"]))

    async def _deliver(self, order: Order, author: int | None, mail: Received, staged: list[Staged],
                       refused: list[str], *, created: bool) -> int:
        """The mail as an ``email`` message on ``order``, its files, copies to subscribers, and the event."""
        runtime = self.runtime
        db = runtime.db
        headers = {"from": mail.sender, "from_name": mail.sender_name, "to": mail.to, "subject": mail.subject,
                   "message_id": mail.message_ident, "in_reply_to": mail.in_reply_to[0] if mail.in_reply_to else None,
                   "references": mail.references[-10:], "auto": mail.auto, "why_auto": mail.why_auto,
                   "dropped_attachments": mail.dropped, "refused_attachments": refused}
        inserted = await db.fetch(
            "INSERT INTO rc_message (work_order_id, kind, author_id, body, client_viewable, headers, delivery_state, "
            "created_at) VALUES ({}, 'email', {}, {}, {}, {}, NULL, {}) RETURNING id",
            order.id, author, mail.text, True, json.dumps(headers), now())
        message = int(inserted[0]["id"])
        uploader = Actor(id=author, login=mail.sender, is_staff=False) if author is not None else SYSTEM
        ids = await self.files.insert(uploader, staged, order.id, counted=False)
        for attachment in ids:
            await db.execute("UPDATE rc_attachment SET message_id = {} WHERE id = {}", message, attachment)
        if not mail.auto:
            await self._copies(order, author, mail, message)
        change = Change(order, author, runtime.workspace.fingerprint)
        after: dict[str, Any] = {"message": message, "from": mail.sender, "auto": mail.auto,
                                 "attachments": [s.stored.filename for s in staged]}
        if created:
            after["sender"] = mail.sender
        change.record("email_received", after, source=(f"auto: {mail.why_auto}"[:300] if mail.auto else None))
        await runtime._save(change)
        writer = await self._actor(author, mail.sender)
        for listener in getattr(runtime, "after_message", ()):
            await listener(order, "email", writer)
        return message

    async def _actor(self, user: int | None, sender: str) -> Actor:
        """The sender as an actor (for listeners such as SLA clocks): its user, else an outsider."""
        if user is not None:
            try:
                return await load_actor(self.runtime.db, self.runtime.workspace, id=user)
            except NotFound:
                pass
        return Actor(id=None, login=sender[:100], is_staff=False)

    async def _copies(self, order: Order, author: int | None, mail: Received, message: int) -> None:
        """A copy of the mail for the order's subscribers (never back to its sender)."""
        notices = Notices(self.runtime)
        copies = [a for a in await notices._subscribers(order, client_viewable=True, author=author)
                  if a.lower() != mail.sender]
        if not copies:
            return
        values = notices.values(order)
        body = render("copy", {**values, "body": mail.text, "author": mail.sender_name or mail.sender,
                               "what": "wrote"})
        subject = subject_line(order.number, values["title"])
        for address in copies:
            await notices._enqueue(f"inbound:{message}:copy", address, subject=subject, body=body, order=order,
                                   in_reply_to=mail.message_ident, message=None, automatic=True)
