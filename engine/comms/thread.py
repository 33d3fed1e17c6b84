"""The message thread of a work order: comments, replies, follow-ups, and who follows it.

Every message is written in one transaction with its audit event (``comment_added``,
``reply_added``, ``follow_up_added``), its outgoing mail (``rc_outbox`` rows, one per
recipient, see ``recipients``) and, when asked, an assignment and the author's
subscription. A refusal writes nothing.

Who gets what (docs/mail.md):
- a *reply* goes to the addresses given (default: the customer's contact address, the
  template's first ``email`` field) and a copy to every subscriber;
- a *comment* and a *follow-up* go to the subscribers; a client-viewable comment also
  to the customer's contact address;
- private (not client-viewable) messages reach staff subscribers only, never a customer;
- the author gets no copy of their own message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden, Invalid, Refused
from ..runtime.actors import Actor
from ..runtime.fields import to_json_time
from ..runtime.portal import portal_of
from ..runtime.state import Order, insert_event, now
from .files import check_ids, described, files_of_messages, mail_files, message_files, sendable, tie
from .mail import addresses, check_subject, quote_lines
from .notices import Notices
from .texts import fill, pick

if TYPE_CHECKING:
    from ..runtime.service import Runtime

MAX_BODY = 100_000
KINDS = ("comment", "reply", "follow_up")


DELIVERY_STATES = ("sent", "queued", "retrying", "failed")
"""A message's delivery, from its mails: the worst of theirs (a failed one makes it failed, ...)."""

_DELIVERY = ("SELECT MAX(CASE WHEN o.state = 'failed' THEN 3 WHEN o.state = 'pending' AND o.attempts > 0 THEN 2 "
             "WHEN o.state = 'pending' THEN 1 ELSE 0 END) FROM rc_outbox o WHERE o.message_id = m.id")
"""The index in ``DELIVERY_STATES`` of a message's delivery, read from its outbox rows when
the thread is shown: the outbox worker then records each mail in one statement of its own."""


def _delivery_state(made: str | None, worst: int | None) -> str | None:
    """``None`` for a message that went out by no mail; else what its mails say (as made, while it has none)."""
    if made is None:
        return None
    return DELIVERY_STATES[int(worst)] if worst is not None else made


def _check_body(body: Any, errors: list[dict[str, str]]) -> str:
    if not isinstance(body, str) or not body.strip():
        errors.append({"field": "body", "message": "write something"})
        return ""
    if len(body) > MAX_BODY:
        errors.append({"field": "body", "message": f"at most {MAX_BODY} characters"})
    return body.replace("\r\n", "\n").strip("\n")


