"""Workflow diagrams: the graph of a queue, its SVG and Mermaid forms, and `routecard diagram`."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from conftest import EXAMPLES
from engine.cli import main
from engine.diagram import (
    COMPLETE,
    DiagramWords,
    mermaid_id,
    queue_mermaid,
    queue_svg,
    supervisor_id,
    workflow,
)
from engine.link.resolved import LinkedWorkspace, ResolvedQueue
from engine.workspace import open_workspace

SVG = "{http://www.w3.org/2000/svg}"
STARTER = Path(__file__).resolve().parents[1] / "definitions" / "starter"
NASTY = "Check <stock> & \"quotes\" 'n' more"
EXAMPLE_QUEUES = [(example.name, name) for example in sorted(EXAMPLES.iterdir()) if (example / "routecard.yaml").is_file()
                  for name in open_workspace(example).queues]


def _queue(example: str, name: str) -> tuple[ResolvedQueue, LinkedWorkspace]:
    workspace = open_workspace(EXAMPLES / example)
    return workspace.queues[name], workspace


def _nasty_workspace(tmp_path: Path) -> Path:
    """The starter with a step label full of characters XML and Mermaid treat specially."""
    root = tmp_path / "ws"
    shutil.copytree(STARTER, root)
    requests = root / "requests.yaml"
    text = requests.read_text(encoding="utf-8")
    assert "    label: Triage\n" in text
    requests.write_text(text.replace("    label: Triage\n", "    label: '" + NASTY.replace("'", "''") + "'\n"),
                        encoding="utf-8")
    return root


def _edges(svg: str, kind: str) -> set[tuple[str, str]]:
    root = ET.fromstring(svg)
    return {(p.get("data-from", ""), p.get("data-to", "")) for p in root.iter(f"{SVG}path")
            if p.get("class") == f"edge {kind}"}


@pytest.mark.parametrize(("example", "name"), EXAMPLE_QUEUES)
def test_svg_is_well_formed_and_shows_every_step_and_edge(example: str, name: str) -> None:
    queue, workspace = _queue(example, name)
    svg = queue_svg(queue, workspace)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    width, height = int(root.get("width", "0")), int(root.get("height", "0"))
    assert width > 0 and height > 0 and root.get("viewBox") == f"0 0 {width} {height}"
    assert not root.findall(f".//{SVG}script") and "@import" not in svg and "href=\"http" not in svg
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    for step in queue.steps:
        assert step.label[workspace.settings.language] in texts, step.name
    assert "Complete" in texts
    assert _edges(svg, "next") == {(s.name, t) for s in queue.steps for t in s.next}
    returns = _edges(svg, "return")
    for step in queue.steps:
        for way in step.returns:
            if way == "supervisor":
                assert (step.name, supervisor_id(step.name)) in returns
            elif way != "previous":
                assert (step.name, way) in returns
    previous = [s for s in queue.steps if "previous" in s.returns]
    for step in previous:
        assert any(source == step.name and target in queue.step_names for source, target in returns), step.name


def test_return_paths_are_dashed_and_previous_leads_to_every_predecessor() -> None:
    queue, workspace = _queue("hosting-orders", "virtual_hosting")
    graph = workflow(queue, workspace)
    returns = {(e.source, e.target, e.label) for e in graph.edges if e.kind == "return"}
    # setup_account is reached from order_review and from domain_transfer: `previous` goes back to either.
    assert ("setup_account", "order_review", "previous") in returns
    assert ("setup_account", "domain_transfer", "previous") in returns
    assert ("setup_account", supervisor_id("setup_account"), "") in returns
    svg = queue_svg(queue, workspace)
    root = ET.fromstring(svg)
    for path in root.iter(f"{SVG}path"):
        if path.get("class") == "edge return":
            assert path.get("stroke-dasharray")
        elif path.get("class") == "edge next":
            assert path.get("stroke-dasharray") is None
    assert graph.nodes[-1].id == COMPLETE and graph.nodes[-1].row == len(queue.steps)


def test_labels_follow_the_language_with_fallback() -> None:
    queue, workspace = _queue("ecommerce-workorders", "call_centre_orders")
    german = queue_svg(queue, workspace, "de", DiagramWords(complete="Erledigt"))
    assert "Auftrag aufnehmen" in german and "Verkauf" in german and "Erledigt" in german
    assert "Take the order" in queue_svg(queue, workspace, "fr")  # no French: the workspace default


def test_special_characters_are_escaped(tmp_path: Path) -> None:
    workspace = open_workspace(_nasty_workspace(tmp_path))
    queue = workspace.queues["requests"]
    svg = queue_svg(queue, workspace)
    assert "<stock>" not in svg and "&lt;stock&gt; &amp; &quot;quotes&quot; &apos;n&apos;" in svg
    root = ET.fromstring(svg)  # still well-formed
    assert NASTY in [t.text for t in root.iter(f"{SVG}text")]
    mermaid = queue_mermaid(queue, workspace)
    line = next(line for line in mermaid.splitlines() if line.strip().startswith(mermaid_id("triage") + "["))
    assert line == '    step_triage["Check #60;stock#62; #38; #34;quotes#34; \'n\' more<br/>Support · 1 action"]'


def test_long_labels_are_cut_to_fit_but_kept_in_the_tooltip(tmp_path: Path) -> None:
    root = _nasty_workspace(tmp_path)
    requests = root / "requests.yaml"
    long = "Triage " + "and then some more words " * 8
    text = requests.read_text(encoding="utf-8")
    requests.write_text(text.replace("label: Work on it", f"label: {long.strip()}"), encoding="utf-8")
    workspace = open_workspace(root)
    svg = ET.fromstring(queue_svg(workspace.queues["requests"], workspace))
    shown = [t.text or "" for t in svg.iter(f"{SVG}text")]
    assert any(t.endswith("…") and t.startswith("Triage and") for t in shown)
    assert any(long.strip() in (t.text or "") for t in svg.iter(f"{SVG}title"))


def test_mermaid_has_every_node_and_edge() -> None:
    queue, workspace = _queue("ecommerce-workorders", "call_centre_orders")
    text = queue_mermaid(queue, workspace)
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    assert 'step_order_intake["Take the order<br/>Sales · 3 actions"]' in lines
    assert 'complete(["Complete"])' in lines
    assert 'supervisor_payment_check{{"Supervisor<br/>Finance"}}' in lines
    for step in queue.steps:
        for target in step.next:
            assert f"{mermaid_id(step.name)} --> {mermaid_id(target)}" in lines
    assert "step_payment_check -.->|previous| step_order_intake" in lines
    assert "step_payment_check -.-> supervisor_payment_check" in lines
    assert "step_closing_call --> complete" in lines
    named, hosting = _queue("hosting-orders", "dedicated_servers")
    assert "step_invoicing -.-> step_provision_server" in queue_mermaid(named, hosting)


def test_output_is_deterministic() -> None:
    for example, name in EXAMPLE_QUEUES:
        first, second = _queue(example, name), _queue(example, name)
        assert queue_svg(*first) == queue_svg(*second)
        assert queue_mermaid(*first) == queue_mermaid(*second)


# --- routecard diagram ---------------------------------------------------------------------


def test_cli_writes_both_files_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["diagram", str(EXAMPLES / "ecommerce-workorders"), "call_centre_orders"]) == 0
    assert capsys.readouterr().out.splitlines() == ["wrote call_centre_orders.svg", "wrote call_centre_orders.mmd"]
    ET.fromstring((tmp_path / "call_centre_orders.svg").read_text(encoding="utf-8"))
    assert (tmp_path / "call_centre_orders.mmd").read_text(encoding="utf-8").startswith("flowchart TD\n")


def test_cli_prints_mermaid_and_follows_the_output_suffix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = str(EXAMPLES / "ecommerce-workorders")
    assert main(["diagram", example, "call_centre_orders", "--format", "mermaid", "--language", "de"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("flowchart TD\n") and "Auftrag aufnehmen" in out
    target = tmp_path / "flow.svg"
    assert main(["diagram", example, "call_centre_orders", "-o", str(target)]) == 0
    assert capsys.readouterr().out == f"wrote {target}\n"
    ET.fromstring(target.read_text(encoding="utf-8"))
    assert main(["diagram", example, "call_centre_orders", "--format", "svg", "-o", "-"]) == 0
    ET.fromstring(capsys.readouterr().out)


def test_cli_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    example = str(EXAMPLES / "ecommerce-workorders")
    assert main(["diagram", example, "call_center_orders"]) == 2
    err = capsys.readouterr().err
    assert "no queue `call_center_orders`; did you mean `call_centre_orders`?" in err
    assert main(["diagram", example, "zzz"]) == 2
    assert "queues: call_centre_orders" in capsys.readouterr().err
    assert main(["diagram", example, "call_centre_orders", "-o", str(tmp_path / "flow.txt")]) == 2
    assert "add --format svg or mermaid" in capsys.readouterr().err
    assert main(["diagram", example, "call_centre_orders", "--format", "png"]) == 2
    assert main(["diagram", str(tmp_path / "missing"), "q"]) == 2
    assert main(["diagram", example, "call_centre_orders", "--language", "German"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_cli_definition_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _nasty_workspace(tmp_path)
    (root / "broken.yaml").write_text("kind: Queue\nname: broken\n", encoding="utf-8")
    assert main(["diagram", str(root), "requests"]) == 1
    err = capsys.readouterr().err
    assert "broken.yaml:" in err and err.rstrip().endswith("in the definitions")
