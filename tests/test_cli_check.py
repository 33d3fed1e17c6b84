"""`routecard check` on bad input: every problem located, exit code 1, never a traceback.

Each test builds a workspace from the starter (which is valid), breaks one thing
and asserts the exact ``path:line:col: error: message`` lines printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from ruamel.yaml import YAML

from engine.cli import main
from engine.load import MAX_DEPTH

STARTER = Path(__file__).resolve().parents[1] / "definitions" / "starter"
KINDS = "Template, Field, Queue, Group, Role, Form, Rule, SLA, Calendar, Macro, CommentTemplate, Portal, Customer"


def workspace(tmp_path: Path, files: dict[str, str | bytes], *, starter: bool = True) -> Path:
    """A workspace folder: the starter's files (unless ``starter`` is false) plus ``files``."""
    root = tmp_path / "ws"
    if starter:
        shutil.copytree(STARTER, root)
    else:
        root.mkdir()
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def check(capsys: pytest.CaptureFixture[str], root: Path) -> tuple[int, list[str]]:
    """Run ``routecard check``; return the exit code and the error lines (without the count)."""
    code = main(["check", str(root)])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    lines = captured.err.splitlines()
    if code == 1:
        errors = sum(1 for line in lines if ": error: " in line)
        assert lines[-1] == f"{errors} error{'s' if errors != 1 else ''} in the definitions"
        lines = lines[:-1]
    return code, lines


def assert_errors(capsys: pytest.CaptureFixture[str], root: Path, *expected: str) -> None:
    code, lines = check(capsys, root)
    assert lines == list(expected)
    assert code == 1


# --- YAML syntax --------------------------------------------------------------


def test_tab_indentation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nmembers:\n\t- jana\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:4:1: error: a tab character; YAML is indented and separated with spaces, "
        "not tabs (replace the tab with spaces)",
    )


def test_unclosed_quote_points_at_the_opening_quote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": 'kind: Group\nname: sales\nlabel: "Sales\nmembers: [a]\n'})
    assert_errors(capsys, root, "extra.yaml:3:8: error: this quoted text is never closed; add the closing quote")


def test_key_indented_too_far(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\n  label: Sales\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:3:8: error: unexpected `:` here; check this line's indentation, "
        "or put the value in quotes if it contains `: `",
    )


def test_keys_not_lined_up(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nlabel:\n    en: Sales\n  de: Verkauf\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:5:3: error: this line is indented differently from the lines before it; "
        "the keys of one mapping (and the items of one list) must start in the same column",
    )


def test_unclosed_flow_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nmembers: [a, b\nlabel: Sales\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:4:6: error: expected `,` or `]` in the list opened at line 3, column 10; "
        "is the closing `]` missing?",
    )


def test_missing_colon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname sales\nlabel: Sales\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:2:1: error: this line is neither `key: value` nor a list item (`- value`); is a `:` missing?",
    )


def test_duplicate_key_names_both_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nlabel: Sales\nname: finance\n"})
    assert_errors(
        capsys,
        root,
        "extra.yaml:4:1: error: the key `name` appears twice in this mapping (first on line 2); "
        "each key may appear once",
    )


def test_duplicate_key_in_a_nested_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (STARTER / "requests.yaml").read_text(encoding="utf-8")
    broken = text.replace("    type: text\n", "    type: text\n    type: input\n", 1)
    root = workspace(tmp_path, {"requests.yaml": broken})
    line = broken.splitlines().index("    type: text") + 2
    assert_errors(
        capsys,
        root,
        f"requests.yaml:{line}:5: error: the key `type` appears twice in this mapping (first on line {line - 1}); "
        "each key may appear once",
    )


def test_undefined_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nmembers: *team\n"})
    assert_errors(capsys, root, "extra.yaml:3:10: error: the alias `*team` refers to no anchor `&team` defined before it")


# --- kinds, keys and types -----------------------------------------------------


def test_unknown_kind_with_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Templat\nname: other\n---\nkind: Banana\nname: b\n"})
    assert_errors(
        capsys,
        root,
        'extra.yaml:1:7: error: unknown kind "Templat"; did you mean `Template`?',
        f'extra.yaml:4:7: error: unknown kind "Banana"; kinds are: {KINDS}',
    )


def test_document_without_kind(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "# a group\nname: sales\n"})
    assert_errors(capsys, root, f"extra.yaml:2:1: error: the document has no `kind:`; it should be one of: {KINDS}")


