"""The closures compiled conditions are made of (``conditions``), in a form for each continuation.

A test goes on to what follows it: the next test, or the answer. ``pick`` chooses among a
test's written-out forms by its continuations, ``node`` wraps any other test; the
operators most conditions use (``equality``, ``membership``, ``ordering``, ``contains``)
have every form written out, the comparison and the step to what follows in one call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

Facts = Mapping[str, Any]
"""The order's values by name (custom fields and core attributes) and ``changed``: the names an event changed."""
Test = Callable[[Facts], bool]
Next: TypeAlias = "Test | bool"
"""What follows a test: the test to try next, or the answer."""


def always(facts: Facts) -> bool:
    return True


def never(facts: Facts) -> bool:
    return False


def settled(then: Next) -> Test:
    """A continuation as a test (``all`` of nothing continues with its ``yes`` straight away)."""
    if isinstance(then, bool):
        return always if then else never
    return then


def pick(yes: Next, no: Next, plain: Test, and_then: Test, or_else: Test, either: Test) -> Test:
    """The form of a test for its continuations: ``plain`` for (True, False), ``and_then`` for (test,
    False), ``or_else`` for (True, test), ``either`` for (test, test); any other pair (made by a
    ``not``) wraps ``plain``. Each form names only the cells it uses: every cell a closure has
    is copied into each call's frame, so fewer cells cost less."""
    yes_test, no_test = not isinstance(yes, bool), not isinstance(no, bool)
    if yes is True and no is False:
        return plain
    if yes_test and no is False:
        return and_then
    if yes is True and no_test:
        return or_else
    if yes_test and no_test:
        return either
    return node(plain, yes, no)


def node(test: Test, yes: Next, no: Next) -> Test:
    """Any test with its continuations (the operators most conditions use have forms of their own)."""
    if yes is True and no is False:
        return test
    if yes is False and no is True:
        return lambda f: not test(f)
    y, n = settled(yes), settled(no)
    if no is False:
        return lambda f: test(f) and y(f)
    if yes is True:
        return lambda f: test(f) or n(f)
    return lambda f: y(f) if test(f) else n(f)


# The operators most conditions use have a closure of their own for each form (``pick``):
# the comparison and the step to what follows in one call, written out, no generated source.

def equality(name: str, value: Any, equal: bool, yes: Next, no: Next) -> Test:
    """``equals`` (``equal``) or ``not_equals`` of a single value."""
    y, n = settled(yes), settled(no)
    if equal:
        return pick(yes, no, lambda f: f.get(name) == value, lambda f: f.get(name) == value and y(f),
                     lambda f: f.get(name) == value or n(f), lambda f: y(f) if f.get(name) == value else n(f))
    return pick(yes, no, lambda f: f.get(name) != value, lambda f: f.get(name) != value and y(f),
                 lambda f: f.get(name) != value or n(f), lambda f: y(f) if f.get(name) != value else n(f))


def membership(name: str, options: frozenset[Any], among: bool, yes: Next, no: Next) -> Test:
    """``in`` (``among``) or ``not_in`` on a single value."""
    y, n = settled(yes), settled(no)
    if among:
        return pick(yes, no, lambda f: f.get(name) in options, lambda f: f.get(name) in options and y(f),
                     lambda f: f.get(name) in options or n(f), lambda f: y(f) if f.get(name) in options else n(f))
    return pick(yes, no, lambda f: f.get(name) not in options, lambda f: f.get(name) not in options and y(f),
                 lambda f: f.get(name) not in options or n(f),
                 lambda f: y(f) if f.get(name) not in options else n(f))


