"""Reading the live database: which Routecard tables and columns exist, with normalised types."""

from __future__ import annotations

import re

import msgspec

from ..compile.spec import CORE_PREFIX, TEMPLATE_PREFIX, SchemaSpec
from ..db import Database
from ..identifiers import quote

VERSION_TABLE = "rc_definition_version"


class LiveColumn(msgspec.Struct, frozen=True):
    type: str
    nullable: bool


class LiveSchema(msgspec.Struct, frozen=True):
    """Routecard's tables as they are in the database: table -> column -> type."""

    tables: dict[str, dict[str, LiveColumn]]


_SQLITE_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamptz": "timestamptz",
    "json": "json",
}
_PG_TYPES = {
    "text": "text",
    "bigint": "bigint",
    "integer": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp with time zone": "timestamptz",
    "jsonb": "json",
}


def _ours(name: str) -> bool:
    return name.startswith((CORE_PREFIX, TEMPLATE_PREFIX))


def normalise_sqlite(declared: str) -> str:
    text = re.sub(r"\s+", "", declared.lower())
    return _SQLITE_TYPES.get(text, text)


async def read_live(db: Database) -> LiveSchema:
    """The Routecard tables (``rc_*``, ``tpl_*``) of ``db`` and their columns."""
    tables: dict[str, dict[str, LiveColumn]] = {}
    if db.dialect == "sqlite":
        rows = await db.fetch("SELECT name FROM sqlite_master WHERE type = 'table'")
        for row in rows:
            name = row["name"]
            if not _ours(name):
                continue
            columns = await db.fetch(f"PRAGMA table_info({quote(name)})")
            tables[name] = {
                c["name"]: LiveColumn("serial" if c["pk"] else normalise_sqlite(c["type"]), not c["notnull"])
                for c in columns
            }
        return LiveSchema(tables)
    rows = await db.fetch(
        "SELECT table_name, column_name, data_type, character_maximum_length AS length, "
        "numeric_precision AS digits, numeric_scale AS places, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = current_schema() "
        "ORDER BY table_name, ordinal_position"
    )
    for row in rows:
        if not _ours(row["table_name"]):
            continue
        kind = row["data_type"]
        if kind == "character varying":
            canonical = f"varchar({row['length']})"
        elif kind == "numeric":
            canonical = f"numeric({row['digits']},{row['places']})"
        elif kind == "bigint" and str(row["column_default"] or "").startswith("nextval("):
            canonical = "serial"
        else:
            canonical = _PG_TYPES.get(kind, kind)
        tables.setdefault(row["table_name"], {})[row["column_name"]] = LiveColumn(
            canonical, row["is_nullable"] == "YES"
        )
    return LiveSchema(tables)


def drift(previous: SchemaSpec, live: LiveSchema) -> list[str]:
    """How the database differs from the schema Routecard last applied (empty if it does not)."""
    problems = []
    for table in previous.tables:
        columns = live.tables.get(table.name)
        if columns is None:
            problems.append(f"table {table.name} is missing")
            continue
        for column in table.columns:
            found = columns.get(column.name)
            if found is None:
                problems.append(f"column {table.name}.{column.name} is missing")
            elif found.type != column.type:
                problems.append(f"column {table.name}.{column.name} is {found.type}, expected {column.type}")
    return problems