def test_unknown_keys_point_at_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "kind: Group\nname: sales\nlable: Sales\nmembers: [a]\nsupervisr: a\n"
    root = workspace(tmp_path, {"extra.yaml": text})
    assert_errors(
        capsys,
        root,
        "extra.yaml:3:1: error: unknown key `lable` in Group; did you mean `label`?",
        "extra.yaml:5:1: error: unknown key `supervisr` in Group; did you mean `supervisor`?",
    )


def test_unknown_nested_key_without_close_match_lists_the_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (STARTER / "requests.yaml").read_text(encoding="utf-8")
    broken = text.replace("        label: Resolve the request\n", "        label: Resolve the request\n        colour: red\n")
    line = broken.splitlines().index("        colour: red") + 1
    root = workspace(tmp_path, {"requests.yaml": broken})
    assert_errors(
        capsys,
        root,
        f"requests.yaml:{line}:9: error: unknown key `colour` in `steps[1].actions[0]`; "
        "allowed keys: name, label, description, plugin, with, skippable",
    )


def test_missing_required_keys_point_at_the_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "kind: Queue\nname: other\ntemplates: [request]\n---\nkind: Queue\nname: third\ntemplates: [request]\nsteps:\n  - label: First\n    group: support\n"
    root = workspace(tmp_path, {"extra.yaml": text})
    assert_errors(
        capsys,
        root,
        "extra.yaml:1:1: error: missing required key `steps` in Queue (The steps, in order.)",
        "extra.yaml:9:5: error: missing required key `name` in `steps[0]` "
        "(The step's identity; complete is reserved for the final step.)",
    )


def test_wrong_types(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "kind: Group\nname: sales\nmembers: jana\ndescription: [a, b]\nlabel: 12\n"
    root = workspace(tmp_path, {"extra.yaml": text})
    assert_errors(
        capsys,
        root,
        'extra.yaml:3:10: error: `members` should be a list, found "jana"',
        "extra.yaml:4:14: error: `description` should be text, found a list",
        "extra.yaml:5:8: error: `label` should be text or a mapping (key: value), found 12",
    )


def _plugin_types() -> str:
    """The field types installed plugins add, as the message lists them (e.g. the example plugin's iban)."""
    from engine.plugins import default_plugins

    names = sorted(default_plugins().field_types)
    return f"; plugin field types: {', '.join(names)}" if names else ""


def test_wrong_enum_value_with_did_you_mean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (STARTER / "requests.yaml").read_text(encoding="utf-8")
    broken = text.replace("    type: select\n", "    type: selct\n")
    line = broken.splitlines().index("    type: selct") + 1
    root = workspace(tmp_path, {"requests.yaml": broken})
    assert_errors(
        capsys,
        root,
        f"requests.yaml:{line}:11: error: `fields[2].type` must be one of: boolean, customer, date, datetime, "
        "decimal, email, input, multiselect, number, reference, select, text, upload, url, user"
        + _plugin_types() + '; found "selct"; did you mean `select`?',
    )


def test_not_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"extra.yaml": "- kind: Group\n- name: sales\n"})
    assert_errors(capsys, root, "extra.yaml:1:1: error: a definition document must be a mapping of keys, found a list")


# --- identities that would become database names -------------------------------

FIELD = "  - name: {name}\n    type: input\n"


def _template_with_fields(*names: str) -> str:
    return "kind: Template\nname: extra\nteam: support\nfields:\n" + "".join(FIELD.format(name=n) for n in names)


