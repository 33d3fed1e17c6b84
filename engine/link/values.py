"""Whether a value written in a definition suits a field's type (defaults, conditions, actions)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from ..model.common import EMAIL_PATTERN
from .resolved import ResolvedField

_EMAIL = re.compile(EMAIL_PATTERN)
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*(?:[+*]|\{\d*,\})")
"""A group holding a repetition, itself repeated without bound: (a+)+, (b*)*, (x{1,3}){2,}."""

NO_LITERAL_TYPES = frozenset({"upload", "user", "customer", "reference"})
"""Types whose values are records (files, users, ...): a definition cannot name a literal one."""


def regex_problem(pattern: str) -> str | None:
    """Why a regular expression written by an admin is refused, or ``None``."""
    if len(pattern) > 200:
        return "the regular expression is longer than 200 characters"
    if _NESTED_QUANTIFIER.search(pattern):
        return (
            "the regular expression repeats a group that itself repeats (like (a+)+), which can "
            "take exponential time; simplify it"
        )
    try:
        re.compile(pattern)
    except re.error as exc:
        return f"the regular expression is invalid: {exc}"
    return None


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "a mapping"
    return str(value)


def value_problem(field: ResolvedField, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``field``; ``None`` if it can."""
    kind = field.type
    if kind in NO_LITERAL_TYPES:
        return f"a {kind} field cannot be given a fixed value in a definition"
    if kind in ("input", "text", "email", "url"):
        if not isinstance(value, str):
            return f"expected text for {kind} field `{field.name}`, found {_describe(value)}"
        if kind == "input" and len(value) > (field.max_length or 255):
            return f"the text is longer than the field's {field.max_length or 255} characters"
        if kind == "input" and field.pattern and not re.fullmatch(field.pattern, value):
            return f"{_describe(value)} does not match the field's pattern {field.pattern}"
        if kind == "email" and not _EMAIL.match(value):
            return f"{_describe(value)} is not an email address"
        if kind == "url" and not re.match(r"^https?://\S+$", value):
            return f"{_describe(value)} is not a web address (http:// or https://)"
        return None
    if kind == "select":
        if not isinstance(value, str):
            return f"expected one of the options of `{field.name}`, found {_describe(value)}"
        if value not in field.options and not field.can_enter:
            return f"{_describe(value)} is not an option of `{field.name}` (options: {', '.join(field.options)})"
        return None
    if kind == "multiselect":
        values = value if isinstance(value, list) else [value]
        for item in values:
            if not isinstance(item, str) or item not in field.options:
                return f"{_describe(item)} is not an option of `{field.name}` (options: {', '.join(field.options)})"
        return None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"expected true or false, found {_describe(value)}"
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected a whole number, found {_describe(value)}"
        return _bounds(field, value)
    if kind == "decimal":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            return f"expected a number, found {_describe(value)}"
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            return f"expected a number, found {_describe(value)}"
        return decimal_problem(field, number)
    if kind == "date":
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            return f"expected a date as YYYY-MM-DD, found {_describe(value)}"
        return None
    if kind == "datetime":
        try:
            dt.datetime.fromisoformat(str(value))
        except ValueError:
            return f"expected a date and time as YYYY-MM-DDTHH:MM, found {_describe(value)}"
        return None
    return f"unknown field type {kind}"


def decimal_problem(field: ResolvedField, number: Decimal) -> str | None:
    """Why ``number`` cannot be a value of the decimal ``field`` (places, digits, bounds); ``None`` if it can."""
    if not number.is_finite():
        return f"{number} is not a finite number"
    places = field.places if field.places is not None else 2
    digits = field.digits or 12
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        return f"{number} has more than {places} digits after the decimal point"
    if abs(number) >= Decimal(10) ** (digits - places):
        return f"{number} does not fit in {digits} digits with {places} after the decimal point"
    return _bounds(field, float(number))


def _bounds(field: ResolvedField, number: float) -> str | None:
    if field.min is not None and number < field.min:
        return f"{number:g} is less than the field's minimum {field.min:g}"
    if field.max is not None and number > field.max:
        return f"{number:g} is more than the field's maximum {field.max:g}"
    return None
