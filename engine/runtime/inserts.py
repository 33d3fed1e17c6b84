"""The statements of a new work order, built once per shape (and kept as the same string
objects, whose hash Python then keeps, for the statement caches keyed by SQL text), and
the check of the columns features keep on its row (``Runtime.open_with``).
"""

from __future__ import annotations

import functools
from typing import Any

from ..compile.core import CORE_TABLES
from ..compile.spec import extension_table
from ..db import ROW_ID
from ..identifiers import quote
from .state import CORE_KEYS

KEPT_COLUMNS = frozenset(
    c.name for t in CORE_TABLES if t.name == "rc_work_order" for c in t.columns
    if c.name not in (*CORE_KEYS, "id", "updated_at", "version", "definition_version", "sender"))
"""The columns of ``rc_work_order`` that are not the order's own attributes (kept by features: the SLA clock)."""

IDEMPOTENCY_INSERT = ("INSERT INTO rc_idempotency (key, user_id, work_order_id, created_at) "
                      f"VALUES ({{}}, {{}}, {ROW_ID}, {{}})")


@functools.lru_cache(maxsize=256)
def order_insert(columns: tuple[str, ...]) -> str:
    return (f"INSERT INTO rc_work_order ({', '.join(quote(k) for k in columns)}) "
            f"VALUES ({', '.join('{}' for _ in columns)})")


def kept(columns: dict[str, Any]) -> dict[str, Any]:
    """``columns`` from an ``OpeningColumns``, refused if it names any but ``KEPT_COLUMNS``."""
    unknown = set(columns) - KEPT_COLUMNS
    if unknown:
        raise ValueError(f"not columns a feature may keep on a work order: {', '.join(sorted(unknown))}")
    return columns


@functools.lru_cache(maxsize=64)
def numbered_order_insert(columns: tuple[str, ...]) -> str:
    """On PostgreSQL: the order's insert, its number the next of the template's sequence.

    Parameters: the title (``NULL`` for the default), the default title's text before the
    number, the values of ``columns``, then the template's prefix, digits and sequence. The
    number is the prefix and the sequence's value with at least ``digits`` digits, as
    ``Runtime._numbered`` writes it.
    """
    return (f"INSERT INTO rc_work_order (number, title, {', '.join(quote(k) for k in columns)}) "
            "SELECT n.number, COALESCE({}::text, {}::text || n.number), "
            f"{', '.join('{}' for _ in columns)} "
            "FROM (SELECT {}::text || lpad(s.v::text, greatest({}::int, length(s.v::text)), '0') AS number "
            "FROM nextval({}::regclass) AS s(v)) AS n")


@functools.lru_cache(maxsize=1024)
def fields_insert(template: str, names: tuple[str, ...]) -> str:
    return (f"INSERT INTO {quote(extension_table(template))} "
            f"({', '.join(quote(n) for n in ['work_order_id', *names])}) "
            f"VALUES ({', '.join([ROW_ID, *('{}' for _ in names)])})")


@functools.lru_cache(maxsize=64)
def actions_insert(count: int) -> str:
    return ("INSERT INTO rc_step_action (work_order_id, step, action, round, state) VALUES "
            + ", ".join(f"({ROW_ID}, {{}}, {{}}, 1, 'pending')" for _ in range(count)))
