"""Composing YAML into nodes (libyaml when available) and turning nodes into plain data.

The loader works on ruamel.yaml's node graph rather than on round-trip objects: the
C composer (``ruamel.yaml.clib``) is an order of magnitude faster than the round-trip
loader, and nodes carry the line and column of every key and value. Scalars are
resolved by YAML 1.2 core tags; any other tag (``!!python/...``, ``!custom``) is refused.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Protocol

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

try:  # libyaml bindings: optional, much faster
    from ruamel.yaml.cyaml import CSafeLoader as _CSafeLoader

    CSafeLoader: type[_CSafeLoader] | None = _CSafeLoader
except ImportError:  # pragma: no cover - depends on the platform's wheels
    CSafeLoader = None

PREFIX = "tag:yaml.org,2002:"
MAP, SEQ, OMAP = PREFIX + "map", PREFIX + "seq", PREFIX + "omap"
MERGE = PREFIX + "merge"

PathKey = tuple[str | int, ...]


class TooLarge(Exception):
    """The document expands (through aliases) beyond the limit, or refers to itself."""


class Unsupported(Exception):
    """A value the definition language does not take, at ``path`` in the document."""

    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


class Positions(Protocol):
    values: dict[PathKey, tuple[int, int]]
    keys: dict[PathKey, tuple[int, int]]


def compose_all(text: str) -> list[Node | None]:
    """The root node of each document in ``text`` (``None`` for an empty document).

    libyaml scans by YAML 1.1 rules, which differ from 1.2 in corners (``a: [9:00]``);
    when it refuses a text, the pure YAML 1.2 composer decides, and its error is reported.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. a reused anchor name, which YAML allows
        if CSafeLoader is not None:
            loader = CSafeLoader(text)
            try:
                roots = []
                while loader.check_node():
                    roots.append(loader.get_node())
                return roots
            except MarkedYAMLError:
                pass
            finally:
                loader.dispose()
        return list(YAML(typ="safe", pure=True).compose_all(text))


def tag_problem(tag: str) -> str:
    """The message for a value written with a tag the language does not take."""
    return f"the tag `{tag.replace(PREFIX, '!!')}` is not allowed; definitions are plain YAML without tags"


def scalar(node: ScalarNode, path: PathKey) -> Any:
    """A scalar node's value by its resolved YAML 1.2 core tag; timestamps stay text."""
    tag, value = node.tag, node.value
    if tag == PREFIX + "str" or tag == PREFIX + "timestamp":
        return str(value)
    if tag == PREFIX + "null":
        return None
    if tag == PREFIX + "bool":
        return value.lower() in ("true", "yes", "on")
    if tag == PREFIX + "int":
        text = value.replace("_", "")
        try:
            return int(text, 0)
        except ValueError:
            try:
                return int(text, 10)
            except ValueError:
                raise Unsupported(path, f"`{value}` is not a number") from None
    if tag == PREFIX + "float":
        text = value.replace("_", "").lower()
        if text.endswith(".inf") or text.endswith(".nan"):
            raise Unsupported(path, f"`{value}` is not a usable number")
        try:
            number = float(text)
        except ValueError:
            raise Unsupported(path, f"`{value}` is not a number") from None
        if not math.isfinite(number):
            raise Unsupported(path, f"`{value}` is not a usable number")
        return number
    raise Unsupported(path, tag_problem(str(tag)))


class NodeConverter:
    """Turns a node graph into plain data, recording the position of every key and value."""

    def __init__(self, positions: Positions, limit: int) -> None:
        self.positions = positions
        self.limit = limit
        self.sizes: dict[int, int] = {}

    def expanded_size(self, node: Node | None) -> int:
        """How many values ``node`` becomes with aliases expanded (memoised, so linear)."""
        if not isinstance(node, (MappingNode, SequenceNode)):
            return 1
        known = self.sizes.get(id(node))
        if known is not None:
            return known
        self.sizes[id(node)] = 1
        children: list[Node] = (
            [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else list(node.value)
        )
        total = 1
        for child in children:
            total += self.expanded_size(child)
            if total > self.limit:
                raise TooLarge
        self.sizes[id(node)] = total
        return total

    def convert(self, node: Node | None, path: PathKey = (), seen: frozenset[int] = frozenset()) -> Any:
        if node is None:
            return None
        if isinstance(node, ScalarNode):
            return scalar(node, path)
        if id(node) in seen:
            raise TooLarge
        inner = seen | {id(node)}
        if isinstance(node, SequenceNode):
            if node.tag not in (SEQ, OMAP):
                raise Unsupported(path, tag_problem(str(node.tag)))
            items = []
            for index, item in enumerate(node.value):
                child = (*path, index)
                self.positions.values[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
                items.append(self.convert(item, child, inner))
            return items
        if node.tag != MAP:
            raise Unsupported(path, tag_problem(str(node.tag)))
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:
                merged.extend(value_node.value if isinstance(value_node, SequenceNode) else [value_node])
                continue
            key = self._key(key_node, path)
            child = (*path, key)
            if key in first_line:
                self.positions.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                raise Unsupported(
                    child,
                    f"the key `{key}` appears twice in this mapping (first on line {first_line[key]}); "
                    "each key may appear once",
                )
            first_line[key] = key_node.start_mark.line + 1
            self.positions.keys[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            self.positions.values[child] = (value_node.start_mark.line + 1, value_node.start_mark.column + 1)
            out[key] = self.convert(value_node, child, inner)
        for source in merged:
            if not isinstance(source, MappingNode):
                raise Unsupported(path, "`<<` merges mappings only (an alias of a mapping, or a list of them)")
            for key, value in self.convert(source, path, inner).items():
                out.setdefault(key, value)
        return out

    @staticmethod
    def _key(node: Node, path: PathKey) -> str:
        if not isinstance(node, ScalarNode):
            raise Unsupported(path, "a key must be plain text, not a mapping or a list")
        value = scalar(node, path)
        if value is None:
            return "null"
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
