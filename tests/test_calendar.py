"""Business-time arithmetic: hand-computed deadlines in several timezones, holidays, weekends and DST changes."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from engine.automation.calendar import BusinessCalendar, Duration, add_business_time, business_time_between
from engine.model import Calendar
from engine.model.automation import Holiday, WeekHours
from tests.helpers_workspace import diagnostics_of

SPLIT = ("09:00-12:30", "13:30-17:30")
CALENDARS = {
    # London office: lunch 12:30-13:30, short Friday; Good Friday and Easter Monday closed.
    # British Summer Time starts Sunday 2026-03-29 (01:00 UTC: GMT -> BST, UTC+1).
    "london": Calendar(name="london", timezone="Europe/London", hours=WeekHours(
        mon=SPLIT, tue=SPLIT, wed=SPLIT, thu=SPLIT, fri=("09:00-12:30", "13:30-16:00")),
        holidays=(Holiday(date="2026-04-03"), Holiday(date="2026-04-06"))),
    # New York, 08:00-18:00; daylight saving starts Sunday 2026-03-08 (EST UTC-5 -> EDT UTC-4);
    # Monday 2026-03-09 is a (made-up) company holiday.
    "new_york": Calendar(name="new_york", timezone="America/New_York", hours=WeekHours(
        mon=("08:00-18:00",), tue=("08:00-18:00",), wed=("08:00-18:00",), thu=("08:00-18:00",),
        fri=("08:00-18:00",)), holidays=(Holiday(date="2026-03-09"),)),
    # Kolkata (UTC+5:30, no DST): lunch 13:00-14:00, a half Saturday; Republic Day 2026-01-26 (Monday).
    "kolkata": Calendar(name="kolkata", timezone="Asia/Kolkata", hours=WeekHours(
        mon=("10:00-13:00", "14:00-19:00"), tue=("10:00-13:00", "14:00-19:00"), wed=("10:00-13:00", "14:00-19:00"),
        thu=("10:00-13:00", "14:00-19:00"), fri=("10:00-13:00", "14:00-19:00"), sat=("10:00-14:00",)),
        holidays=(Holiday(date="2026-01-26"),)),
    # Sydney 09:00-17:00; daylight saving ends Sunday 2026-04-05 (AEDT UTC+11 -> AEST UTC+10);
    # Good Friday 2026-04-03 and Easter Monday 2026-04-06 closed.
    "sydney": Calendar(name="sydney", timezone="Australia/Sydney", hours=WeekHours(
        mon=("09:00-17:00",), tue=("09:00-17:00",), wed=("09:00-17:00",), thu=("09:00-17:00",),
        fri=("09:00-17:00",)), holidays=(Holiday(date="2026-04-03"), Holiday(date="2026-04-06"))),
    # Open all Sunday long in London: 23 hours on the spring change, 25 on the autumn one.
    "london_sundays": Calendar(name="london_sundays", timezone="Europe/London",
                               hours=WeekHours(sun=("00:00-24:00",))),
}


def z(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


# (calendar, start (UTC), duration, due (UTC), how it was counted by hand)
DEADLINES = [
    ("london", "2026-03-27T15:00Z", "2h", "2026-03-30T09:00Z", "Fri 15-16 GMT; Mon 09-10 BST (after the change)"),
    ("london", "2026-03-27T12:00Z", "1h", "2026-03-27T14:00Z", "12:00-12:30, lunch, 13:30-14:00"),
    ("london", "2026-03-27T15:00Z", "1d", "2026-03-30T14:00Z", "5h into Friday -> 5h into Monday: 15:00 BST"),
    ("london", "2026-04-02T16:00Z", "1h", "2026-04-07T08:30Z", "Thu 17:00-17:30 BST; Fri, weekend, Mon closed"),
    ("london", "2026-04-02T10:00Z", "2d2h", "2026-04-08T13:00Z", "2h into Thu; Tue, Wed; +2h over lunch: 14:00 BST"),
    ("london", "2026-03-28T12:00Z", "1d", "2026-03-30T16:30Z", "Saturday: one business day = end of Monday"),
    ("london", "2026-03-30T07:00Z", "30m", "2026-03-30T08:30Z", "before opening: 09:00-09:30 BST"),
    ("new_york", "2026-03-06T22:00Z", "3h", "2026-03-10T14:00Z", "Fri 17-18 EST; Mon holiday; Tue 08-10 EDT"),
    ("new_york", "2026-03-08T06:30Z", "1h", "2026-03-10T13:00Z", "Sun 01:30 EST, before the change; Tue 08-09 EDT"),
    ("new_york", "2026-03-06T15:00Z", "1d1h", "2026-03-10T15:00Z", "2h into Friday -> 2h into Tuesday, +1h: 11 EDT"),
    ("kolkata", "2026-01-24T08:00Z", "2h", "2026-01-27T06:00Z", "Sat 13:30-14:00; Sun; Mon holiday; Tue 10-11:30"),
    ("kolkata", "2026-01-23T07:00Z", "1h", "2026-01-23T09:00Z", "12:30-13:00, lunch, 14:00-14:30 IST"),
    ("kolkata", "2026-01-23T07:00Z", "1d", "2026-01-24T07:00Z", "2.5h into Friday -> 2.5h into Saturday"),
    ("kolkata", "2026-01-23T12:00Z", "1d", "2026-01-24T08:30Z", "6.5h into Friday; Saturday has 4h: its end"),
    ("sydney", "2026-04-02T05:00Z", "2h", "2026-04-07T00:00Z", "Thu 16-17 AEDT; Easter; Tue 09-10 AEST"),
    ("london_sundays", "2026-03-28T23:00Z", "23h", "2026-03-29T23:00Z", "the spring Sunday has 23 hours"),
    ("london_sundays", "2026-10-24T23:00Z", "24h", "2026-10-25T23:00Z", "the autumn Sunday has 25 hours"),
    (None, "2026-03-07T23:00Z", "1d2h", "2026-03-09T01:00Z", "around the clock: a day is 24 hours"),
]


@pytest.mark.parametrize(("name", "start", "duration", "due", "why"), DEADLINES,
                         ids=[f"{c[0]}-{c[1]}-{c[2]}" for c in DEADLINES])
def test_hand_computed_deadlines(name: str | None, start: str, duration: str, due: str, why: str) -> None:
    calendar = BusinessCalendar(CALENDARS[name] if name else None)
    assert add_business_time(calendar, z(start), duration) == z(due), why


# (calendar, from, to, working hours between)
SPANS = [
    ("london", "2026-03-27T16:00Z", "2026-03-30T08:00Z", 0.0),  # Friday's close to Monday's opening
    ("london", "2026-03-27T09:00Z", "2026-03-30T09:00Z", 7.0),  # Fri 09:00 GMT -> Mon 10:00 BST: 6h + 1h
    ("new_york", "2026-03-06T22:00Z", "2026-03-10T14:00Z", 3.0),
    ("sydney", "2026-04-02T05:00Z", "2026-04-07T00:00Z", 2.0),
    ("london_sundays", "2026-03-28T00:00Z", "2026-03-30T00:00Z", 23.0),
    ("london_sundays", "2026-10-24T00:00Z", "2026-10-26T12:00Z", 25.0),
    ("kolkata", "2026-01-23T04:30Z", "2026-01-27T04:30Z", 12.0),  # Fri 10:00 IST -> Tue 10:00: 8h + Sat 4h
]


@pytest.mark.parametrize(("name", "a", "b", "hours"), SPANS)
def test_hand_computed_working_time_between(name: str, a: str, b: str, hours: float) -> None:
    calendar = BusinessCalendar(CALENDARS[name])
    assert business_time_between(calendar, z(a), z(b)) == dt.timedelta(hours=hours)
    assert business_time_between(calendar, z(b), z(a)) == -dt.timedelta(hours=hours)


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_adding_hours_and_counting_them_back_agree(name: str) -> None:
    """For random starts across the year (both DST changes) and spans, between(start, add(start, s)) == s."""
    calendar = BusinessCalendar(CALENDARS[name])
    rng = random.Random(name)
    origin = z("2026-01-01T00:00Z")
    for _ in range(300):
        start = origin + dt.timedelta(minutes=rng.randrange(365 * 24 * 60))
        seconds = rng.randrange(1, 80 * 3600, 60)
        due = calendar.add(start, seconds)
        assert due >= start
        assert calendar.between(start, due) == seconds, (start, seconds, due)
        # the earliest such instant: a minute earlier is less working time
        assert calendar.between(start, due - dt.timedelta(minutes=1)) < seconds


@pytest.mark.parametrize("name", ["london", "new_york"])
def test_microseconds_are_kept_exactly(name: str) -> None:
    """Instants and spans to the microsecond, starts given in the calendar's own zone too:
    the due time is exact, and one microsecond less of working time is an earlier one."""
    calendar = BusinessCalendar(CALENDARS[name])
    rng = random.Random(f"{name}-micro")
    origin = z("2026-01-01T00:00Z")
    for _ in range(300):
        start = origin + dt.timedelta(microseconds=rng.randrange(365 * 86400 * 10**6))
        if rng.random() < 0.5:
            start = start.astimezone(calendar.zone)
        micros = rng.randrange(1, 80 * 3600 * 10**6)
        due = calendar.add(start, micros / 10**6)
        assert calendar.between(start, due) == micros / 10**6, (start, micros, due)
        assert calendar.between(start, due - dt.timedelta(microseconds=1)) == (micros - 1) / 10**6
        assert due.utcoffset() == dt.timedelta(0)
        assert calendar.add(due, 1e-6) - due >= dt.timedelta(microseconds=1)


def test_deadlines_are_on_working_time_or_at_a_closing() -> None:
    calendar = BusinessCalendar(CALENDARS["london"])
    zone = calendar.zone
    for start in (z("2026-03-27T15:00Z"), z("2026-03-28T12:00Z"), z("2026-04-02T16:00Z")):
        for text in ("30m", "2h", "1d", "3d4h"):
            local = add_business_time(calendar, start, text).astimezone(zone)
            clock = local.strftime("%H:%M")
            assert local.weekday() < 5 and local.date().isoformat() not in ("2026-04-03", "2026-04-06")
            assert "09:00" < clock <= "12:30" or "13:30" < clock <= "17:30", (start, text, local)


def test_durations() -> None:
    assert (Duration.parse("1d4h30m").days, Duration.parse("1d4h30m").seconds) == (1, 16200)
    assert Duration.parse("90m").total_seconds == 5400
    for bad in ("", "4x", "h", "1h1d"):
        with pytest.raises(ValueError):
            Duration.parse(bad)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        BusinessCalendar(None).add(dt.datetime(2026, 1, 1), 60)


def test_a_calendar_without_hours_is_a_located_error(tmp_path: Path) -> None:
    found = diagnostics_of(tmp_path, {"c.yaml": """\
        kind: Calendar
        name: closed
        timezone: Europe/London
        hours: {}
        ---
        kind: SLA
        name: never
        calendar: closed
        targets: {resolution: 1h}
        """})
    assert "c.yaml:4:8: error: the calendar has no working hours on any day" in found
    with pytest.raises(ValueError, match="no working hours"):
        BusinessCalendar(Calendar(name="closed", timezone="UTC", hours=WeekHours()))
