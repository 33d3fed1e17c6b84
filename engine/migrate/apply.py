"""Applying a plan: every step and the new definition version in one transaction.

The plan is computed again inside the transaction, so what runs is exactly what
was checked against the data at that moment. A failure anywhere rolls everything
back; running ``apply`` again starts from the same state.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import msgspec

from .. import __version__
from ..compile import ddl
from ..compile.spec import ColumnSpec
from ..db import Database
from ..errors import PlanRefused
from ..identifiers import quote
from ..link.resolved import LinkedWorkspace
from .convert import convert, is_widening
from .diff import Step
from .plan import FINAL_STATUSES, Plan, build_plan
from .render import describe

ADVISORY_LOCK = 7_420_150_001
"""PostgreSQL advisory lock key held while applying, so two applies never interleave."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _storage(value: Any, target: str) -> Any:
    """A converted value as the driver takes it (JSON travels as text)."""
    if target == "json":
        return value if isinstance(value, str) else json.dumps(value)
    return value


async def _change_type(db: Database, step: Step) -> None:
    table, column = step.table, step.column
    if db.dialect == "postgresql" and is_widening(step.old, step.new):
        await db.execute(
            f"ALTER TABLE {quote(table)} ALTER COLUMN {quote(column)} TYPE {ddl.sql_type(step.new, db.dialect)}"
        )
        return
    # A shadow column: add it, fill it with converted values, drop the old one, rename.
    # (On SQLite, DROP COLUMN rebuilds the table inside this same transaction.)
    shadow = f"{column}__new"
    await db.execute(ddl.add_column(table, ColumnSpec(name=shadow, type=step.new), db.dialect))
    if is_widening(step.old, step.new):
        await db.execute(f"UPDATE {quote(table)} SET {quote(shadow)} = {quote(column)}")
    else:
        rows = await db.fetch(
            f"SELECT id, {quote(column)} AS value FROM {quote(table)} WHERE {quote(column)} IS NOT NULL"
        )
        for row in rows:
            value = _storage(convert(row["value"], step.old, step.new), step.new)
            await db.execute(f"UPDATE {quote(table)} SET {quote(shadow)} = {{}} WHERE id = {{}}", value, row["id"])
    await db.execute(ddl.drop_column(table, column))
    await db.execute(ddl.rename_column(table, shadow, column))


async def _move_orders(db: Database, step: Step, fingerprint: str) -> None:
    queue = (step.payload or {})["queue"]
    rows = await db.fetch(
        "SELECT id, step, status FROM rc_work_order WHERE queue = {} AND step = {} AND status NOT IN ({}, {})",
        queue, step.old, *FINAL_STATUSES,
    )
    now = _now()
    completing = step.new == "complete"
    for row in rows:
        before = {"step": row["step"], "status": row["status"]}
        after = {"step": step.new, "status": "completed" if completing else row["status"]}
        await db.execute(
            "INSERT INTO rc_event (work_order_id, kind, at, before, after, source, definition_version) "
            "VALUES ({}, {}, {}, {}, {}, {}, {})",
            row["id"], "step_moved", now, json.dumps(before), json.dumps(after),
            f"retired_steps of queue {queue}", fingerprint,
        )
        await db.execute(
            "UPDATE rc_work_order SET step = {}, status = {}, version = version + 1, updated_at = {}, "
            "completed_at = CASE WHEN {} THEN {} ELSE completed_at END WHERE id = {}",
            after["step"], after["status"], now, completing, now, row["id"],
        )


async def _upsert_customer(db: Database, step: Step) -> None:
    data = step.payload or {}
    domains = json.dumps(data["email_domains"])
    existing = await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", data["name"])
    if existing is None:
        await db.execute(
            "INSERT INTO rc_customer (name, label, hourly_rate, email_domains, created_at) VALUES ({}, {}, {}, {}, {})",
            data["name"], data["label"], _decimal(data["hourly_rate"]), domains, _now(),
        )
        existing = await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", data["name"])
    else:
        await db.execute(
            "UPDATE rc_customer SET label = {}, hourly_rate = {}, email_domains = {} WHERE id = {}",
            data["label"], _decimal(data["hourly_rate"]), domains, existing,
        )
    for project in data["projects"]:
        found = await db.fetch_value(
            "SELECT id FROM rc_project WHERE customer_id = {} AND name = {}", existing, project["name"]
        )
        if found is None:
            await db.execute(
                "INSERT INTO rc_project (customer_id, name, label, hourly_rate) VALUES ({}, {}, {}, {})",
                existing, project["name"], project["label"], _decimal(project["hourly_rate"]),
            )
        else:
            await db.execute(
                "UPDATE rc_project SET label = {}, hourly_rate = {} WHERE id = {}",
                project["label"], _decimal(project["hourly_rate"]), found,
            )


def _decimal(value: str | None) -> Any:
    from decimal import Decimal

    return Decimal(value) if value is not None else None


async def run_step(db: Database, step: Step, plan: Plan) -> None:
    """Carry out one step (inside the caller's transaction)."""
    op = step.op
    if op == "create_table" and step.table_spec is not None:
        for statement in ddl.create_table(step.table_spec, db.dialect):
            await db.execute(statement)
    elif op == "add_column" and step.column_spec is not None:
        await db.execute(ddl.add_column(step.table, step.column_spec, db.dialect))
    elif op == "rename_column":
        await db.execute(ddl.rename_column(step.table, step.old, step.new))
    elif op == "change_type":
        await _change_type(db, step)
    elif op == "purge_column":
        await db.execute(ddl.drop_column(step.table, step.column))
    elif op == "drop_index" and step.index is not None:
        await db.execute(ddl.drop_index(step.index.name))
    elif op == "create_index" and step.index is not None:
        await db.execute(ddl.create_index(step.table, step.index))
    elif op == "move_orders":
        await _move_orders(db, step, plan.fingerprint)
    elif op == "upsert_customer":
        await _upsert_customer(db, step)
    elif op == "record_version":
        await db.execute(
            "INSERT INTO rc_definition_version (fingerprint, applied_at, engine_version, schema_snapshot, "
            "definitions, plan) VALUES ({}, {}, {}, {}, {}, {})",
            plan.fingerprint, _now(), __version__, msgspec.json.encode(plan.target).decode(),
            json.dumps(plan.definitions), plan.render(applied=True),
        )
    # restore_table, archive_table, restore_column, archive_column: recorded in the snapshot only.


async def apply_plan(db: Database, workspace: LinkedWorkspace, *, allow_destructive: bool) -> Plan:
    """Plan and apply in one transaction; raise ``PlanRefused`` (changing nothing) if it cannot run."""
    async with db.transaction():
        if db.dialect == "postgresql":
            await db.execute("SELECT pg_advisory_xact_lock({})", ADVISORY_LOCK)
        plan = await build_plan(db, workspace)
        if plan.refused:
            raise PlanRefused(plan.refusals)
        if plan.destructive and not allow_destructive:
            raise PlanRefused(
                [f"{describe(step)[2:]} — deleting data needs --allow-destructive" for step in plan.destructive]
            )
        for step in plan.steps:
            await run_step(db, step, plan)
    return plan