def ordering(name: str, operator: str, value: Any, yes: Next, no: Next) -> Test:  # noqa: C901 - written out
    """gt/gte/lt/lte: false when the value is ``None`` or the facts lack it.

    The comparison is made on ``f[name]`` straight away: a missing name raises ``KeyError``
    and ``None`` compared with any literal a definition can hold raises ``TypeError``, so a
    value that is there costs no ``None`` test. ``unless_missing`` re-raises any other
    error (a value of another type, an error of the test tried next) as before.
    """
    y, n = settled(yes), settled(no)
    if operator == "gt":
        def gt(f: Facts) -> bool:
            try:
                return f[name] > value  # type: ignore[no-any-return] # a bool for every literal
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def gt_and(f: Facts) -> bool:
            try:
                return f[name] > value and y(f)
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def gt_or(f: Facts) -> bool:
            try:
                return f[name] > value or n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)

        def gt_either(f: Facts) -> bool:
            try:
                return y(f) if f[name] > value else n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)
        return pick(yes, no, gt, gt_and, gt_or, gt_either)
    if operator == "gte":
        def gte(f: Facts) -> bool:
            try:
                return f[name] >= value  # type: ignore[no-any-return] # a bool for every literal
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def gte_and(f: Facts) -> bool:
            try:
                return f[name] >= value and y(f)
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def gte_or(f: Facts) -> bool:
            try:
                return f[name] >= value or n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)

        def gte_either(f: Facts) -> bool:
            try:
                return y(f) if f[name] >= value else n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)
        return pick(yes, no, gte, gte_and, gte_or, gte_either)
    if operator == "lt":
        def lt(f: Facts) -> bool:
            try:
                return f[name] < value  # type: ignore[no-any-return] # a bool for every literal
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def lt_and(f: Facts) -> bool:
            try:
                return f[name] < value and y(f)
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def lt_or(f: Facts) -> bool:
            try:
                return f[name] < value or n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)

        def lt_either(f: Facts) -> bool:
            try:
                return y(f) if f[name] < value else n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)
        return pick(yes, no, lt, lt_and, lt_or, lt_either)
    if operator == "lte":
        def lte(f: Facts) -> bool:
            try:
                return f[name] <= value  # type: ignore[no-any-return] # a bool for every literal
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def lte_and(f: Facts) -> bool:
            try:
                return f[name] <= value and y(f)
            except (KeyError, TypeError):
                return unless_missing(f, name)

        def lte_or(f: Facts) -> bool:
            try:
                return f[name] <= value or n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)

        def lte_either(f: Facts) -> bool:
            try:
                return y(f) if f[name] <= value else n(f)
            except (KeyError, TypeError):
                return unless_missing(f, name) or n(f)
        return pick(yes, no, lte, lte_and, lte_or, lte_either)
    raise ValueError(f"unknown ordering operator {operator}")  # pragma: no cover - the four above


def unless_missing(f: Facts, name: str) -> bool:
    """Called in an ``except`` clause: false when the facts lack ``name`` or hold ``None``, else re-raise."""
    if f.get(name) is not None:
        raise  # noqa: PLE0704 - the exception the caller is handling
    return False


def contains(name: str, texts: tuple[str, ...], yes: Next, no: Next) -> Test:
    """``contains`` on a text field, or ``any`` of several on one field: the text case-folded once for all."""
    y, n = settled(yes), settled(no)
    needles = tuple(text.casefold() for text in texts)
    if len(needles) == 1:
        (one,) = needles
        return pick(yes, no, lambda f: isinstance(v := f.get(name), str) and one in v.casefold(),
                     lambda f: isinstance(v := f.get(name), str) and one in v.casefold() and y(f),
                     lambda f: (isinstance(v := f.get(name), str) and one in v.casefold()) or n(f),
                     lambda f: y(f) if isinstance(v := f.get(name), str) and one in v.casefold() else n(f))
    if len(needles) == 2:
        a, b = needles
        return pick(yes, no, lambda f: isinstance(v := f.get(name), str) and (a in (t := v.casefold()) or b in t),
                     lambda f: isinstance(v := f.get(name), str) and (a in (t := v.casefold()) or b in t) and y(f),
                     lambda f: (isinstance(v := f.get(name), str) and (a in (t := v.casefold()) or b in t)) or n(f),
                     lambda f: y(f) if isinstance(v := f.get(name), str) and (a in (t := v.casefold()) or b in t)
                     else n(f))

    def some(f: Facts) -> bool:
        value = f.get(name)
        if not isinstance(value, str):
            return False
        text = value.casefold()
        for needle in needles:
            if needle in text:
                return True
        return False
    return node(some, yes, no)

