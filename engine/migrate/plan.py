"""Planning a migration: the pure diff, checked and counted against the live database."""

from __future__ import annotations

from typing import Any

import msgspec

from ..compile import compile_schema
from ..compile.spec import SchemaSpec
from ..db import Database
from ..identifiers import quote
from ..link.resolved import LinkedWorkspace
from .convert import convert, is_widening
from .diff import Step, diff_schema
from .live import VERSION_TABLE, LiveSchema, drift, read_live

FINAL_STATUSES = ("completed", "cancelled")
SAMPLE_ROWS = 10


class AppliedVersion(msgspec.Struct, frozen=True):
    fingerprint: str
    applied_at: str
    schema: SchemaSpec


class Plan(msgspec.Struct, kw_only=True):
    """Everything ``apply`` would do, and why it might refuse."""

    workspace: str
    database: str
    fingerprint: str
    previous: AppliedVersion | None
    steps: list[Step]
    refusals: list[str]
    target: SchemaSpec
    definitions: dict[str, Any]

    @property
    def changes(self) -> list[Step]:
        return [s for s in self.steps if s.op != "record_version"]

    @property
    def refused(self) -> bool:
        return bool(self.refusals)

    @property
    def destructive(self) -> list[Step]:
        return [s for s in self.steps if s.destructive]

    @property
    def up_to_date(self) -> bool:
        return not self.steps and not self.refusals

    def render(self, *, applied: bool = False) -> str:
        from .render import render_plan

        return render_plan(self, applied=applied)


async def latest_version(db: Database, live: LiveSchema) -> AppliedVersion | None:
    """The last applied definition version, if any."""
    if VERSION_TABLE not in live.tables:
        return None
    rows = await db.fetch(
        f"SELECT fingerprint, applied_at, schema_snapshot FROM {quote(VERSION_TABLE)} ORDER BY id DESC LIMIT 1"
    )
    if not rows:
        return None
    row = rows[0]
    snapshot = row["schema_snapshot"]
    schema = msgspec.json.decode(snapshot if isinstance(snapshot, (str, bytes)) else msgspec.json.encode(snapshot),
                                 type=SchemaSpec)
    return AppliedVersion(row["fingerprint"], str(row["applied_at"]), schema)


async def _count(db: Database, table: str, column: str | None = None) -> int:
    what = f"COUNT({quote(column)})" if column else "COUNT(*)"
    return int(await db.fetch_value(f"SELECT {what} AS n FROM {quote(table)}") or 0)


async def _label_rows(db: Database, table: str, ids: list[int]) -> dict[int, str]:
    """Work-order numbers for rows of an extension table (row ids for other tables), in one query."""
    labels = {i: f"row {i}" for i in ids}
    if ids and table.startswith("tpl_"):
        marks = ", ".join("{}" for _ in ids)
        for row in await db.fetch(
            f"SELECT e.id AS id, w.number AS number FROM {quote(table)} e "
            f"JOIN {quote('rc_work_order')} w ON w.id = e.work_order_id WHERE e.id IN ({marks})",
            *ids,
        ):
            labels[int(row["id"])] = row["number"]
    return labels


async def _check_conversion(db: Database, step: Step, refusals: list[str]) -> None:
    step.rows = await _count(db, step.table, (step.payload or {}).get("read_from", step.column))
    if is_widening(step.old, step.new) or not step.rows:
        return
    # Planning reads the database before any rename has run: read the column's current name.
    source_column = (step.payload or {}).get("read_from", step.column)
    rows = await db.fetch(
        f"SELECT id, {quote(source_column)} AS value FROM {quote(step.table)} "
        f"WHERE {quote(source_column)} IS NOT NULL ORDER BY id"
    )
    failures: list[tuple[int, Any, str]] = []
    for row in rows:
        try:
            convert(row["value"], step.old, step.new)
        except ValueError as exc:
            failures.append((row["id"], row["value"], str(exc)))
    if failures:
        labels = await _label_rows(db, step.table, [f[0] for f in failures[:SAMPLE_ROWS]])
        listed = "; ".join(f"{labels[i]}: {str(v)[:40]!r} {why}" for i, v, why in failures[:SAMPLE_ROWS])
        more = f" and {len(failures) - SAMPLE_ROWS} more" if len(failures) > SAMPLE_ROWS else ""
        what = f"field `{step.column}` of template `{step.template}`" if step.template else f"{step.table}.{step.column}"
        refusals.append(
            f"cannot change {what} from {step.old} to {step.new}: {len(failures)} of {step.rows} stored "
            f"values would not survive ({listed}{more}); fix or clear them first, or add a new field instead"
        )


