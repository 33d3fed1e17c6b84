"""Checking the text templates admins write (mail subjects and bodies, comments) before they run.

Templates are rendered in Jinja's immutable sandbox, which refuses unsafe attribute
access when it renders. Refusing at ``routecard check`` is better: a template that
reaches into internals (``{{ ''.__class__ }}``), calls methods (``"{0}".format``),
uses a filter outside the allow-list (``|attr``), loops, or pulls in other
templates is a located error before it is ever applied, and so is a syntax error.
Placeholders are plain names (``{{ number }}``) with simple filters; where the names a
text will be filled with are known (comment templates), an unknown name is an error too.
"""

from __future__ import annotations

from collections.abc import Collection

from jinja2 import TemplateSyntaxError, meta, nodes
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

ORDER_PLACEHOLDERS = ("number", "title", "status", "step", "link", "priority", "sender", "group", "template")
"""The work order's own values a text is filled with (beside its custom fields, by name)."""

_PARSER = ImmutableSandboxedEnvironment()


def template_problem(source: str, names: Collection[str] | None = None) -> str | None:
    """Why ``source`` may not be used as a template, or ``None``.

    With ``names``, every placeholder must be one of them (``None``: any name is accepted).
    """
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
    if names is not None:
        unknown = sorted(meta.find_undeclared_variables(tree) - set(names))
        if unknown:
            listed = ", ".join(f"`{n}`" for n in unknown)
            return (f"unknown placeholder{'s' if len(unknown) > 1 else ''} {listed}; "
                    f"known here: {', '.join(sorted(names))}")
    return None
