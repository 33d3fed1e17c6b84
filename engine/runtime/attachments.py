"""Attachments: files kept for a work order, stored through ``engine.storage``, recorded in ``rc_attachment``.

Storing is two-phase so that no database transaction waits on a disk or network:
``stage`` writes the files (checked: size, type; a refused one leaves nothing, and
then none of the batch is kept), ``saving`` opens the transaction in which ``insert``
records them, the caller changes the work order (its ``upload`` field takes the ids),
and ``attach`` ties the rows to the order with an audit event. If anything in
``saving`` fails, the transaction rolls back and the staged files are deleted.
``store`` does all of it for one file.

Every user has a daily quota (``attachments.daily_quota``): ``insert`` counts the bytes
the user stored within the last 24 hours, inside the transaction, and refuses (413,
``QuotaExceeded``, at the file's field) a batch that would go beyond it; the rollback
then deletes the staged files, so nothing is kept. Files that arrive by mail are not
counted (``counted=False``): the inbound limits govern them.

Reading checks the runtime's rules: a file is there for whoever may see its work
order (``Runtime.can_see``: a customer's users only their own customer's orders);
anything else is ``NotFound``, exactly as for an id that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..db import Database
from ..errors import Forbidden, Invalid, NotFound, Refused
from ..model.workspace import Workspace
from ..storage import DiskStorage, Policy, Stored, Storage, receive, size_words
from .actors import Actor
from .fields import to_json_time
from .service import Runtime
from .state import Order, insert_event, load_order, now


QUOTA_WINDOW = dt.timedelta(hours=24)
"""The span ``attachments.daily_quota`` counts a user's uploads in."""


class QuotaExceeded(Invalid):
    """The user's uploads of the last 24 hours plus these files exceed ``attachments.daily_quota``."""

    status = 413
    code = "quota_exceeded"


def disk_store(settings: Workspace, workspace_dir: Path) -> DiskStorage:
    """The disk store of a workspace: ``attachments.folder``, relative to ``workspace_dir`` unless absolute."""
    folder = Path(settings.attachments.folder)
    return DiskStorage(folder if folder.is_absolute() else workspace_dir / folder)


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: its bytes (a file object or bytes), the sender's filename, the field it is for."""

    source: BinaryIO | bytes
    filename: str
    field: str = "file"


@dataclass(frozen=True)
class Staged:
    """A file written to the store, not yet recorded."""

    field: str
    stored: Stored


