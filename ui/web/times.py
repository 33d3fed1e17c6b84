"""Times as people read them: in the workspace's time zone, to the minute."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any


def zone_of(name: str) -> dt.tzinfo:
    """The workspace's time zone (UTC when it is unknown to this system)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def local_input(value: Any, zone: dt.tzinfo) -> str:
    """An ISO date-time as a ``datetime-local`` input shows it, in ``zone``."""
    if not value:
        return ""
    try:
        moment = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def local_text(value: Any, zone: dt.tzinfo) -> str:
    """An ISO date-time shown briefly in ``zone``: ``2026-11-23 14:05``."""
    return local_input(value, zone).replace("T", " ")
