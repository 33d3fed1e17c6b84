"""Conditions compiled to Python closures: one closure per test, specialised per operator.

``compile_condition`` turns a checked ``Condition`` into a function of the order's
*facts* (``Facts``: values by name, typed as Python values) that answers ``True`` or
``False``. Literals are converted once, when compiling, to the type of the field they
are compared with (decimals as ``Decimal``, dates as ``date``, date-times as aware
``datetime``), so evaluating is a comparison and nothing more: no interpretation loop,
no ``eval``. Regular expressions are refused when they can backtrack catastrophically
(the linker's ``regex_problem``) and only see the first ``MAX_MATCH_INPUT`` characters.

``all``, ``any`` and ``not`` have no closure of their own: each test is compiled with
what follows it (the next test or the answer) when it holds and when not, so a
condition costs one Python call per test tried, the cost a hand-written function is
measured against (``bench/conditions.py``). No source is generated for this: every
closure is written out (``closures``), in a form for each kind of continuation.
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
from ..runtime.fields import aware
from ..runtime.state import now
from .calendar import BusinessCalendar
from .closures import Facts, Next, Test, always, contains, equality, membership, node, ordering, settled

log = logging.getLogger("routecard.rules")

MAX_MATCH_INPUT = 10_000
"""``matches`` looks at no more than this many characters of a value."""
TEXT_TYPES = frozenset({"input", "text", "email", "url", "select"})


class ConditionError(ValueError):
    """A condition that cannot be compiled (the linker reports these with locations first)."""


def to_python(kind: str, value: Any) -> Any:
    """A value of a field of type ``kind`` (from a definition or JSON) as the Python value facts hold."""
    if value is None:
        return None
    if kind == "decimal" and not isinstance(value, Decimal):
        return Decimal(str(value))
    if kind == "date" and isinstance(value, str):
        return dt.date.fromisoformat(value[:10])
    if kind == "datetime" and isinstance(value, str):
        return aware(dt.datetime.fromisoformat(value))
    if kind == "datetime" and isinstance(value, dt.datetime):
        return aware(value)
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
        return always
    return _compile(condition, _Env(dict(types or {}), functions or {}, calendars or {}), True, False)


MAX_CHAIN = 200
"""Conditions with more tests than this are not chained: their parts are compiled on their own and tried
in a loop, so that evaluating never nests more Python calls than this (each test calls the next)."""


def _compile(condition: Condition, env: _Env, yes: Next, no: Next) -> Test:
    """The test of ``condition``, continuing with ``yes`` when it holds and ``no`` when not.

    A continuation is the test to try next, or the answer (``True``/``False``). ``all``
    chains its parts (each part's ``yes`` is the next part), ``any`` likewise through
    ``no``, and ``not`` swaps ``yes`` and ``no``: no closure of its own for any of them.
    """
    if condition.all is not None or condition.any is not None:
        if _size(condition) > MAX_CHAIN:
            return _looped(condition, env, yes, no)
        if condition.all is not None:
            for part in reversed(condition.all):
                yes = _compile(part, env, yes, no)
            return settled(yes)
        for group in reversed(_any_groups(_flattened(condition.any or ()), env.types)):
            no = (_compile(group, env, yes, no) if isinstance(group, Condition)
                  else contains(group[0], group[1], yes, no))
        return settled(no)
    if condition.not_ is not None:
        inverted = _inverted(condition.not_)
        if inverted is not None:
            return _compile(inverted, env, yes, no)
        return _compile(condition.not_, env, no, yes)
    name = condition.field
    if name is None:
        raise ConditionError("a condition needs all, any, not or field")
    operators = [op for op in OPERATORS if getattr(condition, op) is not None]
    if len(operators) != 1:
        raise ConditionError(f"the test of `{name}` needs exactly one operator")
    operator = operators[0]
    if condition.function is not None:
        return node(_through_function(condition.function, env.functions, name, operator,
                                       getattr(condition, operator)), yes, no)
    if operator in ("older_than", "newer_than"):
        calendar = env.calendars.get(condition.calendar) if condition.calendar else None
        if condition.calendar and calendar is None:
            raise ConditionError(f"no calendar `{condition.calendar}`")
        return node(_age(name, operator, getattr(condition, operator), calendar or AROUND_THE_CLOCK), yes, no)
    kind = CORE_ATTRIBUTES[name].type if name in CORE_ATTRIBUTES else env.types.get(name, "input")
    return _test(name, kind, operator, getattr(condition, operator), yes, no)


def _size(condition: Condition) -> int:
    """How many tests a condition has."""
    if condition.all is not None or condition.any is not None:
        return sum(_size(c) for c in (condition.all if condition.all is not None else condition.any or ()))
    return _size(condition.not_) if condition.not_ is not None else 1


def _looped(condition: Condition, env: _Env, yes: Next, no: Next) -> Test:
    """A large ``all``/``any``: each part compiled on its own, the parts tried in a loop."""
    if condition.all is not None:
        parts = tuple(_compile(c, env, True, False) for c in condition.all)

        def every(f: Facts) -> bool:
            for test in parts:
                if not test(f):
                    return False
            return True
        return node(every, yes, no)
    parts = tuple(_compile(c, env, True, False) for c in _flattened(condition.any or ()))

    def some(f: Facts) -> bool:
        for test in parts:
            if test(f):
                return True
        return False
    return node(some, yes, no)


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
        due = calendar.add_duration(aware(value), span)
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


def _flattened(parts: tuple[Condition, ...]) -> list[Condition]:
    """The parts of an ``any`` with parts that are themselves ``any`` spliced in, in order."""
    out: list[Condition] = []
    for part in parts:
        if part.all is None and part.any is not None:
            out.extend(_flattened(part.any))
        else:
            out.append(part)
    return out


def _any_groups(parts: list[Condition], types: Mapping[str, str]) -> list[Condition | tuple[str, tuple[str, ...]]]:
    """The parts of an ``any``, where ``contains`` tests of one text field next to each other become one
    (field, texts): the field's text is then case-folded once for all of them."""
    groups: list[Condition | tuple[str, tuple[str, ...]]] = []
    for part in parts:
        last = groups[-1] if groups else None
        if not _fusable(part, types):
            groups.append(part)
        elif isinstance(last, tuple) and last[0] == part.field:
            groups[-1] = (last[0], (*last[1], str(part.contains)))
        elif isinstance(last, Condition) and _fusable(last, types) and last.field == part.field:
            groups[-1] = (str(part.field), (str(last.contains), str(part.contains)))
        else:
            groups.append(part)
    return groups


def _fusable(part: Condition, types: Mapping[str, str]) -> bool:
    """A plain ``contains`` on a text field (not a multiselect, no function, nothing else beside it)."""
    if part.all is not None or part.any is not None or part.not_ is not None or part.field is None \
            or part.contains is None or part.function is not None:
        return False
    kind = CORE_ATTRIBUTES[part.field].type if part.field in CORE_ATTRIBUTES else types.get(part.field, "input")
    return kind != "multiselect" and sum(getattr(part, op) is not None for op in OPERATORS) == 1


def _test(name: str, kind: str, operator: str, literal: Any,  # noqa: C901 - one branch per operator
          yes: Next = True, no: Next = False) -> Test:
    """The test of one field, one operator, going on to ``yes``/``no``; the literal converted once."""
    if operator == "empty":
        if literal:
            return node(lambda f: f.get(name) in (None, "", []), yes, no)
        return node(lambda f: f.get(name) not in (None, "", []), yes, no)
    if operator == "changed":
        if literal:
            return node(lambda f: name in f["changed"], yes, no)
        return node(lambda f: name not in f["changed"], yes, no)
    if operator == "matches":
        problem = regex_problem(literal)
        if problem:
            raise ConditionError(problem)
        search = re.compile(literal).search
        return node(lambda f: isinstance(v := f.get(name), str) and search(v[:MAX_MATCH_INPUT]) is not None,
                     yes, no)
    if operator == "contains":
        if kind == "multiselect":
            return node(lambda f: literal in (f.get(name) or ()), yes, no)
        return contains(name, (str(literal),), yes, no)
    if operator in ("in_", "not_in"):
        options = frozenset(to_python(kind, item) for item in literal)
        if kind == "multiselect":  # one of the chosen options is (none is) among these
            if operator == "in_":
                return node(lambda f: not options.isdisjoint(f.get(name) or ()), yes, no)
            return node(lambda f: options.isdisjoint(f.get(name) or ()), yes, no)
        return membership(name, options, operator == "in_", yes, no)
    if kind == "multiselect" and operator in ("equals", "not_equals"):
        chosen = frozenset(literal if isinstance(literal, list) else [literal])
        if operator == "equals":
            return node(lambda f: frozenset(f.get(name) or ()) == chosen, yes, no)
        return node(lambda f: frozenset(f.get(name) or ()) != chosen, yes, no)
    value = to_python(kind, literal)
    if operator in ("equals", "not_equals"):
        return equality(name, value, operator == "equals", yes, no)
    if operator in ("gt", "gte", "lt", "lte"):
        return ordering(name, operator, value, yes, no)
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
