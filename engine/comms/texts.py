"""Comment templates (``kind: CommentTemplate``): the texts offered in a thread's forms, filled in for an order.

A text is compiled in the sandbox of ``mail.compile_text`` (checked at ``routecard
check`` by ``engine.link.comments``) and filled with ``Notices.text_values``: the
order's own values and its custom fields by name. What an agent types is never
compiled; only the admin's text is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError

from ..errors import Invalid
from ..labels import label_map
from ..link.resolved import LinkedWorkspace
from ..model import CommentTemplate
from ..runtime.state import Order
from .mail import compile_text

if TYPE_CHECKING:
    from .notices import Notices

_COMPILED: dict[str, Any] = {}


def offered(workspace: LinkedWorkspace, template: str, kind: str) -> list[CommentTemplate]:
    """The comment templates offered on work orders of ``template`` in the ``kind`` form, by name."""
    return [c for _, c in sorted(workspace.comment_templates.items())
            if (not c.templates or template in c.templates) and (not c.use or kind in c.use)]


def label(workspace: LinkedWorkspace, comment: CommentTemplate, language: str | None = None) -> str:
    """The text's label in ``language`` (else the workspace's), or its name."""
    labels = label_map(comment.label, workspace.settings.language)
    return labels.get(language or "", "") or labels.get(workspace.settings.language, "") or comment.name


def pick(workspace: LinkedWorkspace, order: Order, name: Any, kind: str) -> CommentTemplate:
    """The comment template ``name`` if it is offered on ``order`` for ``kind``; else ``Invalid`` at ``template``."""
    choices = offered(workspace, order.template.name, kind)
    found = next((c for c in choices if c.name == name), None) if isinstance(name, str) else None
    if found is None:
        known = ", ".join(c.name for c in choices) or "none"
        raise Invalid("no such comment template here", [{
            "field": "template",
            "message": f"no comment template `{str(name)[:60]}` for this {kind.replace('_', '-')}; offered: {known}"}])
    return found


def fill(notices: Notices, order: Order, comment: CommentTemplate) -> str:
    """``comment``'s text filled in for ``order`` (sandboxed); ``Invalid`` at ``template`` if it cannot be."""
    compiled = _COMPILED.get(comment.text)
    if compiled is None:
        compiled = compile_text(comment.text, "template")
        if len(_COMPILED) < 512:
            _COMPILED[comment.text] = compiled
    try:
        return str(compiled.render(notices.text_values(order))).strip("\n")
    except TemplateError as exc:  # SecurityError and UndefinedError included
        raise Invalid("the comment template cannot be filled in", [
            {"field": "template", "message": f"`{comment.name}` cannot be filled in for this work order: {exc}"}
        ]) from None
