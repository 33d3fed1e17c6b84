"""SQL DDL for the compiled schema, per dialect. Every identifier is checked and quoted."""

from __future__ import annotations

import re

from ..db import Dialect
from ..identifiers import quote
from .spec import ColumnSpec, IndexSpec, TableSpec

_PARAMETRISED = re.compile(r"^(varchar|numeric)\((\d+)(?:,(\d+))?\)$")
_SIMPLE = {
    "text": ("TEXT", "TEXT"),
    "bigint": ("BIGINT", "BIGINT"),
    "integer": ("INTEGER", "INTEGER"),
    "boolean": ("BOOLEAN", "BOOLEAN"),
    "date": ("DATE", "DATE"),
    "timestamptz": ("TIMESTAMPTZ", "TIMESTAMPTZ"),
    "json": ("JSON", "JSONB"),
}


def sql_type(canonical: str, dialect: Dialect) -> str:
    """The SQL type to declare for a canonical type on ``dialect``."""
    if canonical in _SIMPLE:
        sqlite, postgres = _SIMPLE[canonical]
        return sqlite if dialect == "sqlite" else postgres
    match = _PARAMETRISED.match(canonical)
    if not match:
        raise ValueError(f"unknown column type {canonical!r}")
    kind, first, second = match.groups()
    if kind == "varchar":
        return f"VARCHAR({int(first)})"
    return f"NUMERIC({int(first)},{int(second or 0)})"


def _literal(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if not re.fullmatch(r"[A-Za-z0-9_ .-]*", value):
        raise ValueError(f"refusing default {value!r}")
    return "'" + value + "'"


def column_ddl(column: ColumnSpec, dialect: Dialect) -> str:
    """A column definition as it appears in CREATE TABLE or ADD COLUMN."""
    parts = [quote(column.name), sql_type(column.type, dialect)]
    if not column.nullable:
        parts.append("NOT NULL")
        if column.type == "timestamptz":
            parts.append("DEFAULT CURRENT_TIMESTAMP")
        elif column.default is not None:
            parts.append("DEFAULT " + _literal(column.default))
    if column.unique:
        parts.append("UNIQUE")
    if column.references:
        action = "CASCADE" if column.on_delete == "cascade" else "RESTRICT"
        parts.append(f"REFERENCES {quote(column.references)} ({quote('id')}) ON DELETE {action}")
    return " ".join(parts)


def primary_key(dialect: Dialect) -> str:
    return '"id" INTEGER PRIMARY KEY' if dialect == "sqlite" else '"id" BIGSERIAL PRIMARY KEY'


def create_table(table: TableSpec, dialect: Dialect) -> list[str]:
    """CREATE TABLE and its CREATE INDEX statements."""
    columns = [primary_key(dialect), *(column_ddl(c, dialect) for c in table.columns)]
    statements = [f"CREATE TABLE {quote(table.name)} (" + ", ".join(columns) + ")"]
    statements += [create_index(table.name, index) for index in table.indexes]
    return statements


def create_index(table: str, index: IndexSpec) -> str:
    unique = "UNIQUE " if index.unique else ""
    columns = ", ".join(quote(c) for c in index.columns)
    return f"CREATE {unique}INDEX {quote(index.name)} ON {quote(table)} ({columns})"


def drop_index(name: str) -> str:
    return f"DROP INDEX {quote(name)}"


def add_column(table: str, column: ColumnSpec, dialect: Dialect) -> str:
    return f"ALTER TABLE {quote(table)} ADD COLUMN {column_ddl(column, dialect)}"


def rename_column(table: str, old: str, new: str) -> str:
    return f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(old)} TO {quote(new)}"


def drop_column(table: str, column: str) -> str:
    return f"ALTER TABLE {quote(table)} DROP COLUMN {quote(column)}"


def drop_table(table: str) -> str:
    return f"DROP TABLE {quote(table)}"
