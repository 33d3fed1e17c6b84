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
    abort action add after all alter always analyze and any array as asc asymmetric
    attach authorization autoincrement before begin between bigint binary bit boolean both by
    cascade case cast char character check collate collation column commit concurrently
    conflict constraint create cross current current_catalog current_date current_role
    current_schema current_time current_timestamp current_user database date decimal default
    deferrable deferred delete desc detach distinct do drop each else end escape except
    exclude exclusive exists explain extract fail false fetch filter first float following
    for foreign freeze from full generated glob grant group groups having if ignore ilike
    immediate in index indexed initially inner insert instead int integer intersect interval
    into is isnull join key last lateral leading left like limit localtime localtimestamp
    match materialized natural no none not nothing notnull null nulls numeric of offset on
    only or order others outer over overlaps overlay partition placing plan position
    pragma preceding precision primary query raise range real recursive references regexp
    reindex release rename replace restrict returning right rollback row rows savepoint
    schema select session_user set setof similar smallint some symmetric system_user table
    tablesample temp temporary then ties time timestamp to trailing transaction treat
    trigger trim true unbounded union unique update user using vacuum values varchar
    variadic verbose view virtual when where window with within without
    """.split()
)
"""Words reserved in SQL, PostgreSQL or SQLite (a superset, to be safe on both)."""

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
