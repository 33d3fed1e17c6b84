"""Type-checking conditions and field values against the fields in scope.

A condition (of a rule, an SLA or a form field) names fields: custom fields of the
templates it applies to, or the work order's own attributes (priority, status, ...).
Each operator must suit the field's type and each literal must be a value the field
can hold. ``set_field`` and ``create_work_order`` actions are checked the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..check import did_you_mean
from ..diagnostics import Location
from ..model.automation import OPERATORS, Condition
from ..model.common import PRIORITIES, STATUSES
from .context import Entry, Linker
from .resolved import ResolvedField, ResolvedTemplate
from .values import regex_problem, value_problem

Path = tuple[str | int, ...]


def _core(name: str, kind: str, options: tuple[str, ...] = ()) -> ResolvedField:
    return ResolvedField(name=name, type=kind, label={}, location=Location("(built-in)"), options=options,
                         max_length=255)


CORE_ATTRIBUTES: Mapping[str, ResolvedField] = {
    "priority": _core("priority", "select", PRIORITIES),
    "status": _core("status", "select", STATUSES),
    "step": _core("step", "input"),
    "queue": _core("queue", "input"),
    "template": _core("template", "input"),
    "owner": _core("owner", "input"),
    "group": _core("group", "input"),
    "customer": _core("customer", "input"),
    "project": _core("project", "input"),
    "title": _core("title", "text"),
    "sender": _core("sender", "email"),
    "created_at": _core("created_at", "datetime"),
}
"""The work order's own attributes a condition may test, typed like custom fields."""

NAMED_BY = {"queue": "Queue", "template": "Template", "group": "Group", "customer": "Customer"}
"""Core attributes holding the name of a definition: a literal must name one that exists."""

SET_BY = {"priority": "set_priority", "status": "set_status", "owner": "assign", "group": "assign",
          "step": "route", "queue": "route", "customer": "route", "project": "route"}
"""Core attributes changed by an action of their own rather than by ``set_field``."""

TEXT_TYPES = frozenset({"input", "text", "email", "url"})
ORDERED_TYPES = frozenset({"number", "decimal", "date", "datetime"})
CONDITION_KEYS = ("all", "any", "not", "field")


