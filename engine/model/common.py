"""Building blocks shared by every kind of definition.

Each field's ``Meta(description=...)`` becomes the description an admin's editor
shows for that key (the JSON Schemas in ``definitions/`` are generated from these
types), so it is written for admins, not for programmers.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

IDENTITY_PATTERN = r"^[a-z][a-z0-9_]*$"
IDENTITY_MAX = 40
DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?$"
PLUGIN_ACTION_PATTERN = r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"
LANGUAGE_PATTERN = r"^[a-z]{2}(-[A-Z]{2})?$"
EMAIL_PATTERN = r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$"
CLOCK_RANGE_PATTERN = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-4]):[0-5]\d$"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class Definition(
    msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True
):
    """Base of every definition type: unknown keys are errors, defaults are omitted."""


Identity = Annotated[
    str,
    Meta(
        pattern=IDENTITY_PATTERN,
        min_length=1,
        max_length=IDENTITY_MAX,
        description=(
            "A name that identifies this item for good: lowercase letters, digits and "
            "underscores, starting with a letter, at most 40 characters."
        ),
        examples=["customer_name"],
    ),
]

Label = Annotated[
    str | dict[str, str],
    Meta(
        description=(
            "Text shown to people: either one text, or a mapping from language code "
            "to text, e.g. {en: Customer, de: Kunde}."
        ),
        examples=["Customer name", {"en": "Customer", "de": "Kunde"}],
    ),
]

def duration_parts(text: str) -> tuple[int, int, int]:
    """A duration (``1d4h30m``) as (days, hours, minutes); ``ValueError`` for anything else."""
    match = re.fullmatch(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?", text)
    if not text or match is None:
        raise ValueError(f"not a duration: {text!r} (write e.g. 30m, 4h, 2d or 1d4h)")
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    return days, hours, minutes


def duration_span(text: str) -> dt.timedelta:
    """A duration (``1d4h30m``) as a span of time, each day 24 hours; ``ValueError`` for anything else."""
    days, hours, minutes = duration_parts(text)
    return dt.timedelta(days=days, hours=hours, minutes=minutes)


Duration = Annotated[
    str,
    Meta(
        pattern=DURATION_PATTERN,
        description="A span of time written as days, hours and minutes, e.g. 30m, 4h, 2d or 1d4h.",
        examples=["4h", "1d4h30m"],
    ),
]

Email = Annotated[
    str,
    Meta(pattern=EMAIL_PATTERN, max_length=320, description="An email address.", examples=["sales@example.com"]),
]

PluginAction = Annotated[
    str,
    Meta(
        pattern=PLUGIN_ACTION_PATTERN,
        description="A plugin action written as plugin.action, e.g. invoice.generate.",
        examples=["invoice.generate"],
    ),
]

Priority = Literal["low", "normal", "high", "urgent"]
"""Every work order has one of these priorities."""

PRIORITIES: tuple[str, ...] = ("low", "normal", "high", "urgent")

Status = Literal["open", "waiting", "on_hold", "completed", "cancelled"]
"""Every work order has one of these statuses; completed and cancelled are final."""

STATUSES: tuple[str, ...] = ("open", "waiting", "on_hold", "completed", "cancelled")

Parameters = Annotated[
    dict[str, Any],
    Meta(description="Parameters handed to the plugin action, as a mapping of name to value."),
]


def describe(text: str, **constraints: Any) -> Meta:
    """A ``Meta`` carrying the admin-facing description of one key."""
    return Meta(description=text, **constraints)
