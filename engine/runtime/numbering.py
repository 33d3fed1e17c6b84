"""Work-order numbers on PostgreSQL: a sequence per template.

A template's numbers count up from its ``numbering.start``, each given once. On SQLite the
count is the template's ``rc_counter`` row (``number:<template>``, the last number given),
counted up in the order's own transaction: writes there are serial anyway.

On PostgreSQL the count is a sequence of the template's own, ``rc_number_<template>``.
``nextval`` takes no row lock, so concurrent creates of one template never wait for each
other (with a counter row, every create of the template updated that one row, and each
waited for the one before it to commit; under load the row's versions piled up too). Numbers
are handed out in order, one at a time (no cache), with a gap only where a create failed
after taking its number, as before.

The sequence is made by the first create of the template a runtime sees, on a connection of
its own (so that it exists whatever becomes of a transaction under way; the runtime's other
creates of the template arriving meanwhile wait for that one), starting after the
template's counter row: a database numbered by rows before keeps counting where it was.
Making it also writes that row (``start - 1`` if there was none) and leaves it from then on;
an archive of a PostgreSQL database carries each sequence's last value in its row
(``counter_values``), and a restore removes sequences left in the database (``drop_sequences``),
so that the next create starts after the archived row again.
"""

from __future__ import annotations

from ..db import Database
from ..identifiers import quote

PREFIX = "rc_number_"
LOCK = 7_420_150_002
"""The advisory lock that makes one server at a time create a template's sequence."""


def sequence_name(template: str) -> str:
    """The name of ``template``'s number sequence (template names are at most 40 characters)."""
    return PREFIX + template


def counter_name(template: str) -> str:
    """The name of ``template``'s ``rc_counter`` row."""
    return f"number:{template}"


async def ensure_sequence(db: Database, template: str, start: int) -> None:
    """Create ``template``'s sequence unless it exists, continuing its counter row (PostgreSQL).

    Committed at once on a connection of its own, whatever transaction the caller is in.
    Servers creating it at the same moment take turns (an advisory lock): one creates it,
    the others find it.
    """
    name = sequence_name(template)
    quote(name)  # a checked name: it is written into the statement below
    counter = counter_name(template)
    await db.execute_apart(
        "DO $ensure$ BEGIN "
        f"PERFORM pg_advisory_xact_lock({LOCK}); "
        f"IF to_regclass('{name}') IS NULL THEN "
        f"INSERT INTO rc_counter (name, value) VALUES ('{counter}', {int(start) - 1}) ON CONFLICT (name) DO NOTHING; "
        f"EXECUTE format('CREATE SEQUENCE {name} AS bigint START WITH %s', "
        f"(SELECT value + 1 FROM rc_counter WHERE name = '{counter}')); "
        "END IF; END $ensure$")


async def _sequences(db: Database) -> dict[str, int | None]:
    """PostgreSQL: the number sequences by template, each with the last number it gave (``None``: none yet)."""
    rows = await db.fetch("SELECT sequencename AS name, last_value AS value FROM pg_sequences "
                          "WHERE schemaname = current_schema() AND starts_with(sequencename, {})", PREFIX)
    return {str(row["name"]).removeprefix(PREFIX): row["value"] for row in rows}


async def counter_values(db: Database) -> dict[str, int]:
    """PostgreSQL: the last number each template's sequence gave, by counter row name."""
    if db.dialect != "postgresql":
        return {}
    return {counter_name(template): int(value) for template, value in (await _sequences(db)).items()
            if value is not None}


async def drop_sequences(db: Database) -> None:
    """PostgreSQL: drop every number sequence (those of an earlier database in the same place)."""
    if db.dialect != "postgresql":
        return
    for template in await _sequences(db):
        await db.execute(f"DROP SEQUENCE {quote(sequence_name(template))}")