def _headers(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return dict(value) if isinstance(value, dict) else {}


class Messages:
    """The message services of one runtime (``runtime.messages``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.notices = Notices(runtime)
        # a new work order's only event, ``created``, changes no status: no notice
        runtime.listen(self.notices.status_changed, quiet_on_create=lambda *_: True,
                       quiet_on_change=self.notices.quiet_on)

    # -- read -------------------------------------------------------------------------------

    async def thread(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        """The order's messages, oldest first; a customer sees only the client-viewable ones."""
        order = await self.runtime._load(actor, number)
        return await self._rows(actor, order)

    async def _rows(self, actor: Actor, order: Order, only: int | None = None) -> list[dict[str, Any]]:
        sql = ("SELECT m.id, m.kind, m.body, m.client_viewable, m.headers, m.delivery_state, m.created_at, "
               f"u.login AS author, ({_DELIVERY}) AS delivery FROM rc_message m "
               "LEFT JOIN rc_user u ON u.id = m.author_id WHERE m.work_order_id = {}")
        args: list[Any] = [order.id]
        if not actor.is_staff:
            sql += " AND m.client_viewable = {}"
            args.append(True)
        if only is not None:
            sql += " AND m.id = {}"
            args.append(only)
        rows = await self.runtime.db.fetch(sql + " ORDER BY m.id", *args)
        files = await files_of_messages(self.runtime.db, order) if rows else {}
        out = []
        for row in rows:
            headers = _headers(row["headers"])
            out.append({
                "id": int(row["id"]), "kind": row["kind"], "author": row["author"], "body": row["body"],
                "client_viewable": bool(row["client_viewable"]), "created_at": to_json_time(row["created_at"]),
                "to": list(headers.get("to") or []), "subject": headers.get("subject"),
                "from": headers.get("from"),  # received mail (kind ``email``): the sender's address
                "delivery_state": _delivery_state(row["delivery_state"], row["delivery"]),
                "attachments": [{**f, "download": f"/api/attachments/{f['id']}"} for f in files.get(int(row["id"]), [])],
            })
        return out

    async def sendable_files(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        """The order's files ``actor`` may send with a message (``own``: uploaded by ``actor``, so also private)."""
        order = await self.runtime._load(actor, number)
        return await sendable(self.runtime.db, actor, order)

    async def subscribers(self, actor: Actor, number: str) -> list[str]:
        """Logins following the order; a customer learns only whether it follows itself."""
        order = await self.runtime._load(actor, number)
        rows = await self.runtime.db.fetch(
            "SELECT u.id, u.login FROM rc_subscription s JOIN rc_user u ON u.id = s.user_id "
            "WHERE s.work_order_id = {} ORDER BY u.login", order.id)
        return [r["login"] for r in rows if actor.is_staff or r["id"] == actor.id]

    # -- write ------------------------------------------------------------------------------

    async def comment(self, actor: Actor, number: str, body: str, *, client_viewable: bool | None = None,
                      assign_to: str | None = None, subscribe: bool = False, attachments: Sequence[int] = (),
                      template: str | None = None) -> dict[str, Any]:
        """A note in the thread: private (staff only) or client-viewable; copied to the subscribers.

        ``template`` names a comment template: its filled-in text is the body when ``body`` is
        empty, its ``client_viewable`` the default. ``attachments``: ids of recorded files
        (see ``engine.comms.files``), tied to the message and carried by its mails.
        """
        return await self._post(actor, number, "comment", body, client_viewable=client_viewable,
                                assign_to=assign_to, subscribe=subscribe, attachments=attachments, template=template)

    async def reply(self, actor: Actor, number: str, body: str, *, to: str | Sequence[str] | None = None,
                    subject: str | None = None, quote: bool = False, assign_to: str | None = None,
                    subscribe: bool = False, attachments: Sequence[int] = (),
                    template: str | None = None) -> dict[str, Any]:
        """An email to the customer (``to``, default: the contact address), quoting the last client-viewable
        message when ``quote``; always client-viewable. ``attachments`` and ``template`` as for ``comment``."""
        return await self._post(actor, number, "reply", body, client_viewable=True, to=to, subject=subject,
                                quote=quote, assign_to=assign_to, subscribe=subscribe, attachments=attachments,
                                template=template)

    async def follow_up(self, actor: Actor, number: str, body: str, *, subject: str | None = None,
                        client_viewable: bool | None = None, assign_to: str | None = None,
                        subscribe: bool = False, attachments: Sequence[int] = (),
                        template: str | None = None) -> dict[str, Any]:
        """A note mailed to the order's subscribers (staff only unless ``client_viewable``); see ``comment``."""
        return await self._post(actor, number, "follow_up", body, client_viewable=client_viewable, subject=subject,
                                assign_to=assign_to, subscribe=subscribe, attachments=attachments, template=template)

    async def fill_template(self, actor: Actor, number: str, name: str, kind: str) -> dict[str, Any]:
        """Comment template ``name`` filled in for the order (for the form's picker): its text and visibility."""
        if not actor.is_staff:
            raise Forbidden(f"{actor.login} may not use comment templates")
        order = await self.runtime._load(actor, number)
        chosen = pick(self.runtime.workspace, order, name, kind)
        return {"template": chosen.name, "body": fill(self.notices, order, chosen),
                "client_viewable": chosen.client_viewable}

    async def subscribe(self, actor: Actor, number: str, on: bool = True) -> bool:
        """Follow (``on``) or stop following the order; returns whether the actor now follows it."""
        if not isinstance(on, bool):
            raise Invalid("say on or off", [{"field": "on", "message": "expected true or false"}])
        async with self.runtime.db.transaction():
            order = await self.runtime._load(actor, number)
            await self._subscription(actor, order, on)
        return on

    async def _subscription(self, actor: Actor, order: Order, on: bool) -> None:
        if actor.id is None:
            return
        db = self.runtime.db
        if on:  # two messages of one user at once both subscribe: one row, one event
            added = await db.fetch(
                "INSERT INTO rc_subscription (work_order_id, user_id) VALUES ({}, {}) "
                "ON CONFLICT (work_order_id, user_id) DO NOTHING RETURNING id", order.id, actor.id)
            if not added:
                return
        elif not await db.fetch("DELETE FROM rc_subscription WHERE work_order_id = {} AND user_id = {} RETURNING id",
                                order.id, actor.id):
            return
        await insert_event(db, order.id, actor.id, "subscribed" if on else "unsubscribed", {}, {}, None,
                           self.runtime.workspace.fingerprint, order.version, now())

    async def chat(self, actor: Actor, number: str, body: Any) -> dict[str, Any]:
        """A chat message between the customer and staff on a running order (the portal's ``chat``)."""
        portal = portal_of(self.runtime.workspace)
        if portal is None or not portal.chat:
            raise Refused("chat is not enabled in this workspace's portal")
        return await self._post(actor, number, "chat", body, client_viewable=True)

    def _check_may(self, actor: Actor, kind: str, client_viewable: bool, assign_to: str | None) -> None:
        if kind == "chat":
            if actor.is_staff:
                actor.require("comment.public")
            return
        if not actor.is_staff:
            if kind != "comment" or not client_viewable or assign_to is not None:
                raise Forbidden(f"{actor.login} may only add client-viewable comments")
            return
        if kind == "reply":
            actor.require("email.send")
        else:
            actor.require("comment.public" if client_viewable else "comment.private")

    async def _post(self, actor: Actor, number: str, kind: str, body: Any, *, client_viewable: Any,
                    to: str | Sequence[str] | None = None, subject: Any = None, quote: Any = False,
                    assign_to: Any = None, subscribe: Any = False, attachments: Any = (),
                    template: Any = None) -> dict[str, Any]:
        errors: list[dict[str, str]] = []
        from_template = template is not None and not (isinstance(body, str) and body.strip())
        text = "" if from_template else _check_body(body, errors)
        title = check_subject(subject, errors)
        direct = addresses(to, "to", errors)
        ids = check_ids(attachments, errors)
        if template is not None and (not isinstance(template, str) or len(template) > 100):
            errors.append({"field": "template", "message": "expected the name of a comment template"})
        if client_viewable is None and template is None:
            client_viewable = False
        for name, value in (("client_viewable", client_viewable), ("quote", quote), ("subscribe", subscribe)):
            if not isinstance(value, bool) and not (name == "client_viewable" and value is None):
                errors.append({"field": name, "message": "expected true or false"})
        if assign_to is not None and (not isinstance(assign_to, str) or len(assign_to) > 100):
            errors.append({"field": "assign_to", "message": "expected a login"})
        if errors:
            raise Invalid(f"the {kind.replace('_', '-')} cannot be sent", errors)
        runtime = self.runtime
        async with runtime.db.transaction():
            order = await runtime._load(actor, number)
            if template is not None:
                if not actor.is_staff:
                    raise Forbidden(f"{actor.login} may not use comment templates")
                chosen = pick(runtime.workspace, order, template, kind)
                if from_template:
                    text = _check_body(fill(self.notices, order, chosen), errors)
                    if errors:
                        raise Invalid(f"the {kind.replace('_', '-')} cannot be sent", errors)
                client_viewable = chosen.client_viewable if client_viewable is None else client_viewable
            client_viewable = bool(client_viewable)
            self._check_may(actor, kind, client_viewable, assign_to)
            if kind == "chat" and order.is_final:
                raise Refused(f"work order {number} is {order.status}; its chat is closed")
            quoted = await self._quoted(order) if quote else None
            files = await message_files(runtime.db, actor, order, ids, client_viewable=client_viewable,
                                        max_per_mail=runtime.workspace.settings.attachments.max_per_mail)
            message = await self.notices.message(actor, order, kind, text, client_viewable=client_viewable,
                                                 to=direct, subject=title, quoted=quoted, files=mail_files(files))
            await tie(runtime.db, order, message, files)
            after: dict[str, Any] = {"message": message, "message_kind": kind, "client_viewable": client_viewable}
            if files:
                after["attachments"] = described(files)
            if template is not None:
                after["template"] = template
            await insert_event(runtime.db, order.id, actor.id, f"{kind}_added", {}, after,
                               None, runtime.workspace.fingerprint, order.version, now())
            for listener in runtime.after_message:
                await listener(order, kind, actor)
            if subscribe:
                await self._subscription(actor, order, True)
            if assign_to is not None:
                await runtime.assign(actor, number, order.version, assign_to or None)
            return (await self._rows(actor, order, only=message))[0]

    async def _quoted(self, order: Order) -> dict[str, Any] | None:
        """The last client-viewable message (what a customer has seen), for quoting in a reply."""
        rows = await self.runtime.db.fetch(
            "SELECT m.body, m.headers, m.created_at, u.name AS author FROM rc_message m "
            "LEFT JOIN rc_user u ON u.id = m.author_id WHERE m.work_order_id = {} AND m.client_viewable = {} "
            "ORDER BY m.id DESC LIMIT 1", order.id, True)
        if not rows:
            return None
        row = rows[0]
        return {"text": quote_lines(row["body"]), "author": row["author"] or "Routecard",
                "at": to_json_time(row["created_at"]), "message_id": _headers(row["headers"]).get("message_id")}
