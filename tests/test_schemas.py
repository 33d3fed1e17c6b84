"""The published JSON Schemas: current with the models, described, valid, and dispatching on kind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from engine.model import DOCUMENT_KINDS
from engine.schemas import COMMON, DOCUMENT, DRAFT, WORKSPACE_KIND, generate_schemas, render, schema_file

DEFINITIONS = Path(__file__).resolve().parents[1] / "definitions"
GENERATED = generate_schemas()

KNOWN_UNDESCRIBED: frozenset[tuple[str, str]] = frozenset()
"""Properties still without a description (to be fixed in engine/model and engine/schemas).

The test below fails on any property missing from this list, and on any entry here
that has since been described, so the list can only shrink.
"""


def test_published_schemas_are_current() -> None:
    """Fails when the models changed without ``routecard schema`` being run."""
    published = {path.name: path.read_text(encoding="utf-8") for path in DEFINITIONS.glob("*.schema.json")}
    assert sorted(published) == sorted(GENERATED), "run `routecard schema` to rewrite definitions/"
    for name, schema in GENERATED.items():
        assert published[name] == render(schema), f"definitions/{name} is stale; run `routecard schema`"


def test_one_schema_per_kind() -> None:
    expected = {schema_file(kind) for kind in [*DOCUMENT_KINDS, WORKSPACE_KIND]} | {COMMON, DOCUMENT}
    assert set(GENERATED) == expected
    for kind in [*DOCUMENT_KINDS, WORKSPACE_KIND]:
        schema = GENERATED[schema_file(kind)]
        assert schema["title"] == kind
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert schema["properties"]["kind"]["enum"] == [kind]


def _properties(node: Any, owner: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (owner.key, schema) of ``properties`` below ``node``, skipping ``if`` tests."""
    if isinstance(node, list):
        for item in node:
            yield from _properties(item, owner)
        return
    if not isinstance(node, dict):
        return
    for key, value in (node.get("properties") or {}).items():
        yield (f"{owner}.{key}" if owner else key), value
    for key, value in node.items():
        if key == "if":
            continue
        if key == "$defs":
            for name, body in value.items():
                yield from _properties(body, name)
        elif key != "properties":
            yield from _properties(value, owner)
        else:
            for name, body in value.items():
                yield from _properties(body, f"{owner}.{name}" if owner else name)


def test_every_property_has_a_description() -> None:
    undescribed = {
        (file, where)
        for file, schema in GENERATED.items()
        for where, body in _properties(schema, "")
        if not (isinstance(body, dict) and str(body.get("description", "")).strip())
    }
    assert sorted(undescribed - KNOWN_UNDESCRIBED) == [], "describe these keys in engine/model (describe(...))"
    assert sorted(KNOWN_UNDESCRIBED - undescribed) == [], "these are described now; drop them from the list"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_each_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = GENERATED[name]
    assert schema["$schema"] == DRAFT
    assert schema["$id"] == name
    Draft202012Validator.check_schema(schema)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _registry() -> Registry:
    return Registry().with_resources(
        (name, Resource.from_contents(schema)) for name, schema in GENERATED.items()
    )


def test_every_reference_resolves() -> None:
    resolver = _registry().resolver()
    refs = {ref for schema in GENERATED.values() for ref in _refs(schema)}
    assert refs
    for ref in sorted(refs):
        resolved = resolver.lookup(ref)
        assert isinstance(resolved.contents, dict), ref


def _document_validator() -> Draft202012Validator:
    return Draft202012Validator(GENERATED[DOCUMENT], registry=_registry())


def test_document_schema_lists_every_kind() -> None:
    schema = GENERATED[DOCUMENT]
    kinds = [*DOCUMENT_KINDS, WORKSPACE_KIND]
    assert schema["properties"]["kind"]["enum"] == kinds
    branches = {b["if"]["properties"]["kind"]["const"]: b["then"]["$ref"] for b in schema["allOf"]}
    assert branches == {kind: schema_file(kind) for kind in kinds}


@pytest.mark.parametrize(
    ("document", "problems"),
    [
        ({"kind": "Group", "name": "sales"}, []),
        ({"kind": "Workspace", "name": "w"}, []),
        ({"kind": "Template", "name": "t", "fields": [{"name": "a", "type": "input"}]}, []),
        # the Group schema applies: `steps` is no key of a group
        ({"kind": "Group", "name": "sales", "steps": []}, ["Additional properties"]),
        # the Queue schema applies: it needs steps and templates
        ({"kind": "Queue", "name": "q"}, ["'templates' is a required property", "'steps' is a required property"]),
        ({"kind": "Grup", "name": "sales"}, ["'Grup' is not one of"]),
        ({"name": "sales"}, ["'kind' is a required property"]),
    ],
)
def test_document_schema_dispatches_on_kind(document: dict[str, Any], problems: list[str]) -> None:
    messages = sorted(e.message for e in _document_validator().iter_errors(document))
    assert len(messages) == len(problems), messages
    for problem in problems:
        assert any(problem in message for message in messages), (problem, messages)
