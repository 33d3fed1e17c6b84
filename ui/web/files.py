"""Files in the screens: storing a form's uploads with its change, and the download route.

A download is always served as an attachment (``Content-Disposition: attachment``),
with the type detected when it was stored, ``X-Content-Type-Options: nosniff`` and
``Content-Security-Policy: sandbox``, so that nothing uploaded ever runs as a page of
this site. A file the person may not see answers exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

from litestar import Request, Response, get
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Stream

from engine.link.resolved import ResolvedField
from engine.model.workspace import MAX_FILE_SIZE
from engine.runtime import Actor, Runtime
from engine.runtime.attachments import Attachments, Upload
from engine.storage import CHUNK, size_words

from .forms import FIELD_PREFIX, Parsed, upload_values

T = TypeVar("T")

FilesDep = NamedDependency[Attachments]
"""The app's attachment services (``files``), storing under the workspace folder."""
UPLOAD_REQUEST_MAX = MAX_FILE_SIZE + 4 * 1024 * 1024
"""Largest body of a form that may carry files (bytes): refused with 413 before it is read."""


def files_provider(workspace_dir: Path) -> Callable[[State], Attachments]:
    """The ``files`` dependency: attachment services on the runtime, files under ``workspace_dir``'s folder."""
    def provide(state: State) -> Attachments:
        runtime: Runtime = state.runtime
        return Attachments.on_disk(runtime, workspace_dir)
    return provide


def download_name(filename: str) -> str:
    """The last part of a file's URL: its (already cleaned) name, percent-encoded."""
    return quote(filename, safe="")


def upload_hint(runtime: Runtime) -> str:
    """What the upload control says about the limit."""
    return size_words(runtime.workspace.settings.attachments.max_size)


async def save_with_files(files: Attachments, actor: Actor, parsed: Parsed, fields: Sequence[ResolvedField],
                          current: Mapping[str, Any],
                          change: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Store ``parsed``'s files, then ``change(new upload values)`` in the same transaction; the changed order.

    A refused file raises ``Invalid`` at its input and nothing is stored; if the change
    fails, the files already written are deleted again.
    """
    uploads = [Upload(f.upload.file, str(f.upload.filename), FIELD_PREFIX + f.field) for f in parsed.files]
    staged = await files.stage(uploads)
    async with files.saving(staged):
        ids = await files.insert(actor, staged)
        new_ids: dict[str, list[int]] = {}
        for item, attachment_id in zip(staged, ids, strict=True):
            new_ids.setdefault(item.field.removeprefix(FIELD_PREFIX), []).append(attachment_id)
        order = await change(upload_values(parsed, fields, current, new_ids))
        await files.attach(actor, ids, staged, str(order["number"]), int(order["version"]))
    return order


async def send_with_files(files: Attachments, actor: Actor, uploads: Sequence[Upload],
                          send: Callable[[list[int]], Awaitable[T]]) -> T:
    """Store ``uploads`` (checked, counted against the daily quota), then ``send(their ids)`` in the same transaction.

    For a thread message that carries new files: if a file is refused, or the message
    is, nothing is kept (the staged files are deleted again).
    """
    if not uploads:
        return await send([])
    staged = await files.stage(uploads)
    async with files.saving(staged):
        ids = await files.insert(actor, staged)
        return await send(ids)


async def _chunks(stream: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(stream.read, CHUNK):
            yield chunk
    finally:
        stream.close()


def file_response(row: Mapping[str, Any], stream: BinaryIO) -> Stream:
    """A stored file as a download, with the headers that keep it from running in the browser."""
    name = str(row["filename"])
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name)
    return Stream(_chunks(stream), media_type=str(row["content_type"]), headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}",
        "Content-Length": str(row["size"]),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
        "Cache-Control": "private, no-store",
    })


@get("/files/{attachment_id:int}/{name:str}", include_in_schema=False)
async def download(request: Request[Actor, Any, Any], files: FilesDep, attachment_id: FromPath[int],
                   name: FromPath[str]) -> Response[Any]:
    """A file, if the person may see its work order (the name in the URL is only for the browser)."""
    row, stream = await files.open(request.user, attachment_id)
    return file_response(row, stream)


FILE_HANDLERS = (download,)
"""The screens' file routes."""
