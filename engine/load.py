"""Stage 1, load: read a workspace's YAML files, keeping the file:line:col of every value.

The loader is defensive: it refuses files that are too large or not UTF-8, YAML
syntax errors, duplicate keys, language-specific tags, documents that expand (through
anchors and aliases) into more values than any real definition has, and nesting
deep enough to exhaust the stack. Each problem becomes a located ``Diagnostic``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from .diagnostics import Diagnostics, Location

WORKSPACE_FILE = "routecard.yaml"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 2000
MAX_VALUES_PER_FILE = 250_000
MAX_DEPTH = 64
STANDARD_TAGS = frozenset({None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap"})
IGNORED_DIRECTORIES = frozenset({"tests", "node_modules", "__pycache__"})
"""Top-level folders of a workspace that hold no definitions (``tests`` holds scenarios)."""

PathKey = tuple[str | int, ...]


class Document(msgspec.Struct, kw_only=True):
    """One YAML document of a workspace file, as plain data with the position of each value."""

    path: str
    """The file, relative to the workspace folder, with forward slashes."""
    index: int
    """Which document of the file (0 for the first)."""
    data: Any
    line: int = 1
    column: int = 1
    values: dict[PathKey, tuple[int, int]] = msgspec.field(default_factory=dict)
    keys: dict[PathKey, tuple[int, int]] = msgspec.field(default_factory=dict)

    @property
    def kind(self) -> str | None:
        kind = self.data.get("kind") if isinstance(self.data, dict) else None
        return kind if isinstance(kind, str) else None

    def locate(self, path: Sequence[str | int] = (), *, key: bool = False) -> Location:
        """The position of the value (or, with ``key``, the key) at ``path``.

        Falls back to the nearest enclosing value that has a position.
        """
        current = tuple(path)
        if key and current in self.keys:
            line, column = self.keys[current]
            return Location(self.path, line, column)
        while current:
            if current in self.values:
                line, column = self.values[current]
                return Location(self.path, line, column)
            current = current[:-1]
        return Location(self.path, self.line, self.column)


class _TooLarge(Exception):
    pass


class _Unsupported(Exception):
    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class _Converter:
    """Turns ruamel's round-trip objects into plain data, recording positions."""

    def __init__(self, document: Document, limit: int) -> None:
        self.document = document
        self.limit = limit
        self.sizes: dict[int, int] = {}

    def expanded_size(self, node: Any) -> int:
        """How many values ``node`` becomes once aliases are expanded (memoised, linear)."""
        if not isinstance(node, (CommentedMap, CommentedSeq)):
            return 1
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        self.sizes[id(node)] = 1  # a self-referencing alias counts once, then is caught below
        children = node.values() if isinstance(node, CommentedMap) else node
        total = 1
        for child in children:
            total += self.expanded_size(child)
            if total > self.limit:
                raise _TooLarge
        self.sizes[id(node)] = total
        return total

    def convert(self, node: Any, path: PathKey, seen: frozenset[int] = frozenset()) -> Any:
        tag = getattr(node, "tag", None)
        tag = getattr(tag, "value", tag)
        if tag not in STANDARD_TAGS:
            raise _Unsupported(path, f"tags such as {tag.replace('tag:yaml.org,2002:', '!!')} are not allowed")
        if isinstance(node, CommentedMap):
            if id(node) in seen:
                raise _TooLarge
            inner = seen | {id(node)}
            out: dict[str, Any] = {}
            for key in node:
                text = self._key_text(key, path)
                child_path = (*path, text)
                self._record(node, key, child_path)
                out[text] = self.convert(node[key], child_path, inner)
            return out
        if isinstance(node, CommentedSeq):
            if id(node) in seen:
                raise _TooLarge
            inner = seen | {id(node)}
            items = []
            for index, item in enumerate(node):
                child_path = (*path, index)
                try:
                    line, column = node.lc.item(index)
                    self.document.values[child_path] = (line + 1, column + 1)
                except (KeyError, TypeError, AttributeError):
                    pass
                items.append(self.convert(item, child_path, inner))
            return items
        return self._scalar(node, path)

    def _record(self, node: CommentedMap, key: Any, path: PathKey) -> None:
        try:
            line, column = node.lc.key(key)
            self.document.keys[path] = (line + 1, column + 1)
            line, column = node.lc.value(key)
            self.document.values[path] = (line + 1, column + 1)
        except (KeyError, TypeError, AttributeError):
            pass

    @staticmethod
    def _key_text(key: Any, path: PathKey) -> str:
        if isinstance(key, (CommentedMap, CommentedSeq)) or hasattr(key, "tag"):
            raise _Unsupported(path, "a key must be plain text, not a mapping, a list or a tagged value")
        if key is None:
            return "null"
        if isinstance(key, bool):
            return "true" if key else "false"
        return str(key)

    @staticmethod
    def _scalar(value: Any, path: PathKey) -> Any:
        if value is None or isinstance(value, (bool, str)):
            return str(value) if isinstance(value, str) else value
        if isinstance(value, int):
            return int(value)
        if isinstance(value, float):
            return float(value)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        raise _Unsupported(path, "only text, numbers, true/false, lists and mappings are allowed here")


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def _decode(raw: bytes, relative: str, diagnostics: Diagnostics) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        column = exc.start - (before.rfind(b"\n") + 1) + 1
        diagnostics.error(
            Location(relative, line, column),
            f"the file is not UTF-8 text (byte 0x{raw[exc.start]:02x} cannot be read); save it as UTF-8",
        )
        return None
    return text.removeprefix("\ufeff")


