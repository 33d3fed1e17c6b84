"""Definition changes become migrations that keep data, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from engine.db import Database
from engine.errors import PlanRefused
from engine.migrate import apply as apply_module

from tests.migration_helpers import apply, column_values, columns_of, dump, insert_order, plan, write_workspace

BASE_FIELDS = """\
  - {name: customer_ref, type: input, max_length: 40}
  - {name: quantity, type: input}
  - {name: notes, type: text}
"""


def workspace(root: Path, fields: str = BASE_FIELDS, steps: str = "", extra_template: str = "",
              queue_extra: str = "") -> Path:
    steps = steps or """\
  - name: review
  - name: ship
"""
    return write_workspace(root, {
        "defs.yaml": f"""\
kind: Template
name: order
{extra_template}fields:
{fields}---
kind: Queue
name: main
templates: [order]
{queue_extra}steps:
{steps}""",
    })


async def seeded(tmp_path: Path, url: str, db: Database) -> Path:
    root = workspace(tmp_path / "ws")
    await apply(root, url)
    await insert_order(db, "WO-1", fields={"customer_ref": "C-1", "quantity": "12", "notes": "first"})
    await insert_order(db, "WO-2", fields={"customer_ref": "C-2", "quantity": "7", "notes": "second"})
    await insert_order(db, "WO-3", step="ship", fields={"customer_ref": "C-3", "quantity": None, "notes": None})
    return root


async def test_fresh_apply_then_plan_says_no_changes(tmp_path: Path, database_url: str, db: Database) -> None:
    root = workspace(tmp_path / "ws")
    first = await apply(root, database_url)
    assert any(s.op == "create_table" and s.table == "tpl_order" for s in first.steps)
    assert await columns_of(db, "tpl_order") == {"id", "work_order_id", "customer_ref", "quantity", "notes"}
    again = await plan(root, database_url)
    assert again.up_to_date
    assert "No changes: the database is up to date." in again.render()
    versions = await db.fetch("SELECT fingerprint FROM rc_definition_version")
    assert [v["fingerprint"] for v in versions] == [first.fingerprint]


async def test_add_field_keeps_rows_and_values(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS + "  - {name: rush, type: boolean}\n")
    planned = await plan(root, database_url)
    [step] = planned.changes
    assert (step.op, step.column, step.rows) == ("add_column", "rush", 3)
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "rush") == [None, None, None]
    assert await column_values(db, "tpl_order", "customer_ref") == ["C-1", "C-2", "C-3"]
    assert await db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 3


async def test_removed_field_is_archived_and_restored_with_its_data(
        tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS.replace("  - {name: notes, type: text}\n", ""))
    planned = await plan(root, database_url)
    [step] = planned.changes
    assert (step.op, step.column, step.rows) == ("archive_column", "notes", 2)
    assert "its 2 values are kept" in planned.render()
    await apply(root, database_url)
    assert "notes" in await columns_of(db, "tpl_order")
    assert await column_values(db, "tpl_order", "notes") == ["first", "second", None]
    workspace(root, BASE_FIELDS)
    planned = await plan(root, database_url)
    assert [(s.op, s.column) for s in planned.changes] == [("restore_column", "notes")]
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "notes") == ["first", "second", None]
    assert (await plan(root, database_url)).up_to_date


async def test_rename_keeps_values(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS.replace("{name: notes, type: text}", "{name: remarks, type: text, renamed_from: notes}"))
    planned = await plan(root, database_url)
    assert [(s.op, s.old, s.new, s.rows) for s in planned.changes] == [("rename_column", "notes", "remarks", 2)]
    await apply(root, database_url)
    assert "notes" not in await columns_of(db, "tpl_order")
    assert await column_values(db, "tpl_order", "remarks") == ["first", "second", None]
    assert (await plan(root, database_url)).up_to_date


async def test_type_change_converts_values(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS.replace("{name: quantity, type: input}", "{name: quantity, type: number}"))
    planned = await plan(root, database_url)
    assert [(s.op, s.old, s.new, s.rows) for s in planned.changes] == [
        ("change_type", "varchar(255)", "bigint", 2)]
    assert "convert 2 values" in planned.render()
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "quantity") == [12, 7, None]
    assert await column_values(db, "tpl_order", "notes") == ["first", "second", None]
    # widening: number -> decimal keeps every value
    workspace(root, BASE_FIELDS.replace("{name: quantity, type: input}",
                                        "{name: quantity, type: decimal, digits: 22, places: 2}"))
    planned = await plan(root, database_url)
    assert "widen 2 values" in planned.render()
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "quantity") == [Decimal("12"), Decimal("7"), None]


async def test_type_change_refused_naming_rows_and_nothing_changes(
        tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    await insert_order(db, "WO-4", fields={"customer_ref": "C-4", "quantity": "12kg"})
    before = await dump(db)
    workspace(root, BASE_FIELDS.replace("{name: quantity, type: input}", "{name: quantity, type: number}"))
    planned = await plan(root, database_url)
    assert planned.refused
    [reason] = planned.refusals
    assert "cannot change field `quantity` of template `order` from varchar(255) to bigint" in reason
    assert "1 of 3 stored values" in reason and "WO-4" in reason and "'12kg'" in reason
    with pytest.raises(PlanRefused):
        await apply(root, database_url)
    assert await dump(db) == before


async def test_step_removed_with_orders_needs_mapping(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    await insert_order(db, "WO-5", status="completed", fields={})
    before = await dump(db)
    workspace(root, steps="  - name: intake\n  - name: ship\n")
    planned = await plan(root, database_url)
    [reason] = planned.refusals
    assert reason.startswith("step `review` was removed from queue `main`, but 2 open work orders are in it (WO-1, WO-2)")
    with pytest.raises(PlanRefused):
        await apply(root, database_url)
    assert await dump(db) == before
    workspace(root, steps="  - name: intake\n  - name: ship\n", queue_extra="retired_steps: {review: intake}\n")
    planned = await plan(root, database_url)
    moves = [s for s in planned.changes if s.op == "move_orders"]
    assert [(s.old, s.new, s.rows) for s in moves] == [("review", "intake", 2)]
    await apply(root, database_url)
    rows = await db.fetch("SELECT number, step, version FROM rc_work_order ORDER BY id")
    assert [(r["number"], r["step"], r["version"]) for r in rows] == [
        ("WO-1", "intake", 2), ("WO-2", "intake", 2), ("WO-3", "ship", 1), ("WO-5", "review", 1)]
    events = await db.fetch("SELECT kind, before, after FROM rc_event ORDER BY id")
    assert [e["kind"] for e in events] == ["step_moved", "step_moved"]
    assert '"review"' in str(events[0]["before"]) and '"intake"' in str(events[0]["after"])


async def test_adding_a_step_is_not_a_schema_change(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, steps="  - name: review\n  - name: pack\n  - name: ship\n")
    planned = await plan(root, database_url)
    assert planned.changes == []
    assert "No schema changes" in planned.render()
    await apply(root, database_url)
    assert (await plan(root, database_url)).up_to_date


async def test_purge_needs_the_flag(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS.replace("  - {name: notes, type: text}\n", ""))
    await apply(root, database_url)
    workspace(root, BASE_FIELDS.replace("  - {name: notes, type: text}\n", ""), extra_template="purge: [notes]\n")
    planned = await plan(root, database_url)
    [step] = planned.changes
    assert (step.op, step.destructive, step.rows) == ("purge_column", True, 2)
    before = await dump(db)
    with pytest.raises(PlanRefused, match="--allow-destructive"):
        await apply(root, database_url)
    assert await dump(db) == before
    await apply(root, database_url, allow_destructive=True)
    assert "notes" not in await columns_of(db, "tpl_order")
    assert await column_values(db, "tpl_order", "customer_ref") == ["C-1", "C-2", "C-3"]


async def test_readded_field_of_another_type_sets_old_data_aside(
        tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    workspace(root, BASE_FIELDS.replace("  - {name: notes, type: text}\n", ""))
    await apply(root, database_url)
    workspace(root, BASE_FIELDS.replace("{name: notes, type: text}", "{name: notes, type: boolean}"))
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "notes__old1") == ["first", "second", None]
    assert await column_values(db, "tpl_order", "notes") == [None, None, None]
    assert (await plan(root, database_url)).up_to_date


async def test_failure_midway_rolls_back_and_rerun_works(
        tmp_path: Path, database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    root = await seeded(tmp_path, database_url, db)
    before = await dump(db)
    workspace(root, BASE_FIELDS.replace("{name: quantity, type: input}", "{name: quantity, type: number}")
              + "  - {name: rush, type: boolean}\n")
    real = apply_module.run_step
    calls = 0

    async def failing(db_: Database, step: object, plan_: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("killed")
        await real(db_, step, plan_)  # type: ignore[arg-type]

    monkeypatch.setattr(apply_module, "run_step", failing)
    with pytest.raises(RuntimeError, match="killed"):
        await apply(root, database_url)
    assert await dump(db) == before
    monkeypatch.setattr(apply_module, "run_step", real)
    await apply(root, database_url)
    assert await column_values(db, "tpl_order", "quantity") == [12, 7, None]
    assert await column_values(db, "tpl_order", "rush") == [None, None, None]


async def test_drift_is_refused(tmp_path: Path, database_url: str, db: Database) -> None:
    root = await seeded(tmp_path, database_url, db)
    await db.execute('ALTER TABLE "tpl_order" DROP COLUMN "notes"')
    planned = await plan(root, database_url)
    assert planned.refusals == [
        "the database differs from the last applied definitions: column tpl_order.notes is missing"]


async def test_customers_are_created_then_updated(tmp_path: Path, database_url: str, db: Database) -> None:
    root = workspace(tmp_path / "ws")
    (root / "customers.yaml").write_text(
        "kind: Customer\nname: acme\nlabel: ACME\nhourly_rate: '90.00'\nprojects:\n  - {name: web}\n")
    await apply(root, database_url)
    assert (await plan(root, database_url)).up_to_date
    (root / "customers.yaml").write_text(
        "kind: Customer\nname: acme\nlabel: ACME Corp\nhourly_rate: '90.00'\nprojects:\n  - {name: web}\n"
        "  - {name: app, label: Mobile app}\n")
    planned = await plan(root, database_url)
    assert [(s.op, s.old, s.new) for s in planned.changes] == [("upsert_customer", "update", "acme")]
    await apply(root, database_url)
    rows = await db.fetch("SELECT c.label AS c, p.name AS p, p.label AS l FROM rc_project p "
                          "JOIN rc_customer c ON c.id = p.customer_id ORDER BY p.id")
    assert [(r["c"], r["p"], r["l"]) for r in rows] == [("ACME Corp", "web", "web"), ("ACME Corp", "app", "Mobile app")]
