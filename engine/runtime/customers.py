"""Finding customers: by number (id), name, label or e-mail domain.

The search text only ever travels as a parameter; ``%`` and ``_`` in it match
themselves, not any text.
"""

from __future__ import annotations

import json
from typing import Any

from ..db import Database
from ..errors import Invalid
from .actors import Actor

MAX_RESULTS = 50


def like_pattern(text: str) -> str:
    """``text`` as a LIKE pattern matching it anywhere, wildcards escaped (``\\`` is the escape)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_customers(db: Database, actor: Actor, query: str = "", *, limit: int = 20) -> list[dict[str, Any]]:
    """Customers whose id equals ``query`` or whose name, label or e-mail domains contain it.

    Staff see every customer; a customer user sees only their own. An empty query lists
    the first customers by name.
    """
    text = query.strip()
    if len(text) > 200:
        raise Invalid("the search text is too long", [{"field": "q", "message": "at most 200 characters"}])
    if not 1 <= limit <= MAX_RESULTS:
        raise Invalid("the number of results is out of range", [{"field": "limit", "message": f"between 1 and {MAX_RESULTS}"}])
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
             "email_domains": _domains(r["email_domains"])} for r in rows]


def _domains(value: Any) -> list[str]:
    if value is None:
        return []
    loaded = json.loads(value) if isinstance(value, str) else value
    return [str(d) for d in loaded] if isinstance(loaded, list) else []