class Attachments:
    """The attachment services of one runtime, storing into ``storage``."""

    def __init__(self, runtime: Runtime, storage: Storage) -> None:
        self.runtime = runtime
        self.storage = storage

    @classmethod
    def on_disk(cls, runtime: Runtime, workspace_dir: Path) -> Attachments:
        """Files under the workspace's ``attachments.folder`` (relative to ``workspace_dir``)."""
        return cls(runtime, disk_store(runtime.workspace.settings, workspace_dir))

    @property
    def policy(self) -> Policy:
        settings = self.runtime.workspace.settings.attachments
        return Policy(max_size=settings.max_size, allowed_types=frozenset(settings.allowed_types))

    # -- storing ----------------------------------------------------------------------------

    async def check_edit(self, actor: Actor, number: str) -> Order:
        """The work order ``number`` if ``actor`` may change its content (and so attach files to it)."""
        runtime = self.runtime
        order = await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs,
                                 number)
        if not runtime.can_see(actor, order):
            raise NotFound(f"no work order {number}")
        if order.is_final:
            raise Refused(f"work order {number} is {order.status}; it can no longer change")
        if not runtime.abilities_on(actor, order).edit:
            raise Forbidden(f"{actor.login} may not edit work order {number}")
        return order

    async def stage(self, uploads: Sequence[Upload]) -> list[Staged]:
        """Write every upload to the store; ``Invalid`` naming each refused one, and then nothing is kept."""
        staged: list[Staged] = []
        errors: list[dict[str, str]] = []
        policy = self.policy
        for upload in uploads:
            try:
                stored = await asyncio.to_thread(receive, self.storage, upload.source, upload.filename, policy,
                                                 field=upload.field)
            except Invalid as exc:
                errors += exc.errors
                continue
            except BaseException:
                await self.discard(staged)
                raise
            staged.append(Staged(upload.field, stored))
        if errors:
            await self.discard(staged)
            raise Invalid(f"{len(errors)} file{'s' if len(errors) != 1 else ''} not accepted", errors)
        return staged

    async def discard(self, staged: Sequence[Staged]) -> None:
        """Delete staged files (their rows, if any, went with the rolled-back transaction)."""
        for item in staged:
            await asyncio.to_thread(self.storage.delete, item.stored.key)

    @contextlib.asynccontextmanager
    async def saving(self, staged: Sequence[Staged]) -> AsyncIterator[None]:
        """A transaction for recording ``staged``; if it fails, the files are deleted too."""
        try:
            async with self.runtime.db.transaction():
                yield
        except BaseException:
            await self.discard(staged)
            raise

    async def insert(self, actor: Actor, staged: Sequence[Staged], order_id: int | None = None, *,
                     counted: bool = True) -> list[int]:
        """Record staged files (inside ``saving``); their ids, in order. Without ``order_id`` they wait for ``attach``.

        ``counted`` files count against the actor's daily quota (``QuotaExceeded`` beyond it).
        """
        ids: list[int] = []
        moment = now()
        if counted:
            await self.check_quota(actor, staged, moment)
        for item in staged:
            stored = item.stored
            ids.append(int(await self.runtime.db.fetch_value(
                "INSERT INTO rc_attachment (work_order_id, storage_key, filename, content_type, size, uploaded_by, "
                "created_at) VALUES ({}, {}, {}, {}, {}, {}, {}) RETURNING id",
                order_id, stored.key, stored.filename, stored.content_type, stored.size, actor.id, moment)))
        return ids

    async def used_today(self, actor: Actor, moment: dt.datetime | None = None) -> int:
        """Bytes ``actor`` stored within the last 24 hours (``QUOTA_WINDOW``)."""
        if actor.id is None:
            return 0
        since = (moment or now()) - QUOTA_WINDOW
        used = await self.runtime.db.fetch_value(
            "SELECT COALESCE(SUM(size), 0) AS n FROM rc_attachment WHERE uploaded_by = {} AND created_at > {}",
            actor.id, since)
        return int(used or 0)

    async def check_quota(self, actor: Actor, staged: Sequence[Staged], moment: dt.datetime | None = None) -> None:
        """``QuotaExceeded`` (at the first file's field) if storing ``staged`` takes ``actor`` over the daily quota."""
        quota = self.runtime.workspace.settings.attachments.daily_quota
        if not quota or not staged or actor.id is None:
            return
        adding = sum(item.stored.size for item in staged)
        used = await self.used_today(actor, moment)
        if used + adding > quota:
            left = max(quota - used, 0)
            message = (f"your uploads of the last 24 hours would exceed the daily quota of {size_words(quota)} "
                       f"({size_words(left)} left, these files are {size_words(adding)})")
            raise QuotaExceeded("upload quota exceeded", [{"field": staged[0].field, "message": message}])

    async def attach(self, actor: Actor, ids: Sequence[int], staged: Sequence[Staged], number: str,
                     version: int) -> None:
        """Tie recorded files to work order ``number`` (at ``version``) and write the audit event."""
        if not ids:
            return
        db = self.runtime.db
        order_id = int(await db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number))
        for attachment_id in ids:
            await db.execute("UPDATE rc_attachment SET work_order_id = {} WHERE id = {} AND work_order_id IS NULL",
                             order_id, attachment_id)
        files = [{"id": i, "field": s.field, "filename": s.stored.filename, "content_type": s.stored.content_type,
                  "size": s.stored.size} for i, s in zip(ids, staged, strict=True)]
        await insert_event(db, order_id, actor.id, "attached", {}, {"attachments": files}, None,
                           self.runtime.workspace.fingerprint, version, now())

    async def store(self, actor: Actor, number: str, upload: Upload) -> dict[str, Any]:
        """Attach one file to work order ``number`` (the actor must be allowed to edit it); the new attachment."""
        await self.check_edit(actor, number)
        staged = await self.stage([upload])
        async with self.saving(staged):
            order = await self.check_edit(actor, number)  # again, inside the transaction
            ids = await self.insert(actor, staged, order.id)
            await self.attach(actor, ids, staged, number, order.version)
        return (await self._rows("a.id = {}", ids[0]))[0]

    # -- reading -----------------------------------------------------------------------------

    async def _rows(self, where: str, *args: Any) -> list[dict[str, Any]]:
        return await _rows(self.runtime.db, where, *args)

    async def _visible_order(self, actor: Actor, order_id: int) -> Order | None:
        runtime = self.runtime
        number = await runtime.db.fetch_value("SELECT number FROM rc_work_order WHERE id = {}", order_id)
        if number is None:
            return None
        try:
            order = await load_order(runtime.db, runtime.workspace.templates, runtime.workspace.queues,
                                     runtime.codecs, str(number))
        except NotFound:
            return None
        return order if runtime.can_see(actor, order) else None

    async def message_allows(self, actor: Actor, message_id: int) -> bool:
        """Hook: may ``actor`` see the files of message ``message_id``? (Given that the order is visible.)

        Staff see every message's files; anyone else only those of messages shown to the
        customer (``client_viewable``). When messages gain their own service, it decides here.
        """
        if actor.is_staff:
            return True
        shown = await self.runtime.db.fetch_value("SELECT client_viewable FROM rc_message WHERE id = {}", message_id)
        return bool(shown)

    async def get(self, actor: Actor, attachment_id: int) -> dict[str, Any]:
        """One attachment's metadata; ``NotFound`` for an unknown id and for one ``actor`` may not see."""
        missing = NotFound(f"no file {attachment_id}")
        if not 0 < attachment_id < 2**63:
            raise missing
        rows = await self._rows("a.id = {}", attachment_id)
        if not rows or rows[0]["work_order_id"] is None:
            raise missing
        row = rows[0]
        order = await self._visible_order(actor, int(row["work_order_id"]))
        if order is None:
            raise missing
        if row["message_id"] is not None and not await self.message_allows(actor, int(row["message_id"])):
            raise missing
        return {**row, "work_order": order.number}

    async def open(self, actor: Actor, attachment_id: int) -> tuple[dict[str, Any], BinaryIO]:
        """An attachment's metadata and its bytes (for download), by the rules of ``get``."""
        row = await self.get(actor, attachment_id)
        try:
            stream = await asyncio.to_thread(self.storage.open, row["storage_key"])
        except (FileNotFoundError, ValueError):
            raise NotFound(f"no file {attachment_id}") from None
        return row, stream

    async def of_order(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        """The files of work order ``number`` that ``actor`` may see, oldest first."""
        order_id = await self.runtime.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number)
        order = await self._visible_order(actor, int(order_id)) if order_id is not None else None
        if order is None:
            raise NotFound(f"no work order {number}")
        rows = await self._rows("a.work_order_id = {}", order.id)
        return [r for r in rows if r["message_id"] is None or await self.message_allows(actor, int(r["message_id"]))]

    async def named(self, number: str, ids: Sequence[Any]) -> dict[int, dict[str, Any]]:
        """The files among ``ids`` that belong to work order ``number`` (see ``attachments_named``)."""
        return await attachments_named(self.runtime.db, number, ids)


async def attachments_named(db: Database, number: str, ids: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """The files among ``ids`` that belong to work order ``number`` (the caller has checked visibility).

    An id of another order's file (put into a field through the API) is left out.
    """
    wanted = sorted({i for i in ids if isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**63})[:500]
    if not wanted:
        return {}
    marks = ", ".join("{}" for _ in wanted)
    rows = await _rows(db, f"a.work_order_id = (SELECT id FROM rc_work_order WHERE number = {{}}) AND a.id IN ({marks})",
                       number, *wanted)
    return {int(r["id"]): r for r in rows}


async def _rows(db: Database, where: str, *args: Any) -> list[dict[str, Any]]:
    rows = await db.fetch(
        "SELECT a.id, a.work_order_id, a.message_id, a.filename, a.content_type, a.size, a.created_at, "
        "a.storage_key, u.login AS uploaded_by FROM rc_attachment a LEFT JOIN rc_user u ON u.id = a.uploaded_by "
        f"WHERE {where} ORDER BY a.id", *args)
    return [_public(row) for row in rows]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    created = row["created_at"]
    return {**row, "id": int(row["id"]), "size": int(row["size"]),
            "created_at": to_json_time(created) if isinstance(created, (dt.datetime, str)) else None}
