"""Linking comment templates: their work-order templates exist and their texts use only known placeholders."""

from __future__ import annotations

from ..model import CommentTemplate
from .context import Linker
from .resolved import ResolvedTemplate
from .templating import ORDER_PLACEHOLDERS, template_problem


def placeholder_names(templates: dict[str, ResolvedTemplate], offered_on: tuple[str, ...]) -> frozenset[str]:
    """The names a text offered on ``offered_on`` (empty: every template) may use.

    A custom field counts only when every one of those templates has it, so that the
    text can be filled in on each work order it is offered on.
    """
    chosen = [templates[n] for n in offered_on if n in templates] if offered_on else list(templates.values())
    fields: set[str] = set()
    for index, template in enumerate(chosen):
        names = {f.name for f in template.fields}
        fields = names if index == 0 else fields & names
    return frozenset(ORDER_PLACEHOLDERS) | fields


def link_comment_templates(linker: Linker, templates: dict[str, ResolvedTemplate]) -> dict[str, CommentTemplate]:
    """Check every comment template: its templates exist and its text is a safe template of known placeholders."""
    out = {}
    for name, entry in linker.of("CommentTemplate").items():
        comment: CommentTemplate = entry.definition
        ok = linker.require_all("Template", comment.templates, entry, "templates", "template")
        problem = template_problem(comment.text, placeholder_names(templates, comment.templates))
        if problem:
            linker.error(entry.at("text"), problem)
            ok = False
        if ok:
            out[name] = comment
    return out
