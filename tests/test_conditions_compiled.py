"""Compiled conditions: every operator on every type it applies to, true and false cases (table-driven)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from engine.automation.conditions import (
    MAX_MATCH_INPUT,
    ConditionError,
    compile_condition,
    condition_fields,
    to_python,
)
from engine.automation.calendar import BusinessCalendar
from engine.model.automation import Calendar, Condition, WeekHours
from engine.runtime.state import CLOCK

TYPES = {"total": "decimal", "count": "number", "due": "date", "shipped": "datetime", "kind": "select",
         "tags": "multiselect", "no_tags": "multiselect", "note": "text", "vip": "boolean", "email": "email"}
UTC = dt.timezone.utc
FACTS: dict[str, Any] = {
    "total": Decimal("1500.00"), "count": 3, "due": dt.date(2026, 3, 5),
    "shipped": dt.datetime(2026, 3, 4, 7, 30, tzinfo=UTC), "kind": "bug", "tags": ["web", "urgent"],
    "note": "The Shop checkout is DOWN", "vip": True, "email": "a@acme.example", "empty_text": "",
    "nothing": None, "no_tags": [], "priority": "high", "status": "open", "owner": "anna",
    "created_at": dt.datetime(2026, 3, 1, 8, 0, tzinfo=UTC), "changed": {"total", "priority"},
}


def cond(data: dict[str, Any]) -> Condition:
    return msgspec.convert(data, Condition)


CASES: list[tuple[str, dict[str, Any], bool]] = [
    # equals / not_equals, typed
    ("decimal equals (other scale)", {"field": "total", "equals": "1500"}, True),
    ("decimal equals number literal", {"field": "total", "equals": 1500.0}, True),
    ("decimal equals differs", {"field": "total", "equals": "1500.01"}, False),
    ("number equals", {"field": "count", "equals": 3}, True),
    ("number equals differs", {"field": "count", "equals": 4}, False),
    ("date equals text literal", {"field": "due", "equals": "2026-03-05"}, True),
    ("date equals differs", {"field": "due", "equals": "2026-03-06"}, False),
    ("datetime equals in another offset", {"field": "shipped", "equals": "2026-03-04T08:30:00+01:00"}, True),
    ("datetime equals naive means UTC", {"field": "shipped", "equals": "2026-03-04T07:30:00"}, True),
    ("datetime equals differs", {"field": "shipped", "equals": "2026-03-04T08:30:00"}, False),
    ("select equals", {"field": "kind", "equals": "bug"}, True),
    ("select equals differs", {"field": "kind", "equals": "feature"}, False),
    ("boolean equals", {"field": "vip", "equals": True}, True),
    ("boolean equals false", {"field": "vip", "equals": False}, False),
    ("core equals", {"field": "priority", "equals": "high"}, True),
    ("multiselect equals as set", {"field": "tags", "equals": ["urgent", "web"]}, True),
    ("multiselect equals subset", {"field": "tags", "equals": ["web"]}, False),
    ("not_equals", {"field": "kind", "not_equals": "feature"}, True),
    ("not_equals same", {"field": "kind", "not_equals": "bug"}, False),
    ("not_equals on missing value", {"field": "nothing", "not_equals": "x"}, True),
    ("decimal not_equals same value", {"field": "total", "not_equals": "1500.0"}, False),
    ("multiselect not_equals", {"field": "tags", "not_equals": ["web"]}, True),
    # in / not_in
    ("in", {"field": "kind", "in": ["feature", "bug"]}, True),
    ("in misses", {"field": "kind", "in": ["feature", "question"]}, False),
    ("decimal in", {"field": "total", "in": ["10", "1500.0"]}, True),
    ("date in", {"field": "due", "in": ["2026-03-05"]}, True),
    ("in on missing value", {"field": "nothing", "in": ["x"]}, False),
    ("multiselect in: one chosen is listed", {"field": "tags", "in": ["urgent", "mobile"]}, True),
    ("multiselect in: none chosen is listed", {"field": "tags", "in": ["mobile"]}, False),
    ("multiselect not_in", {"field": "tags", "not_in": ["mobile"]}, True),
    ("multiselect not_in hits", {"field": "tags", "not_in": ["web"]}, False),
    ("multiselect in on no options", {"field": "no_tags", "in": ["web"]}, False),
    ("not_in", {"field": "kind", "not_in": ["feature"]}, True),
    ("not_in hits", {"field": "kind", "not_in": ["bug"]}, False),
    # ordered comparisons, each side of the boundary
    ("decimal gt", {"field": "total", "gt": "1000"}, True),
    ("decimal gt equal", {"field": "total", "gt": "1500"}, False),
    ("decimal gte equal", {"field": "total", "gte": "1500.00"}, True),
    ("decimal gte above", {"field": "total", "gte": "1500.01"}, False),
    ("decimal lt", {"field": "total", "lt": 2000}, True),
    ("decimal lt equal", {"field": "total", "lt": 1500}, False),
    ("decimal lte equal", {"field": "total", "lte": 1500}, True),
    ("decimal lte below", {"field": "total", "lte": "1499.99"}, False),
    ("number gt (not as text: 3 > 20 is false)", {"field": "count", "gt": 20}, False),
    ("number lt", {"field": "count", "lt": 20}, True),
    ("number gte", {"field": "count", "gte": 3}, True),
    ("number lte", {"field": "count", "lte": 2}, False),
    ("date gt", {"field": "due", "gt": "2026-03-04"}, True),
    ("date gt same day", {"field": "due", "gt": "2026-03-05"}, False),
    ("date lt", {"field": "due", "lt": "2026-12-01"}, True),
    ("date lte", {"field": "due", "lte": "2026-03-04"}, False),
    ("datetime gt across offsets", {"field": "shipped", "gt": "2026-03-04T08:00:00+01:00"}, True),
    ("datetime lt across offsets", {"field": "shipped", "lt": "2026-03-04T08:00:00+01:00"}, False),
    ("datetime gte same instant", {"field": "shipped", "gte": "2026-03-04T07:30:00Z"}, True),
    ("datetime lte before", {"field": "shipped", "lte": "2026-03-04T07:29:59Z"}, False),
    ("core created_at lt", {"field": "created_at", "lt": "2026-03-02T00:00:00Z"}, True),
    ("gt on missing value", {"field": "nothing", "gt": 1}, False),
    ("lt on missing value", {"field": "nothing", "lt": 1}, False),
    # contains
    ("text contains, any case", {"field": "note", "contains": "checkout"}, True),
    ("text contains upper", {"field": "note", "contains": "down"}, True),
    ("text contains misses", {"field": "note", "contains": "basket"}, False),
    ("multiselect contains", {"field": "tags", "contains": "urgent"}, True),
    ("multiselect contains misses", {"field": "tags", "contains": "mobile"}, False),
    ("contains on missing value", {"field": "nothing", "contains": "x"}, False),
    # matches
    ("matches", {"field": "email", "matches": r"@acme\.example$"}, True),
    ("matches misses", {"field": "email", "matches": r"@other\.example$"}, False),
    ("matches case flag", {"field": "note", "matches": r"(?i)\bdown\b"}, True),
    ("matches is case-sensitive by default", {"field": "note", "matches": r"\bdown\b"}, False),
    ("matches on missing value", {"field": "nothing", "matches": "x"}, False),
    # empty
    ("empty on None", {"field": "nothing", "empty": True}, True),
    ("empty on empty text", {"field": "empty_text", "empty": True}, True),
    ("empty on empty list", {"field": "no_tags", "empty": True}, True),
    ("empty on a value", {"field": "kind", "empty": True}, False),
    ("not empty on a value", {"field": "kind", "empty": False}, True),
    ("not empty on None", {"field": "nothing", "empty": False}, False),
    ("empty on a field absent from the facts", {"field": "absent", "empty": True}, True),
    # changed
    ("changed", {"field": "total", "changed": True}, True),
    ("changed misses", {"field": "count", "changed": True}, False),
    ("unchanged", {"field": "count", "changed": False}, True),
    ("unchanged misses", {"field": "priority", "changed": False}, False),
    # all / any / not, including the loop forms (more than three parts)
    ("all true", {"all": [{"field": "vip", "equals": True}, {"field": "count", "gt": 1}]}, True),
    ("all one false", {"all": [{"field": "vip", "equals": True}, {"field": "count", "gt": 5}]}, False),
    ("all of four", {"all": [{"field": "vip", "equals": True}, {"field": "count", "gt": 1},
                             {"field": "kind", "equals": "bug"}, {"field": "total", "gt": 1}]}, True),
    ("all of four, last false", {"all": [{"field": "vip", "equals": True}, {"field": "count", "gt": 1},
                                         {"field": "kind", "equals": "bug"}, {"field": "total", "gt": 10000}]}, False),
    ("any one true", {"any": [{"field": "vip", "equals": False}, {"field": "count", "gt": 1}]}, True),
    ("any none true", {"any": [{"field": "vip", "equals": False}, {"field": "count", "gt": 5}]}, False),
    ("any of three", {"any": [{"field": "vip", "equals": False}, {"field": "count", "gt": 5},
                              {"field": "kind", "equals": "bug"}]}, True),
    ("any of four none", {"any": [{"field": "vip", "equals": False}, {"field": "count", "gt": 5},
                                  {"field": "kind", "equals": "x"}, {"field": "total", "lt": 1}]}, False),
    ("any of four last", {"any": [{"field": "vip", "equals": False}, {"field": "count", "gt": 5},
                                  {"field": "kind", "equals": "x"}, {"field": "total", "gt": 1}]}, True),
    ("all of one", {"all": [{"field": "kind", "equals": "bug"}]}, True),
    # any of contains on one field (fused), and not as the inverse operator
    ("any contains, second hits", {"any": [{"field": "note", "contains": "basket"},
                                           {"field": "note", "contains": "SHOP"}]}, True),
    ("any contains, none hits", {"any": [{"field": "note", "contains": "basket"},
                                         {"field": "note", "contains": "cart"}]}, False),
    ("any of three contains, last hits", {"any": [{"field": "note", "contains": "a1"},
                                                  {"field": "note", "contains": "b2"},
                                                  {"field": "note", "contains": "down"}]}, True),
    ("any of three contains, none", {"any": [{"field": "note", "contains": "a1"}, {"field": "note", "contains": "b2"},
                                             {"field": "note", "contains": "c3"}]}, False),
    ("any contains on missing value", {"any": [{"field": "nothing", "contains": "a"},
                                               {"field": "nothing", "contains": "b"}]}, False),
    ("any contains on a multiselect", {"any": [{"field": "tags", "contains": "x"},
                                               {"field": "tags", "contains": "web"}]}, True),
    ("any contains on two fields", {"any": [{"field": "email", "contains": "shop"},
                                            {"field": "note", "contains": "shop"}]}, True),
    ("not in", {"not": {"field": "kind", "in": ["bug", "feature"]}}, False),
    ("not not_in", {"not": {"field": "kind", "not_in": ["bug"]}}, True),
    ("not not_equals", {"not": {"field": "kind", "not_equals": "bug"}}, True),
    ("not empty", {"not": {"field": "nothing", "empty": True}}, False),
    ("not changed", {"not": {"field": "total", "changed": True}}, False),
    ("not gt on missing value", {"not": {"field": "nothing", "gt": 1}}, True),
    ("not lte on missing value", {"not": {"field": "nothing", "lte": 1}}, True),
    ("not contains", {"not": {"field": "note", "contains": "shop"}}, False),
    ("not", {"not": {"field": "kind", "equals": "bug"}}, False),
    ("not not", {"not": {"not": {"field": "kind", "equals": "bug"}}}, True),
    ("nested", {"all": [{"field": "email", "matches": "@acme"},
                        {"any": [{"field": "note", "contains": "shop"}, {"field": "note", "contains": "basket"}]}]},
     True),
]


@pytest.mark.parametrize(("data", "expected"), [pytest.param(d, e, id=name) for name, d, e in CASES])
def test_operator(data: dict[str, Any], expected: bool) -> None:
    test = compile_condition(cond(data), TYPES)
    assert test(FACTS) is expected


def test_no_condition_always_holds() -> None:
    assert compile_condition(None)(FACTS) is True


def test_literals_are_converted_once_to_the_fields_type() -> None:
    assert to_python("decimal", "1.50") == Decimal("1.5")
    assert to_python("date", "2026-03-05") == dt.date(2026, 3, 5)
    assert to_python("datetime", "2026-03-05T10:00:00") == dt.datetime(2026, 3, 5, 10, tzinfo=UTC)
    assert to_python("number", "7") == 7
    assert to_python("select", "x") == "x"


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(\w*)*x", r"(x{1,3}){2,}"])
def test_catastrophic_regex_is_refused(pattern: str) -> None:
    with pytest.raises(ConditionError, match="exponential"):
        compile_condition(cond({"field": "note", "matches": pattern}), TYPES)


def test_matches_looks_at_a_bounded_prefix() -> None:
    test = compile_condition(cond({"field": "note", "matches": "needle"}), TYPES)
    assert test({"note": "x" * 10 + "needle"}) is True
    assert test({"note": "x" * MAX_MATCH_INPUT + "needle"}) is False


def test_condition_fields_lists_every_tested_field() -> None:
    data = {"all": [{"field": "owner", "equals": "a"}, {"not": {"field": "customer", "empty": True}},
                    {"any": [{"field": "total", "gt": 1}]}]}
    assert condition_fields(cond(data)) == {"owner", "customer", "total"}


def test_a_plugin_condition_function_is_applied_before_the_operator() -> None:
    def country(value: Any) -> str | None:
        if value == "boom":
            raise ValueError("cannot read it")
        return str(value)[:2] if value else None

    functions = {"country": country}
    domestic = compile_condition(Condition(field="iban", function="country", in_=("DE", "AT")), {"iban": "input"},
                                 functions)
    facts: dict[str, Any] = {"changed": frozenset()}
    assert domestic({**facts, "iban": "DE89"}) and domestic({**facts, "iban": "AT61"})
    assert not domestic({**facts, "iban": "GB82"}) and not domestic({**facts, "iban": None})
    assert not domestic({**facts, "iban": "boom"})  # a failing function makes the test false, it never raises
    flag = compile_condition(Condition(field="iban", function="country", equals="GB"), {"iban": "input"}, functions)
    assert flag({**facts, "iban": "GB82"}) and not flag({**facts, "iban": "DE89"})
    with pytest.raises(ConditionError, match="no installed plugin provides the condition function `nope`"):
        compile_condition(Condition(field="iban", function="nope", equals="GB"), {"iban": "input"}, functions)


def test_age_in_business_hours_of_a_calendar() -> None:
    """`older_than: 4h` in London office hours (Mon-Fri 09:00-17:00): Friday 15:00 + 4h is Monday 11:00."""
    day = ("09:00-17:00",)
    office = BusinessCalendar(Calendar(name="office", timezone="Europe/London",
                                       hours=WeekHours(mon=day, tue=day, wed=day, thu=day, fri=day)))
    older = compile_condition(Condition(field="created_at", older_than="4h", calendar="office"), {},
                              calendars={"office": office})
    newer = compile_condition(Condition(field="created_at", newer_than="4h", calendar="office"), {},
                              calendars={"office": office})
    around = compile_condition(Condition(field="created_at", older_than="4h"), {})
    facts = {"created_at": dt.datetime(2026, 1, 9, 15, 0, tzinfo=dt.timezone.utc), "changed": frozenset()}
    for moment, is_older, around_older in (
            (dt.datetime(2026, 1, 9, 18, 59, tzinfo=dt.timezone.utc), False, False),
            (dt.datetime(2026, 1, 9, 19, 0, tzinfo=dt.timezone.utc), False, True),   # 4 h, but 2 of them office
            (dt.datetime(2026, 1, 12, 10, 59, tzinfo=dt.timezone.utc), False, True),
            (dt.datetime(2026, 1, 12, 11, 0, tzinfo=dt.timezone.utc), True, True)):
        token = CLOCK.set(lambda m=moment: m)  # type: ignore[misc]
        try:
            assert (older(facts), newer(facts), around(facts)) == (is_older, not is_older, around_older), moment
        finally:
            CLOCK.reset(token)
    assert not older({"created_at": None, "changed": frozenset()})
    with pytest.raises(ConditionError, match="no calendar `nope`"):
        compile_condition(Condition(field="created_at", older_than="4h", calendar="nope"), {})


# -- every test in every position, against a plain interpreter -------------------------------------
# The compiler writes each test out in one form per continuation (alone, followed by a test
# when it holds, when it does not, or both) and swaps them for `not`: each leaf below is put in
# every such position, next to probes of each kind, and evaluated on facts with values, with
# `None` and without the names, against `reference` (the semantics, read off the docs).

def reference(c: Condition, facts: dict[str, Any]) -> bool:
    """What a condition answers, evaluated the plain way."""
    if c.all is not None:
        return all(reference(p, facts) for p in c.all)
    if c.any is not None:
        return any(reference(p, facts) for p in c.any)
    if c.not_ is not None:
        return not reference(c.not_, facts)
    assert c.field is not None
    kind, value = TYPES.get(c.field, "input"), facts.get(c.field)
    multi = kind == "multiselect"
    if c.equals is not None:
        return frozenset(value or ()) == frozenset(c.equals) if multi else bool(value == to_python(kind, c.equals))
    if c.not_equals is not None:
        return not reference(msgspec.structs.replace(c, not_equals=None, equals=c.not_equals), facts)
    if c.in_ is not None:
        options = {to_python(kind, o) for o in c.in_}
        return bool(options & set(value or ())) if multi else value in options
    if c.not_in is not None:
        return not reference(msgspec.structs.replace(c, not_in=None, in_=c.not_in), facts)
    for op, compare in (("gt", lambda a, b: a > b), ("gte", lambda a, b: a >= b), ("lt", lambda a, b: a < b),
                        ("lte", lambda a, b: a <= b)):
        if getattr(c, op) is not None:
            return value is not None and bool(compare(value, to_python(kind, getattr(c, op))))
    if c.contains is not None:
        if multi:
            return c.contains in (value or ())
        return isinstance(value, str) and str(c.contains).casefold() in value.casefold()
    if c.matches is not None:
        return isinstance(value, str) and re.search(c.matches, value) is not None
    if c.empty is not None:
        return (value in (None, "", [])) is c.empty
    assert c.changed is not None
    return (c.field in facts["changed"]) is c.changed


LEAVES: list[dict[str, Any]] = [
    {"field": "kind", "equals": "bug"}, {"field": "total", "equals": "1500"}, {"field": "due", "equals": "2026-03-05"},
    {"field": "vip", "equals": True}, {"field": "tags", "equals": ["web", "urgent"]},
    {"field": "kind", "not_equals": "bug"}, {"field": "tags", "not_equals": ["web"]},
    {"field": "kind", "in": ["bug", "feature"]}, {"field": "total", "in": ["10", "1500"]},
    {"field": "tags", "in": ["urgent"]}, {"field": "kind", "not_in": ["feature"]}, {"field": "tags", "not_in": ["web"]},
    {"field": "kind", "in": ["feature", None]}, {"field": "kind", "not_in": [None]},
    {"field": "total", "gt": 1000}, {"field": "total", "gte": "1500"}, {"field": "count", "lt": 3},
    {"field": "count", "lte": 3}, {"field": "count", "gt": 3}, {"field": "count", "gte": 3},
    {"field": "due", "gt": "2026-03-01"}, {"field": "shipped", "lt": "2026-03-05T00:00:00Z"},
    {"field": "note", "contains": "shop"}, {"field": "tags", "contains": "web"}, {"field": "email", "matches": "@acme"},
    {"field": "note", "empty": True}, {"field": "nothing", "empty": False},
    {"field": "total", "changed": True}, {"field": "count", "changed": False},
    {"any": [{"field": "note", "contains": "basket"}, {"field": "note", "contains": "CHECKOUT"}]},
    {"any": [{"field": "note", "contains": "a1"}, {"field": "note", "contains": "b2"}, {"field": "note", "contains": "x"}]},
    {"any": [{"field": "note", "contains": "a1"}, {"any": [{"field": "note", "contains": "b2"}]},
             {"field": "kind", "equals": "bug"}, {"field": "note", "contains": "down"}]},
    {"any": [{"field": "note", "contains": "a1"}, {"field": "note", "contains": "b2"},
             {"field": "email", "contains": "ACME"}, {"field": "email", "contains": "b2"}]},
]
PROBES: list[dict[str, Any]] = [{"field": "count", "gte": 1}, {"field": "status", "in": ["open"]},
                                {"field": "note", "empty": True}, {"field": "kind", "equals": "feature"}]


def positions(leaf: dict[str, Any], p: dict[str, Any], q: dict[str, Any]) -> list[dict[str, Any]]:
    """``leaf`` alone, before and after a probe in all/any, in an any inside an all (what follows when it
    holds and when not then differ), under not."""
    return [leaf, {"all": [leaf, p]}, {"all": [p, leaf]}, {"any": [leaf, p]}, {"any": [p, leaf]},
            {"all": [{"any": [leaf, p]}, q]}, {"any": [{"all": [leaf, p]}, q]},
            {"all": [{"all": [p, leaf]}, {"all": [leaf]}]}, {"not": leaf}, {"not": {"all": [leaf, p]}},
            {"not": {"any": [leaf, p]}}, {"any": [{"not": leaf}, p]}, {"all": [{"not": leaf}, p]},
            {"all": [{"not": {"any": [leaf, p]}}, q]}, {"not": {"not": {"any": [p, leaf]}}},
            {"any": [p, {"all": [leaf, q, leaf]}, {"not": p}, leaf]}]


FACT_SETS: dict[str, dict[str, Any]] = {
    "values": FACTS,
    "other values": FACTS | {"total": Decimal("10"), "count": 0, "due": dt.date(2025, 1, 1), "kind": "feature",
                             "tags": ["mobile"], "note": "nothing here", "vip": False, "email": "x@other.example",
                             "status": "waiting", "shipped": dt.datetime(2026, 4, 1, tzinfo=UTC), "changed": set()},
    "None everywhere": {name: None for name in FACTS} | {"changed": {"count"}},
    "names missing": {"changed": set()},
}


def test_every_test_in_every_position_answers_like_the_plain_reading() -> None:
    checked = 0
    pairs = [(p, q) for p in PROBES for q in PROBES if p is not q]
    for leaf in LEAVES:
        for p, q in pairs:
            for data in positions(leaf, p, q):
                condition = cond(data)
                test = compile_condition(condition, TYPES)
                for label, facts in FACT_SETS.items():
                    assert test(facts) is reference(condition, facts), (data, label)
                    checked += 1
    assert checked == len(LEAVES) * len(pairs) * 16 * len(FACT_SETS)


def test_a_type_error_is_raised_from_every_position_and_never_read_as_a_missing_value() -> None:
    """A text compared with a number raises, as a hand-written comparison would; the ordering tests'
    ``except`` clauses (they read a missing value from the error) let it and any later test's error through."""
    wrong = {"field": "note", "gt": 5}
    after = {"field": "count", "gt": 1}  # holds, so the test after it runs inside its try
    for data in ({"all": [wrong]}, {"all": [wrong, after]}, {"all": [after, wrong]}, {"any": [wrong, after]},
                 {"any": [{"field": "count", "gt": 5}, wrong]}, {"all": [{"any": [after, wrong]}, wrong]},
                 {"all": [{"any": [{"field": "count", "lt": 1}, wrong]}, after]}, {"not": wrong}):
        with pytest.raises(TypeError):
            compile_condition(cond(data), TYPES)(FACTS)
    changed = {"field": "total", "changed": True}  # facts without `changed` (a form's) raise KeyError
    for data in ({"all": [after, changed]}, {"any": [{"field": "count", "gt": 5}, changed]},
                 {"all": [{"any": [{"field": "count", "gt": 5}, changed]}, after]}):
        with pytest.raises(KeyError):
            compile_condition(cond(data), TYPES)({"count": 3})


