"""Writing an archive: definitions, every table page by page in one snapshot, then the stored files."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

import msgspec

from .. import __version__
from ..compile.spec import SchemaSpec, TableSpec
from ..db import Database
from ..identifiers import quote
from ..link.resolved import LinkedWorkspace
from ..load import workspace_files
from ..migrate.live import drift, read_live
from ..migrate.plan import latest_version
from ..runtime.numbering import counter_values
from ..storage import CHUNK, Storage
from .format import (
    FILE_LIST,
    FORMAT,
    MANIFEST,
    ArchiveError,
    Manifest,
    Member,
    StoredFile,
    Summary,
    TableMember,
    reference_order,
)
from .values import encode_value, table_columns

PAGE = 1000
"""Rows read per query."""
_UTC = dt.timezone.utc


class _Writer:
    """Members streamed into a zip file, each hashed and measured on the way."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.when = time.gmtime()[:6]

    @contextlib.contextmanager
    def member(self, name: str, *, compress: bool = True) -> Iterator[_Sink]:
        info = zipfile.ZipInfo(name, date_time=self.when)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        with self.zf.open(info, "w", force_zip64=True) as out:
            yield _Sink(name, out)


class _Sink:
    def __init__(self, name: str, out: IO[bytes]) -> None:
        self.name = name
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.out.write(data)
        self.digest.update(data)
        self.size += len(data)

    def entry(self) -> Member:
        return Member(name=self.name, bytes=self.size, sha256=self.digest.hexdigest())


async def _export_table(db: Database, writer: _Writer, table: TableSpec,
                        numbers: dict[str, int] | None = None) -> TableMember:
    """One table's rows; ``numbers`` (``rc_counter``, on PostgreSQL) the last number of each
    template's sequence, written in its counter row (``runtime.numbering``)."""
    columns = table_columns(table)
    select = (f"SELECT {', '.join(quote(name) for name, _ in columns)} FROM {quote(table.name)} "
              f"WHERE {quote('id')} > {{}} ORDER BY {quote('id')} LIMIT {PAGE}")
    rows = 0
    with writer.member(f"tables/{table.name}.jsonl") as sink:
        last = -(2 ** 63)
        while True:
            page = await db.fetch(select, last)
            for row in page:
                if numbers and row.get("name") in numbers:
                    row["value"] = max(int(row["value"]), numbers[row["name"]])
                encoded: dict[str, Any] = {}
                for name, kind in columns:
                    try:
                        encoded[name] = encode_value(kind, row[name])
                    except (ValueError, ArithmeticError) as exc:
                        raise ArchiveError(f"{table.name} row {row['id']}, column {name}: {exc}") from None
                sink.write(msgspec.json.encode(encoded) + b"\n")
            rows += len(page)
            if len(page) < PAGE:
                break
            last = page[-1]["id"]
        entry = sink.entry()
    return TableMember(name=entry.name, bytes=entry.bytes, sha256=entry.sha256, table=table.name, rows=rows)


async def _stored_keys(db: Database, schema: SchemaSpec) -> AsyncIterator[str]:
    """The keys of every stored file the data refers to: attachments and raw inbound mail."""
    for table, column in (("rc_attachment", "storage_key"), ("rc_inbound_mail", "raw_key")):
        spec = schema.table(table)
        if spec is None or spec.column(column) is None:
            continue
        last = -(2 ** 63)
        while True:
            page = await db.fetch(
                f"SELECT {quote('id')} AS id, {quote(column)} AS key FROM {quote(table)} WHERE {quote('id')} > {{}} "
                f"AND {quote(column)} IS NOT NULL ORDER BY {quote('id')} LIMIT {PAGE}", last)
            for row in page:
                yield str(row["key"])
            if len(page) < PAGE:
                break
            last = page[-1]["id"]


def _copy_file(storage: Storage, key: str, writer: _Writer) -> StoredFile | None:
    """Copy one stored file into the archive; ``None`` if the store does not have it."""
    try:
        source = storage.open(key)
    except (FileNotFoundError, ValueError):
        return None
    with source, writer.member(f"files/{key}", compress=False) as sink:
        while chunk := source.read(CHUNK):
            sink.write(chunk)
        return StoredFile(key, sink.size, sink.digest.hexdigest())


async def export_archive(db: Database, workspace: LinkedWorkspace, root: Path, storage: Storage,
                         out: Path) -> Summary:
    """Write the archive of the workspace at ``root`` and its database to ``out`` (a new file).

    The database must be at the workspace's definition version, so that the definition
    files in the archive are the ones its data was made with.
    """
    if out.exists():
        raise ArchiveError(f"{out}: the file exists; give a new file name")
    if not out.parent.is_dir():
        raise ArchiveError(f"{out.parent}: no such folder")
    handle, partial = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(handle)
    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as zf:
            summary = await _export(db, workspace, root, storage, _Writer(zf))
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, out)
    finally:
        Path(partial).unlink(missing_ok=True)
    return summary


async def _export(db: Database, workspace: LinkedWorkspace, root: Path, storage: Storage,
                  writer: _Writer) -> Summary:
    definitions = []
    for path in workspace_files(root):
        with writer.member("definitions/" + path.relative_to(root).as_posix()) as sink:
            sink.write(path.read_bytes())
            definitions.append(sink.entry())
    async with db.snapshot():
        live = await read_live(db)
        applied = await latest_version(db, live)
        if applied is None:
            raise ArchiveError(f"the database {db.display_url} has no applied definitions: nothing to export")
        problems = drift(applied.schema, live)
        if problems:
            raise ArchiveError(f"the database {db.display_url} differs from its applied definitions: {problems[0]}")
        if applied.fingerprint != workspace.fingerprint:
            raise ArchiveError(
                f"the database {db.display_url} is at definition version {applied.fingerprint[:12]}, the workspace "
                f"{root} at {workspace.fingerprint[:12]}; export from the folder that was applied, or run "
                f"`routecard apply {root}` first")
        try:
            ordered = reference_order(applied.schema)
        except ValueError as exc:
            raise ArchiveError(f"the applied schema cannot be exported: {exc}") from None
        numbers = await counter_values(db)
        tables = [await _export_table(db, writer, table, numbers if table.name == "rc_counter" else None)
                  for table in ordered]
        listed: list[StoredFile] = []
        missing: list[str] = []
        seen: set[str] = set()
        async for key in _stored_keys(db, applied.schema):
            if key in seen:
                continue
            seen.add(key)
            copied = _copy_file(storage, key, writer)
            if copied is None:
                missing.append(key)
            else:
                listed.append(copied)
    with writer.member(FILE_LIST) as sink:
        for item in listed:
            sink.write(msgspec.json.encode(item) + b"\n")
        files = sink.entry()
    manifest = Manifest(
        format=FORMAT, engine_version=__version__, created_at=dt.datetime.now(_UTC).isoformat(),
        workspace=workspace.settings.name, fingerprint=applied.fingerprint, source=db.dialect,
        schema=applied.schema, definitions=tuple(definitions), tables=tuple(tables), files=files,
        file_count=len(listed), missing_files=tuple(missing))
    with writer.member(MANIFEST) as sink:
        sink.write(msgspec.json.format(msgspec.json.encode(manifest), indent=1) + b"\n")
    return Summary(fingerprint=applied.fingerprint, tables=len(tables), rows=sum(t.rows for t in tables),
                   files=len(listed), file_bytes=sum(f.bytes for f in listed), missing_files=tuple(missing))
