"""The definition-language reference: one Markdown page per kind, generated from the JSON Schemas.

The schemas are themselves generated from ``engine.model`` (``engine.schemas``), so the
reference, the editor completion and the checker all say the same thing. Each page
lists the kind's keys (type, required, default, description), then every nested
object the kind uses (steps, actions, fields, options, ...), then an example taken
from ``docs/examples/<kind>.yaml``.

``python -m engine.docs [DOCS_FOLDER]`` rewrites ``docs/reference/``; a test fails
when the pages there are not what this module generates.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import DOCUMENT_KINDS
from .model.common import (
    CLOCK_RANGE_PATTERN,
    DATE_PATTERN,
    DURATION_PATTERN,
    EMAIL_PATTERN,
    IDENTITY_PATTERN,
    LANGUAGE_PATTERN,
    PLUGIN_ACTION_PATTERN,
)
from .schemas import COMMON, WORKSPACE_KIND, generate_schemas, schema_file

DOCS = Path(__file__).resolve().parents[1] / "docs"
"""The repository's ``docs`` folder (the default target)."""

KINDS: tuple[str, ...] = (WORKSPACE_KIND, *DOCUMENT_KINDS)
"""Every kind with a reference page, in documentation order."""

_TYPE_WORDS = {
    "string": "text",
    "integer": "whole number",
    "number": "number",
    "boolean": "true or false",
    "null": "nothing",
}

_PATTERN_WORDS = {
    IDENTITY_PATTERN: "name",
    DURATION_PATTERN: "duration",
    EMAIL_PATTERN: "email address",
    PLUGIN_ACTION_PATTERN: "plugin action",
    LANGUAGE_PATTERN: "language code",
    CLOCK_RANGE_PATTERN: "time range",
    DATE_PATTERN: "date",
}
"""Text of a well-known form, named by what it is (its key's description says how to write it)."""


def _plural(words: str) -> str:
    """``name (at most 40 characters)`` -> ``names (at most 40 characters)``."""
    for singular in sorted(_PLURALS, key=len, reverse=True):
        if words == singular or words.startswith(singular + " ("):
            return _PLURALS[singular] + words[len(singular):]
    return words


_PLURALS = {
    **{word: word + "s" for word in ("name", "duration", "time range", "language code", "plugin action", "date")},
    "email address": "email addresses",
    "whole number": "whole numbers",
    "number": "numbers",
}


def page_name(kind: str) -> str:
    """The reference page of a kind, e.g. ``template.md``."""
    return f"{kind.lower()}.md"


def example_name(kind: str) -> str:
    """The example file of a kind, e.g. ``template.yaml``."""
    return f"{kind.lower()}.yaml"


def _title(definition: str) -> str:
    """``StepAction`` -> ``Step action``; ``SlaTargets`` -> ``SLA targets``."""
    words = re.findall(r"[A-Z][a-z0-9]*", definition) or [definition]
    text = " ".join([words[0], *(w.lower() for w in words[1:])])
    return re.sub(r"\bSla\b", "SLA", text)


