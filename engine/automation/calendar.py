"""Business-time arithmetic over a calendar: working hours per weekday, holidays, a timezone.

Working hours are wall-clock times in the calendar's IANA timezone, so a day of
09:00-17:30 is 8.5 hours on the days a clock changes too; what moves is its UTC position.
A time that does not exist locally (inside the spring-forward gap) is read with the
offset before the change, as ``zoneinfo`` does. ``BusinessCalendar(None)`` counts around
the clock.

Durations (``30m``, ``4h``, ``2d``, ``1d4h``): hours and minutes are business time; with
a calendar, each day is one *business day* - the same position in the working day, N
working days later (or the end of that day when it is shorter). Without a calendar a
day is 24 hours.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from functools import lru_cache

from ..model import Calendar
from ..model.common import duration_parts

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
UTC = dt.timezone.utc
MAX_DAYS = 3700
"""How far (in calendar days) a computation looks ahead before it gives up (about ten years)."""
Span = tuple[dt.datetime, dt.datetime]


class Duration:
    """A parsed duration: whole days and the rest in seconds."""

    __slots__ = ("days", "seconds")

    def __init__(self, days: int, seconds: int) -> None:
        self.days, self.seconds = days, seconds

    @classmethod
    def parse(cls, text: str) -> Duration:
        """``1d4h30m`` -> Duration(1, 16200); ``ValueError`` for anything else."""
        days, hours, minutes = duration_parts(text)
        return cls(days, hours * 3600 + minutes * 60)

    @property
    def total_seconds(self) -> int:
        """The duration with each day as 24 hours."""
        return self.days * 86400 + self.seconds


def _clock(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class BusinessCalendar:
    """Time arithmetic over one calendar (or around the clock when ``calendar`` is ``None``)."""

    def __init__(self, calendar: Calendar | None) -> None:
        self.calendar = calendar
        self.name = calendar.name if calendar else None
        if calendar is None:
            self.zone: dt.tzinfo = UTC
            self.hours: tuple[tuple[tuple[int, int], ...], ...] = (((0, 24 * 60),),) * 7
            self.holidays: frozenset[dt.date] = frozenset()
        else:
            self.zone = zoneinfo.ZoneInfo(calendar.timezone)
            self.hours = tuple(
                tuple(sorted((_clock(a), _clock(b)) for a, b in (r.split("-") for r in getattr(calendar.hours, day))))
                for day in WEEKDAYS)
            self.holidays = frozenset(dt.date.fromisoformat(h.date) for h in calendar.holidays)
        self._cache: dict[int, tuple[tuple[int, int], ...]] = {}
        if not any(self.hours):
            raise ValueError(f"calendar {self.name} has no working hours on any day")

    @property
    def around_the_clock(self) -> bool:
        return self.calendar is None

    def spans(self, day: dt.date) -> tuple[Span, ...]:
        """The working hours of the local ``day`` as UTC intervals (none on a holiday)."""
        return _spans(self, day)

    def _local_day(self, moment: dt.datetime) -> int:
        """The ordinal of ``moment``'s local date."""
        return moment.astimezone(self.zone).date().toordinal()

    def add(self, start: dt.datetime, seconds: float) -> dt.datetime:
        """The instant ``seconds`` of working time after ``start`` (the earliest such instant), in UTC."""
        _aware(start)
        if seconds <= 0:
            return start
        if self.around_the_clock:
            return start + dt.timedelta(seconds=seconds)
        return _moment(self._add(_micros(start), _micros_of(dt.timedelta(seconds=seconds)), self._local_day(start)))

    def between(self, a: dt.datetime, b: dt.datetime) -> float:
        """Working seconds from ``a`` to ``b`` (negative when ``b`` is before ``a``)."""
        _aware(a)
        _aware(b)
        if b < a:
            return -self.between(b, a)
        if self.around_the_clock:
            return (b - a).total_seconds()
        return self._between(_micros(a), _micros(b), self._local_day(a), self._local_day(b)) / MICROS

    def add_duration(self, start: dt.datetime, duration: Duration | str) -> dt.datetime:
        """``start`` plus a duration: business days first (see the module), then hours and minutes."""
        if isinstance(duration, str):
            duration = Duration.parse(duration)
        if self.around_the_clock or duration.days == 0:
            return self.add(start, duration.total_seconds if self.around_the_clock else duration.seconds)
        _aware(start)
        day, at = self._add_days(_micros(start), self._local_day(start), duration.days)
        if duration.seconds <= 0:
            return _moment(at)
        return _moment(self._add(at, duration.seconds * MICROS, day))

    # Below, instants are whole microseconds since the epoch (exact, and cheap to compare and
    # add), days are proleptic ordinals of local dates, and a day's working hours are spans
    # of such instants.

    def _spans_at(self, day: int) -> tuple[tuple[int, int], ...]:
        """The working hours of the local day ``day`` (an ordinal) as spans of instants."""
        found = self._cache.get(day)
        if found is None:
            if len(self._cache) >= 8192:
                self._cache.clear()
            found = self._cache[day] = tuple(
                (_micros(a), _micros(b)) for a, b in self.spans(dt.date.fromordinal(day)))
        return found

    def _add(self, start: int, left: int, day: int) -> int:
        """The instant ``left`` microseconds of working time after ``start``, whose local day is ``day``."""
        for current in range(day - 1, day - 1 + MAX_DAYS):
            for opens, closes in self._spans_at(current):
                if closes <= start:
                    continue
                begin = opens if opens > start else start
                if left <= closes - begin:
                    return begin + left
                left -= closes - begin
        raise ValueError(f"calendar {self.name} has no working time within {MAX_DAYS} days of {_moment(start)}")

    def _between(self, a: int, b: int, first: int, last: int) -> int:
        """Working microseconds from ``a`` to ``b`` (``a <= b``), on local days ``first`` and ``last``."""
        total = 0
        for day in range(first - 1, last + 2):
            for opens, closes in self._spans_at(day):
                low = opens if opens > a else a
                high = closes if closes < b else b
                if high > low:
                    total += high - low
        return total

    def _add_days(self, start: int, day: int, days: int) -> tuple[int, int]:
        """``days`` business days after ``start`` (on local day ``day``): that local day and instant."""
        opened = self._add(start, 1, day) - 1  # the first working instant at or after start
        day = self._local_day(_moment(opened))
        spans = self._spans_at(day)
        if not spans or opened >= spans[-1][1]:  # opened at a span end late on a day: it is the next day's start
            day = self._next_working_day(day)
            spans = self._spans_at(day)
        offset: int | None = self._between(spans[0][0], max(opened, spans[0][0]), day, day)
        if offset == 0:  # the day's opening is the end of the working day before: count from that end
            day, offset = self._previous_working_day(day), None
        for _ in range(days):
            day = self._next_working_day(day)
        spans = self._spans_at(day)
        length = sum(b - a for a, b in spans)
        return day, self._add(spans[0][0], length if offset is None else min(offset, length), day)

    def _next_working_day(self, day: int) -> int:
        return next(d for d in range(day + 1, day + 1 + MAX_DAYS) if self._spans_at(d))

    def _previous_working_day(self, day: int) -> int:
        return next(d for d in range(day - 1, day - 1 - MAX_DAYS, -1) if self._spans_at(d))