def test_a_missing_value_is_false_for_an_ordering_in_every_position() -> None:
    for op in ("gt", "gte", "lt", "lte"):
        missing = {"field": "absent", op: 1}
        for facts in ({"changed": set()}, {"absent": None, "changed": set()}):
            for data, expected in (({"all": [missing]}, False), ({"all": [missing, {"field": "count", "gt": 0}]}, False),
                                   ({"any": [missing, {"field": "count", "gt": 0}]}, False),
                                   ({"any": [missing, {"field": "absent", "empty": True}]}, True),
                                   ({"all": [{"any": [missing, {"field": "absent", "empty": True}]},
                                             {"field": "absent", "empty": True}]}, True),
                                   ({"not": missing}, True)):
                assert compile_condition(cond(data), TYPES)(facts) is expected, (op, data, facts)


@pytest.mark.parametrize("parts", [2, 3, 4, 5, 199, 201, 1500])
def test_all_and_any_of_many_parts(parts: int) -> None:
    """Tests chain (each calls the next) up to MAX_CHAIN; larger conditions loop over their parts."""
    true, false = {"field": "count", "gte": 3}, {"field": "count", "gt": 3}
    assert compile_condition(cond({"all": [true] * parts}), TYPES)(FACTS) is True
    assert compile_condition(cond({"all": [true] * (parts - 1) + [false]}), TYPES)(FACTS) is False
    assert compile_condition(cond({"any": [false] * parts}), TYPES)(FACTS) is False
    assert compile_condition(cond({"any": [false] * (parts - 1) + [true]}), TYPES)(FACTS) is True
    assert compile_condition(cond({"not": {"all": [true] * parts}}), TYPES)(FACTS) is False
    nested = {"all": [{"any": [false] * (parts - 1) + [true]}, {"not": {"any": [false] * parts}}]}
    assert compile_condition(cond(nested), TYPES)(FACTS) is True