def test_field_names_that_are_not_identities(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    long_name = "a" * 200
    root = workspace(tmp_path, {"extra.yaml": _template_with_fields("drop table", "ÄÖÜ", long_name, "Straße Nr.")})
    assert_errors(
        capsys,
        root,
        'extra.yaml:5:11: error: `fields[0].name`: "drop table" is not a valid name; use lowercase letters, '
        "digits and underscores, starting with a letter (e.g. `drop_table`)",
        'extra.yaml:7:11: error: `fields[1].name`: "ÄÖÜ" is not a valid name; use lowercase letters, '
        "digits and underscores, starting with a letter (e.g. `aou`)",
        "extra.yaml:9:11: error: `fields[2].name` must be at most 40 characters long, found 200 characters",
        'extra.yaml:11:11: error: `fields[3].name`: "Straße Nr." is not a valid name; use lowercase letters, '
        "digits and underscores, starting with a letter (e.g. `strasse_nr`)",
    )


def test_field_names_reserved_in_sql_or_by_the_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = _template_with_fields("id", "select", "drop", "ok_name")
    queue = "---\nkind: Queue\nname: extra\ntemplates: [extra]\nsteps:\n  - name: only\n    group: support\n"
    root = workspace(tmp_path, {"extra.yaml": template + queue})
    assert_errors(
        capsys,
        root,
        "extra.yaml:5:11: error: `id` is a built-in attribute of every work order; choose another name (e.g. `id_ref`)",
        "extra.yaml:7:11: error: `select` is a reserved word in SQL; choose another name (e.g. `select_value`)",
        "extra.yaml:9:11: error: `drop` is a reserved word in SQL; choose another name (e.g. `drop_value`)",
    )


# --- hostile and broken files --------------------------------------------------


def test_python_tags_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "kind: Group\nname: !!python/object/apply:os.system [echo pwned]\n---\n"
        "kind: Group\nname: other\ndescription: !!python/object:builtins.dict {a: 1}\n"
    )
    root = workspace(tmp_path, {"extra.yaml": text})
    assert_errors(
        capsys,
        root,
        "extra.yaml:2:7: error: the tag `!!python/object/apply:os.system` is not allowed; "
        "definitions are plain YAML without tags",
        "extra.yaml:6:14: error: the tag `!!python/object:builtins.dict` is not allowed; "
        "definitions are plain YAML without tags",
    )


def test_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["kind: Group", "name: sales", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for name, previous in zip("bcdefghi", "abcdefgh"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    root = workspace(tmp_path, {"bomb.yaml": "\n".join(lines) + "\n"})
    assert_errors(
        capsys,
        root,
        "bomb.yaml:1:1: error: the document expands to more than 250,000 values "
        "(anchors and aliases repeat content); write it out plainly",
    )


def test_deeply_nested_flow_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "kind: Group\nname: sales\nmembers: " + "[" * 5000 + "]" * 5000 + "\n"
    root = workspace(tmp_path, {"deep.yaml": text})
    column = len("members: ") + MAX_DEPTH + 1
    assert_errors(capsys, root, f"deep.yaml:3:{column}: error: lists or mappings are nested more than 64 levels deep")


def test_deeply_nested_block_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"deep.yaml": "kind: Group\nname: sales\nmembers:\n" + "- " * 3000 + "x\n"})
    assert_errors(capsys, root, "deep.yaml:4:1: error: lists or mappings are nested more than 64 levels deep")


def test_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"latin1.yaml": "kind: Group\nname: sales\nlabel: Verkäufer\n".encode("latin-1")})
    assert_errors(
        capsys,
        root,
        "latin1.yaml:3:12: error: the file is not UTF-8 text (byte 0xe4 cannot be read); save it as UTF-8",
    )


def test_utf8_with_byte_order_mark_is_fine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"bom.yaml": "\ufeffkind: Group\nname: sales\nlabel: Verkäufer\n".encode()})
    code, lines = check(capsys, root)
    assert (code, lines) == (0, [])


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n", "---\n"])
def test_empty_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    root = workspace(tmp_path, {"empty.yaml": content})
    expected = (
        "empty.yaml:1:1: error: a definition document must be a mapping of keys, found nothing"
        if content == "---\n"
        else "empty.yaml:1:1: error: the file is empty; it needs at least one document"
    )
    assert_errors(capsys, root, expected)


def test_folder_without_routecard_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"groups.yaml": "kind: Group\nname: sales\n"}, starter=False)
    assert_errors(
        capsys,
        root,
        "routecard.yaml: error: this folder is not a workspace: it has no routecard.yaml "
        "(create one with `routecard init`)",
    )


def test_ten_megabyte_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "kind: Group\nname: sales\ndescription: " + "a" * (10 * 1024 * 1024) + "\n"
    root = workspace(tmp_path, {"huge.yaml": text})
    assert_errors(
        capsys,
        root,
        "huge.yaml:1:1: error: the file is 10.0 MB; definition files may be at most 2 MB (split it into several files)",
    )


def test_workspace_file_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"routecard.yaml": "kind: Group\nname: x\n"})
    assert_errors(
        capsys,
        root,
        'routecard.yaml:1:7: error: routecard.yaml holds the workspace settings (kind: Workspace); '
        'put "Group" definitions in another file',
    )


def test_workspace_settings_outside_routecard_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {"more.yaml": "kind: Workspace\nname: other\n"})
    assert_errors(capsys, root, "more.yaml:1:7: error: workspace settings belong in routecard.yaml")


# --- several errors at once ----------------------------------------------------


