"""Stage 1, load: read a workspace's YAML files, keeping the file:line:col of every value.

The loader is defensive: it refuses files that are too large or not UTF-8, YAML
syntax errors, duplicate keys, language-specific tags, documents that expand (through
anchors and aliases) into more values than any real definition has, and nesting
deep enough to exhaust the stack. Each problem becomes a located ``Diagnostic``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import ScalarNode

from .diagnostics import Diagnostics, Location
from .yamlnodes import PREFIX, NodeConverter, TooLarge, Unsupported, compose_all

NULL_TAG = PREFIX + "null"

WORKSPACE_FILE = "routecard.yaml"
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_FILES = 2000
MAX_VALUES_PER_FILE = 250_000
MAX_DEPTH = 64
IGNORED_DIRECTORIES = frozenset({"tests", "demo", "node_modules", "__pycache__"})
"""Top-level folders of a workspace that hold no definitions (``tests``: scenarios, ``demo``: demo data)."""

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


_INDENTATION = (
    "this line is indented differently from the lines before it; the keys of one mapping "
    "(and the items of one list) must start in the same column"
)
_TAB = "a tab character; YAML is indented and separated with spaces, not tabs (replace the tab with spaces)"


def _char_at(text: str, line: int, column: int) -> str:
    """The character at a 0-based line and column of ``text``, or an empty string."""
    lines = text.split("\n")
    return lines[line][column] if line < len(lines) and column < len(lines[line]) else ""


def _rest_is_blank(text: str, line: int, column: int) -> bool:
    lines = text.split("\n")
    if line >= len(lines):
        return True
    return not (lines[line][column:] + "".join(lines[line + 1 :])).strip()


def _syntax_error(exc: MarkedYAMLError, text: str) -> tuple[int, int, str]:
    """Line, column (1-based) and message of a YAML syntax error, in an admin's words.

    Understands the wording of both ruamel's pure-Python parser and libyaml's.
    """
    problem = (exc.problem or exc.context or "invalid YAML").strip()
    context = (exc.context or "").strip()
    mark = exc.problem_mark or exc.context_mark
    line, column = (mark.line, mark.column) if mark is not None else (0, 0)
    start = exc.context_mark
    opened = f"line {start.line + 1}, column {start.column + 1}" if start is not None else "the start"

    def at(message: str, where: Any = None) -> tuple[int, int, str]:
        if where is not None:
            return where.line + 1, where.column + 1, message
        return line + 1, column + 1, message

    char = _char_at(text, line, column)
    if "cannot start any token" in problem:
        if char == "\t":
            return at(_TAB)
        return at(f"a value cannot start with `{char}`; put the value in quotes" if char.strip() else problem)
    if "tab character" in problem:
        return at(_TAB)
    if "end of stream" in problem and "quoted scalar" in context:
        return at("this quoted text is never closed; add the closing quote", start)
    for close, what in (("]", "list"), ("}", "mapping")):
        if f"',' or '{close}'" in problem:
            opener = "[" if close == "]" else "{"
            if "<stream end>" in problem or _rest_is_blank(text, line, column):
                return at(f"this {what} (`{opener}`) is never closed; add `{close}`", start)
            return at(f"expected `,` or `{close}` in the {what} opened at {opened}; is the closing `{close}` missing?")
    if "expected <block end>" in problem or "did not find expected key" in problem or "'-' indicator" in problem:
        return at(_INDENTATION)
    if "found unexpected ':'" in problem and "plain scalar" in context:
        value = text.split("\n")[start.line][start.column :] if start is not None else ""
        shown = re.split(r"[,\]}]", value)[0].strip() or "value"
        return at(f"a `:` inside a value in `[...]` or `{{...}}`; put the value in quotes, e.g. \"{shown}\"", start)
    if "duplicate anchor" in problem or "duplicate anchor" in context:
        name = re.match(r"&([^\s,\]}]+)", text.split("\n")[line][column:]) if line < len(text.split("\n")) else None
        anchor = f" `&{name.group(1)}`" if name else ""
        first = f" (first on line {start.line + 1})" if start is not None else ""
        return at(f"the anchor{anchor} is defined twice in this file{first}; give each anchor its own name")
    if "mapping values are not allowed" in problem:
        return at("unexpected `:` here; check this line's indentation, or put the value in quotes if it contains `: `")
    if "sequence entries are not allowed" in problem:
        return at("a list item (`- `) cannot start here; check this line's indentation")
    if "could not find expected ':'" in problem:
        return at("this line is neither `key: value` nor a list item (`- value`); is a `:` missing?", start)
    if "undefined alias" in problem:
        name = re.match(r"\*?([^\s,\]}]*)", text.split("\n")[line][column:] if line < len(text.split("\n")) else "")
        alias = name.group(1) if name else ""
        return at(f"the alias `*{alias}` refers to no anchor `&{alias}` defined before it")
    if "unknown escape character" in problem:
        if char != "\\" and column > 0 and _char_at(text, line, column - 1) == "\\":
            column -= 1  # point at the backslash, as libyaml does
        escape = _char_at(text, line, column + 1)
        return at(f"`\\{escape}` is not an escape sequence in double quotes; use single quotes, or write `\\\\`")
    if "block scalar" in context and ("indicators" in problem or "comment or line break" in problem):
        return at(
            "after `|` or `>` only `-`, `+` or an indentation digit may follow on the same line; "
            "start the text on the next line"
        )
    why = f" ({context})" if exc.context and exc.problem else ""
    return at(f"YAML syntax error: {problem}{why}")


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
        roots = list(compose_all(text))
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
    for index, root in enumerate(roots):
        document = Document(path=relative, index=index, data=None)
        if root is not None:
            document.line, document.column = root.start_mark.line + 1, root.start_mark.column + 1
            if isinstance(root, ScalarNode) and root.tag == NULL_TAG and not root.value:
                # an empty document: point at its `---`, the line before the (empty) node
                document.line, document.column = max(1, root.start_mark.line), 1
        converter = NodeConverter(document, MAX_VALUES_PER_FILE)
        try:
            converter.expanded_size(root)
            document.data = converter.convert(root)
        except TooLarge:
            diagnostics.error(
                document.locate(),
                f"the document expands to more than {MAX_VALUES_PER_FILE:,} values "
                "(anchors and aliases repeat content); write it out plainly",
            )
            continue
        except RecursionError:
            diagnostics.error(document.locate(), "the document nests lists or mappings too deeply")
            continue
        except (ValueError, TypeError, OverflowError) as exc:  # a safety net: never a traceback
            diagnostics.error(document.locate(), f"a value in this document cannot be read ({exc})")
            continue
        except Unsupported as exc:
            diagnostics.error(document.locate(exc.path, key="appears twice" in exc.message), exc.message)
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