@lru_cache(maxsize=8192)
def _spans(calendar: BusinessCalendar, day: dt.date) -> tuple[Span, ...]:
    if day in calendar.holidays:
        return ()
    out = []
    for opens, closes in calendar.hours[day.weekday()]:
        out.append((_at(calendar.zone, day, opens), _at(calendar.zone, day, closes)))
    return tuple(out)


def _at(zone: dt.tzinfo, day: dt.date, minutes: int) -> dt.datetime:
    if minutes >= 24 * 60:
        day, minutes = day + dt.timedelta(days=1), minutes - 24 * 60
    local = dt.datetime(day.year, day.month, day.day, minutes // 60, minutes % 60, tzinfo=zone)
    return local.astimezone(UTC)


MICROS = 1_000_000
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)


def _micros_of(span: dt.timedelta) -> int:
    return (span.days * 86400 + span.seconds) * MICROS + span.microseconds


def _micros(moment: dt.datetime) -> int:
    """An aware instant as whole microseconds since the epoch."""
    return _micros_of(moment - EPOCH)


def _moment(micros: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=micros)


def _aware(moment: dt.datetime) -> None:
    if moment.tzinfo is None:
        raise ValueError(f"{moment} has no timezone; business time needs aware datetimes")


def add_business_time(calendar: BusinessCalendar, start: dt.datetime, duration: Duration | str) -> dt.datetime:
    """The due time (UTC) of ``duration`` counted from ``start`` in ``calendar``."""
    return calendar.add_duration(start, duration).astimezone(UTC)


def business_time_between(calendar: BusinessCalendar, a: dt.datetime, b: dt.datetime) -> dt.timedelta:
    """The working time from ``a`` to ``b`` in ``calendar`` (negative when ``b`` is earlier)."""
    return dt.timedelta(seconds=calendar.between(a, b))
