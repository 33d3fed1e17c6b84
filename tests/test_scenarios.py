"""`routecard test`: workflow scenarios of a workspace, played on throw-away databases."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from engine.cli import main
from engine.diagnostics import Diagnostics
from engine.scenarios import read_scenarios, run_scenarios
from engine.workspace import open_workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
WITH_SCENARIOS = sorted(p.name for p in EXAMPLES.iterdir() if (p / "routecard.yaml").is_file() and (p / "tests").is_dir())


@pytest.mark.parametrize("example", WITH_SCENARIOS)
async def test_every_example_scenario_passes(example: str) -> None:
    root = EXAMPLES / example
    diagnostics = Diagnostics()
    found = read_scenarios(root, diagnostics)
    assert not diagnostics.items, [str(d) for d in diagnostics.items]
    assert found
    outcomes = await run_scenarios(open_workspace(root), found)
    assert [o.failure for o in outcomes] == [None] * len(found)


def _workspace_with(tmp_path: Path, scenario: str) -> Path:
    root = tmp_path / "shop"
    shutil.copytree(EXAMPLES / "ecommerce-workorders", root)
    shutil.rmtree(root / "tests")
    (root / "tests").mkdir()
    (root / "tests" / "flow.yaml").write_text(textwrap.dedent(scenario).lstrip(), encoding="utf-8")
    return root


ORDER = ('fields: {customer_ref: K0048213, shipping_address: Somewhere 1, order_items: A-1 x1, order_total: "10.00", '
         'payment_method: invoice}')


def test_a_failing_scenario_names_its_line_and_shows_the_difference(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace_with(tmp_path, f"""
        scenario: A small order
        when:
          - create:
              order: small
              as: lukas.maier
              template: customer_order
              {ORDER}
          - process: {{order: small, action: confirm_items}}
          - expect: {{order: small, step: picking, priority: normal, fields: {{order_total: "10.00"}}}}
        """)
    assert main(["test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "FAIL  tests/flow.yaml:1:1: A small order" in out
    assert "tests/flow.yaml:9:5: order `small` (WO-00001) is not as expected:" in out
    assert '  step:\n    - expected "picking"\n    + found    "order_intake"' in out
    assert "priority" not in out and "order_total" not in out  # what matched is not shown
    assert out.rstrip().endswith("1 scenario, 1 failed")


def test_refusals_are_expected_or_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace_with(tmp_path, f"""
        scenario: Refusals
        when:
          - create:
              order: o
              as: lukas.maier
              template: customer_order
              {ORDER}
          - cancel: {{order: o, as: paul.fuchs, refused: lacks the permission}}
          - cancel: {{order: o, as: anna.gruber, reason: duplicate}}
          - process: {{order: o, action: confirm_items}}
        """)
    assert main(["test", str(root)]) == 1
    out = capsys.readouterr().out
    assert "tests/flow.yaml:10:5: `process` was refused: " in out and "cancelled" in out


def test_a_malformed_scenario_is_a_located_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace_with(tmp_path, """
        scenario: Typos
        when:
          - create: {order: o, as: lukas.maier, template: customer_order}
          - proces: {order: o, action: confirm_items}
        """)
    assert main(["test", str(root)]) == 1
    err = capsys.readouterr().err
    assert "tests/flow.yaml:4:5: error: unknown key `proces`" in err


def test_no_scenarios_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace_with(tmp_path, "scenario: x\n")
    (root / "tests" / "flow.yaml").unlink()
    assert main(["test", str(root)]) == 1
    assert "no scenarios" in capsys.readouterr().err
