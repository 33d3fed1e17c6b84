"""Checking the text templates admins write (mail subjects and bodies, comments) before they run.

Templates are rendered in Jinja's immutable sandbox, which refuses unsafe attribute
access when it renders. Refusing at ``routecard check`` is better: a template that
reaches into internals (``{{ ''.__class__ }}``), calls methods (``"{0}".format``),
uses a filter outside the allow-list (``|attr``), loops, or pulls in other
templates is a located error before it is ever applied, and so is a syntax error.
Placeholders are plain names (``{{ number }}``) with simple filters.
"""

from __future__ import annotations

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

FILTERS = frozenset({
    "capitalize", "default", "d", "e", "escape", "first", "indent", "int", "join", "last", "length", "lower",
    "replace", "round", "string", "striptags", "title", "trim", "truncate", "upper", "wordwrap",
})
"""Filters a template may use: they format a value and reach nothing else."""

FORBIDDEN = (
    (nodes.Call, "calls are not allowed in a template"),
    (nodes.For, "loops are not allowed in a template"),
    (nodes.Macro, "macros are not allowed in a template"),
    (nodes.CallBlock, "call blocks are not allowed in a template"),
    (nodes.Include, "a template cannot include another"),
    (nodes.Import, "a template cannot import another"),
    (nodes.FromImport, "a template cannot import another"),
    (nodes.Extends, "a template cannot extend another"),
    (nodes.Assign, "a template cannot set variables"),
    (nodes.AssignBlock, "a template cannot set variables"),
)

_PARSER = ImmutableSandboxedEnvironment()


def template_problem(source: str) -> str | None:
    """Why ``source`` may not be used as a template, or ``None``."""
    try:
        tree = _PARSER.parse(source)
    except TemplateSyntaxError as exc:
        return f"the template cannot be read (its line {exc.lineno}): {exc.message}"
    for kind, message in FORBIDDEN:
        if any(True for _ in tree.find_all(kind)):
            return message
    for node in tree.find_all(nodes.Getattr):
        return f"`.{node.attr}`: a template shows values by name, e.g. {{{{ number }}}}; it cannot reach into them"
    for item in tree.find_all(nodes.Getitem):
        return "a template shows values by name, e.g. {{ number }}; it cannot index into them"
    for used in tree.find_all(nodes.Filter):
        if used.name not in FILTERS:
            return f"the filter `{used.name}` is not allowed; use one of: {', '.join(sorted(FILTERS))}"
    for power in tree.find_all(nodes.Pow):
        return "`**` is not allowed in a template"
    return None
