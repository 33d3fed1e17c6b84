"""The reference in docs/: current with the models, with a valid example per kind."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from engine.check import check_document
from engine.diagnostics import Diagnostics
from engine.docs import DOCS, KINDS, example_name, main, page_name, read_examples, reference_page, reference_pages
from engine.load import WORKSPACE_FILE, parse_text
from engine.schemas import WORKSPACE_KIND, generate_schemas
from engine.workspace import open_workspace


def test_reference_pages_are_current() -> None:
    """Fails when the models changed without ``python -m engine.docs`` being run."""
    expected = reference_pages(read_examples(DOCS))
    folder = DOCS / "reference"
    assert sorted(p.name for p in folder.glob("*.md")) == sorted(expected)
    for name, text in expected.items():
        assert (folder / name).read_text(encoding="utf-8") == text, f"docs/reference/{name} is stale; run `python -m engine.docs`"


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_has_a_valid_example(kind: str) -> None:
    path = DOCS / "examples" / example_name(kind)
    diagnostics = Diagnostics()
    # the workspace settings are only accepted from routecard.yaml
    documents = parse_text(path.read_text(encoding="utf-8"), WORKSPACE_FILE if kind == WORKSPACE_KIND else path.name,
                           diagnostics)
    assert documents
    for document in documents:
        assert document.data.get("kind") == kind
        assert check_document(document, diagnostics) is not None
    assert [str(d) for d in diagnostics.items] == []


def test_the_examples_together_form_a_valid_workspace(tmp_path: Path) -> None:
    for kind in KINDS:
        name = WORKSPACE_FILE if kind == WORKSPACE_KIND else example_name(kind)
        shutil.copyfile(DOCS / "examples" / example_name(kind), tmp_path / name)
    linked = open_workspace(tmp_path)
    assert set(linked.templates) == {"server_order"}


def test_pages_cover_nested_objects() -> None:
    schemas = generate_schemas()
    queue = reference_page("Queue", schemas)
    assert "## Keys" in queue
    assert "| `steps` | list of [Step](#step) (at least 1 item) | yes |  | The steps, in order. |" in queue
    assert "## Step\n" in queue
    assert "## Step action\n" in queue
    assert "| `skippable` | true or false |  | `true` | Whether the action may be skipped. |" in queue
    assert "## Example" not in queue  # no example given
    template = reference_page("Template", schemas)
    for section in ("## Field\n", "## Option\n", "## Numbering\n"):
        assert section in template
    assert '| `prefix` | text |  | `""` |' in template
    rule = reference_page("Rule", schemas)
    assert rule.count("## Condition\n") == 1  # recursive, described once
    for section in ("## Trigger\n", "## Action\n", "## Set field\n", "## Send email\n", "## Call plugin\n"):
        assert section in rule


def test_every_link_inside_a_page_has_its_section() -> None:
    for name, text in reference_pages({}).items():
        headings = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^## (.+)$", text, re.M)}
        for anchor in re.findall(r"\]\(#([^)]+)\)", text):
            assert anchor in headings, (name, anchor)


def test_index_links_every_reference_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for kind in KINDS:
        assert f"(reference/{page_name(kind)})" in index, kind
    assert (DOCS / "migrations.md").is_file()


def test_the_script_writes_the_pages(tmp_path: Path) -> None:
    shutil.copytree(DOCS / "examples", tmp_path / "examples")
    assert main([str(tmp_path)]) == 0
    written = sorted(p.name for p in (tmp_path / "reference").glob("*.md"))
    assert written == sorted(page_name(kind) for kind in KINDS)
    assert (tmp_path / "reference" / "group.md").read_text(encoding="utf-8") == (
        DOCS / "reference" / "group.md"
    ).read_text(encoding="utf-8")
