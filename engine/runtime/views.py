"""Reading many work orders: counts per queue, step and status; filtered, sorted, paged lists.

Sort keys and filters are checked against allow-lists; user input never becomes SQL.
Pages are cut by a cursor (the last row's sort value and id), not by OFFSET.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from ..errors import BadQuery
from ..identifiers import quote
from ..model.common import STATUSES
from .actors import Actor
from .fields import aware, to_json_time
from .portal import customer_where, visible_templates_for_customer

SORTS = ("created_at", "updated_at", "number", "priority", "requested_at", "planned_at", "status", "step")
FILTERS = ("queue", "step", "status", "template", "priority", "owner", "group", "customer_id")
MAX_LIMIT = 200


def visible_templates(runtime: Any, actor: Actor) -> list[str] | None:
    """The templates whose orders ``actor`` sees (``None``: all of them)."""
    if not actor.is_staff:
        return list(visible_templates_for_customer(runtime.workspace))
    if actor.can("order.view_all"):
        return None
    return [name for name, t in runtime.workspace.templates.items() if actor.groups & runtime.range_of(t)]


def _scope(runtime: Any, actor: Actor) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    templates = visible_templates(runtime, actor)
    if templates is not None:
        if not templates:
            where.append("1 = 0")
        else:
            where.append(f"template IN ({', '.join('{}' for _ in templates)})")
            args += templates
    if not actor.is_staff:
        sql, more = customer_where(runtime.workspace, actor)
        where.append(sql)
        args += more
    return where, args


FINAL_STATUSES = ("completed", "cancelled")
OPEN_STATUSES = tuple(s for s in STATUSES if s not in FINAL_STATUSES)
MAX_DISTINCT = 64
"""Beyond this many distinct values a loose index scan is no longer cheap."""


async def _distinct(db: Any, column: str) -> list[str] | None:
    """The distinct values of an indexed work-order column, one index seek each (``None``: too many)."""
    found: list[str] = []
    value = await db.fetch_value(f"SELECT MIN({column}) FROM rc_work_order")
    while value is not None:
        if len(found) == MAX_DISTINCT:
            return None
        found.append(value)
        value = await db.fetch_value(f"SELECT MIN({column}) FROM rc_work_order WHERE {column} > {{}}", value)
    return found


async def _fast_counts(runtime: Any, actor: Actor, final: bool) -> list[dict[str, Any]] | None:
    """The rows of ``counts`` without reading every work order, or ``None`` where that is not exact.

    When the actor's scope leaves out no stored order (the usual staff case) and only the model's
    statuses are stored: open work per queue, step and status from the index on (status, queue,
    step), cancelled orders counted likewise, completed ones as the rest of the table's count.
    """
    if not actor.is_staff:
        return None
    templates = visible_templates(runtime, actor)
    async with runtime.db.snapshot():
        if templates is not None:
            stored = await _distinct(runtime.db, "template")
            if stored is None or not set(stored) <= set(templates):
                return None
        statuses = await _distinct(runtime.db, "status")
        if statuses is None or not set(statuses) <= set(STATUSES):
            return None
        return await _counted(runtime.db, statuses if final else [s for s in statuses if s in OPEN_STATUSES])


async def _counted(db: Any, statuses: list[str]) -> list[dict[str, Any]]:
    open_ = [s for s in statuses if s in OPEN_STATUSES]
    rows: list[dict[str, Any]] = []
    if open_:
        rows = await db.fetch(
            "SELECT queue, step, status, COUNT(*) AS n FROM rc_work_order "
            f"WHERE status IN ({', '.join('{}' for _ in open_)}) GROUP BY status, queue, step", *open_)
    cancelled = await db.fetch_value(
        "SELECT COUNT(*) FROM rc_work_order WHERE status = {}", "cancelled") if "cancelled" in statuses else 0
    if "completed" in statuses:
        total = await db.fetch_value("SELECT COUNT(*) FROM rc_work_order")
        completed = int(total) - int(cancelled) - sum(int(r["n"]) for r in rows)
        rows.append({"queue": None, "step": None, "status": "completed", "n": completed})
    if cancelled:
        rows.append({"queue": None, "step": None, "status": "cancelled", "n": cancelled})
    return rows


async def counts(runtime: Any, actor: Actor, *, final: bool = True) -> dict[str, Any]:
    """Open work per queue and step, and all work per status, as the actor may see it.

    ``final=False`` leaves out the completed and cancelled totals, which must count every
    row of a large table: the cheap part, for screens that show those totals later.
    """
    rows = await _fast_counts(runtime, actor, final)
    if rows is None:
        where, args = _scope(runtime, actor)
        if not final:
            where.append(f"status NOT IN ({', '.join('{}' for _ in FINAL_STATUSES)})")
            args += FINAL_STATUSES
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await runtime.db.fetch(
            f"SELECT queue, step, status, COUNT(*) AS n FROM rc_work_order {clause} GROUP BY queue, step, status",
            *args)
    queues: dict[str, Any] = {}
    for name, queue in runtime.workspace.queues.items():
        queues[name] = {"label": next(iter(queue.label.values())), "open": 0,
                        "steps": {s.name: 0 for s in queue.steps}}
    statuses: dict[str, int] = {}
    for row in rows:
        n = int(row["n"])
        statuses[row["status"]] = statuses.get(row["status"], 0) + n
        queue = queues.get(row["queue"])
        if queue is not None and row["status"] not in FINAL_STATUSES:
            queue["open"] += n
            if row["step"] in queue["steps"]:
                queue["steps"][row["step"]] += n
    return {"queues": queues, "statuses": statuses}


def _cursor_encode(value: Any, row_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([value, row_id]).encode()).decode()


TIME_SORTS = frozenset({"created_at", "updated_at", "requested_at", "planned_at"})
NEVER_NULL = frozenset({"created_at", "updated_at", "number", "status", "step"})
"""Sort keys whose columns are NOT NULL (engine/compile/core.py)."""
PRIORITY_RANK = "CASE priority WHEN 'low' THEN 1 WHEN 'normal' THEN 2 WHEN 'high' THEN 3 WHEN 'urgent' THEN 4 END"
BAD_CURSOR = BadQuery("the cursor is not valid", [{"field": "cursor", "message": "use the next_cursor of a page"}])


def _cursor_decode(cursor: str, key: str) -> tuple[Any, int]:
    """The last row's sort value (checked against the sort's type) and id."""
    try:
        value, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(row_id, bool) or not isinstance(row_id, int) or not 0 < row_id < 2**63:
            raise ValueError
        if value is None:
            return None, row_id
        if key == "priority":
            if isinstance(value, bool) or value not in (1, 2, 3, 4):
                raise ValueError
            return value, row_id
        if not isinstance(value, str) or len(value) > 300 or "\x00" in value:
            raise ValueError
        if key in TIME_SORTS:
            moment = dt.datetime.fromisoformat(value)
            return aware(moment), row_id
        return value, row_id
    except (ValueError, TypeError, UnicodeDecodeError):
        raise BAD_CURSOR from None


async def list_orders(runtime: Any, actor: Actor, *, filters: dict[str, str], sort: str = "-created_at",
                      cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """A page of work orders, newest first by default."""
    errors = []
    descending = sort.startswith("-")
    key = sort.lstrip("-+")
    if key not in SORTS:
        errors.append({"field": "sort", "message": f"sort by one of: {', '.join(SORTS)} (prefix - for descending)"})
    for name, value in filters.items():
        if name not in FILTERS:
            errors.append({"field": name, "message": f"filter by one of: {', '.join(FILTERS)}"})
        elif not isinstance(value, str) or len(value) > 200 or "\x00" in value:
            errors.append({"field": name, "message": "at most 200 characters of text"})
    if not 1 <= limit <= MAX_LIMIT:
        errors.append({"field": "limit", "message": f"between 1 and {MAX_LIMIT}"})
    if errors:
        raise BadQuery("the list cannot be shown", errors)
    where, args = _scope(runtime, actor)
    for name, value in filters.items():
        if name == "owner":
            if value == "me":
                where.append("owner_id = {}")
                args.append(actor.id)
            elif value == "none":
                where.append("owner_id IS NULL")
            else:
                where.append("owner_id = (SELECT id FROM rc_user WHERE login = {})")
                args.append(value)
        elif name == "group":
            where.append("group_name = {}")
            args.append(value)
        elif name == "customer_id":
            if not value.isdigit() or len(value) > 18:
                raise BadQuery("customer_id must be a number", [{"field": "customer_id", "message": "a number"}])
            where.append("customer_id = {}")
            args.append(int(value))
        else:
            where.append(f"{quote(name)} = {{}}")
            args.append(value)
    # Rows with a value come first, then those without (in both directions, on both databases).
    column = PRIORITY_RANK if key == "priority" else quote(key)
    op = "<" if descending else ">"
    never_null = key in NEVER_NULL
    if cursor:
        after, last_id = _cursor_decode(cursor, key)
        if after is None:
            where.append(f"({column} IS NULL AND id {op} {{}})")
            args.append(last_id)
        elif never_null:
            # the same rows as below, written as a range an index on the column can seek to
            where.append(f"({column} {op}= {{}} AND ({column} {op} {{}} OR id {op} {{}}))")
            args += [after, after, last_id]
        else:
            where.append(f"(({column} IS NOT NULL AND ({column} {op} {{}} OR ({column} = {{}} AND id {op} {{}}))) "
                         f"OR {column} IS NULL)")
            args += [after, after, last_id]
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    direction = "DESC" if descending else "ASC"
    # Sorting by "IS NULL" first would keep an index on the column from giving the order.
    nulls_last = "" if never_null else f"({column} IS NULL) ASC, "
    rows = await runtime.db.fetch(
        f"SELECT id, number, template, queue, step, status, priority, title, group_name, owner_id, "
        f"created_at, updated_at, requested_at, planned_at, version, {column} AS sort_value "
        f"FROM rc_work_order {clause} "
        f"ORDER BY {nulls_last}{column} {direction}, id {direction} LIMIT {{}}", *args, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    owners = {int(r["owner_id"]) for r in rows if r["owner_id"] is not None}
    logins = await runtime.logins(owners) if owners else {}
    items = []
    for row in rows:
        item = {k: v for k, v in row.items() if k not in ("id", "owner_id", "sort_value")}
        item["owner"] = logins.get(row["owner_id"]) if row["owner_id"] is not None else None
        for time_key in ("created_at", "updated_at", "requested_at", "planned_at"):
            item[time_key] = to_json_time(item[time_key])
        item["group"] = item.pop("group_name")
        items.append(item)
    next_cursor = None
    if more and rows:
        last = rows[-1]
        last_value = last["sort_value"]
        next_cursor = _cursor_encode(
            to_json_time(last_value) if isinstance(last_value, dt.datetime) else last_value, int(last["id"]))
    return {"items": items, "next_cursor": next_cursor}
