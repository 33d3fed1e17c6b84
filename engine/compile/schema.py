"""Compile a linked workspace into its database schema (pure: no database, no files)."""

from __future__ import annotations

from ..link.resolved import LinkedWorkspace, ResolvedField, ResolvedTemplate
from .core import CORE_TABLES
from .spec import ColumnSpec, IndexSpec, SchemaSpec, TableSpec, extension_table

FIELD_COLUMN_TYPES = {
    "text": "text",
    "select": "varchar(255)",
    "multiselect": "json",
    "number": "bigint",
    "boolean": "boolean",
    "date": "date",
    "datetime": "timestamptz",
    "upload": "json",
    "email": "varchar(320)",
    "url": "varchar(2048)",
    "user": "bigint",
    "customer": "bigint",
    "reference": "bigint",
}


def column_type(field: ResolvedField) -> str:
    """The canonical column type that stores ``field`` (a plugin field type names its own)."""
    if field.extension is not None:
        return field.extension.column
    if field.type == "input":
        return f"varchar({field.max_length or 255})"
    if field.type == "decimal":
        return f"numeric({field.digits or 12},{field.places if field.places is not None else 2})"
    return FIELD_COLUMN_TYPES[field.type]


def extension_spec(template: ResolvedTemplate) -> TableSpec:
    """The table holding ``template``'s custom fields, one typed column per field."""
    table = extension_table(template.name)
    columns = [
        ColumnSpec(name="work_order_id", type="bigint", nullable=False, unique=True,
                   references="rc_work_order", default=0),
    ]
    columns += [ColumnSpec(name=f.name, type=column_type(f), field=f.type) for f in template.fields]
    return TableSpec(name=table, columns=tuple(columns), template=template.name)


def compile_schema(workspace: LinkedWorkspace) -> SchemaSpec:
    """The core tables plus one extension table per template, in dependency order."""
    tables = list(CORE_TABLES)
    tables += [extension_spec(t) for _, t in sorted(workspace.templates.items())]
    return SchemaSpec(tables=tuple(tables))


__all__ = ["ColumnSpec", "IndexSpec", "SchemaSpec", "TableSpec", "column_type", "compile_schema"]
