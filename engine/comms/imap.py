"""The IMAP poller: fetches new mail from a mailbox and hands each message to ``Inbound.receive``.

One round (``ImapPoller.run_once``): log in (SSL, STARTTLS, or plain for a server on
this machine), select ``mail.inbound.imap.mailbox``, list the messages to take by UID
(``UNSEEN``; with ``after: move`` every message, since taken ones leave the folder), and
for each: read its size, fetch it without marking it (``BODY.PEEK[]``), receive it, and
only then flag it ``\\Seen`` or move it to ``move_to``.

Each message is handled once even if the worker dies in the middle: ``receive`` records
the mail (by Message-ID, else by content) in the same transaction as its work order or
message, so a message fetched again after a crash is a ``duplicate`` and is only flagged.
A message larger than ``max_bytes`` is never downloaded; it and an unreadable one are
noted (``rc_inbound_mail``, by mailbox, UIDVALIDITY and UID) and flagged, so they are
looked at once. A round that fails (server down, wrong password) is reported and the next
round tries again; nothing is flagged that was not taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import imaplib
import os
import re
import ssl
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ServiceError
from ..model.workspace import Imap
from ..runtime.attachments import Attachments
from ..runtime.service import Runtime
from .inbound import Inbound
from .parse import Unreadable

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


class ImapError(Exception):
    """The mailbox cannot be read (connection, login, folder); the message says why, without secrets."""


def _connect(imap: Imap, timeout: float) -> imaplib.IMAP4:
    password = os.environ.get(imap.password_env)
    if password is None:
        raise ImapError(f"the environment variable {imap.password_env} holding the IMAP password is not set")
    context = ssl.create_default_context()
    client: imaplib.IMAP4 | None = None
    try:
        if imap.security == "ssl":
            client = imaplib.IMAP4_SSL(imap.host, imap.port, ssl_context=context, timeout=timeout)
        else:
            client = imaplib.IMAP4(imap.host, imap.port, timeout=timeout)
            if imap.security == "starttls":
                client.starttls(ssl_context=context)
        client.login(imap.username, password)
        status, data = client.capability()  # the server tells more once logged in (MOVE, UIDPLUS)
        if status == "OK" and data and isinstance(data[0], bytes):
            client.capabilities = tuple(data[0].decode("ascii", "replace").upper().split())
    except (OSError, imaplib.IMAP4.error) as exc:
        if client is not None:
            with contextlib.suppress(OSError, imaplib.IMAP4.error):
                client.shutdown()
        raise ImapError(f"cannot log in to {imap.host}:{imap.port}: {type(exc).__name__}: {exc}"[:300]) from None
    assert client is not None
    return client


def _check(answer: tuple[str, Any], what: str) -> list[Any]:
    status, data = answer
    if status != "OK":
        raise ImapError(f"{what} failed: {status}")
    return list(data or [])


def _select(client: imaplib.IMAP4, imap: Imap) -> tuple[str, list[int]]:
    """Select the folder; its UIDVALIDITY and the UIDs of the messages to take, oldest first."""
    _check(client.select(_quoted(imap.mailbox)), f"selecting {imap.mailbox}")
    validity = client.response("UIDVALIDITY")[1]
    first = validity[0] if validity else None
    criteria = "NOT DELETED" if imap.after == "move" and imap.move_to else "UNSEEN NOT DELETED"
    data = _check(client.uid("SEARCH", criteria), "searching the folder")
    found = b" ".join(d for d in data if isinstance(d, bytes))
    uids = sorted(int(u) for u in found.split() if u.isdigit())
    return (first.decode() if isinstance(first, bytes) else "0"), uids


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _size(client: imaplib.IMAP4, uid: int) -> int | None:
    data = _check(client.uid("FETCH", str(uid), "(RFC822.SIZE)"), "reading a message's size")
    for item in data:
        text = item[0] if isinstance(item, tuple) else item
        if isinstance(text, bytes) and (match := _SIZE.search(text)):
            return int(match[1])
    return None


def _fetch(client: imaplib.IMAP4, uid: int) -> bytes | None:
    data = _check(client.uid("FETCH", str(uid), "(BODY.PEEK[])"), "fetching a message")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
            return item[1]
    return None


def _done(client: imaplib.IMAP4, imap: Imap, uid: int) -> None:
    """Flag a taken message ``\\Seen``, or move it to ``move_to``."""
    if imap.after == "move" and imap.move_to:
        capabilities = {c.upper() for c in getattr(client, "capabilities", ())}
        if "MOVE" in capabilities:
            _check(client.uid("MOVE", str(uid), _quoted(imap.move_to)), f"moving a message to {imap.move_to}")
            return
        _check(client.uid("COPY", str(uid), _quoted(imap.move_to)), f"copying a message to {imap.move_to}")
        _check(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Deleted \\Seen)"), "flagging a message")
        if "UIDPLUS" in capabilities:
            _check(client.uid("EXPUNGE", str(uid)), "expunging a message")
        return
    _check(client.uid("STORE", str(uid), "+FLAGS.SILENT", "(\\Seen)"), "flagging a message")


def _logout(client: imaplib.IMAP4) -> None:
    try:
        client.logout()
    except (OSError, imaplib.IMAP4.error):
        pass


class ImapPoller:
    """Reads the workspace's IMAP mailbox into ``Inbound`` (made fresh each round by ``inbound``)."""

    def __init__(self, inbound: Callable[[], Inbound], *, batch: int = 50, timeout: float = 30.0,
                 say: Callable[[str], None] | None = None) -> None:
        self.inbound = inbound
        self.batch = batch
        self.timeout = timeout
        self.say = say or (lambda _: None)

    def settings(self, inbound: Inbound) -> Imap:
        imap = inbound.settings.imap
        if imap is None:
            raise ImapError("no IMAP mailbox is configured (mail.inbound.imap in routecard.yaml)")
        return imap

    async def run_once(self) -> Counter[str]:
        """One round; how many messages had each outcome (``created``, ``threaded``, ``duplicate`` ...)."""
        inbound = self.inbound()
        imap = self.settings(inbound)
        limit = inbound.settings.max_bytes
        outcomes: Counter[str] = Counter()
        client = await asyncio.to_thread(_connect, imap, self.timeout)
        try:
            validity, uids = await asyncio.to_thread(_select, client, imap)
            for uid in uids[:self.batch]:
                source = f"imap:{imap.username}@{imap.host}/{imap.mailbox}:{validity}:{uid}"
                place = "imap:" + hashlib.sha256(source.encode()).hexdigest()
                outcome = await self._take(inbound, client, uid, source, place, limit)
                outcomes[outcome] += 1
                await asyncio.to_thread(_done, client, imap, uid)
        finally:
            await asyncio.to_thread(_logout, client)
        return outcomes

    async def _take(self, inbound: Inbound, client: imaplib.IMAP4, uid: int, source: str, place: str,
                    limit: int) -> str:
        """Receive one message; its outcome."""
        if await inbound.seen(place):
            return "duplicate"
        size = await asyncio.to_thread(_size, client, uid)
        if size is not None and size > limit:
            await inbound.note(place, source, "too_large")
            self.say(f"{source}: {size} bytes, larger than mail.inbound.max_bytes ({limit}); left in the mailbox")
            return "too_large"
        raw = await asyncio.to_thread(_fetch, client, uid)
        if raw is None:
            raise ImapError(f"{source}: the server sent no message")
        try:
            delivered = await inbound.receive(raw, source=source)
        except Unreadable as exc:
            await inbound.note(place, source, "unreadable", raw=raw)
            self.say(f"{source}: not a readable mail ({exc.detail}); kept")
            return "unreadable"
        except ServiceError as exc:
            await inbound.note(place, source, "refused", raw=raw)
            self.say(f"{source}: refused ({exc.detail}); kept")
            return "refused"
        self.say(f"{source}: {delivered.outcome} {delivered.number or ''}".rstrip())
        return delivered.outcome

    async def run(self) -> None:
        """Rounds every ``mail.inbound.imap.interval`` seconds until cancelled; a failed round is reported."""
        while True:
            interval = 60
            try:
                inbound = self.inbound()
                interval = self.settings(inbound).interval
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a mail server or database hiccup must not stop the worker
                self.say(f"IMAP round failed: {type(exc).__name__}: {exc}"[:500])
            await asyncio.sleep(interval)


def imap_poller(runtime: Runtime, workspace_dir: Path, say: Callable[[str], None]) -> ImapPoller:
    """The poller of ``routecard worker --imap``: attachments stored under the workspace's folder."""
    files = Attachments.on_disk(runtime, workspace_dir)
    return ImapPoller(lambda: Inbound(runtime, files), say=say)


async def poll_once(poller: ImapPoller, say: Callable[[str], None]) -> bool:
    """One round for ``--once``, reported; whether it worked."""
    try:
        outcomes = await poller.run_once()
    except (ImapError, ServiceError) as exc:
        say(f"IMAP: {exc}")
        return False
    say("IMAP: " + (", ".join(f"{name} {count}" for name, count in sorted(outcomes.items())) or "no new mail"))
    return True