def _names(names: Sequence[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


class Scope:
    """What a condition or action may refer to: fields of some templates and core attributes.

    ``every``: a field must be in every template (something listing its templates);
    otherwise in at least one (something applying to all templates). ``complete``:
    every template of the scope resolved, so a field found in none is truly unknown.
    ``available`` narrows custom fields further (a form: fields asked so far) and
    returns why a field cannot be used, or ``None``. ``steps`` are the steps a work
    order in scope can be in.
    """

    def __init__(self, templates: Sequence[ResolvedTemplate], *, every: bool, where: str, what: str,
                 complete: bool = True, core: bool = True, changed: bool = True,
                 steps: frozenset[str] | None = None,
                 available: Callable[[str], str | None] | None = None) -> None:
        self.templates = tuple(templates)
        self.every = every
        self.where = where
        self.what = what
        self.complete = complete
        self.core = core
        self.changed = changed
        self.steps = steps
        self.available = available

    def custom(self, name: str) -> tuple[ResolvedField, ...] | str | None:
        """The custom fields ``name`` stands for (one per template having it), or why it cannot be used.

        ``None`` when that cannot be told because templates of the scope did not resolve.
        """
        found = [(t.name, f) for t in self.templates if (f := t.field(name)) is not None]
        if not found:
            if not self.complete:
                return None
            known = sorted({f.name for t in self.templates for f in t.fields}
                           | (set(CORE_ATTRIBUTES) if self.core else set()))
            hint = did_you_mean(name, known) or (f"; known: {', '.join(known)}" if known else "")
            return f"unknown field `{name}` {self.where}{hint}"
        missing = [t.name for t in self.templates if t.field(name) is None]
        if self.every and missing:
            return (f"`{name}` is not a field of template {_names(missing)}, "
                    f"which {self.what} applies to")
        types: dict[str, str] = {}
        for template, field in found:
            types.setdefault(field.type, template)
        if len(types) > 1:
            kinds = ", but ".join(f"a {kind} field in template `{template}`" for kind, template in types.items())
            return f"`{name}` is {kinds}; {self.what} cannot treat it as both"
        if self.available is not None:
            problem = self.available(name)
            if problem:
                return problem
        return tuple(field for _, field in found)

    def resolve(self, name: str) -> tuple[ResolvedField, ...] | str | None:
        """Like ``custom``, but core attributes count too (when the scope allows them)."""
        if self.core and name in CORE_ATTRIBUTES:
            return (CORE_ATTRIBUTES[name],)
        return self.custom(name)


def template_scope(linker: Linker, templates: Mapping[str, ResolvedTemplate], names: Sequence[str],
                   what: str, *, changed: bool = True, queues: Sequence[str] = ()) -> Scope:
    """The scope of a rule, SLA or macro applying to templates ``names`` (default: all).

    Without templates, ``queues`` (if given) narrow the scope to the templates they serve.
    """
    if names:
        chosen = list(dict.fromkeys(names))
        every = True
        where = f"in template {_names(chosen)}" if len(chosen) == 1 else f"in templates {_names(chosen)}"
    else:
        queue_entries = [linker.of("Queue")[q] for q in queues if q in linker.of("Queue")]
        if queues and len(queue_entries) == len(queues):
            chosen = list(dict.fromkeys(t for e in queue_entries for t in e.definition.templates))
            where = f"in any template of queue {_names(queues)}" if len(queues) == 1 else \
                f"in any template of queues {_names(queues)}"
        else:
            chosen = list(linker.of("Template"))
            where = "in any template"
        every = False
    resolved = [templates[n] for n in chosen if n in templates]
    steps = frozenset(
        step.name
        for queue in linker.of("Queue").values()
        if set(chosen) & set(queue.definition.templates)
        for step in queue.definition.steps
    )
    return Scope(resolved, every=every, where=where, what=what, complete=len(resolved) == len(chosen),
                 changed=changed, steps=steps)


def check_condition(linker: Linker, entry: Entry[Any], path: Path, condition: Condition, scope: Scope) -> bool:
    """Check ``condition`` (at ``path`` in ``entry``) and the conditions inside it; report each problem."""
    given = [key for key in CONDITION_KEYS if getattr(condition, "not_" if key == "not" else key) is not None]
    if len(given) != 1:
        found = f"found {', '.join(given)}" if given else "found none"
        linker.error(entry.at(*path), f"each condition needs exactly one of: {', '.join(CONDITION_KEYS)}; {found}")
        return False
    if condition.all is not None or condition.any is not None:
        key = "all" if condition.all is not None else "any"
        parts = condition.all if condition.all is not None else condition.any
        assert parts is not None
        if not parts:
            linker.error(entry.at(*path, key), f"`{key}` needs at least one condition")
            return False
        ok = True
        for index, part in enumerate(parts):
            ok &= check_condition(linker, entry, (*path, key, index), part, scope)
        return ok
    if condition.not_ is not None:
        return check_condition(linker, entry, (*path, "not"), condition.not_, scope)
    return _check_test(linker, entry, path, condition, scope)


def _check_test(linker: Linker, entry: Entry[Any], path: Path, condition: Condition, scope: Scope) -> bool:
    """One field with one operator."""
    name = condition.field
    assert name is not None
    operators = [op for op in OPERATORS if getattr(condition, op) is not None]
    if len(operators) != 1:
        found = f"found {', '.join(op.rstrip('_') for op in operators)}" if operators else "found none"
        linker.error(
            entry.at(*path),
            f"the test of `{name}` needs exactly one operator: "
            f"{', '.join(op.rstrip('_') for op in OPERATORS)}; {found}",
        )
        return False
    operator = operators[0]
    key = operator.rstrip("_")
    value = getattr(condition, operator)
    if condition.calendar is not None:
        if operator not in ("older_than", "newer_than"):
            linker.error(entry.at(*path, "calendar"), "`calendar` counts only `older_than` and `newer_than`")
            return False
        if not linker.require("Calendar", condition.calendar, entry.at(*path, "calendar"), "calendar"):
            return False
    if condition.function is not None:
        if condition.function not in linker.condition_functions:
            known = sorted(linker.condition_functions)
            hint = did_you_mean(condition.function, known) or (
                f"; known: {', '.join(known)}" if known else "; no installed plugin provides condition functions")
            linker.error(entry.at(*path, "function"), f"unknown condition function `{condition.function}`{hint}")
            return False
        if operator == "changed":
            linker.error(entry.at(*path, key), "`changed` tests the field itself; it cannot follow a `function`")
            return False
    fields = scope.resolve(name)
    if fields is None:
        return True
    if isinstance(fields, str):
        linker.error(entry.at(*path, "field"), fields)
        return False
    kind = fields[0].type
    at = entry.at(*path, key)
    if condition.function is not None:
        return True  # the function's result has no declared type: the operator's literal is taken as it is
    if operator == "changed" and not scope.changed:
        linker.error(entry.at(*path, key, key=True),
                     f"`changed` tests what an event changed, and {scope.what} is not run by an event")
        return False
    if operator in ("empty", "changed"):
        return True
    if operator in ("older_than", "newer_than"):
        if kind not in ("date", "datetime"):
            linker.error(at, f"`{key}` tests how long ago a date or time was, but `{name}` is a {kind} field")
            return False
        return True
    if operator in ("gt", "gte", "lt", "lte") and kind not in ORDERED_TYPES:
        linker.error(at, f"`{key}` compares numbers, decimals, dates and times, but `{name}` is a {kind} field")
        return False
    if operator == "matches":
        if kind not in TEXT_TYPES:
            linker.error(at, f"`matches` tests text, but `{name}` is a {kind} field")
            return False
        problem = regex_problem(value)
        if problem:
            linker.error(at, problem)
            return False
        return True
    if operator == "contains":
        if kind in TEXT_TYPES:
            if not isinstance(value, str) or not value:
                linker.error(at, f"`contains` on text field `{name}` needs a text to look for")
                return False
            return True
        if kind != "multiselect":
            linker.error(at, f"`contains` tests text and multiselect fields, but `{name}` is a {kind} field")
            return False
    if operator in ("in_", "not_in"):
        if not value:
            linker.error(at, f"`{key}` needs at least one value")
            return False
        ok = True
        for index, item in enumerate(value):
            ok &= _check_literal(linker, entry.at(*path, key, index), name, fields, item, scope)
        return ok
    return _check_literal(linker, at, name, fields, value, scope)


def _check_literal(linker: Linker, at: Location, name: str, fields: tuple[ResolvedField, ...], value: Any,
                   scope: Scope) -> bool:
    """A value compared with field ``name``: it must suit at least one of its ``fields``."""
    problems = [value_problem(field, value) for field in fields]
    if all(problems):
        linker.error(at, f"the value does not suit `{name}`: {problems[0]}")
        return False
    if name in CORE_ATTRIBUTES and scope.core and isinstance(value, str):
        return _check_name(linker, at, name, value, scope)
    return True


def _check_name(linker: Linker, at: Location, name: str, value: str, scope: Scope) -> bool:
    """A core attribute naming a definition (step, queue, ...) must name one that exists."""
    if name in NAMED_BY:
        return linker.require(NAMED_BY[name], value, at, name)
    if name == "step" and scope.steps is not None and scope.complete:
        if value not in scope.steps:
            linker.unknown("step", value, scope.steps, at, "step", f"in the queues of {scope.what}")
            return False
    if name == "project":
        projects = {p.name for c in linker.of("Customer").values() for p in c.definition.projects}
        if value not in projects:
            linker.unknown("project", value, projects, at, "project", "of any customer")
            return False
    return True


def check_set_field(linker: Linker, entry: Entry[Any], path: Path, name: str, value: Any, scope: Scope) -> bool:
    """A ``set_field`` action (at ``path``): a custom field in scope, and a value that suits it everywhere."""
    if name in CORE_ATTRIBUTES:
        linker.error(entry.at(*path, "field"),
                     f"`{name}` is a built-in attribute, not a custom field; change it with `{SET_BY[name]}`"
                     if name in SET_BY else f"`{name}` is a built-in attribute and cannot be set")
        return False
    fields = scope.custom(name)
    if fields is None:
        return True
    if isinstance(fields, str):
        linker.error(entry.at(*path, "field"), fields)
        return False
    return check_value(linker, entry.at(*path, "value"), fields, value)


def check_value(linker: Linker, at: Location, fields: Sequence[ResolvedField], value: Any) -> bool:
    """A value written into a field (of one template or several): it must suit each of them."""
    for field in fields:
        if value is None:
            if field.required:
                linker.error(at, f"`{field.name}` is required, so it cannot be cleared")
                return False
            continue
        problem = value_problem(field, value)
        if problem:
            linker.error(at, f"the value does not suit `{field.name}`: {problem}")
            return False
    return True


def check_new_fields(linker: Linker, entry: Entry[Any], path: Path, template: ResolvedTemplate,
                     values: Mapping[str, Any]) -> bool:
    """The field values of a ``create_work_order`` action (the mapping at ``path``)."""
    ok = True
    for name, value in values.items():
        field = template.field(name)
        if field is None:
            known = [f.name for f in template.fields]
            linker.unknown("field", name, known, entry.at(*path, name, key=True), "field",
                           f"in template `{template.name}`")
            ok = False
            continue
        ok &= check_value(linker, entry.at(*path, name), (field,), value)
    return ok
