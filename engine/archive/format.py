"""What an archive is: its members, its manifest, and the errors reading or writing one reports."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import msgspec

from ..compile.spec import SchemaSpec, TableSpec
from ..errors import RoutecardError

FORMAT = 1
"""The archive format this engine writes and reads."""
MANIFEST = "manifest.json"
FILE_LIST = "files.jsonl"
_TABLE_MEMBER = re.compile(r"^tables/([a-z][a-z0-9_]{0,62})\.jsonl$")
_FILE_MEMBER = re.compile(r"^files/([0-9a-f]{32})$")
_PART = re.compile(r"^[^./\\:\x00-\x1f][^/\\:\x00-\x1f]*$")


class ArchiveError(RoutecardError):
    """An archive cannot be written or read, or the database cannot take it; nothing was changed."""


class Member(msgspec.Struct, frozen=True, kw_only=True):
    """One member of the archive as the manifest records it."""

    name: str
    """Its path inside the archive."""
    bytes: int
    """Its size, uncompressed."""
    sha256: str


class TableMember(Member, frozen=True, kw_only=True):
    """A table's rows (``tables/<table>.jsonl``)."""

    table: str
    rows: int


class StoredFile(msgspec.Struct, frozen=True, array_like=True):
    """A line of ``files.jsonl``: a stored file's key, size and SHA-256."""

    key: str
    bytes: int
    sha256: str


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """``manifest.json``: what the archive holds, and how to check it."""

    format: int
    engine_version: str
    created_at: str
    workspace: str
    fingerprint: str
    """The definition version of the data (the last one applied)."""
    source: str
    """The kind of database it was taken from (sqlite, postgresql)."""
    schema: SchemaSpec
    """The database schema as last applied: the tables and columns the rows fill."""
    definitions: tuple[Member, ...]
    tables: tuple[TableMember, ...]
    files: Member
    """``files.jsonl``, which lists the stored files."""
    file_count: int
    missing_files: tuple[str, ...] = ()
    """Keys the database names whose files were not in the store when exported."""


class Summary(msgspec.Struct, frozen=True, kw_only=True):
    """What an export wrote or an import restored."""

    fingerprint: str
    tables: int
    rows: int
    files: int
    file_bytes: int
    missing_files: tuple[str, ...] = ()


def member_problem(name: str) -> str | None:
    """Why a member of this name has no place in an archive (``None`` if it may)."""
    if "\\" in name or "\x00" in name:
        return "its name holds a backslash or NUL"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "it has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "its path climbs out of the archive (..)"
    if name in (MANIFEST, FILE_LIST) or _TABLE_MEMBER.match(name) or _FILE_MEMBER.match(name):
        return None
    parts = name.split("/")
    if (len(parts) > 1 and parts[0] == "definitions" and all(_PART.match(p) for p in parts[1:])
            and name.endswith((".yaml", ".yml"))):
        return None
    return "a Routecard archive has no such member"


def reference_order(schema: SchemaSpec) -> list[TableSpec]:
    """The tables with every referenced table before the tables referring to it (schema order kept otherwise)."""
    by_name = {t.name: t for t in schema.tables}
    ordered: list[TableSpec] = []
    done: set[str] = set()
    visiting: set[str] = set()

    def visit(table: TableSpec) -> None:
        if table.name in done:
            return
        if table.name in visiting:
            raise ValueError(f"the tables' references form a cycle through {table.name}")
        visiting.add(table.name)
        for column in table.columns:
            target = column.references
            if target is not None and target != table.name:
                if target not in by_name:
                    raise ValueError(f"{table.name}.{column.name} refers to {target}, which the schema lacks")
                visit(by_name[target])
        visiting.discard(table.name)
        done.add(table.name)
        ordered.append(table)

    for table in schema.tables:
        visit(table)
    return ordered
