"""Custom-field values checked all at once give what checking them one by one gives.

``FieldCodec.validate`` converts the given fields in one step through the template's
Struct, and one field at a time only when that fails, to name every bad one. Both ways
must agree on every field type.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine.errors import Invalid
from engine.runtime.fields import FieldCodec
from tests.helpers_workspace import linked

DEFINITIONS = {"defs.yaml": """
    kind: Group
    name: desk
    supervisor: boss
    members: [agent]
    ---
    kind: Template
    name: everything
    fields:
      - {name: line, type: input, max_length: 20}
      - {name: notes, type: text}
      - {name: mail, type: email}
      - {name: site, type: url}
      - {name: size, type: select, options: [s, m, l]}
      - {name: colour, type: select, options: [red], can_enter: true}
      - {name: extras, type: multiselect, options: [gift, express]}
      - {name: count, type: number, min: 1, max: 9}
      - {name: price, type: decimal, places: 2}
      - {name: urgent, type: boolean}
      - {name: due, type: date}
      - {name: call_at, type: datetime}
      - {name: files, type: upload}
      - {name: agent, type: user}
      - {name: client, type: customer}
      - {name: parent, type: reference, reference: everything}
      - {name: kind, type: select, options: [a, b], default: b}
    ---
    kind: Queue
    name: desk_queue
    templates: [everything]
    steps:
      - name: triage
        group: desk
        actions: [{name: check}]
    """}

GOOD: dict[str, Any] = {
    "line": "Printer", "notes": "on fire", "mail": "a@example.com", "site": "https://example.com/x",
    "size": "m", "colour": "teal", "extras": ["gift", "express"], "count": "5", "price": "12.50",
    "urgent": "true", "due": "2026-11-24", "call_at": "2026-11-24T08:30:00+01:00", "files": [3, 4],
    "agent": 7, "client": 2, "parent": 1,
}


@pytest.fixture
def codec(tmp_path: Path) -> FieldCodec:
    return FieldCodec(linked(tmp_path, DEFINITIONS).templates["everything"])


def one_by_one(codec: FieldCodec, values: dict[str, Any]) -> dict[str, Any]:
    return {name: msgspec.convert(value, codec.types[name], strict=False) for name, value in values.items()}


def test_all_at_once_gives_what_one_by_one_gives(codec: FieldCodec) -> None:
    checked = codec.validate(GOOD, partial=False)
    assert checked == {**one_by_one(codec, GOOD), "kind": "b"}
    assert {name: type(value) for name, value in checked.items()} == {
        name: type(value) for name, value in {**one_by_one(codec, GOOD), "kind": "b"}.items()}
    assert checked["count"] == 5 and checked["price"] == Decimal("12.50") and checked["urgent"] is True
    assert checked["call_at"] == dt.datetime(2026, 11, 24, 7, 30, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("name, bad", [("count", 10), ("size", "xl"), ("price", "1.234"), ("line", "x" * 21),
                                       ("extras", ["gift", "gift"]), ("due", "tomorrow")])
def test_one_bad_field_among_good_ones_is_named_alone(codec: FieldCodec, name: str, bad: Any) -> None:
    with pytest.raises(Invalid) as raised:
        codec.validate({**GOOD, name: bad}, partial=True)
    assert [e["field"] for e in raised.value.errors] == [f"fields.{name}"]


def test_empty_values_and_unknown_fields_are_checked_one_by_one(codec: FieldCodec) -> None:
    assert codec.validate({"count": "", "extras": [], "line": None, "size": "s"}, partial=True) == {
        "count": None, "extras": None, "line": None, "size": "s"}
    with pytest.raises(Invalid) as raised:
        codec.validate({"size": "s", "colour_x": "red", "count": 0}, partial=True)
    assert [e["field"] for e in raised.value.errors] == ["fields.colour_x", "fields.count"]

