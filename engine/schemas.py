"""The JSON Schemas of the definition language, generated from ``engine.model``.

The msgspec Structs are the single source of truth. ``generate_schemas`` turns them
into one Draft 2020-12 schema file per kind plus ``common.schema.json`` (shared
``$defs``) and ``document.schema.json`` (any document, dispatched on ``kind``).
The copies published in ``definitions/`` are what ``routecard check`` validates
against; a test fails when they drift from the models (``routecard schema`` rewrites them).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import msgspec
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from .model import DOCUMENT_KINDS, Definition, Workspace

DRAFT = "https://json-schema.org/draft/2020-12/schema"
COMMON = "common.schema.json"
DOCUMENT = "document.schema.json"
WORKSPACE_KIND = "Workspace"


def schema_file(kind: str) -> str:
    """The file name of a kind's schema, e.g. ``template.schema.json``."""
    return f"{kind.lower()}.schema.json"


def _simplify(node: Any) -> Any:
    """Drop ``null`` alternatives (leaving a key out is how YAML says "none") and null defaults."""
    if isinstance(node, list):
        return [_simplify(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _simplify(value) for key, value in node.items()}
    if node.get("default", 0) is None:
        del node["default"]
    options = node.get("anyOf")
    if options is not None:
        options = [o for o in options if o != {"type": "null"}]
        if len(options) == 1:
            del node["anyOf"]
            only = dict(options[0])
            if "description" in node:
                only.pop("description", None)
                only.pop("examples", None)
            node = {**only, **node}
        else:
            node["anyOf"] = options
    return node


def generate_schemas() -> dict[str, dict[str, Any]]:
    """Every schema file of the language, by file name (pure; nothing is written)."""
    kinds: dict[str, type[Definition]] = {**DOCUMENT_KINDS, WORKSPACE_KIND: Workspace}
    _, components = msgspec.json.schema_components(
        list(kinds.values()), ref_template=COMMON + "#/$defs/{name}"
    )
    components = _simplify(components)
    kind_defs = {cls.__name__ for cls in kinds.values()}
    files: dict[str, dict[str, Any]] = {}
    files[COMMON] = {
        "$schema": DRAFT,
        "$id": COMMON,
        "title": "Routecard definitions: shared parts",
        "$defs": {name: body for name, body in sorted(components.items()) if name not in kind_defs},
    }
    for kind, cls in kinds.items():
        body = dict(components[cls.__name__])
        if kind == WORKSPACE_KIND:
            body["required"] = [r for r in body["required"] if r != "kind"]
        properties = body.get("properties", {})
        if "kind" in properties:
            properties["kind"] = {"description": f"The kind of this definition: {kind}.", **properties["kind"]}
        files[schema_file(kind)] = {"$schema": DRAFT, "$id": schema_file(kind), **body, "title": kind}
    files[DOCUMENT] = {
        "$schema": DRAFT,
        "$id": DOCUMENT,
        "title": "Any Routecard definition document",
        "type": "object",
        "required": ["kind"],
        "properties": {"kind": {"description": "The kind of definition this document holds.", "enum": list(kinds)}},
        "allOf": [
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": schema_file(kind)},
            }
            for kind in kinds
        ],
    }
    return files


def render(schema: dict[str, Any]) -> str:
    """A schema file's text, stable for diffs."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write the generated schema files into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in generate_schemas().items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def published_schemas() -> dict[str, dict[str, Any]]:
    """The schema files shipped in the ``definitions`` package, by file name."""
    folder = resources.files("definitions")
    return {
        entry.name: json.loads(entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".schema.json")
    }


@cache
def validators() -> dict[str, Draft202012Validator]:
    """A validator per kind (including Workspace), built from the published schemas."""
    schemas = published_schemas()
    registry: Registry = Registry().with_resources(
        (name, Resource.from_contents(schema)) for name, schema in schemas.items()
    )
    out = {}
    for kind in [*DOCUMENT_KINDS, WORKSPACE_KIND]:
        out[kind] = Draft202012Validator(
            schemas[schema_file(kind)],
            registry=registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
    return out


EDITOR_SCHEMAS = Path(".routecard") / "schemas"
"""Where ``routecard init`` puts the schemas an editor reads, inside the workspace (not read as definitions)."""


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow scenario file (``tests/*.yaml``), from its model."""
    from .scenarios import Scenario

    schema = msgspec.json.schema(Scenario)
    return {"$schema": DRAFT, "title": "Routecard workflow scenario", **schema}


def write_editor_settings(root: Path) -> list[Path]:
    """Schemas and ``.vscode/settings.json`` so a YAML language server completes and checks the workspace.

    Definition files are mapped to ``document.schema.json`` (which picks a kind's schema
    by ``kind:``); scenario files name their schema in a modeline
    (``# yaml-language-server: $schema=../.routecard/schemas/scenario.schema.json``).
    """
    folder = root / EDITOR_SCHEMAS
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in {**published_schemas(), "scenario.schema.json": scenario_schema()}.items():
        path = folder / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    settings = root / ".vscode" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    document = f"./{(EDITOR_SCHEMAS / DOCUMENT).as_posix()}"
    settings.write_text(json.dumps({"yaml.schemas": {document: ["*.yaml", "*/**/*.yaml"]}}, indent=2) + "\n",
                        encoding="utf-8")
    return [*written, settings]
