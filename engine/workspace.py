"""The pipeline up to a linked workspace: load -> check -> model -> link.

``open_workspace`` is what every command starts with. It is pure apart from
reading the workspace's files: nothing is written and no database is touched.
"""

from __future__ import annotations

from pathlib import Path

from .check import check_document
from .diagnostics import Diagnostics
from .errors import DefinitionError
from .link import LinkedWorkspace, link
from .link.automation import timezone_problem
from .load import WORKSPACE_FILE, Document, load_workspace
from .model import Definition, Workspace
from .plugins import Plugins, default_plugins


def open_workspace(root: Path, diagnostics: Diagnostics | None = None, *,
                   plugins: Plugins | None = None) -> LinkedWorkspace:
    """Load, check and link the workspace at ``root``; raise ``DefinitionError`` with every problem.

    Warnings are left in ``diagnostics`` when the caller passes one. ``plugins`` (default:
    the installed ones) add field types and check their own settings in routecard.yaml.
    """
    diagnostics = diagnostics if diagnostics is not None else Diagnostics()
    plugins = plugins if plugins is not None else default_plugins()
    documents = load_workspace(root, diagnostics)
    settings: Workspace | None = None
    checked: list[tuple[Document, Definition]] = []
    for document in documents:
        definition = check_document(document, diagnostics)
        if definition is None:
            continue
        if isinstance(definition, Workspace):
            settings = definition
            problem = timezone_problem(settings.timezone)
            if problem:
                diagnostics.error(document.locate(["timezone"]), problem)
            for where, message, is_error in plugins.settings_problems(settings.plugins):
                report = diagnostics.error if is_error else diagnostics.warning
                report(document.locate(["plugins", *where]), message)
        else:
            checked.append((document, definition))
    workspace_documents = [d for d in documents if d.path == WORKSPACE_FILE]
    if len(workspace_documents) > 1:
        diagnostics.error(workspace_documents[1].locate(), f"{WORKSPACE_FILE} must hold exactly one document")
    if diagnostics or settings is None:
        raise DefinitionError(diagnostics.items)
    linked = link(settings, checked, diagnostics, plugins.field_types, plugins.conditions)
    if linked is None:
        raise DefinitionError(diagnostics.items)
    return linked


