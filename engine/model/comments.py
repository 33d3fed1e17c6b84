"""Comment templates: predefined texts an agent picks when commenting, replying or writing a follow-up."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from .common import Definition, Identity, Label, describe

MessageKind = Literal["comment", "reply", "follow_up"]
"""The thread's forms a comment template may be offered in."""


class CommentTemplate(Definition, frozen=True, kw_only=True, tag_field="kind", tag="CommentTemplate"):
    """A predefined text for the thread: the agent picks it, the placeholders are filled in, the agent may edit it."""

    name: Identity
    label: Annotated[Label | None, describe("What the agent reads in the list of texts.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("When to use this text.")] = None
    text: Annotated[str, describe(
        "The text. Placeholders are filled in from the work order when it is picked: number, title, status, "
        "step, link, priority, sender, group, template, and the name of any custom field the templates have, "
        "e.g. {{ number }} or {{ customer_name }}. Only names and simple filters: no `.`, calls or loops.",
        min_length=1, max_length=20000)]
    client_viewable: Annotated[bool, describe(
        "Whether a comment or follow-up from this text is shown to the customer unless the agent says otherwise "
        "(a reply always is).")] = False
    templates: Annotated[tuple[Identity, ...], describe(
        "Offered on work orders of these templates (default: all).")] = ()
    use: Annotated[tuple[MessageKind, ...], describe(
        "The forms that offer it: comment, reply, follow_up (default: all three).")] = ()
