"""Every example workspace checks, applies on an empty database, and is then up to date."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from engine.cli import main
from engine.migrate import apply_workspace, plan_for
from engine.workspace import open_workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = sorted(p.name for p in EXAMPLES.iterdir() if (p / "routecard.yaml").is_file())


def test_there_are_four_examples() -> None:
    assert NAMES == ["contract-agency", "ecommerce-workorders", "hosting-orders", "order-portal"]


@pytest.mark.parametrize("name", NAMES)
def test_example_checks(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(EXAMPLES / name)]) == 0
    out = capsys.readouterr()
    assert ": ok (" in out.out
    assert out.err == ""


@pytest.mark.parametrize("name", NAMES)
async def test_example_applies_on_an_empty_database(name: str, database_url: str) -> None:
    workspace = open_workspace(EXAMPLES / name)
    applied = await apply_workspace(workspace, database_url)
    created = {s.table for s in applied.steps if s.op == "create_table"}
    assert {f"tpl_{t}" for t in workspace.templates} <= created
    assert "rc_work_order" in created
    assert (await plan_for(workspace, database_url)).up_to_date


def test_broken_copy_reports_each_error_where_it_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "hosting"
    shutil.copytree(EXAMPLES / "hosting-orders", root, ignore=shutil.ignore_patterns(".routecard"))
    queues = root / "queues.yaml"
    lines = queues.read_text().splitlines()
    # break two things in different places: a step's group and a template name
    group_line = next(i for i, line in enumerate(lines) if line.strip().startswith("group:"))
    lines[group_line] = lines[group_line].split("group:")[0] + "group: provisoning"
    template_line = next(i for i, line in enumerate(lines) if line.strip().startswith("templates:"))
    lines[template_line] = lines[template_line].split("templates:")[0] + "templates: [dedicated_srv]"
    queues.write_text("\n".join(lines) + "\n")
    assert main(["check", str(root)]) == 1
    err = capsys.readouterr().err.splitlines()
    group_col = lines[group_line].index("provisoning") + 1
    template_col = lines[template_line].index("dedicated_srv") + 1
    assert f"queues.yaml:{template_line + 1}:{template_col}: error: unknown template `dedicated_srv`; " \
           "did you mean `dedicated_server_order`?" in err
    assert any(line.startswith(f"queues.yaml:{group_line + 1}:{group_col}: error: unknown group `provisoning`")
               for line in err)
    assert err[-1].endswith("errors in the definitions")
