"""Stage 1, load: read a workspace's YAML files, keeping the file:line:col of every value.

The loader is defensive: it refuses files that are too large or not UTF-8, YAML
syntax errors, duplicate keys, language-specific tags, documents that expand (through
anchors and aliases) into more values than any real definition has, and nesting
deep enough to exhaust the stack. Each problem becomes a located ``Diagnostic``.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, SequenceNode

from .diagnostics import Diagnostics, Location

WORKSPACE_FILE = "routecard.yaml"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 2000
MAX_VALUES_PER_FILE = 250_000
MAX_DEPTH = 64
STANDARD_TAGS = frozenset(
    {None, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:omap", "tag:yaml.org,2002:str"}
)
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
            written = str(tag).replace("tag:yaml.org,2002:", "!!")
            raise _Unsupported(path, f"the tag `{written}` is not allowed; definitions are plain YAML without tags")
        if isinstance(node, TaggedScalar):  # !!str, the only tagged scalar allowed
            return str(node.value)
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


_SYNTAX_MESSAGES: tuple[tuple[str, str], ...] = (
    (
        r"found character '\\t' that cannot start any token",
        "a tab character; YAML is indented and separated with spaces, not tabs (replace the tab with spaces)",
    ),
    (
        r"found unexpected end of stream",  # while scanning a quoted scalar
        "this quoted text is never closed; add the closing quote",
    ),
    (
        r"expected ',' or '\]', but got '<stream end>'",
        "this list (`[`) is never closed; add `]`",
    ),
    (
        r"expected ',' or '\]', but got",
        "expected `,` or `]` in the list opened at {context}; is the closing `]` missing?",
    ),
    (
        r"expected ',' or '\}', but got '<stream end>'",
        "this mapping (`{{`) is never closed; add `}}`",
    ),
    (
        r"expected ',' or '\}', but got",
        "expected `,` or `}}` in the mapping opened at {context}; is the closing `}}` missing?",
    ),
    (
        r"expected <block end>, but found",
        "this line is indented differently from the lines before it; the keys of one mapping "
        "(and the items of one list) must start in the same column",
    ),
    (
        r"mapping values are not allowed here",
        "unexpected `:` here; check this line's indentation, or put the value in quotes if it contains `: `",
    ),
    (
        r"sequence entries are not allowed here",
        "a list item (`- `) cannot start here; check this line's indentation",
    ),
    (
        r"could not find expected ':'",  # while scanning a simple key
        "this line is neither `key: value` nor a list item (`- value`); is a `:` missing?",
    ),
    (
        r"found undefined alias '(?P<name>[^']*)'",
        "the alias `*{name}` refers to no anchor `&{name}` defined before it",
    ),
    (
        r"found unknown escape character '(?P<char>.)'",
        "`\\{char}` is not an escape sequence in double quotes; use single quotes, or write `\\\\`",
    ),
    (
        r"found character '(?P<char>.)' that cannot start any token",
        "a value cannot start with `{char}`; put the value in quotes",
    ),
    (
        r"expected chomping or indentation indicators",
        "after `|` or `>` only `-`, `+` or an indentation digit may follow on the same line; "
        "start the text on the next line",
    ),
)
"""The parser's words for common mistakes, and what an admin reads instead."""

_USE_CONTEXT_MARK = ("found unexpected end of stream", "but got '<stream end>'", "could not find expected ':'")
"""Problems whose cause is where the construct began, not where the parser gave up."""


def _syntax_error(exc: MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Line, column and message of a YAML syntax error, in an admin's words."""
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and any(p in problem for p in _USE_CONTEXT_MARK):
        mark = exc.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    duplicate = re.match(r'found duplicate key "(.*?)" with value', problem, re.S)
    if duplicate:
        key = duplicate.group(1)
        first = _first_key(text, exc.context_mark, key)
        where = f" (first on line {first})" if first is not None else ""
        return line, column, f"the key `{key}` appears twice in this mapping{where}; each key may appear once"
    context = exc.context_mark
    opened = f"line {context.line + 1}, column {context.column + 1}" if context is not None else "the start"
    for pattern, message in _SYNTAX_MESSAGES:
        found = re.search(pattern, problem)
        if found:
            return line, column, message.format(context=opened, **found.groupdict())
    why = f" ({exc.context.strip()})" if exc.context and exc.problem else ""
    return line, column, f"YAML syntax error: {problem}{why}"


def _first_key(text: str, mapping_mark: Any, key: str) -> int | None:
    """The line of the first ``key`` in the mapping starting at ``mapping_mark``, if found."""
    if mapping_mark is None:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            roots = list(_yaml().compose_all(text))
    except (YAMLError, RecursionError):
        return None
    stack: list[Node] = [r for r in roots if r is not None]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            start = node.start_mark
            if (start.line, start.column) == (mapping_mark.line, mapping_mark.column):
                for key_node, _ in node.value:
                    if str(key_node.value) == key:
                        return int(key_node.start_mark.line) + 1
                return None
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, SequenceNode):
            stack.extend(node.value)
    return None


_BLOCK_SCALAR = re.compile(r"(^|[\s:])[|>][-+1-9]{0,2}\s*(#.*)?$")


def _nesting_problem(text: str) -> tuple[int, int] | None:
    """The line and column where nesting gets deeper than ``MAX_DEPTH``, if it does.

    A cheap pre-scan, so that a hostile file never reaches the recursive parser. It
    counts open brackets (flow style) and open indentation levels and leading ``- ``
    (block style); it may count a little high, never by enough to refuse a real file.
    """
    flow = 0
    quote = ""
    indents: list[int] = []
    block_scalar: int | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.lstrip(" ")
        indent = len(line) - len(content)
        if indent > MAX_DEPTH * 8:
            return number, indent + 1
        if block_scalar is not None:
            if not content or indent > block_scalar:
                continue
            block_scalar = None
        if not quote and not flow and content and not content.startswith("#"):
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
            dashes = re.match(r"(-(?: +|$))*", content)
            items = dashes.group(0).count("-") if dashes else 0
            if len(indents) + items > MAX_DEPTH:
                return number, indent + 1
        for column, char in enumerate(line, start=1):
            previous = line[column - 2] if column > 1 else " "
            if quote:
                if char == quote and not (quote == '"' and previous == "\\"):
                    quote = ""
            elif char in "\"'" and previous in " \t[{,:-":
                quote = char
            elif char == "#" and previous in " \t":
                break
            elif char in "[{":
                flow += 1
                if flow > MAX_DEPTH:
                    return number, column
            elif char in "]}":
                flow = max(0, flow - 1)
        if not quote and not flow and _BLOCK_SCALAR.search(line):
            block_scalar = indent
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. a reused anchor name, which YAML allows
            raw_documents = list(_yaml().load_all(text))
    except MarkedYAMLError as exc:
        line, column, message = _syntax_error(exc, text)
        diagnostics.error(Location(relative, line, column), message)
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
