"""Writing mail into the outbox: a thread message's mails, and status notices to the default CC.

Everything here runs inside the caller's transaction, so a mail exists exactly when
the change it tells of does (the transactional outbox). The worker (``outbox``)
sends it afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import msgspec

from ..errors import Invalid
from ..runtime.actors import Actor
from ..runtime.state import Change, Order, now
from .mail import MailFile, Payload, message_id, one_line, recipient_key, render, subject_line, thread_id

if TYPE_CHECKING:
    from ..runtime.service import Runtime

STATUS_KINDS = ("step_entered", "returned", "completed", "cancelled")
"""Events that change a work order's status or step: the template's ``default_cc`` hears of each."""
WHAT = {"comment": "commented", "reply": "replied to the customer", "follow_up": "wrote a follow-up",
        "chat": "wrote in the chat"}


def contact_address(order: Order) -> str | None:
    """The customer's contact address: the value of the template's first ``email`` field, if set."""
    for field in order.template.fields:
        if field.type == "email":
            value = order.state["fields"].get(field.name)
            return value if isinstance(value, str) and value else None
    return None


class Notices:
    """Turns thread messages and status changes into outbox rows."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    # -- shared pieces ----------------------------------------------------------------------

    def _sender(self) -> tuple[str, str | None]:
        settings = self.runtime.workspace.settings
        if settings.mail is not None:
            return settings.mail.from_address, settings.mail.from_name
        host = settings.base_url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
        return f"routecard@{host or 'localhost'}", None

    def values(self, order: Order) -> dict[str, Any]:
        """The placeholders a mail template may use: number, title, status, step, fields.x, link."""
        state = order.state
        step = order.step
        return {
            "number": order.number, "title": one_line(str(state["title"])), "status": state["status"],
            "step": next(iter(step.label.values()), step.name) if step else state["step"],
            "fields": dict(state["fields"]),
            "link": f"{self.runtime.workspace.settings.base_url.rstrip('/')}/orders/{quote(order.number, safe='')}",
        }

    def text_values(self, order: Order) -> dict[str, Any]:
        """What an admin's text (a comment template) is filled with: ``values`` and each custom field by name.

        The names are ``engine.link.templating.ORDER_PLACEHOLDERS`` and the fields' names; a
        field without a value is filled in as nothing (not as ``None``).
        """
        state = order.state
        fields = {name: "" if value is None else value for name, value in state["fields"].items()}
        return {**fields, **self.values(order), "priority": state["priority"], "sender": order.row.get("sender") or "",
                "group": state["group_name"] or "", "template": order.template.name}

    async def _enqueue(self, key: str, address: str, *, subject: str, body: str, order: Order,
                       in_reply_to: str | None, message: int | None, automatic: bool,
                       files: Sequence[MailFile] = ()) -> None:
        settings = self.runtime.workspace.settings
        sender, sender_name = self._sender()
        root = thread_id(settings.name, order.number, sender)
        references = [root] if in_reply_to in (None, root) else [root, str(in_reply_to)]
        idempotency = recipient_key(key, address)
        payload = Payload(sender=sender, sender_name=sender_name, to=[address], subject=subject, body=body,
                          message_id=message_id(settings.name, idempotency, sender),
                          in_reply_to=in_reply_to or root, references=references, order=order.number,
                          automatic=automatic, attachments=list(files))
        await self._insert(idempotency, payload, message)

    async def automatic_mail(self, key: str, address: str, subject: str, body: str, number: str | None) -> None:
        """A mail Routecard sends by itself outside a thread (a form's receipt, a resume link), once per key
        and address, into the outbox in the caller's transaction."""
        settings = self.runtime.workspace.settings
        sender, sender_name = self._sender()
        idempotency = recipient_key(key, address)
        await self._insert(idempotency, Payload(
            sender=sender, sender_name=sender_name, to=[address], subject=subject, body=body,
            message_id=message_id(settings.name, idempotency, sender), order=number, automatic=True), None)

    async def _insert(self, idempotency: str, payload: Payload, message: int | None) -> None:
        moment = now()
        await self.runtime.db.execute(
            "INSERT INTO rc_outbox (kind, idempotency_key, payload, state, attempts, next_attempt_at, created_at, "
            "message_id) VALUES ('email', {}, {}, 'pending', 0, {}, {}, {})",
            idempotency, msgspec.json.encode(payload).decode(), moment, moment, message)

    async def _subscribers(self, order: Order, *, client_viewable: bool, author: int | None) -> list[str]:
        """Addresses of the active subscribers who may read the message (not its author)."""
        rows = await self.runtime.db.fetch(
            "SELECT u.id, u.email, u.is_staff, u.customer_id FROM rc_subscription s JOIN rc_user u ON u.id = s.user_id "
            "WHERE s.work_order_id = {} AND u.is_active = {} ORDER BY u.id", order.id, True)
        out = []
        for row in rows:
            if not row["email"] or row["id"] == author:
                continue
            if not row["is_staff"] and (not client_viewable or row["customer_id"] is None
                                        or row["customer_id"] != order.state["customer_id"]):
                continue
            out.append(str(row["email"]))
        return out

    # -- a thread message ---------------------------------------------------------------------

    async def message(self, actor: Actor, order: Order, kind: str, text: str, *, client_viewable: bool,
                      to: list[str], subject: str | None, quoted: dict[str, Any] | None,
                      files: Sequence[MailFile] = ()) -> int:
        """Insert the message and its mails; return the message's id.

        ``to`` (replies) defaults to the customer's contact address; a reply with no
        address at all is refused. Every mail of the message carries ``files``.
        """
        db = self.runtime.db
        direct = list(to)
        if kind == "reply" and not direct:
            contact = contact_address(order)
            if contact is None:
                raise Invalid("the reply has no recipient",
                              [{"field": "to", "message": "the work order has no customer address; give one"}])
            direct = [contact]
        copies = await self._subscribers(order, client_viewable=client_viewable, author=actor.id)
        if kind == "comment" and client_viewable:
            contact = contact_address(order)
            if contact is not None:
                copies.append(contact)
        copies = _distinct(copies, skip=direct)
        values = self.values(order)
        title = subject or (f"Re: {values['title']}" if kind == "reply" else values["title"])
        headers: dict[str, Any] = {"to": direct, "subject": subject_line(order.number, title)}
        moment = now()
        inserted = await db.fetch(
            "INSERT INTO rc_message (work_order_id, kind, author_id, body, client_viewable, headers, delivery_state, "
            "created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
            order.id, kind, actor.id, text, client_viewable, json.dumps(headers),
            "queued" if direct or copies else None, moment)
        message = int(inserted[0]["id"])
        key = f"message:{message}"
        sender, _ = self._sender()
        headers["message_id"] = message_id(self.runtime.workspace.settings.name, key, sender)
        in_reply_to = quoted.get("message_id") if quoted else None
        headers["in_reply_to"] = in_reply_to
        await db.execute("UPDATE rc_message SET headers = {} WHERE id = {}", json.dumps(headers), message)
        author = actor.name or actor.login
        body = render("message", {**values, "body": text, "quoted": quoted["text"] if quoted else "",
                                  "author_line": f"On {quoted['at'][:16].replace('T', ' ')}, {quoted['author']} wrote:"
                                  if quoted else ""})
        for address in direct:
            await self._enqueue(key, address, subject=headers["subject"], body=body, order=order,
                                in_reply_to=in_reply_to, message=message, automatic=False, files=files)
        if copies:
            copy = render("copy", {**values, "body": text, "author": author, "what": WHAT[kind]})
            for address in copies:
                await self._enqueue(f"{key}:copy", address, subject=headers["subject"], body=copy, order=order,
                                    in_reply_to=in_reply_to, message=message, automatic=True, files=files)
        return message

    # -- status changes ---------------------------------------------------------------------

    @staticmethod
    def quiet_on(change: Change) -> bool:
        """Does ``status_changed`` send nothing for ``change``?"""
        return not change.order.template.default_cc or not any(kind in STATUS_KINDS for kind, *_ in change.events)

    async def status_changed(self, change: Change) -> None:
        """A runtime listener: mail the template's default CC when the status or step changed."""
        if self.quiet_on(change):
            return
        order = change.order
        kinds = [kind for kind, *_ in change.events if kind in STATUS_KINDS]
        values = self.values(order)
        words = {"completed": "was completed", "cancelled": "was cancelled",
                 "returned": f"was sent back to step {values['step']}",
                 "step_entered": f"moved to step {values['step']}"}
        what = words[kinds[-1]]
        subject = subject_line(order.number, f"{values['title']}: {what}")
        body = render("status", {**values, "change": what})
        for address in order.template.default_cc:
            await self._enqueue(f"status:{order.id}:{order.version}", address, subject=subject, body=body,
                                order=order, in_reply_to=None, message=None, automatic=True)


def _distinct(items: list[str], *, skip: list[str]) -> list[str]:
    """``items`` without repeats (case-insensitively) and without those in ``skip``."""
    seen = {a.lower() for a in skip}
    out = []
    for item in items:
        if item.lower() not in seen:
            seen.add(item.lower())
            out.append(item)
    return out
