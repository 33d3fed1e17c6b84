"""Conditions compiled to Python closures: one closure per test, specialised per operator.

``compile_condition`` turns a checked ``Condition`` into a function of the order's
*facts* (``Facts``: values by name, typed as Python values) that answers ``True`` or
``False``. Literals are converted once, when compiling, to the type of the field they
are compared with (decimals as ``Decimal``, dates as ``date``, date-times as aware
``datetime``), so evaluating is a comparison and nothing more: no interpretation loop,
no ``eval``. Regular expressions are refused when they can backtrack catastrophically
(the linker's ``regex_problem``) and only see the first ``MAX_MATCH_INPUT`` characters.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from ..link.conditions import CORE_ATTRIBUTES
from ..link.values import regex_problem
from ..model.automation import OPERATORS, Condition
from ..runtime.state import now
from .calendar import BusinessCalendar

log = logging.getLogger("routecard.rules")

Facts = Mapping[str, Any]
"""The order's values by name (custom fields and core attributes) and ``changed``: the names an event changed."""
Test = Callable[[Facts], bool]

MAX_MATCH_INPUT = 10_000
"""``matches`` looks at no more than this many characters of a value."""
TEXT_TYPES = frozenset({"input", "text", "email", "url", "select"})


class ConditionError(ValueError):
    """A condition that cannot be compiled (the linker reports these with locations first)."""


def _always(facts: Facts) -> bool:
    return True


def to_python(kind: str, value: Any) -> Any:
    """A value of a field of type ``kind`` (from a definition or JSON) as the Python value facts hold."""
    if value is None:
        return None
    if kind == "decimal" and not isinstance(value, Decimal):
        return Decimal(str(value))
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if kind == "datetime" and isinstance(value, str):
        moment = dt.datetime.fromisoformat(value)
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    if kind == "datetime" and isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    if kind == "number" and isinstance(value, str):
        return int(value)
    return value


class _Env(NamedTuple):
    """What tests may refer to besides the facts: field types, plugin functions, calendars."""

    types: dict[str, str]
    functions: Mapping[str, Callable[[Any], Any]]
    calendars: Mapping[str, BusinessCalendar]


def compile_condition(condition: Condition | None, types: Mapping[str, str] | None = None,
                      functions: Mapping[str, Callable[[Any], Any]] | None = None,
                      calendars: Mapping[str, BusinessCalendar] | None = None) -> Test:
    """A closure testing ``condition`` on facts; ``types`` gives custom fields' types by name.

    Core attributes (priority, status, owner, created_at, ...) are typed by themselves.
    ``functions`` are the condition functions plugins provide, by name (``function:``);
    ``calendars`` the workspace's business calendars (``older_than`` ... ``calendar:``).
    ``None`` compiles to a test that always holds.
    """
    if condition is None:
        return _always
    return _compile(condition, _Env(dict(types or {}), functions or {}, calendars or {}))


def _compile(condition: Condition, env: _Env) -> Test:
    types = env.types
    if condition.all is not None:
        return _all([_compile(c, env) for c in condition.all])
    if condition.any is not None:
        fused = _fused_contains(condition.any, types)
        return fused or _any([_compile(c, env) for c in condition.any])
    if condition.not_ is not None:
        inverted = _inverted(condition.not_)
        if inverted is not None:
            return _compile(inverted, env)
        inner = _compile(condition.not_, env)
        return lambda f: not inner(f)
    name = condition.field
    if name is None:
        raise ConditionError("a condition needs all, any, not or field")
    operators = [op for op in OPERATORS if getattr(condition, op) is not None]
    if len(operators) != 1:
        raise ConditionError(f"the test of `{name}` needs exactly one operator")
    operator = operators[0]
    if condition.function is not None:
        return _through_function(condition.function, env.functions, name, operator, getattr(condition, operator))
    if operator in ("older_than", "newer_than"):
        calendar = env.calendars.get(condition.calendar) if condition.calendar else None
        if condition.calendar and calendar is None:
            raise ConditionError(f"no calendar `{condition.calendar}`")
        return _age(name, operator, getattr(condition, operator), calendar or AROUND_THE_CLOCK)
    kind = CORE_ATTRIBUTES[name].type if name in CORE_ATTRIBUTES else types.get(name, "input")
    return _test(name, kind, operator, getattr(condition, operator))


AROUND_THE_CLOCK = BusinessCalendar(None)


def _age(name: str, operator: str, span: str, calendar: BusinessCalendar) -> Test:
    """How long ago a date or time was, in ``calendar``'s business time, against ``span`` (e.g. 4h, 2d)."""
    older = operator == "older_than"

    def test(facts: Facts) -> bool:
        value = facts.get(name)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
        if not isinstance(value, dt.datetime):
            return False
        due = calendar.add_duration(value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc), span)
        return (now() >= due) if older else (now() < due)

    return test


RESULT = "result"
"""The fact name a function's result is tested under."""


def _through_function(function: str, functions: Mapping[str, Callable[[Any], Any]], name: str, operator: str,
                      literal: Any) -> Test:
    """Test ``function(value of name)`` with the operator; a function that raises makes the test false."""
    call = functions.get(function)
    if call is None:
        raise ConditionError(f"no installed plugin provides the condition function `{function}`")
    sample = literal[0] if isinstance(literal, (list, tuple)) and literal else literal
    kind = ("boolean" if isinstance(sample, bool) else "number" if isinstance(sample, int)
            else "decimal" if isinstance(sample, float) else "input")
    inner = _test(RESULT, kind, operator, literal)

    def test(facts: Facts) -> bool:
        try:
            result = call(facts.get(name))
        except Exception as exc:  # noqa: BLE001 - a plugin's function failing must not break the change
            log.warning("condition function %s failed on %s: %s", function, name, exc)
            return False
        return inner({RESULT: result})

    return test


