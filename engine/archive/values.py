"""Values in the archive's form: the same meaning whichever database wrote or reads them.

Timestamps are ISO 8601 in UTC, decimals strings at the column's scale, JSON its text,
booleans and integers JSON's own (integers stay exact beyond 2**53).
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from decimal import Decimal
from typing import Any

import msgspec

from ..compile.spec import TableSpec

_UTC = dt.timezone.utc
_NUMERIC = re.compile(r"^numeric\((\d+),(\d+)\)$")
_INTEGERS = frozenset({"serial", "bigint", "integer"})


def table_columns(table: TableSpec) -> list[tuple[str, str]]:
    """``(name, canonical type)`` of every column, ``id`` first."""
    return [("id", "serial"), *((c.name, c.type) for c in table.columns)]


def encode_value(kind: str, value: Any) -> Any:
    """A value read from either database in the archive's form (``ValueError`` if it does not fit ``kind``)."""
    if value is None:
        return None
    if kind in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, found {value!r}")
        return value
    if kind == "boolean":
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise ValueError(f"expected a boolean, found {value!r}")
    if kind == "timestamptz":
        if not isinstance(value, dt.datetime):
            raise ValueError(f"expected a timestamp, found {value!r}")
        return (value if value.tzinfo else value.replace(tzinfo=_UTC)).astimezone(_UTC).isoformat()
    if kind == "date":
        if isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            raise ValueError(f"expected a date, found {value!r}")
        return value.isoformat()
    if kind == "json":
        if isinstance(value, bytes):
            value = value.decode()
        return value if isinstance(value, str) else msgspec.json.encode(value).decode()
    numeric = _NUMERIC.match(kind)
    if numeric:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            raise ValueError(f"expected a number, found {value!r}")
        return str(decimal.Context(prec=1000).quantize(number, Decimal(1).scaleb(-int(numeric.group(2)))))
    if not isinstance(value, str):
        raise ValueError(f"expected text, found {value!r}")
    return value


def decode_value(kind: str, value: Any) -> Any:
    """An archived value as the database driver takes it (``ValueError`` if it is not of ``kind``)."""
    if value is None:
        return None
    if kind in _INTEGERS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, found {value!r}")
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, found {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a string, found {value!r}")
    if kind == "timestamptz":
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError(f"expected a timestamp with its UTC offset, found {value!r}")
        return moment.astimezone(_UTC)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "json":
        msgspec.json.decode(value)  # PostgreSQL would refuse it later, less clearly
        return value
    if _NUMERIC.match(kind):
        try:
            number = Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"expected a decimal number, found {value!r}") from None
        if not number.is_finite():
            raise ValueError(f"expected a decimal number, found {value!r}")
        return number
    return value
