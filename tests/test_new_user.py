"""A new user's first workspace, written from the README and docs alone: an IT helpdesk.

Two groups, one queue of three steps, four custom fields, one SLA, one rule and a
scenario; checked (a typo is pointed at its line), applied, tested and served.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.cli import main
from tests.api_helpers import served

TEAM = """\
kind: Group
name: first_line
label: First line
supervisor: maria
members: [maria, joe]
---
kind: Group
name: second_line
label: Second line
supervisor: raj
members: [raj, kim]
---
kind: Role
name: agent
permissions: [order.create, order.edit, order.transition, comment.private, comment.public]
groups: [first_line, second_line]
"""

REQUESTS = r"""kind: Template
name: ticket
label: IT ticket
range: [first_line, second_line]
numbering: {prefix: IT-}
fields:
  - {name: summary, type: input, label: Summary, required: true}
  - {name: device, type: select, label: Device, options: [laptop, phone, printer, other]}
  - {name: urgent, type: boolean, label: Urgent}
  - {name: asset_tag, type: input, label: Asset tag, pattern: '^A\d{5}$'}
---
kind: Queue
name: helpdesk
templates: [ticket]
steps:
  - name: triage
    group: first_line
    actions: [{name: classify}]
  - name: fix
    group: second_line
    actions: [{name: repair, skippable: false}]
    returns: [previous]
  - name: confirm
    group: first_line
    actions: [{name: call_user}]
---
kind: SLA
name: standard
templates: [ticket]
targets: {first_response: 4h, resolution: 2d}
warn_before: 1h
on_breach:
  - set_priority: high
---
kind: Rule
name: urgent_first
on: [created]
templates: [ticket]
when: {field: urgent, equals: true}
do:
  - set_priority: urgent
"""

SCENARIO = """\
# yaml-language-server: $schema=../.routecard/schemas/scenario.schema.json
scenario: An urgent printer ticket is fixed by the second line
given:
  clock: "2026-03-02T09:00:00+00:00"
when:
  - create: {order: t, as: joe, template: ticket, fields: {summary: Printer jammed, device: printer, urgent: true}}
  - expect: {order: t, priority: urgent, rules_fired: [urgent_first]}
  - process: {order: t, action: classify}
  - expect: {order: t, step: fix, group: second_line}
  - process: {order: t, action: repair, as: kim}
  - process: {order: t, action: call_user, as: joe}
then:
  - {order: t, status: completed}
"""


def _workspace(root: Path) -> Path:
    """``routecard init``, then the helpdesk's own files in place of the starter's."""
    assert main(["init", str(root)]) == 0
    (root / "team.yaml").write_text(TEAM, encoding="utf-8")
    (root / "requests.yaml").write_text(REQUESTS, encoding="utf-8")
    (root / "tests" / "requests.yaml").unlink()
    (root / "tests" / "ticket.yaml").write_text(SCENARIO, encoding="utf-8")
    return root


def test_an_it_helpdesk_is_checked_and_tested(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _workspace(tmp_path / "helpdesk")
    (root / "requests.yaml").write_text(REQUESTS.replace("equals: true", "equal: true"), encoding="utf-8")
    capsys.readouterr()
    assert main(["check", str(root)]) == 1
    assert capsys.readouterr().err.splitlines()[0] == (
        "requests.yaml:39:23: error: unknown key `equal` in `when`; did you mean `equals`?")
    (root / "requests.yaml").write_text(REQUESTS, encoding="utf-8")
    assert main(["check", str(root)]) == 0
    assert "1 templates, 4 fields, 1 queues, 3 steps, 2 groups, 1 rules, 0 forms, 1 SLAs" in capsys.readouterr().out
    assert main(["test", str(root)]) == 0
    assert capsys.readouterr().out.endswith("1 scenario, 0 failed\n")


async def test_an_it_helpdesk_is_served(tmp_path: Path, database_url: str) -> None:
    root = _workspace(tmp_path / "helpdesk")
    async with served(root, database_url, {"joe": {}, "kim": {}}) as api:
        assert (await api.client.get("/readyz")).json()["status"] == "ready"
        made = await api.post("joe", "/api/templates/ticket/orders", {"fields": {
            "summary": "VPN drops", "device": "laptop", "urgent": True, "asset_tag": "A12345"}})
        assert made.status_code == 201, made.text
        assert made.json()["priority"] == "urgent" and made.json()["step"] == "triage"
        wrong = await api.post("joe", "/api/templates/ticket/orders", {"fields": {"summary": "x", "asset_tag": "B1"}})
        assert wrong.status_code == 422
        assert wrong.json()["errors"][0]["field"] == "fields.asset_tag"