def test_errors_in_several_files_are_reported_together_and_sorted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = workspace(
        tmp_path,
        {
            "zeta.yaml": "kind: Group\nname: z\nlable: Z\n",
            "alpha.yaml": "kind: Group\nname: a\nmembers: 5\n---\nkind: Rol\nname: r\n",
            "sub/beta.yaml": "kind: Group\nname: b\n\tlabel: B\n",
            "routecard.yaml": "name: my-workspace\nlanguage: english\n",
        },
    )
    assert_errors(
        capsys,
        root,
        "alpha.yaml:3:10: error: `members` should be a list, found 5",
        'alpha.yaml:5:7: error: unknown kind "Rol"; did you mean `Role`?',
        'routecard.yaml:2:11: error: `language`: "english" is not a language code; write e.g. en or de-CH',
        "sub/beta.yaml:3:1: error: a tab character; YAML is indented and separated with spaces, "
        "not tabs (replace the tab with spaces)",
        "zeta.yaml:3:1: error: unknown key `lable` in Group; did you mean `label`?",
    )


# --- the command itself --------------------------------------------------------


def test_valid_workspace_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = workspace(tmp_path, {})
    assert main(["check", str(root)]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.startswith(f"{root}: ok (1 templates, 4 fields, 1 queues, 2 steps, 1 groups,")


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"routecard: error: {tmp_path / 'missing'}: no such folder\n"
    file = tmp_path / "file.yaml"
    file.write_text("kind: Group\n", encoding="utf-8")
    assert main(["check", str(file)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["check", "--no-such-option"]) == 2
    assert "unrecognized arguments" in capsys.readouterr().err


def test_console_script_in_a_subprocess(tmp_path: Path) -> None:
    root = workspace(tmp_path, {"extra.yaml": "kind: Group\nname: sales\nlable: Sales\n"})
    script = Path(sys.executable).with_name("routecard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]
    result = subprocess.run([*command, "check", str(root)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        "extra.yaml:3:1: error: unknown key `lable` in Group; did you mean `label`?\n1 error in the definitions\n"
    )
    ok = subprocess.run([*command, "check", str(STARTER)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr


# --- routecard init ------------------------------------------------------------


def test_init_creates_a_workspace_that_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "new"
    assert main(["init", str(target)]) == 0
    assert sorted(p.name for p in target.iterdir()) == sorted(
        [".routecard", ".vscode", "tests", *(p.name for p in STARTER.glob("*.yaml"))])
    capsys.readouterr()
    assert main(["check", str(target)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["test", str(target)]) == 0
    assert capsys.readouterr().out.endswith("1 scenario, 0 failed\n")


def test_init_sets_up_the_editor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A YAML language server finds the schemas: definitions by settings, scenarios by their modeline."""
    target = tmp_path / "new"
    assert main(["init", str(target)]) == 0
    settings = json.loads((target / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    ((schema_path, globs),) = settings["yaml.schemas"].items()
    assert (target / schema_path).resolve() == (target / ".routecard" / "schemas" / "document.schema.json").resolve()
    assert "*.yaml" in globs
    registry = Registry().with_resources(
        (p.name, Resource.from_contents(json.loads(p.read_text(encoding="utf-8"))))
        for p in (target / ".routecard" / "schemas").glob("*.json"))
    document = json.loads((target / schema_path).read_text(encoding="utf-8"))
    team = YAML(typ="safe").load((target / "team.yaml").read_text(encoding="utf-8").split("---")[0])
    assert list(Draft202012Validator(document, registry=registry).iter_errors(team)) == []
    assert list(Draft202012Validator(document, registry=registry).iter_errors({**team, "lable": "x"}))
    scenario_file = target / "tests" / "requests.yaml"
    modeline = next(line for line in scenario_file.read_text(encoding="utf-8").splitlines()
                    if "yaml-language-server" in line)
    scenario_schema = json.loads((scenario_file.parent / modeline.split("$schema=")[1]).read_text(encoding="utf-8"))
    scenario = YAML(typ="safe").load(scenario_file.read_text(encoding="utf-8"))
    assert list(Draft202012Validator(scenario_schema).iter_errors(scenario)) == []
    assert list(Draft202012Validator(scenario_schema).iter_errors({**scenario, "whn": []}))


def test_init_into_an_empty_existing_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path)]) == 0
    assert (tmp_path / "routecard.yaml").is_file()


def test_init_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"routecard: error: {tmp_path}: the folder is not empty; give a new or empty folder\n"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
