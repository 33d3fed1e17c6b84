"""Files sent with a thread message: checked, tied to the message, carried by its mails.

A reply, comment or follow-up may carry files that are already recorded in
``rc_attachment``: uploaded with the message itself (recorded just before, not yet tied
to an order) or uploaded to the order earlier (``POST /api/orders/{n}/attachments``).
Within the message's transaction they are checked (``message_files``) and tied to it
(``tie``): ``rc_attachment.message_id`` then says who may download them (the message's
readers, see ``Attachments.message_allows``), and every mail of the message names them
by storage key (``mail_files``); the outbox worker reads the bytes when it sends.

Refused, each at ``attachments.<index>``: an id that is not a file of this order (or
one the author uploaded for it), a file already sent with another message, a file that
is the value of an upload field (it stays with the field, readable by whoever reads the
order), someone else's file on a private message (tying it there would hide it from
the customer who may read it now), more than ``MAX_FILES`` files, and files larger
together than ``attachments.max_per_mail``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..db import Database
from ..errors import Invalid
from ..runtime.actors import Actor
from ..runtime.state import Order
from ..storage import size_words
from .mail import MailFile

MAX_FILES = 20
"""Most files one message carries."""
SENDABLE_SHOWN = 100
"""Most of an order's files a message form offers to send along."""


def check_ids(value: Any, errors: list[dict[str, str]]) -> list[int]:
    """``value`` as a list of distinct attachment ids, or entries in ``errors``."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        errors.append({"field": "attachments", "message": "expected a list of file ids"})
        return []
    if len(value) > MAX_FILES:
        errors.append({"field": "attachments", "message": f"at most {MAX_FILES} files with one message"})
        return []
    ids: list[int] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 2**63:
            errors.append({"field": f"attachments.{index}", "message": "expected a file id"})
        elif item not in ids:
            ids.append(item)
    return ids


def _field_files(order: Order) -> dict[int, str]:
    """The ids held by the order's upload fields, with the field's name."""
    out: dict[int, str] = {}
    for field in order.template.fields:
        if field.type != "upload":
            continue
        value = order.state["fields"].get(field.name)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int):
                out[item] = field.name
    return out


async def message_files(db: Database, actor: Actor, order: Order, ids: Sequence[int], *, client_viewable: bool,
                        max_per_mail: int) -> list[dict[str, Any]]:
    """The files ``ids`` as rows, if ``actor`` may send them with a message on ``order``; else ``Invalid``."""
    if not ids:
        return []
    marks = ", ".join("{}" for _ in ids)
    rows = {int(r["id"]): r for r in await db.fetch(
        "SELECT id, work_order_id, message_id, uploaded_by, storage_key, filename, content_type, size "
        f"FROM rc_attachment WHERE id IN ({marks})", *ids)}
    in_fields = _field_files(order)
    errors: list[dict[str, str]] = []
    chosen: list[dict[str, Any]] = []
    for index, attachment_id in enumerate(ids):
        row = rows.get(attachment_id)
        where = f"attachments.{index}"
        own = row is not None and actor.id is not None and row["uploaded_by"] == actor.id
        if row is None or not (row["work_order_id"] == order.id or (row["work_order_id"] is None and own)) \
                or not (actor.is_staff or own):
            errors.append({"field": where, "message": f"not a file of work order {order.number}: {attachment_id}"})
        elif row["message_id"] is not None:
            errors.append({"field": where, "message": f"file {attachment_id} was sent with another message already"})
        elif attachment_id in in_fields:
            errors.append({"field": where, "message": f"file {attachment_id} is the value of the field "
                                                      f"`{in_fields[attachment_id]}`; it stays there"})
        elif not client_viewable and not own:
            errors.append({"field": where, "message": f"file {attachment_id} was uploaded by someone else; "
                                                      "only a message the customer may read can carry it"})
        else:
            chosen.append(row)
    total = sum(int(r["size"]) for r in chosen)
    if not errors and total > max_per_mail:
        errors.append({"field": "attachments", "message": f"the files are {size_words(total)} together; "
                                                          f"one message carries at most {size_words(max_per_mail)}"})
    if errors:
        raise Invalid(f"{len(errors)} file{'s' if len(errors) != 1 else ''} cannot be sent", errors)
    return chosen


async def tie(db: Database, order: Order, message: int, files: Sequence[dict[str, Any]]) -> None:
    """Tie the checked ``files`` to the order and to ``message`` (inside the message's transaction)."""
    for row in files:
        await db.execute("UPDATE rc_attachment SET work_order_id = {}, message_id = {} WHERE id = {}",
                         order.id, message, row["id"])


def mail_files(files: Sequence[dict[str, Any]]) -> list[MailFile]:
    """The files as a mail names them: storage key, name, detected type, size."""
    return [MailFile(key=str(r["storage_key"]), filename=str(r["filename"]), content_type=str(r["content_type"]),
                     size=int(r["size"])) for r in files]


def described(files: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The files as the audit event and the thread show them."""
    return [{"id": int(r["id"]), "filename": r["filename"], "content_type": r["content_type"], "size": int(r["size"])}
            for r in files]


async def files_of_messages(db: Database, order: Order) -> dict[int, list[dict[str, Any]]]:
    """The files of each message of ``order``, by message id (oldest first)."""
    rows = await db.fetch("SELECT id, message_id, filename, content_type, size FROM rc_attachment "
                          "WHERE work_order_id = {} AND message_id IS NOT NULL ORDER BY id", order.id)
    out: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(int(row["message_id"]), []).extend(described([row]))
    return out


async def sendable(db: Database, actor: Actor, order: Order) -> list[dict[str, Any]]:
    """The order's files ``actor`` may send with a client-viewable message (see ``message_files``), newest first.

    At most ``SENDABLE_SHOWN`` (a form lists them; older ones can still be sent by id).
    """
    in_fields = _field_files(order)
    rows = await db.fetch("SELECT id, uploaded_by, filename, content_type, size FROM rc_attachment "
                          "WHERE work_order_id = {} AND message_id IS NULL ORDER BY id DESC LIMIT {}",
                          order.id, SENDABLE_SHOWN)
    return [{**described([r])[0], "own": r["uploaded_by"] == actor.id} for r in rows
            if int(r["id"]) not in in_fields and (actor.is_staff or r["uploaded_by"] == actor.id)]