INVERSE = {"equals": "not_equals", "not_equals": "equals", "in_": "not_in", "not_in": "in_"}
"""Operators whose negation is another operator (``not`` then costs nothing at evaluation)."""


def _inverted(condition: Condition) -> Condition | None:
    """``not condition`` as one test, when an operator says exactly that (never for gt/lt: None differs)."""
    if condition.field is None:
        return None
    operators = [op for op in OPERATORS if getattr(condition, op) is not None]
    if len(operators) != 1:
        return None
    operator = operators[0]
    if operator in INVERSE:
        return msgspec.structs.replace(condition, **{operator: None, INVERSE[operator]: getattr(condition, operator)})
    if operator in ("empty", "changed"):
        return msgspec.structs.replace(condition, **{operator: not getattr(condition, operator)})
    return None


def _fused_contains(parts: tuple[Condition, ...], types: dict[str, str]) -> Test | None:
    """``any`` of ``contains`` tests on one text field: the text is case-folded once for all of them."""
    if len(parts) < 2 or any(p.field is None or p.contains is None or p.field != parts[0].field for p in parts):
        return None
    name = parts[0].field
    assert name is not None
    kind = CORE_ATTRIBUTES[name].type if name in CORE_ATTRIBUTES else types.get(name, "input")
    if kind == "multiselect" or any(
            sum(getattr(p, op) is not None for op in OPERATORS) != 1 for p in parts):
        return None
    needles = tuple(str(p.contains).casefold() for p in parts)
    if len(needles) == 2:
        first, second = needles
        return lambda f: isinstance(v := f.get(name), str) and (first in (t := v.casefold()) or second in t)

    def some(f: Facts) -> bool:
        value = f.get(name)
        if not isinstance(value, str):
            return False
        text = value.casefold()
        for needle in needles:
            if needle in text:
                return True
        return False
    return some


def _all(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda f: a(f) and b(f)
    if len(tests) == 3:
        a, b, c = tests
        return lambda f: a(f) and b(f) and c(f)
    items = tuple(tests)

    def every(f: Facts) -> bool:
        for test in items:
            if not test(f):
                return False
        return True
    return every


def _any(tests: list[Test]) -> Test:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        a, b = tests
        return lambda f: a(f) or b(f)
    if len(tests) == 3:
        a, b, c = tests
        return lambda f: a(f) or b(f) or c(f)
    items = tuple(tests)

    def some(f: Facts) -> bool:
        for test in items:
            if test(f):
                return True
        return False
    return some


def _test(name: str, kind: str, operator: str, literal: Any) -> Test:  # noqa: C901 - one branch per operator
    """The closure of one field, one operator; the literal converted once."""
    if operator == "empty":
        if literal:
            return lambda f: f.get(name) in (None, "", [])
        return lambda f: f.get(name) not in (None, "", [])
    if operator == "changed":
        if literal:
            return lambda f: name in f["changed"]
        return lambda f: name not in f["changed"]
    if operator == "matches":
        problem = regex_problem(literal)
        if problem:
            raise ConditionError(problem)
        search = re.compile(literal).search
        return lambda f: isinstance(v := f.get(name), str) and search(v[:MAX_MATCH_INPUT]) is not None
    if operator == "contains":
        if kind == "multiselect":
            return lambda f: literal in (f.get(name) or ())
        needle = str(literal).casefold()
        return lambda f: isinstance(v := f.get(name), str) and needle in v.casefold()
    if operator in ("in_", "not_in"):
        options = frozenset(to_python(kind, item) for item in literal)
        if kind == "multiselect":  # one of the chosen options is (none is) among these
            if operator == "in_":
                return lambda f: not options.isdisjoint(f.get(name) or ())
            return lambda f: options.isdisjoint(f.get(name) or ())
        if operator == "in_":
            return lambda f: f.get(name) in options
        return lambda f: f.get(name) not in options
    if kind == "multiselect" and operator in ("equals", "not_equals"):
        chosen = frozenset(literal if isinstance(literal, list) else [literal])
        if operator == "equals":
            return lambda f: frozenset(f.get(name) or ()) == chosen
        return lambda f: frozenset(f.get(name) or ()) != chosen
    value = to_python(kind, literal)
    if operator == "equals":
        return lambda f: f.get(name) == value
    if operator == "not_equals":
        return lambda f: f.get(name) != value
    if operator == "gt":
        return lambda f: (v := f.get(name)) is not None and v > value
    if operator == "gte":
        return lambda f: (v := f.get(name)) is not None and v >= value
    if operator == "lt":
        return lambda f: (v := f.get(name)) is not None and v < value
    if operator == "lte":
        return lambda f: (v := f.get(name)) is not None and v <= value
    raise ConditionError(f"unknown operator {operator}")  # pragma: no cover - OPERATORS is closed


def condition_fields(condition: Condition | None) -> frozenset[str]:
    """Every field name a condition tests (to know which facts it needs)."""
    if condition is None:
        return frozenset()
    names: set[str] = set()
    for part in (*(condition.all or ()), *(condition.any or ()), *((condition.not_,) if condition.not_ else ())):
        names |= condition_fields(part)
    if condition.field is not None:
        names.add(condition.field)
    return frozenset(names)
