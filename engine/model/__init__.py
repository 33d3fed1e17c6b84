"""The typed model of the definition language ("as written"): one frozen Struct per kind.

References between definitions are still names here; ``engine.link`` resolves them.
"""

from __future__ import annotations

from .automation import SLA, Action, Calendar, Condition, Macro, Rule, Trigger
from .comments import CommentTemplate
from .common import Definition
from .fields import FIELD_TYPES, Field, FieldDocument, Option
from .portal import Customer, Form, FormField, FormPage, Portal, Project
from .workflow import Group, Queue, Role, Step, StepAction, Template
from .workspace import Workspace

DOCUMENT_KINDS: dict[str, type[Definition]] = {
    "Template": Template,
    "Field": FieldDocument,
    "Queue": Queue,
    "Group": Group,
    "Role": Role,
    "Form": Form,
    "Rule": Rule,
    "SLA": SLA,
    "Calendar": Calendar,
    "Macro": Macro,
    "CommentTemplate": CommentTemplate,
    "Portal": Portal,
    "Customer": Customer,
}
"""Kinds a workspace document may have (``kind:``), in documentation order."""

__all__ = [
    "DOCUMENT_KINDS",
    "FIELD_TYPES",
    "SLA",
    "Action",
    "Calendar",
    "CommentTemplate",
    "Condition",
    "Customer",
    "Definition",
    "Field",
    "FieldDocument",
    "Form",
    "FormField",
    "FormPage",
    "Group",
    "Macro",
    "Option",
    "Portal",
    "Project",
    "Queue",
    "Role",
    "Rule",
    "Step",
    "StepAction",
    "Template",
    "Trigger",
    "Workspace",
]
