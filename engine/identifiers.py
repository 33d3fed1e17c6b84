"""Rules for identities that become database names: checked strictly, never trusted.

A field's identity becomes a column and a template's becomes part of a table name,
so beyond the pattern in the schema they must not be SQL reserved words (in
PostgreSQL or SQLite) nor names the engine uses itself. Anything that reaches SQL
is also quoted with ``quote``, which refuses what it has not been given to check.
"""

from __future__ import annotations

import re

IDENTITY_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SQL_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

SQL_RESERVED = frozenset(
    """
    all alter analyse analyze and any array as asc asymmetric authorization between binary both
    case cast check collate collation column concurrently constraint create cross current_catalog
    current_date current_role current_schema current_time current_timestamp current_user default
    deferrable delete desc distinct do drop else end except exists false fetch for foreign freeze
    from full grant group having ilike in index initially inner insert intersect into is isnull
    join lateral leading left like limit localtime localtimestamp natural not notnull null offset
    on only or order outer overlaps placing primary references returning right rowid select
    session_user set similar some symmetric system_user table tablesample then to trailing true
    union unique update user using values variadic verbose when where window with
    """.split()
)
"""PostgreSQL's reserved key words, the statements' verbs, and SQLite's rowid.

Identifiers are always quoted, so these would work; they are refused because a column
named ``select`` or ``order`` confuses everyone who reads SQL or writes reports.
"""

CORE_NAMES = frozenset(
    """
    id work_order_id oid rowid ctid xmin xmax cmin cmax tableoid
    number title template queue step status priority owner owner_id group_name team
    customer customer_id project project_id created_by created_at updated_at completed_at
    cancelled_at requested_at planned_at version definition_version sender
    """.split()
)
"""Names of the work order's own attributes and system columns; custom fields may not take them."""

RESERVED_STEP_NAMES = frozenset({"complete", "previous", "supervisor"})


def identity_problem(name: str, *, column: bool) -> str | None:
    """Why ``name`` cannot be an identity (or a column, with ``column``); ``None`` if it can."""
    if not IDENTITY_RE.match(name):
        return (
            f"`{name}` is not a valid name: use at most 40 lowercase letters, digits and "
            "underscores, starting with a letter"
        )
    if column and name in CORE_NAMES:
        return f"`{name}` is a built-in attribute of every work order; choose another name (e.g. `{name}_ref`)"
    if column and name in SQL_RESERVED:
        return f"`{name}` is a reserved word in SQL; choose another name (e.g. `{name}_value`)"
    return None


def quote(name: str) -> str:
    """``name`` as a quoted SQL identifier; refuses anything but a checked lowercase name."""
    if not SQL_NAME_RE.match(name):
        raise ValueError(f"refusing to use {name!r} as an SQL identifier")
    return f'"{name}"'
