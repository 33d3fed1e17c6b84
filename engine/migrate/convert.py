"""Converting stored values when a field's column type changes.

``convert`` is strict: it accepts only values that keep their meaning in the new
type (a text "12" becomes the number 12; "12kg" is refused), so a plan can name
every row that would not survive. ``is_widening`` says when no row can fail.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

_PARAMETRISED = re.compile(r"^(varchar|numeric)\((\d+)(?:,(\d+))?\)$")
_INTEGER = re.compile(r"^\s*[-+]?\d{1,18}\s*$")
_DECIMAL = re.compile(r"^\s*[-+]?(\d+(\.\d*)?|\.\d+)\s*$")
_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def parse_type(canonical: str) -> tuple[str, int, int]:
    """``numeric(12,2)`` -> ("numeric", 12, 2); ``text`` -> ("text", 0, 0)."""
    match = _PARAMETRISED.match(canonical)
    if match:
        return match.group(1), int(match.group(2)), int(match.group(3) or 0)
    return canonical, 0, 0


def is_widening(source: str, target: str) -> bool:
    """Whether every value of ``source`` fits ``target`` unchanged."""
    s_kind, s_a, s_b = parse_type(source)
    t_kind, t_a, t_b = parse_type(target)
    if s_kind == "varchar" and t_kind == "varchar":
        return t_a >= s_a
    if s_kind in ("varchar", "text") and t_kind == "text":
        return True
    if s_kind == "integer" and t_kind == "bigint":
        return True
    if s_kind in ("integer", "bigint") and t_kind == "numeric":
        return t_a - t_b >= (10 if s_kind == "integer" else 19)
    if s_kind == "numeric" and t_kind == "numeric":
        return t_b >= s_b and t_a - t_b >= s_a - s_b
    return False


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        if len(value) > 1:
            raise ValueError("holds several choices")
        return str(value[0]) if value else ""
    return str(value)


def read_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def convert(value: Any, source: str, target: str) -> Any:
    """``value`` (read from a ``source`` column) as a value of ``target``; ``ValueError`` if it cannot be."""
    s_kind = parse_type(source)[0]
    t_kind, size, places = parse_type(target)
    if s_kind == "json":
        value = read_json(value)
    if t_kind in ("varchar", "text"):
        text = _text(value)
        if t_kind == "varchar" and len(text) > size:
            raise ValueError(f"is {len(text)} characters long, more than {size}")
        return text
    if t_kind in ("bigint", "integer"):
        if isinstance(value, bool):
            raise ValueError("is true/false, not a number")
        if isinstance(value, int):
            return value
        if isinstance(value, Decimal) and value == value.to_integral_value():
            return int(value)
        if isinstance(value, str) and _INTEGER.match(value):
            return int(value)
        raise ValueError("is not a whole number")
    if t_kind == "numeric":
        if isinstance(value, bool):
            raise ValueError("is true/false, not a number")
        if isinstance(value, (int, Decimal)) or (isinstance(value, str) and _DECIMAL.match(value)):
            try:
                number = Decimal(str(value).strip())
            except InvalidOperation:
                raise ValueError("is not a number") from None
        else:
            raise ValueError("is not a number")
        exponent = number.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"has more than {places} digits after the decimal point")
        if abs(number) >= Decimal(10) ** (size - places):
            raise ValueError(f"does not fit in {size} digits")
        return number
    if t_kind == "boolean":
        if isinstance(value, bool):
            return value
        text = _text(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("is not true or false")
    if t_kind == "date":
        if isinstance(value, dt.datetime):
            if value.time() != dt.time(0):
                raise ValueError("has a time of day that a date cannot keep")
            return value.date()
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(_text(value).strip())
        except ValueError:
            raise ValueError("is not a date (YYYY-MM-DD)") from None
    if t_kind == "timestamptz":
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, dt.date):
            moment = dt.datetime.combine(value, dt.time(0))
        else:
            try:
                moment = dt.datetime.fromisoformat(_text(value).strip())
            except ValueError:
                raise ValueError("is not a date and time") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    if t_kind == "json":
        if s_kind == "json":
            return json.dumps(value)
        if isinstance(value, str):
            return json.dumps([value])
        raise ValueError("cannot become a list of choices")
    raise ValueError(f"cannot become {target}")