def _anchor(title: str) -> str:
    """The anchor a Markdown renderer (GitHub, MkDocs) gives a heading."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _code(value: Any) -> str:
    if value == "":
        return '`""`'
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(_plain(value), ensure_ascii=False)
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _plain(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Page:
    """Renders one kind's page; collects the nested objects it refers to."""

    def __init__(self, defs: Mapping[str, Any]) -> None:
        self.defs = defs
        self.pending: list[str] = []
        self.seen: set[str] = set()

    def link(self, ref: str) -> str:
        name = ref.rsplit("/", 1)[-1]
        if name not in self.seen:
            self.seen.add(name)
            self.pending.append(name)
        title = _title(name)
        return f"[{title}](#{_anchor(title)})"

    def type_of(self, node: Any) -> str:
        if not isinstance(node, dict) or not node:
            return "any value"
        if "$ref" in node:
            return self.link(node["$ref"])
        if "anyOf" in node:
            return " or ".join(self.type_of(option) for option in node["anyOf"])
        if "enum" in node:
            values = node["enum"]
            if len(values) == 1:
                return _code(values[0])
            return "one of " + ", ".join(_code(v) for v in values)
        if "const" in node:
            return _code(node["const"])
        kind: str | list[str] | None = node.get("type")
        if kind == "array":
            inner = self.type_of(node.get("items"))
            words = f"list of ({inner})" if " or " in inner else f"list of {_plural(inner)}"
        elif kind == "object":
            values = node.get("additionalProperties")
            words = f"mapping of names to {self.type_of(values)}" if isinstance(values, dict) else "mapping"
        elif isinstance(kind, list):
            words = " or ".join(_TYPE_WORDS.get(k, k) for k in kind)
        elif kind is None:
            return "any value"
        elif kind == "string" and node.get("pattern") in _PATTERN_WORDS:
            return _PATTERN_WORDS[node["pattern"]]  # its limits are part of the form
        else:
            words = _TYPE_WORDS.get(kind, kind)
        limits = self.limits(node)
        return f"{words} ({limits})" if limits else words

    @staticmethod
    def limits(node: Mapping[str, Any]) -> str:
        out = []
        if node.get("minLength", 0) > 1:
            out.append(f"at least {node['minLength']} characters")
        if "maxLength" in node:
            out.append(f"at most {node['maxLength']} characters")
        if "minItems" in node:
            n = node["minItems"]
            out.append(f"at least {n} item{'s' if n != 1 else ''}")
        if "maxItems" in node:
            out.append(f"at most {node['maxItems']} items")
        if "minimum" in node:
            out.append(f"at least {node['minimum']}")
        if "maximum" in node:
            out.append(f"at most {node['maximum']}")
        return ", ".join(out)

    def table(self, schema: Mapping[str, Any], kind: str | None = None) -> list[str]:
        rows = [
            "| Key | Type | Required | Default | Description |",
            "| --- | --- | --- | --- | --- |",
        ]
        required = set(schema.get("required", []))
        for key, node in schema.get("properties", {}).items():
            description = str(node.get("description", ""))
            if key == "kind" and kind is not None and not description:
                description = f"Says what the document defines: always `{kind}`."
            default = _code(node["default"]) if "default" in node else ""
            rows.append(
                f"| `{key}` | {_cell(self.type_of(node))} | {'yes' if key in required else ''} "
                f"| {_cell(default)} | {_cell(description)} |"
            )
        return rows


def reference_page(kind: str, schemas: Mapping[str, Any], example: str | None = None) -> str:
    """The Markdown reference page of ``kind`` (pure)."""
    schema = schemas[schema_file(kind)]
    page = _Page(schemas[COMMON]["$defs"])
    lines = [f"# {kind}", "", str(schema.get("description", "")).strip(), ""]
    if kind == WORKSPACE_KIND:
        lines.append(
            "The settings of the whole workspace. They live in `routecard.yaml` at the top of the "
            "workspace folder, which holds exactly this one document; `kind: Workspace` may be left out there."
        )
    else:
        lines.append(
            f"A document of this kind starts with `kind: {kind}`. It may sit in any `.yaml` file of the "
            "workspace, alone or with other documents (separated by `---`)."
        )
    lines += [
        "",
        f"JSON Schema: [`definitions/{schema_file(kind)}`](../../definitions/{schema_file(kind)}) "
        "(for completion and checking in an editor with a YAML language server).",
        "",
        "## Keys",
        "",
        *page.table(schema, kind),
    ]
    while page.pending:
        name = page.pending.pop(0)
        definition = page.defs[name]
        lines += ["", f"## {_title(name)}", ""]
        description = str(definition.get("description", "")).strip()
        if description:
            lines += [description, ""]
        lines += page.table(definition)
    if example is not None:
        lines += ["", "## Example", "", "```yaml", example.rstrip("\n"), "```"]
    lines += [
        "",
        "---",
        "",
        "Generated by `python -m engine.docs` from the definition models; do not edit by hand.",
        "",
    ]
    return "\n".join(lines)


def reference_pages(examples: Mapping[str, str], schemas: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Every reference page by file name, with the examples given by kind (pure)."""
    schemas = schemas if schemas is not None else generate_schemas()
    return {page_name(kind): reference_page(kind, schemas, examples.get(kind)) for kind in KINDS}


def read_examples(docs: Path = DOCS) -> dict[str, str]:
    """The example of each kind found in ``docs/examples``, by kind."""
    out = {}
    for kind in KINDS:
        path = docs / "examples" / example_name(kind)
        if path.is_file():
            out[kind] = path.read_text(encoding="utf-8")
    return out


def write_reference(docs: Path = DOCS) -> list[Path]:
    """Rewrite ``docs/reference/*.md``; return the files written."""
    folder = docs / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in reference_pages(read_examples(docs)).items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m engine.docs [DOCS_FOLDER]``: rewrite the reference pages."""
    parser = argparse.ArgumentParser(prog="python -m engine.docs", description=main.__doc__)
    parser.add_argument("docs", nargs="?", type=Path, default=DOCS, help="the docs folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in write_reference(args.docs):
        print(path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
