"""Attachments in the JSON API: a work order's files, uploading them, and downloading one.

Both answer 404 with the same body for a file (or order) that does not exist and for
one the caller may not see. Downloads carry the same protective headers as the
screens' (``ui.web.files.file_response``).
"""

from __future__ import annotations

from typing import Annotated, Any, BinaryIO, cast

import msgspec
from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import PathParameter

from engine.errors import Invalid
from engine.runtime import Actor
from engine.runtime.attachments import Upload

from ..web.files import UPLOAD_REQUEST_MAX, FilesDep, file_response
from ..web.forms import MAX_FILES

Number = Annotated[str, PathParameter(max_length=60, description="the work order's number, e.g. DS-100001")]
AttachmentId = Annotated[int, PathParameter(ge=1, le=2**63 - 1, description="the attachment's id")]


class Attachment(msgspec.Struct, kw_only=True):
    """One stored file of a work order."""

    id: int
    filename: str
    """The sender's filename, cleaned (no path, no control or direction characters)."""
    content_type: str
    """The type detected from the content when the file was stored."""
    size: int
    """Bytes."""
    created_at: str | None
    uploaded_by: str | None
    """The login of the user who stored it."""
    message_id: int | None
    """The message it came with, if any."""
    download: str
    """Where to fetch it: ``/api/attachments/{id}``."""


def _attachment(row: dict[str, Any]) -> Attachment:
    return Attachment(id=row["id"], filename=row["filename"], content_type=row["content_type"], size=row["size"],
                      created_at=row["created_at"], uploaded_by=row["uploaded_by"], message_id=row["message_id"],
                      download=f"/api/attachments/{row['id']}")


@get("/api/orders/{number:str}/attachments", tags=["attachments"], summary="The work order's files, oldest first")
async def list_attachments(request: Request[Actor, Any, Any], files: FilesDep, number: Number) -> list[Attachment]:
    return [_attachment(r) for r in await files.of_order(request.user, number)]


@get("/api/attachments/{attachment_id:int}", tags=["attachments"], summary="Download a file",
     description="The file's bytes, as an attachment, with its detected type, `X-Content-Type-Options: nosniff` "
                 "and `Content-Security-Policy: sandbox`. 404 for an unknown id and for a file you may not see.",
     response_description="the file", media_type="application/octet-stream")
async def download_attachment(request: Request[Actor, Any, Any], files: FilesDep,
                              attachment_id: AttachmentId) -> Response[Any]:
    row, stream = await files.open(request.user, attachment_id)
    return file_response(row, stream)


@post("/api/orders/{number:str}/attachments", status_code=201, tags=["attachments"],
      request_max_body_size=UPLOAD_REQUEST_MAX, summary="Attach files to the work order",
      description="A multipart body with one or more parts named `file` (at most 20). Each is checked like any "
                  "upload (size limit, type detected from the content); if one is refused (422, naming it), "
                  "none is kept. Needs the right to edit the work order.")
async def upload_attachments(request: Request[Actor, Any, Any], files: FilesDep, number: Number) -> list[Attachment]:
    actor = request.user
    await files.check_edit(actor, number)
    form = await request.form()
    uploads = [Upload(cast(BinaryIO, value.file), str(value.filename or "file"), "file")
               for key, value in form.multi_items() if key == "file" and isinstance(value, UploadFile)]
    if not uploads or len(uploads) > MAX_FILES:
        raise Invalid("send 1 to 20 files as multipart parts named `file`",
                      [{"field": "file", "message": f"expected 1 to {MAX_FILES} files, got {len(uploads)}"}])
    staged = await files.stage(uploads)
    async with files.saving(staged):
        order = await files.check_edit(actor, number)  # again, inside the transaction
        ids = await files.insert(actor, staged, order.id)
        await files.attach(actor, ids, staged, number, order.version)
    rows = {r["id"]: r for r in await files.of_order(actor, number)}
    return [_attachment(rows[i]) for i in ids]


ATTACHMENT_HANDLERS = (list_attachments, download_attachment, upload_attachments)
"""The API's attachment routes."""
