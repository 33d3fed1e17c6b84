"""Located messages about definitions: ``path:line:col: error: message``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import msgspec

Severity = Literal["error", "warning"]


class Location(msgspec.Struct, frozen=True):
    """A place in a workspace file; line and column count from 1 (0 means unknown)."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path


class Diagnostic(msgspec.Struct, frozen=True):
    """One message about the definitions, with the place it concerns."""

    location: Location
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.location}: {self.severity}: {self.message}"

    @property
    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location
        return (loc.path, loc.line, loc.column, self.message)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics in file order, without repeats."""
    return sorted(set(diagnostics), key=lambda d: d.sort_key)


class Diagnostics:
    """Collects the messages of one run, so that all of them are reported together."""

    def __init__(self) -> None:
        self.items: list[Diagnostic] = []

    def error(self, location: Location, message: str) -> None:
        self.items.append(Diagnostic(location, message))

    def warning(self, location: Location, message: str) -> None:
        self.items.append(Diagnostic(location, message, "warning"))

    def extend(self, items: Iterable[Diagnostic]) -> None:
        self.items.extend(items)

    def errors_in(self, path: str) -> bool:
        """Whether an error about the file at ``path`` has been reported."""
        return any(d.location.path == path and d.severity == "error" for d in self.items)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def __bool__(self) -> bool:
        return bool(self.errors)

    def sorted(self) -> list[Diagnostic]:
        return sort_diagnostics(self.items)
