"""Helpers for tests that build small workspaces in a temporary folder."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

from engine.diagnostics import Diagnostics
from engine.errors import DefinitionError
from engine.link import LinkedWorkspace
from engine.workspace import open_workspace


def write_workspace(root: Path, files: Mapping[str, str], name: str = "t") -> Path:
    """Write ``routecard.yaml`` (unless given) and ``files`` (dedented) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    if "routecard.yaml" not in files:
        (root / "routecard.yaml").write_text(f"name: {name}\n", encoding="utf-8")
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def diagnostics_of(root: Path, files: Mapping[str, str]) -> list[str]:
    """Every diagnostic (errors and warnings) of the workspace, as ``path:line:col: severity: message``."""
    diagnostics = Diagnostics()
    try:
        open_workspace(write_workspace(root, files), diagnostics)
    except DefinitionError as error:
        return [str(d) for d in error.diagnostics]
    return [str(d) for d in diagnostics.sorted()]


def linked(root: Path, files: Mapping[str, str]) -> LinkedWorkspace:
    """The linked workspace; fails the test with every diagnostic if there is any."""
    diagnostics = Diagnostics()
    try:
        workspace = open_workspace(write_workspace(root, files), diagnostics)
    except DefinitionError as error:
        raise AssertionError("\n".join(str(d) for d in error.diagnostics)) from None
    assert not diagnostics.items, [str(d) for d in diagnostics.items]
    return workspace
