"""Restoring an archive into an empty database and a file store, all or nothing."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from ..compile import ddl
from ..compile.spec import TableSpec
from ..db import Database
from ..identifiers import quote
from ..migrate.apply import ADVISORY_LOCK
from ..migrate.live import read_live
from ..runtime.numbering import drop_sequences
from ..storage import CHUNK, Storage
from .format import ArchiveError, StoredFile, Summary, TableMember, reference_order
from .reader import Archive
from .values import decode_value, table_columns

BATCH = 500
"""Rows inserted per statement (fewer when a table has many columns)."""


async def _require_empty(db: Database) -> None:
    tables = sorted((await read_live(db)).tables)
    if tables:
        listed = ", ".join(tables[:4]) + (", ..." if len(tables) > 4 else "")
        raise ArchiveError(f"the database {db.display_url} is not empty (it has {listed}); an archive is imported "
                           "only into a new, empty database (and before `routecard apply`); nothing was imported")


def _restore_files(archive: Archive, storage: Storage) -> list[str]:
    """Put the archive's files into ``storage``; the keys written (files already there with the same bytes are kept).

    A key that the store holds with other bytes is refused before anything is written.
    """
    wanted: list[StoredFile] = []
    conflicts: list[str] = []
    for item in archive.files:
        try:
            existing = storage.open(item.key)
        except FileNotFoundError:
            wanted.append(item)
            continue
        with existing:
            digest = hashlib.sha256()
            while chunk := existing.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != item.sha256:
            conflicts.append(item.key)
    if conflicts:
        raise ArchiveError(f"the file store already holds other files under the keys {', '.join(conflicts[:3])}"
                           f"{' and more' if len(conflicts) > 3 else ''}; restore into an empty store; "
                           "nothing was imported")
    written: list[str] = []
    try:
        for item in wanted:
            storage.put(item.key, archive.chunks(f"files/{item.key}", item.bytes))
            written.append(item.key)
    except BaseException:
        for key in written:
            storage.delete(key)
        raise
    return written


async def _insert_rows(db: Database, archive: Archive, table: TableSpec, member: TableMember) -> None:
    columns = table_columns(table)
    names = [name for name, _ in columns]
    per_batch = max(1, min(BATCH, 30000 // len(names)))
    head = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES "
    marks = "(" + ", ".join("{}" for _ in names) + ")"
    decoder = msgspec.json.Decoder(dict[str, Any])
    batch: list[Any] = []
    rows = 0

    async def flush(last_line: int) -> None:
        count = len(batch) // len(names)
        try:
            await db.execute(head + ", ".join([marks] * count), *batch)
        except Exception as exc:  # noqa: BLE001 - the driver's words, located
            raise archive.error(f"{member.name}:{last_line - count + 1}-{last_line}",
                                f"the rows could not be inserted: {exc}") from None
        batch.clear()

    for number, line in enumerate(archive.lines(member.name, member.bytes), start=1):
        where = f"{member.name}:{number}"
        try:
            row = decoder.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise archive.error(where, str(exc)) from None
        if row.keys() != set(names):
            raise archive.error(where, f"expected the columns {', '.join(names)}")
        for name, kind in columns:
            try:
                batch.append(decode_value(kind, row[name]))
            except ValueError as exc:
                raise archive.error(f"{where}: {name}", str(exc)) from None
        rows += 1
        if rows % per_batch == 0:
            await flush(number)
    if batch:
        await flush(rows)
    if rows != member.rows:
        raise archive.error(member.name, f"{rows} rows, but the manifest counts {member.rows}")


async def import_archive(db: Database, archive: Archive, storage: Storage) -> Summary:
    """Restore ``archive`` into ``db``, which must have no Routecard tables, and its files into ``storage``.

    The schema is the one the archive was taken from, created as ``routecard apply``
    creates it; every row keeps its id, and on PostgreSQL each id sequence continues
    after the highest id. All rows go in one transaction: a failure leaves the database
    as it was and removes the files this import added.
    """
    await _require_empty(db)
    manifest = archive.manifest
    tables = reference_order(manifest.schema)
    members = {m.table: m for m in manifest.tables}
    written = _restore_files(archive, storage)
    try:
        async with db.transaction():
            if db.dialect == "postgresql":
                await db.execute("SELECT pg_advisory_xact_lock({})", ADVISORY_LOCK)
            await _require_empty(db)
            await drop_sequences(db)  # an earlier database's numbers: the archive's counters go on from here
            statements = {table.name: ddl.create_table(table, db.dialect) for table in tables}
            for table in tables:  # the tables, then their rows, then the indexes (faster than keeping them up)
                await db.execute(statements[table.name][0])
            for table in tables:
                await _insert_rows(db, archive, table, members[table.name])
            for table in tables:
                for statement in statements[table.name][1:]:
                    await db.execute(statement)
                if db.dialect == "postgresql":
                    await db.execute(
                        f"SELECT setval(pg_get_serial_sequence({{}}, 'id'), COALESCE(MAX({quote('id')}), 0) + 1, "
                        f"false) FROM {quote(table.name)}", table.name)
    except BaseException:
        for key in written:
            storage.delete(key)
        raise
    return Summary(fingerprint=manifest.fingerprint, tables=len(tables), rows=sum(m.rows for m in manifest.tables),
                   files=len(archive.files), file_bytes=sum(f.bytes for f in archive.files),
                   missing_files=manifest.missing_files)
