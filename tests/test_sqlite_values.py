"""Datetimes on SQLite: Routecard's adapter writes the text piccolo's writes (UTC, ``str``),
and the text it keeps of the last moment it converted is never handed out for another."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from piccolo.engine.sqlite import convert_datetime_in

from engine.db import connect
from engine.sqlite import _datetime_in

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
MOMENTS = [dt.datetime(2026, 11, 24, 7, 30, 1, 5, tzinfo=dt.timezone.utc), dt.datetime(2026, 11, 24, 7, 30),
           dt.datetime(2026, 7, 1, 9, 0, tzinfo=BERLIN), dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-5)))]


def test_the_adapter_writes_what_piccolos_writes() -> None:
    for moment in MOMENTS + MOMENTS[::-1] + [MOMENTS[0], MOMENTS[0]]:
        assert _datetime_in(moment) == convert_datetime_in(moment)
    assert _datetime_in(MOMENTS[2]) == "2026-07-01 07:00:00+00:00"


async def test_one_moment_in_several_columns_and_the_next_moment_are_stored_as_given(tmp_path: Path) -> None:
    db = await connect(f"sqlite:///{tmp_path}/values.db")
    try:
        await db.execute("CREATE TABLE stamps (id INTEGER PRIMARY KEY, a TIMESTAMPTZ, b TIMESTAMPTZ)")
        for moment in MOMENTS:
            await db.execute("INSERT INTO stamps (a, b) VALUES ({}, {})", moment, moment)
        rows = await db.fetch("SELECT a, b FROM stamps ORDER BY id")
    finally:
        await db.close()
    # read back in UTC; a naive value was taken as UTC
    expected = [(moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)
                for moment in MOMENTS]
    assert [(r["a"], r["b"]) for r in rows] == [(e, e) for e in expected]
