"""Stage 3, link: resolve every reference between definitions and check their meaning.

Input: the checked, as-written definitions with their documents. Output: a
``LinkedWorkspace`` (resolved types, see ``resolved``), or located diagnostics for
unknown or duplicate names, invalid identities, unreachable steps, steps with no
way forward, defaults that do not suit their field, and so on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping

import msgspec

from ..diagnostics import Diagnostics
from ..load import Document
from ..model import Definition, Workspace
from ..plugin_api import FieldType
from .automation import link_calendars, link_macros, link_rules, link_slas
from .comments import link_comment_templates
from .context import Linker
from .portal import link_customers, link_forms, link_portals
from .queues import link_groups, link_queues, link_roles, queues_by_template
from .resolved import LinkedWorkspace
from .templates import link_templates

__all__ = ["LinkedWorkspace", "link"]


def fingerprint(source: dict[str, dict[str, object]]) -> str:
    """The definition version: SHA-256 of the definitions' canonical JSON."""
    return hashlib.sha256(msgspec.json.encode(source, order="sorted")).hexdigest()


def link(settings: Workspace, checked: list[tuple[Document, Definition]], diagnostics: Diagnostics,
         field_types: Mapping[str, FieldType] | None = None,
         condition_functions: Collection[str] = ()) -> LinkedWorkspace | None:
    """Link the checked definitions; ``None`` if any error was reported to ``diagnostics``.

    ``field_types`` are the field types plugins add, by name; ``condition_functions`` the
    names of the functions they let conditions call.
    """
    linker = Linker(settings, diagnostics, field_types, condition_functions)
    for document, definition in checked:
        kind = type(definition).__struct_config__.tag
        linker.add(str(kind), document, definition)
    groups = link_groups(linker)
    roles = link_roles(linker)
    templates = link_templates(linker, queues_by_template(linker))
    queues = link_queues(linker)
    calendars = link_calendars(linker)
    macros = link_macros(linker, templates)
    comment_templates = link_comment_templates(linker, templates)
    rules = link_rules(linker, templates)
    slas = link_slas(linker, templates)
    forms = link_forms(linker, templates, queues)
    portals = link_portals(linker)
    customers = link_customers(linker)
    if diagnostics:
        return None
    source = {
        kind: {name: msgspec.to_builtins(entry.definition) for name, entry in sorted(entries.items())}
        for kind, entries in sorted(linker.entries.items())
    }
    source["Workspace"] = {settings.name: msgspec.to_builtins(settings)}
    return LinkedWorkspace(
        settings=settings,
        fingerprint=fingerprint(source),
        groups=groups,
        roles=roles,
        templates=templates,
        queues=queues,
        forms=forms,
        rules=rules,
        slas=slas,
        calendars=calendars,
        macros=macros,
        comment_templates=comment_templates,
        portals=portals,
        customers=customers,
        source=source,
        locations={kind: {name: entry.at() for name, entry in sorted(entries.items())}
                   for kind, entries in sorted(linker.entries.items())},
    )
