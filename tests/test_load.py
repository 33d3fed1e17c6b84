"""engine.load: YAML to documents with the position of every value, and the safety limits."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from engine.diagnostics import Diagnostics, Location
from engine.load import MAX_DEPTH, load_file, load_workspace, parse_text, workspace_files


def parse(text: str) -> tuple[list, list[str]]:
    diagnostics = Diagnostics()
    documents = parse_text(text, "f.yaml", diagnostics)
    return documents, [str(d) for d in diagnostics.items]


def test_positions_of_values_and_keys() -> None:
    text = "kind: Queue\nname: q\nsteps:\n  - name: one\n    actions:\n      - {name: a, label: A}\n"
    (document,), errors = parse(text)
    assert errors == []
    assert document.data == {
        "kind": "Queue",
        "name": "q",
        "steps": [{"name": "one", "actions": [{"name": "a", "label": "A"}]}],
    }
    assert document.kind == "Queue"
    assert (document.line, document.column) == (1, 1)
    assert document.locate(["name"]) == Location("f.yaml", 2, 7)
    assert document.locate(["name"], key=True) == Location("f.yaml", 2, 1)
    assert document.locate(["steps", 0]) == Location("f.yaml", 4, 5)
    assert document.locate(["steps", 0, "actions", 0, "label"]) == Location("f.yaml", 6, 26)
    assert document.locate(["steps", 0, "actions", 0, "label"], key=True) == Location("f.yaml", 6, 19)
    # a path that does not exist falls back to the nearest enclosing value
    assert document.locate(["steps", 0, "missing", 3]) == Location("f.yaml", 4, 5)
    assert document.locate([]) == Location("f.yaml", 1, 1)


def test_several_documents_in_one_file() -> None:
    documents, errors = parse("kind: Group\nname: a\n---\n# second\nkind: Group\nname: b\n")
    assert errors == []
    assert [(d.index, d.data["name"], d.line) for d in documents] == [(0, "a", 1), (1, "b", 5)]


def test_scalars_become_plain_data() -> None:
    text = (
        "a: 2024-05-01\nb: 1_000\nc: 0x10\nd: 1.5\ne: yes\nf: true\ng: ~\nh: !!str 123\n"
        "i: 'quoted'\nj: |\n  two\n  lines\n"
    )
    (document,), errors = parse(text)
    assert errors == []
    assert document.data == {
        "a": "2024-05-01",
        "b": 1000,
        "c": 16,
        "d": 1.5,
        "e": "yes",  # YAML 1.2: only true/false are booleans
        "f": True,
        "g": None,
        "h": "123",
        "i": "quoted",
        "j": "two\nlines\n",
    }
    assert type(document.data["b"]) is int
    assert type(document.data["h"]) is str


def test_anchors_and_merge_keys_are_expanded() -> None:
    text = "base: &base {a: 1, b: 2}\nother:\n  <<: *base\n  b: 3\nlist: &l [x, y]\ncopy: *l\n"
    (document,), errors = parse(text)
    assert errors == []
    assert document.data["other"] == {"a": 1, "b": 3}
    assert document.data["copy"] == ["x", "y"]


def test_reused_anchor_names_are_allowed_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (document,), errors = parse("a: &x 1\nb: &x 2\nc: *x\n")
    assert errors == []
    assert document.data == {"a": 1, "b": 2, "c": 2}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a:\n\t- x\n", "f.yaml:2:1: error: a tab character; YAML is indented and separated with spaces, "
         "not tabs (replace the tab with spaces)"),
        ("a: 'abc\nb: 1\n", "f.yaml:1:4: error: this quoted text is never closed; add the closing quote"),
        ("a: [1, 2", "f.yaml:1:4: error: this list (`[`) is never closed; add `]`"),
        ("a: {x: 1\n", "f.yaml:1:4: error: this mapping (`{`) is never closed; add `}`"),
        ("a: {x: 1\nb: 2\n", "f.yaml:2:2: error: expected `,` or `}` in the mapping opened at line 1, column 4; "
         "is the closing `}` missing?"),
        ("a: @x\n", "f.yaml:1:4: error: a value cannot start with `@`; put the value in quotes"),
        ('a: "\\q"\n', "f.yaml:1:5: error: `\\q` is not an escape sequence in double quotes; use single quotes, "
         "or write `\\\\`"),
        ("a: |x\n  t\n", "f.yaml:1:5: error: after `|` or `>` only `-`, `+` or an indentation digit may follow "
         "on the same line; start the text on the next line"),
        ("a: b: c\n", "f.yaml:1:5: error: unexpected `:` here; check this line's indentation, or put the value "
         "in quotes if it contains `: `"),
        ("a: {x: 1, y: 2, x: 3}\n", "f.yaml:1:17: error: the key `x` appears twice in this mapping "
         "(first on line 1); each key may appear once"),
        ("a:\n  - 1\n - 2\n", "f.yaml:3:2: error: this line is indented differently from the lines before it; "
         "the keys of one mapping (and the items of one list) must start in the same column"),
    ],
)
def test_syntax_errors_in_plain_words(text: str, expected: str) -> None:
    documents, errors = parse(text)
    assert documents == []
    assert errors == [expected]


def test_unknown_syntax_errors_keep_the_parser_words() -> None:
    _, errors = parse("a: !<tag:x\n")
    assert len(errors) == 1
    assert errors[0].startswith("f.yaml:1:")
    assert ": error: " in errors[0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: !!python/name:os.system\n", "f.yaml:1:4: error: the tag `!!python/name:os.system` is not allowed; "
         "definitions are plain YAML without tags"),
        ("a: !!set {x, y}\n", "f.yaml:1:4: error: the tag `!!set` is not allowed; "
         "definitions are plain YAML without tags"),
        ("a:\n  b: !env HOME\n", "f.yaml:2:6: error: the tag `!env` is not allowed; "
         "definitions are plain YAML without tags"),
        ("a: !!binary aGVsbG8=\n", "f.yaml:1:4: error: the tag `!!binary` is not allowed; "
         "definitions are plain YAML without tags"),
        ("a: !!int x\n", "f.yaml:1:4: error: `x` is not a number"),
        ("a: .inf\n", "f.yaml:1:4: error: `.inf` is not a usable number"),
        ("? [a, b]\n: 1\n", "f.yaml:1:1: error: a key must be plain text, not a mapping or a list"),
    ],
)
def test_unsupported_values(text: str, message: str) -> None:
    documents, errors = parse(text)
    assert documents == []
    assert errors == [message]


@pytest.mark.parametrize("text", ["a: !!float x\n", "a: !!int 0x\n", "a: !!bool maybe\n", "a: 1e999\n"])
def test_odd_scalars_give_a_located_error_not_a_traceback(text: str) -> None:
    documents, errors = parse(text)
    assert documents == [] or documents[0].data["a"] is not None
    assert len(errors) <= 1
    assert all(e.startswith("f.yaml:1:") and ": error: " in e for e in errors)


def test_only_the_bad_document_of_a_file_is_dropped() -> None:
    documents, errors = parse("a: 1\n---\nb: !!python/none x\n---\nc: 3\n")
    assert [d.data for d in documents] == [{"a": 1}, {"c": 3}]
    assert errors == ["f.yaml:3:4: error: the tag `!!python/none` is not allowed; definitions are plain YAML without tags"]


def test_billion_laughs_finishes_with_one_error() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, previous in zip("bcdefghij", "abcdefghi"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    documents, errors = parse("\n".join(lines))
    assert documents == []
    assert errors == [
        "f.yaml:1:1: error: the document expands to more than 250,000 values "
        "(anchors and aliases repeat content); write it out plainly"
    ]


def test_moderate_reuse_through_aliases_is_fine() -> None:
    (document,), errors = parse("a: &a [1, 2, 3]\nb: [*a, *a, *a]\n")
    assert errors == []
    assert document.data["b"] == [[1, 2, 3]] * 3


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: " + "[" * 100 + "]" * 100, (1, 4 + MAX_DEPTH)),
        ("a: " + "{b: " * 100 + "1" + "}" * 100, (1, 4 + 4 * MAX_DEPTH)),
        ("- " * 500 + "x", (1, 1)),
        ("".join(" " * i + "a:\n" for i in range(200)), (MAX_DEPTH + 1, MAX_DEPTH + 1)),
        ("a:" + " " * 1000 + "\n" + " " * 1000 + "b: 1\n", (2, 1001)),
    ],
)
def test_deep_nesting_is_refused_before_parsing(text: str, where: tuple[int, int]) -> None:
    documents, errors = parse(text)
    assert documents == []
    line, column = where
    assert errors == [f"f.yaml:{line}:{column}: error: lists or mappings are nested more than 64 levels deep"]


def test_brackets_in_text_and_indented_block_text_are_not_nesting() -> None:
    block = "".join("    " + " " * i + "x\n" for i in range(150))
    text = (
        "a: 'not [[[ a list'\n"
        f"b: \"{'[' * 100}\"\n"
        "c: don't # [[[[ in a comment\n"
        f"d: |\n{block}"
        "e: " + "[" * 30 + "]" * 30 + "\n"
    )
    (document,), errors = parse(text)
    assert errors == []
    assert document.data["b"] == "[" * 100


def test_nesting_just_within_the_limit_is_accepted() -> None:
    (document,), errors = parse("a: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    assert errors == []


# --- files and workspaces ------------------------------------------------------


def test_load_file_reports_encoding_size_and_emptiness(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_bytes(b"a: 1\nb: \xff\xfe\n")
    (tmp_path / "empty.yaml").write_text("# nothing here\n", encoding="utf-8")
    (tmp_path / "big.yaml").write_bytes(b"a: " + b"x" * (3 * 1024 * 1024))
    diagnostics = Diagnostics()
    for name in ("bad.yaml", "empty.yaml", "big.yaml"):
        assert load_file(tmp_path, tmp_path / name, diagnostics) == []
    assert [str(d) for d in diagnostics.items] == [
        "bad.yaml:2:4: error: the file is not UTF-8 text (byte 0xff cannot be read); save it as UTF-8",
        "empty.yaml:1:1: error: the file is empty; it needs at least one document",
        "big.yaml:1:1: error: the file is 3.0 MB; definition files may be at most 2 MB (split it into several files)",
    ]


def test_workspace_files_skip_hidden_and_test_folders(tmp_path: Path) -> None:
    for name in ("routecard.yaml", "b.yml", "a/c.yaml", ".hidden/x.yaml", "tests/s.yaml", "a/tests/t.yaml",
                 "notes.txt", ".routecard/db.yaml"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("kind: Group\nname: x\n", encoding="utf-8")
    found = [p.relative_to(tmp_path).as_posix() for p in workspace_files(tmp_path)]
    assert found == ["a/c.yaml", "a/tests/t.yaml", "b.yml", "routecard.yaml"]


def test_load_workspace_puts_routecard_yaml_first(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("kind: Group\nname: a\n", encoding="utf-8")
    (tmp_path / "routecard.yaml").write_text("name: w\n", encoding="utf-8")
    diagnostics = Diagnostics()
    documents = load_workspace(tmp_path, diagnostics)
    assert [d.path for d in documents] == ["routecard.yaml", "a.yaml"]
    assert not diagnostics


def test_load_workspace_without_routecard_yaml(tmp_path: Path) -> None:
    diagnostics = Diagnostics()
    assert load_workspace(tmp_path, diagnostics) == []
    assert [str(d) for d in diagnostics.items] == [
        "routecard.yaml: error: this folder is not a workspace: it has no routecard.yaml "
        "(create one with `routecard init`)"
    ]
