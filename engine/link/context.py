"""The linker's shared state: every definition by kind and name, and located errors."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from ..check import did_you_mean
from ..diagnostics import Diagnostics, Location
from ..load import Document
from ..model import Definition, Workspace
from ..plugin_api import FieldType

D = TypeVar("D", bound=Definition)


class Entry(Generic[D]):
    """A checked definition with the document it came from."""

    __slots__ = ("definition", "document")

    def __init__(self, document: Document, definition: D) -> None:
        self.document = document
        self.definition = definition

    def at(self, *path: str | int, key: bool = False) -> Location:
        """The location of ``path`` inside this definition."""
        return self.document.locate(path, key=key)


class Linker:
    """Holds the definitions being linked and the diagnostics found so far."""

    def __init__(self, settings: Workspace, diagnostics: Diagnostics,
                 field_types: Mapping[str, FieldType] | None = None,
                 condition_functions: Collection[str] = ()) -> None:
        self.settings = settings
        self.field_types: Mapping[str, FieldType] = field_types or {}
        """The field types plugins add, by name."""
        self.condition_functions = frozenset(condition_functions)
        """The names of the condition functions plugins add."""
        self.language = settings.language
        self.diagnostics = diagnostics
        self.entries: dict[str, dict[str, Entry[Any]]] = {}

    def add(self, kind: str, document: Document, definition: Definition) -> None:
        """Register a definition; a second one of the same kind and name is an error."""
        name = getattr(definition, "name")
        table = self.entries.setdefault(kind, {})
        if name in table:
            first = table[name].at("name")
            self.error(
                document.locate(["name"]),
                f"{kind} `{name}` is defined twice; the first is at {first}",
            )
            return
        table[name] = Entry(document, definition)

    def of(self, kind: str) -> dict[str, Entry[Any]]:
        return self.entries.get(kind, {})

    def error(self, location: Location, message: str) -> None:
        self.diagnostics.error(location, message)

    def warning(self, location: Location, message: str) -> None:
        self.diagnostics.warning(location, message)

    def require(self, kind: str, name: str, location: Location, what: str | None = None) -> bool:
        """Whether a ``kind`` named ``name`` exists; reports an error (with "did you mean") if not."""
        if name in self.of(kind):
            return True
        self.unknown(kind, name, self.of(kind), location, what)
        return False

    def require_all(self, kind: str, names: Sequence[str], entry: Entry[Any], key: str,
                    what: str | None = None) -> bool:
        """``require`` for each name of the list at ``key`` in ``entry``; all errors are reported."""
        ok = True
        for index, name in enumerate(names):
            ok &= self.require(kind, name, entry.at(key, index), what)
        return ok

    def unknown(
        self,
        kind: str,
        name: str,
        known: Iterable[str],
        location: Location,
        what: str | None = None,
        scope: str = "",
    ) -> None:
        """Report a reference to something that does not exist: ``unknown step `x` in queue `q```."""
        known = list(known)
        hint = did_you_mean(name, known)
        if not hint:
            hint = f"; known: {', '.join(sorted(known))}" if known else f"; the workspace defines no {kind}"
        where = f" {scope}" if scope else ""
        self.error(location, f"unknown {what or kind} `{name}`{where}{hint}")

    def labels(self, label: str | dict[str, str] | None, fallback: str) -> dict[str, str]:
        """A label as a mapping of language to text, defaulting to ``fallback``."""
        if label is None:
            return {self.language: fallback}
        if isinstance(label, str):
            return {self.language: label}
        return dict(label)

    def check_unique(self, entry: Entry[Any], path: Sequence[str | int], names: Sequence[str], what: str) -> None:
        """Report names that repeat within one list (e.g. steps of a queue)."""
        seen: dict[str, int] = {}
        for index, name in enumerate(names):
            if name in seen:
                self.error(
                    entry.at(*path, index),
                    f"{what} `{name}` appears twice (first at {entry.at(*path, seen[name])})",
                )
            else:
                seen[name] = index
