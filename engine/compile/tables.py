"""piccolo ``Table`` classes built at run time from the compiled schema.

The runtime queries through these; their declared types match the DDL in ``ddl``
(so piccolo's SQLite converters turn NUMERIC into Decimal, BOOLEAN into bool, ...).
"""

from __future__ import annotations

import re
from typing import Any, TypedDict

from piccolo.columns import (
    JSON,
    JSONB,
    BigInt,
    BigSerial,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.columns.base import OnDelete
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import SQLiteEngine
from piccolo.table import Table, create_table_class

from .spec import ColumnSpec, SchemaSpec

_PARAMETRISED = re.compile(r"^(varchar|numeric)\((\d+)(?:,(\d+))?\)$")


class _Common(TypedDict, total=False):
    """Keyword arguments every column gets."""

    null: bool
    unique: bool
    default: None


def _class_name(table: str) -> str:
    return "".join(part.capitalize() for part in table.split("_"))


def _column(spec: ColumnSpec, tables: dict[str, type[Table]], engine: Engine[Any]) -> Column:
    common: _Common = {"null": spec.nullable, "unique": spec.unique}
    if spec.nullable:
        common["default"] = None
    if spec.references:
        on_delete = OnDelete.cascade if spec.on_delete == "cascade" else OnDelete.restrict
        return ForeignKey(references=tables[spec.references], on_delete=on_delete, **common)
    kind = spec.type
    match = _PARAMETRISED.match(kind)
    if match and match.group(1) == "varchar":
        return Varchar(length=int(match.group(2)), **common)
    if match:
        return Numeric(digits=(int(match.group(2)), int(match.group(3) or 0)), **common)
    simple: dict[str, type[Column]] = {
        "text": Text,
        "bigint": BigInt,
        "integer": Integer,
        "boolean": Boolean,
        "date": Date,
        "timestamptz": Timestamptz,
        "json": JSON if isinstance(engine, SQLiteEngine) else JSONB,
    }
    return simple[kind](**common)


def build_tables(schema: SchemaSpec, engine: Engine[Any]) -> dict[str, type[Table]]:
    """A piccolo Table class per table of ``schema``, bound to ``engine``, by table name."""
    tables: dict[str, type[Table]] = {}
    for spec in schema.tables:
        members: dict[str, Column] = {"id": BigSerial(primary_key=True)}
        for column in spec.columns:
            members[column.name] = _column(column, tables, engine)
        tables[spec.name] = create_table_class(
            _class_name(spec.name),
            class_kwargs={"tablename": spec.name, "db": engine},
            class_members=members,
        )
    return tables
