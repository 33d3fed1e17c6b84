"""Resolved ("linked") types: what later stages build on.

Unlike the as-written model, every reference here has been checked, shared fields
are merged into their templates, labels are mappings of language to text, and
defaults are filled in. Later stages never look at YAML or the as-written model.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ..diagnostics import Location
from ..model import SLA, Calendar, CommentTemplate, Customer, Form, Group, Macro, Portal, Role, Rule, Workspace
from ..plugin_api import FieldType as PluginFieldType

Labels = dict[str, str]


class Resolved(msgspec.Struct, frozen=True, kw_only=True):
    """Base of the resolved types."""


class ResolvedField(Resolved, frozen=True, kw_only=True):
    """A custom field of a template, with every option settled."""

    name: str
    type: str
    label: Labels
    location: Location
    help: Labels = {}
    section: str | None = None
    required: bool = False
    default: Any = None
    options: tuple[str, ...] = ()
    option_labels: dict[str, Labels] = {}
    can_enter: bool = False
    max_length: int | None = None
    pattern: str | None = None
    min: float | None = None
    max: float | None = None
    digits: int | None = None
    places: int | None = None
    multiple: bool = False
    reference: str | None = None
    renamed_from: str | None = None
    extension: PluginFieldType | None = None
    """The plugin field type written in the definition; ``type`` is then its core base type."""

    @property
    def type_name(self) -> str:
        """The type as written: the plugin's type name, or the core type."""
        return self.extension.name if self.extension is not None else self.type


class ResolvedTemplate(Resolved, frozen=True, kw_only=True):
    """A work-order template with its fields resolved."""

    name: str
    label: Labels
    location: Location
    team: str | None
    range: tuple[str, ...]
    initial_owner: str
    assignment: str
    edit_limit: str
    transfer_retains_agent: bool
    end_action: str
    end_template: str
    default_cc: tuple[str, ...]
    prefix: str
    digits: int
    start: int
    fields: tuple[ResolvedField, ...]
    purge: tuple[str, ...]
    queues: tuple[str, ...]

    def field(self, name: str) -> ResolvedField | None:
        for field in self.fields:
            if field.name == name:
                return field
        return None


class ResolvedAction(Resolved, frozen=True, kw_only=True):
    """An order action of a step."""

    name: str
    label: Labels
    plugin: str | None
    parameters: dict[str, Any]
    skippable: bool


class ResolvedStep(Resolved, frozen=True, kw_only=True):
    """A step of a queue with its routing resolved to step names (or ``complete``)."""

    name: str
    label: Labels
    group: str | None
    actions: tuple[ResolvedAction, ...]
    next: tuple[str, ...]
    returns: tuple[str, ...]


class ResolvedQueue(Resolved, frozen=True, kw_only=True):
    """A queue whose steps, groups and templates all exist."""

    name: str
    label: Labels
    location: Location
    templates: tuple[str, ...]
    steps: tuple[ResolvedStep, ...]
    retired_steps: dict[str, str]

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(step.name for step in self.steps)


class LinkedWorkspace(Resolved, frozen=True, kw_only=True):
    """A whole workspace after linking: every reference checked.

    Kinds whose runtime comes with later stages (rules, SLAs, forms, ...) are kept as
    checked, as-written definitions until those stages give them resolved types.
    """

    settings: Workspace
    fingerprint: str
    """SHA-256 of the definitions' canonical form: the definition version."""
    groups: dict[str, Group]
    roles: dict[str, Role]
    templates: dict[str, ResolvedTemplate]
    queues: dict[str, ResolvedQueue]
    forms: dict[str, Form]
    rules: dict[str, Rule]
    slas: dict[str, SLA]
    calendars: dict[str, Calendar]
    macros: dict[str, Macro]
    comment_templates: dict[str, CommentTemplate] = {}
    """The texts agents pick for comments, replies and follow-ups."""
    portals: dict[str, Portal]
    customers: dict[str, Customer]
    source: dict[str, dict[str, Any]]
    """The definitions as plain data (kind -> name -> definition), stored with each applied version."""
    locations: dict[str, dict[str, Location]] = {}
    """Where each definition is written: kind -> name -> the start of its document."""
