"""The pure part of planning: diff the compiled schema against the last applied one.

Nothing here touches the database. The result is the list of steps and the schema
that will be recorded once they have run (the *target*: compiled tables plus every
archived table and column kept from before).
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from ..compile.spec import ColumnSpec, IndexSpec, SchemaSpec, TableSpec
from ..link.resolved import ResolvedTemplate

Op = Literal[
    "create_table",
    "restore_table",
    "archive_table",
    "rename_column",
    "change_type",
    "add_column",
    "restore_column",
    "archive_column",
    "purge_column",
    "drop_index",
    "create_index",
    "move_orders",
    "upsert_customer",
    "record_version",
]


class Step(msgspec.Struct, kw_only=True):
    """One step of a migration plan."""

    op: Op
    table: str = ""
    column: str = ""
    template: str | None = None
    table_spec: TableSpec | None = None
    column_spec: ColumnSpec | None = None
    index: IndexSpec | None = None
    old: str = ""
    new: str = ""
    destructive: bool = False
    rows: int | None = None
    """How many rows (or values) the step touches, filled in from the database."""
    samples: tuple[str, ...] = ()
    payload: dict[str, Any] | None = None


def _free_name(base: str, taken: set[str]) -> str:
    n = 1
    while f"{base}__old{n}" in taken:
        n += 1
    return f"{base}__old{n}"


def _diff_columns(table: TableSpec, prev: TableSpec, template: ResolvedTemplate | None,
                  steps: list[Step]) -> list[ColumnSpec]:
    prev_columns = {c.name: c for c in prev.columns}
    current = {c.name for c in table.columns}
    renames = {f.name: f.renamed_from for f in template.fields if f.renamed_from} if template else {}
    purge = set(template.purge) if template else set()
    taken = set(prev_columns) | current
    used: set[str] = set()
    kept: list[ColumnSpec] = []
    def step(op: Op, **details: Any) -> Step:
        return Step(op=op, table=table.name, template=table.template, **details)

    for column in table.columns:
        old = prev_columns.get(column.name)
        if old is None:
            source = renames.get(column.name)
            moved = prev_columns.get(source or "")
            if moved is not None and source not in current:
                used.add(moved.name)
                steps.append(step("rename_column", column=column.name, old=moved.name, new=column.name))
                if moved.type != column.type:
                    steps.append(step("change_type", column=column.name, old=moved.type, new=column.type,
                                      payload={"read_from": moved.name}))
                continue
            steps.append(step("add_column", column=column.name, column_spec=column))
            continue
        used.add(column.name)
        if old.archived and old.type != column.type:
            aside = _free_name(column.name, taken)
            taken.add(aside)
            steps.append(step("rename_column", column=aside, old=column.name, new=aside))
            steps.append(step("add_column", column=column.name, column_spec=column))
            kept.append(msgspec.structs.replace(old, name=aside))
            continue
        if old.archived:
            steps.append(step("restore_column", column=column.name))
        if old.type != column.type:
            steps.append(step("change_type", column=column.name, old=old.type, new=column.type))
    for old in prev.columns:
        if old.name in used:
            continue
        if old.name in purge:
            steps.append(step("purge_column", column=old.name, destructive=True))
            continue
        if not old.archived:
            steps.append(step("archive_column", column=old.name))
        kept.append(msgspec.structs.replace(old, archived=True))
    return kept


def _diff_indexes(table: TableSpec, prev: TableSpec, steps: list[Step]) -> None:
    before = {i.name: i for i in prev.indexes}
    after = {i.name: i for i in table.indexes}
    for name, index in before.items():
        if after.get(name) != index:
            steps.append(Step(op="drop_index", table=table.name, index=index))
    for name, index in after.items():
        if before.get(name) != index:
            steps.append(Step(op="create_index", table=table.name, index=index))


def diff_schema(compiled: SchemaSpec, previous: SchemaSpec | None,
                templates: dict[str, ResolvedTemplate]) -> tuple[list[Step], SchemaSpec]:
    """The steps from ``previous`` to ``compiled``, and the schema recorded afterwards."""
    steps: list[Step] = []
    before = {t.name: t for t in previous.tables} if previous else {}
    target: list[TableSpec] = []
    for table in compiled.tables:
        prev = before.get(table.name)
        if prev is None:
            steps.append(Step(op="create_table", table=table.name, template=table.template, table_spec=table))
            target.append(table)
            continue
        if prev.archived:
            steps.append(Step(op="restore_table", table=table.name, template=table.template))
        template = templates.get(table.template) if table.template else None
        kept = _diff_columns(table, prev, template, steps)
        _diff_indexes(table, prev, steps)
        target.append(msgspec.structs.replace(table, columns=table.columns + tuple(kept)))
    names = {t.name for t in compiled.tables}
    for prev in previous.tables if previous else ():
        if prev.name not in names:
            if not prev.archived:
                steps.append(Step(op="archive_table", table=prev.name, template=prev.template))
            target.append(msgspec.structs.replace(prev, archived=True))
    order = {op: i for i, op in enumerate(Op.__args__)}  # type: ignore[attr-defined]
    steps.sort(key=lambda s: order[s.op])  # stable: keeps table order within each kind of step
    return steps, SchemaSpec(tables=tuple(target))