async def _open_orders_outside(db: Database, workspace: LinkedWorkspace, live: LiveSchema,
                               steps: list[Step], refusals: list[str]) -> None:
    """Open work orders in steps or queues the new definitions no longer have."""
    if "rc_work_order" not in live.tables:
        return
    rows = await db.fetch(
        "SELECT queue, step, COUNT(*) AS n FROM rc_work_order WHERE status NOT IN ({}, {}) "
        "GROUP BY queue, step ORDER BY queue, step",
        *FINAL_STATUSES,
    )
    for row in rows:
        queue_name, step_name, count = row["queue"], row["step"], int(row["n"])
        queue = workspace.queues.get(queue_name)
        samples = tuple(
            r["number"] for r in await db.fetch(
                "SELECT number FROM rc_work_order WHERE queue = {} AND step = {} AND status NOT IN ({}, {}) "
                "ORDER BY id LIMIT 5", queue_name, step_name, *FINAL_STATUSES)
        )
        listed = ", ".join(samples) + (", ..." if count > len(samples) else "")
        if queue is None:
            refusals.append(
                f"queue `{queue_name}` was removed, but {count} open work orders are in it ({listed}); "
                "keep the queue until they are finished or cancelled"
            )
            continue
        if step_name in queue.step_names:
            continue
        target = queue.retired_steps.get(step_name)
        if target is None:
            refusals.append(
                f"step `{step_name}` was removed from queue `{queue_name}`, but {count} open work orders "
                f"are in it ({listed}); say where they go with `retired_steps: {{{step_name}: <step>}}` "
                f"in queue `{queue_name}`"
            )
            continue
        steps.append(Step(op="move_orders", table="rc_work_order", old=step_name, new=target,
                          rows=count, samples=samples, payload={"queue": queue_name}))


async def _customers(db: Database, workspace: LinkedWorkspace, live: LiveSchema, steps: list[Step]) -> None:
    """Customers and projects declared in the definitions that the database lacks or has differently."""
    existing: dict[str, dict[str, Any]] = {}
    projects: dict[str, dict[str, dict[str, Any]]] = {}
    if "rc_customer" in live.tables:
        for row in await db.fetch("SELECT id, name, label, hourly_rate FROM rc_customer"):
            existing[row["name"]] = row
        for row in await db.fetch(
            "SELECT c.name AS customer, p.name AS name, p.label AS label, p.hourly_rate AS hourly_rate "
            "FROM rc_project p JOIN rc_customer c ON c.id = p.customer_id"
        ):
            projects.setdefault(row["customer"], {})[row["name"]] = row
    language = workspace.settings.language
    for name, customer in sorted(workspace.customers.items()):
        label = _label(customer.label, name, language)
        project_labels = [_label(p.label, p.name, language) for p in customer.projects]
        wanted: dict[str, Any] = {
            "name": name,
            "label": label,
            "hourly_rate": customer.hourly_rate,
            "email_domains": list(customer.email_domains),
            "projects": [
                {"name": p.name, "label": p_label, "hourly_rate": p.hourly_rate}
                for p, p_label in zip(customer.projects, project_labels)
            ],
        }
        current = existing.get(name)
        same = (current is not None and current["label"] == label
                and _rate(current["hourly_rate"]) == customer.hourly_rate)
        have = projects.get(name, {})
        same = same and all(
            p.name in have and have[p.name]["label"] == p_label
            and _rate(have[p.name]["hourly_rate"]) == p.hourly_rate
            for p, p_label in zip(customer.projects, project_labels)
        )
        if not same:
            steps.append(Step(op="upsert_customer", table="rc_customer", new=name,
                              old="update" if current is not None else "create", payload=wanted))


def _label(label: str | dict[str, str] | None, fallback: str, language: str) -> str:
    if label is None:
        return fallback
    if isinstance(label, str):
        return label
    return label.get(language) or next(iter(label.values()), fallback)


def _rate(value: Any) -> str | None:
    if value is None:
        return None
    return f"{value:.2f}" if not isinstance(value, str) else value


async def build_plan(db: Database, workspace: LinkedWorkspace) -> Plan:
    """The migration plan from the database's state to ``workspace`` (reads only)."""
    live = await read_live(db)
    previous = await latest_version(db, live)
    refusals: list[str] = []
    if previous is None and live.tables:
        refusals.append(
            "the database already has Routecard tables but no applied definition version "
            f"({', '.join(sorted(live.tables)[:5])}); use an empty database"
        )
    if previous is not None:
        refusals += [f"the database differs from the last applied definitions: {p}"
                     for p in drift(previous.schema, live)]
    compiled = compile_schema(workspace)
    steps, target = diff_schema(compiled, previous.schema if previous else None, workspace.templates)
    if not refusals:
        for step in steps:
            if step.op in ("add_column",) and step.table in live.tables:
                step.rows = await _count(db, step.table)
            elif step.op in ("archive_column", "purge_column", "rename_column", "restore_column"):
                column = step.old if step.op == "rename_column" else step.column
                step.rows = await _count(db, step.table, column)
            elif step.op == "change_type":
                await _check_conversion(db, step, refusals)
            elif step.op == "archive_table":
                step.rows = await _count(db, step.table)
        await _open_orders_outside(db, workspace, live, steps, refusals)
        await _customers(db, workspace, live, steps)
    if steps or previous is None or previous.fingerprint != workspace.fingerprint:
        steps.append(Step(op="record_version", table=VERSION_TABLE, new=workspace.fingerprint))
    return Plan(
        workspace=workspace.settings.name,
        database=db.display_url,
        fingerprint=workspace.fingerprint,
        previous=previous,
        steps=steps,
        refusals=refusals,
        target=target,
        definitions=workspace.source,
    )
