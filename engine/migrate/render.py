"""A migration plan as people read it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .diff import Step

if TYPE_CHECKING:
    from .plan import Plan


def _n(count: int | None, one: str, many: str | None = None) -> str:
    count = count or 0
    return f"{count:,} {one if count == 1 else (many or one + 's')}"


def _are(count: int | None) -> str:
    return "is" if count == 1 else "are"


def _field(step: Step) -> str:
    if step.template:
        return f"field `{step.column}` of template `{step.template}` ({step.table}.{step.column})"
    return f"column {step.table}.{step.column}"


def describe(step: Step) -> str:
    """One line for one step, with its sign: + adds, ~ changes, - keeps aside, ! deletes data."""
    op = step.op
    if op == "create_table":
        table_spec = step.table_spec
        count = len(table_spec.columns) if table_spec else 0
        what = f" for template `{step.template}` ({_n(count - 1, 'field')})" if step.template else ""
        return f"+ create table {step.table}{what}"
    if op == "restore_table":
        return f"+ restore table {step.table}: template `{step.template}` is back, with its kept data"
    if op == "archive_table":
        return (f"- archive table {step.table}: template `{step.template}` was removed; its "
                f"{_n(step.rows, 'row')} {_are(step.rows)} kept")
    if op == "add_column":
        spec = step.column_spec
        kind = f"{spec.field} field, {spec.type}" if spec and spec.field else (spec.type if spec else "")
        rows = f"; {_n(step.rows, 'existing row')} start empty" if step.rows else ""
        return f"+ add {_field(step)} [{kind}]{rows}"
    if op == "rename_column":
        return f"~ rename {step.table}.{step.old} to {step.new} (keeps {_n(step.rows, 'value')})"
    if op == "change_type":
        how = "widen" if _widening(step) else "convert"
        return f"~ change {_field(step)} from {step.old} to {step.new} ({how} {_n(step.rows, 'value')})"
    if op == "restore_column":
        return f"+ restore {_field(step)}: the field is back, with its {_n(step.rows, 'kept value')}"
    if op == "archive_column":
        return (f"- archive {_field(step)}: the field was removed; its {_n(step.rows, 'value')} "
                f"{_are(step.rows)} kept "
                f"(list it under `purge:` to delete them)")
    if op == "purge_column":
        return f"! purge {_field(step)}: deletes {_n(step.rows, 'value')} [destructive]"
    if op == "drop_index":
        return f"- drop index {step.index.name if step.index else ''} on {step.table}"
    if op == "create_index":
        names = ", ".join(step.index.columns) if step.index else ""
        return f"+ create index {step.index.name if step.index else ''} on {step.table} ({names})"
    if op == "move_orders":
        queue = (step.payload or {}).get("queue", "")
        samples = ", ".join(step.samples) + (", ..." if (step.rows or 0) > len(step.samples) else "")
        return (f"> move {_n(step.rows, 'open work order')} of queue `{queue}` from removed step "
                f"`{step.old}` to `{step.new}` ({samples})")
    if op == "upsert_customer":
        projects = len((step.payload or {}).get("projects", []))
        return f"+ {step.old} customer `{step.new}` ({_n(projects, 'project')})"
    if op == "record_version":
        return f"* record definition version {step.new[:12]}"
    return f"? {op}"


def _widening(step: Step) -> bool:
    from .convert import is_widening

    return is_widening(step.old, step.new)


def render_plan(plan: Plan, *, applied: bool = False) -> str:
    lines = []
    previous = f"{plan.previous.fingerprint[:12]}" if plan.previous else "none"
    lines.append(f"Workspace `{plan.workspace}` on {plan.database}")
    lines.append(f"Definition version {plan.fingerprint[:12]} (database has: {previous})")
    if plan.refusals:
        lines.append("Refused:")
        lines += [f"  - {reason}" for reason in plan.refusals]
        return "\n".join(lines)
    if plan.up_to_date:
        lines.append("No changes: the database is up to date.")
        return "\n".join(lines)
    if not plan.changes:
        lines.append("No schema changes; the new definition version will be recorded.")
    core = [s for s in plan.steps if s.op == "create_table" and not s.template]
    if len(core) > 3:
        lines.append(f"+ create {len(core)} core tables ({', '.join(s.table for s in core)})")
    for step in plan.steps:
        if step in core and len(core) > 3:
            continue
        lines.append(describe(step))
    summary = f"{_n(len(plan.changes), 'change')}"
    if plan.destructive:
        summary += f", {_n(len(plan.destructive), 'destructive step')}"
        if not applied:
            summary += " (apply needs --allow-destructive)"
    lines.append(("Applied: " if applied else "Plan: ") + summary + ".")
    return "\n".join(lines)
