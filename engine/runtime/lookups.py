"""Small reads for screens: finding customers and staff users, and naming records kept by id.

Custom fields of type ``user``, ``customer`` and ``reference`` store a record's id; the
screens show a login, a customer's name or a work-order number instead, and turn what
a person typed back into the id. Search text only travels as a parameter, with the
LIKE wildcards ``%`` and ``_`` matching themselves (``like_pattern``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..db import Database
from ..errors import Invalid
from .actors import Actor

MAX_USERS = 20
MAX_CUSTOMERS = 50


def _search_text(query: str, limit: int, most: int) -> str:
    """A search's text, stripped; ``Invalid`` when it or the number of results asked is out of range."""
    text = query.strip()
    if len(text) > 200:
        raise Invalid("the search text is too long", [{"field": "q", "message": "at most 200 characters"}])
    if not 1 <= limit <= most:
        raise Invalid("the number of results is out of range", [{"field": "limit", "message": f"between 1 and {most}"}])
    return text


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, wildcards escaped (``\\`` is the escape)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_customers(db: Database, actor: Actor, query: str = "", *, limit: int = 20) -> list[dict[str, Any]]:
    """Customers whose id equals ``query`` or whose name, label or e-mail domains contain it.

    Staff see every customer; a customer user sees only their own. An empty query lists
    the first customers by name.
    """
    text = _search_text(query, limit, MAX_CUSTOMERS)
    where: list[str] = []
    args: list[Any] = []
    if text:
        pattern = like_pattern(text.lstrip("@"))
        clause = ("(LOWER(name) LIKE {} ESCAPE '\\' OR LOWER(label) LIKE {} ESCAPE '\\' "
                  "OR LOWER(CAST(email_domains AS TEXT)) LIKE {} ESCAPE '\\'")
        args += [pattern, pattern, pattern]
        if text.isdigit() and len(text) < 18:
            clause += " OR id = {}"
            args.append(int(text))
        where.append(clause + ")")
    if not actor.is_staff:
        where.append("id = {}")
        args.append(actor.customer_id if actor.customer_id is not None else -1)
    sql = "SELECT id, name, label, email_domains FROM rc_customer"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = await db.fetch(sql + " ORDER BY name, id LIMIT {}", *args, limit)
    return [{"id": int(r["id"]), "name": r["name"], "label": r["label"],
             "email_domains": stored_domains(r["email_domains"])} for r in rows]


def stored_domains(value: Any) -> list[str]:
    """A customer's mail domains as stored (JSON text or a list, by database)."""
    if value is None:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return [str(d) for d in loaded] if isinstance(loaded, list) else []


async def search_users(db: Database, actor: Actor, query: str = "", *, limit: int = MAX_USERS) -> list[dict[str, Any]]:
    """Active staff users whose login or name contains ``query`` (login order); staff only may search."""
    if not actor.is_staff:
        return []
    text = _search_text(query, limit, MAX_USERS)
    sql = "SELECT login, name FROM rc_user WHERE is_active = {} AND is_staff = {}"
    args: list[Any] = [True, True]
    if text:
        pattern = like_pattern(text)
        sql += " AND (LOWER(login) LIKE {} ESCAPE '\\' OR LOWER(name) LIKE {} ESCAPE '\\')"
        args += [pattern, pattern]
    rows = await db.fetch(sql + " ORDER BY login LIMIT {}", *args, limit)
    return [{"login": r["login"], "name": r["name"]} for r in rows]


async def _by_id(db: Database, sql: str, ids: Iterable[int]) -> dict[int, str]:
    wanted = sorted({int(i) for i in ids if i is not None})
    if not wanted:
        return {}
    marks = ", ".join("{}" for _ in wanted)
    return {int(r["id"]): str(r["name"]) for r in await db.fetch(sql.format(marks=marks), *wanted)}


async def logins(db: Database, ids: Iterable[int]) -> dict[int, str]:
    """User id -> login."""
    return await _by_id(db, "SELECT id, login AS name FROM rc_user WHERE id IN ({marks})", ids)


async def customer_names(db: Database, ids: Iterable[int]) -> dict[int, str]:
    """Customer id -> its name (short and unique: what a person types to choose it)."""
    return await _by_id(db, "SELECT id, name FROM rc_customer WHERE id IN ({marks})", ids)


async def customer_labels(db: Database, ids: Iterable[int]) -> dict[int, str]:
    """Customer id -> its label (its name when it has no label)."""
    return await _by_id(db, "SELECT id, CASE WHEN label = '' THEN name ELSE label END AS name "
                            "FROM rc_customer WHERE id IN ({marks})", ids)


async def order_numbers(db: Database, ids: Iterable[int]) -> dict[int, str]:
    """Work-order id -> number."""
    return await _by_id(db, "SELECT id, number AS name FROM rc_work_order WHERE id IN ({marks})", ids)


async def staff_user_id(db: Database, login: str) -> int | None:
    """The id of the active staff user ``login``."""
    value = await db.fetch_value("SELECT id FROM rc_user WHERE login = {} AND is_active = {} AND is_staff = {}",
                                 login, True, True)
    return int(value) if value is not None else None


async def customer_id_named(db: Database, text: str) -> int | None:
    """The customer whose id, name or label is exactly ``text`` (case-insensitive); ``None`` if not one."""
    text = text.strip()
    if text.isdigit() and len(text) < 18:
        found = await db.fetch_value("SELECT id FROM rc_customer WHERE id = {}", int(text))
        if found is not None:
            return int(found)
    rows = await db.fetch("SELECT id FROM rc_customer WHERE LOWER(name) = {} OR LOWER(label) = {} LIMIT 2",
                          text.lower(), text.lower())
    return int(rows[0]["id"]) if len(rows) == 1 else None


async def order_id(db: Database, number: str) -> tuple[int, str] | None:
    """The id and template of work order ``number`` (visibility is the caller's to check)."""
    rows = await db.fetch("SELECT id, template FROM rc_work_order WHERE number = {}", number)
    return (int(rows[0]["id"]), str(rows[0]["template"])) if rows else None
