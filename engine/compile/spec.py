"""The compiled database schema as plain data: tables, columns, indexes.

A ``ColumnSpec``'s ``type`` is a canonical, dialect-neutral SQL type
(``varchar(255)``, ``text``, ``bigint``, ``integer``, ``numeric(12,2)``, ``boolean``,
``date``, ``timestamptz``, ``json``, ``serial``). The migrator compares these with the
live database and with the last applied snapshot.
"""

from __future__ import annotations

import msgspec

CORE_PREFIX = "rc_"
TEMPLATE_PREFIX = "tpl_"


class ColumnSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One column."""

    name: str
    type: str
    nullable: bool = True
    unique: bool = False
    default: str | int | bool | None = None
    """A constant default for NOT NULL columns (never a volatile expression)."""
    references: str | None = None
    """The table this column is a foreign key to (its ``id``)."""
    on_delete: str = "restrict"
    field: str | None = None
    """For a template's column: the type of the custom field it stores."""
    archived: bool = False
    """Kept after its field was removed: still readable, no longer written."""


class IndexSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An index, possibly over several columns."""

    name: str
    columns: tuple[str, ...]
    unique: bool = False


class TableSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One table. Every table has an ``id`` serial primary key, not listed in ``columns``."""

    name: str
    columns: tuple[ColumnSpec, ...]
    indexes: tuple[IndexSpec, ...] = ()
    template: str | None = None
    """For an extension table: the template whose custom fields it holds."""
    archived: bool = False
    """Kept after its template was removed."""

    def column(self, name: str) -> ColumnSpec | None:
        for column in self.columns:
            if column.name == name:
                return column
        return None


class SchemaSpec(msgspec.Struct, frozen=True, kw_only=True):
    """The whole schema, tables in an order where references come first."""

    tables: tuple[TableSpec, ...]

    def table(self, name: str) -> TableSpec | None:
        for table in self.tables:
            if table.name == name:
                return table
        return None


def extension_table(template: str) -> str:
    """The name of the table holding a template's custom fields."""
    return TEMPLATE_PREFIX + template