def _syntax_message(exc: MarkedYAMLError) -> str:
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    if "\t" in problem or "'\\t'" in problem:
        return "tab characters cannot indent YAML; use spaces"
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem)
    if duplicate:
        first = exc.context_mark
        where = f" (first on line {first.line + 1})" if first is not None else ""
        return f"the key `{duplicate.group(1)}` appears twice in this mapping{where}; each key may appear once"
    context = f" {exc.context.strip()}" if exc.context and exc.problem else ""
    return f"YAML syntax error: {problem}{context}"


def _nesting_problem(text: str) -> tuple[int, int] | None:
    """The line and column where nesting gets deeper than ``MAX_DEPTH``, if it does.

    A cheap pre-scan, so that a hostile file never reaches the recursive parser.
    """
    depth = 0
    quote = ""
    for number, line in enumerate(text.splitlines(), start=1):
        indent = len(line) - len(line.lstrip(" "))
        if indent > MAX_DEPTH * 8:
            return number, indent + 1
        for column, char in enumerate(line, start=1):
            if quote:
                if char == quote:
                    quote = ""
            elif char in "\"'":
                quote = char
            elif char == "#" and (column == 1 or line[column - 2] in " \t"):
                break
            elif char in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    return number, column
            elif char in "]}":
                depth = max(0, depth - 1)
    return None


def parse_text(text: str, relative: str, diagnostics: Diagnostics) -> list[Document]:
    """Parse one file's text into documents; problems go to ``diagnostics``."""
    deep = _nesting_problem(text)
    if deep is not None:
        diagnostics.error(
            Location(relative, *deep), f"lists or mappings are nested more than {MAX_DEPTH} levels deep"
        )
        return []
    try:
        raw_documents = list(_yaml().load_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if exc.context_mark is not None and "end of stream" in (exc.problem or ""):
            mark = exc.context_mark
        location = Location(relative, mark.line + 1, mark.column + 1) if mark else Location(relative)
        diagnostics.error(location, _syntax_message(exc))
        return []
    except RecursionError:
        diagnostics.error(Location(relative, 1, 1), "the file nests lists or mappings too deeply")
        return []
    except YAMLError as exc:
        diagnostics.error(Location(relative, 1, 1), f"YAML error: {exc}")
        return []
    documents = []
    for index, raw in enumerate(raw_documents):
        document = Document(path=relative, index=index, data=None)
        if isinstance(raw, (CommentedMap, CommentedSeq)):
            document.line, document.column = raw.lc.line + 1, raw.lc.col + 1
        converter = _Converter(document, MAX_VALUES_PER_FILE)
        try:
            converter.expanded_size(raw)
            document.data = converter.convert(raw, ())
        except _TooLarge:
            diagnostics.error(
                document.locate(),
                f"the document expands to more than {MAX_VALUES_PER_FILE:,} values "
                "(anchors and aliases repeat content); write it out plainly",
            )
            continue
        except RecursionError:
            diagnostics.error(document.locate(), "the document nests lists or mappings too deeply")
            continue
        except _Unsupported as exc:
            diagnostics.error(document.locate(exc.path), exc.message)
            continue
        documents.append(document)
    return documents


def workspace_files(root: Path) -> Iterator[Path]:
    """The definition files of a workspace, in a stable order."""
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if len(relative.parts) > 1 and relative.parts[0] in IGNORED_DIRECTORIES:
            continue
        if path.suffix in (".yaml", ".yml") and path.is_file():
            yield path


def load_file(root: Path, path: Path, diagnostics: Diagnostics) -> list[Document]:
    """Read and parse one file of the workspace at ``root``."""
    relative = path.relative_to(root).as_posix()
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            diagnostics.error(
                Location(relative, 1, 1),
                f"the file is {size / 1024 / 1024:.1f} MB; definition files may be at most "
                f"{MAX_FILE_BYTES // 1024 // 1024} MB (split it into several files)",
            )
            return []
        raw = path.read_bytes()
    except OSError as exc:
        diagnostics.error(Location(relative), f"cannot read the file: {exc.strerror}")
        return []
    text = _decode(raw, relative, diagnostics)
    if text is None:
        return []
    documents = parse_text(text, relative, diagnostics)
    if not documents and not diagnostics.errors_in(relative):
        diagnostics.error(Location(relative, 1, 1), "the file is empty; it needs at least one document")
    return documents


def load_workspace(root: Path, diagnostics: Diagnostics) -> list[Document]:
    """Every document of the workspace at ``root``; routecard.yaml's comes first."""
    if not (root / WORKSPACE_FILE).is_file():
        diagnostics.error(
            Location(WORKSPACE_FILE),
            f"this folder is not a workspace: it has no {WORKSPACE_FILE} (create one with `routecard init`)",
        )
        return []
    files = list(workspace_files(root))
    if len(files) > MAX_FILES:
        diagnostics.error(Location("."), f"the workspace has {len(files)} YAML files; at most {MAX_FILES}")
        return []
    files.sort(key=lambda p: (p != root / WORKSPACE_FILE, p.as_posix()))
    documents: list[Document] = []
    for path in files:
        documents.extend(load_file(root, path, diagnostics))
    return documents
