"""`routecard demo`: demo users and demo work orders, created once, through the services."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main
from engine.db import connect
from engine.demo import read_demo_orders

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ecommerce-workorders"


async def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    db = await connect(url)
    try:
        return await db.fetch(sql)
    finally:
        await db.close()


def test_demo_creates_its_orders_once(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", str(EXAMPLE), "--no-serve", "--db", database_url]) == 0
    out = capsys.readouterr().out
    specs = read_demo_orders(EXAMPLE)
    numbers = [f"WO-{i:05d}" for i in range(1, len(specs) + 1)]
    assert f"Demo work orders: {', '.join(numbers)}" in out
    assert "Demo users (password `demo`): anna.gruber" in out
    rows = asyncio.run(_rows(database_url, "SELECT number, step, status, title FROM rc_work_order ORDER BY number"))
    by_title = {r["title"]: r for r in rows}
    assert len(rows) == len(specs)
    assert by_title["Replacement grinder"]["status"] == "cancelled"
    assert by_title["Gift set for a wedding"]["step"] == "shipping"
    assert by_title["Office coffee subscription"]["step"] == "picking"
    events = asyncio.run(_rows(database_url, "SELECT kind FROM rc_event WHERE kind = 'action_skipped'"))
    assert len(events) == 1  # the audit trail is written as for real work
    assert main(["demo", str(EXAMPLE), "--no-serve", "--db", database_url]) == 0
    assert "Demo work orders" not in capsys.readouterr().out
    again = asyncio.run(_rows(database_url, "SELECT COUNT(*) AS n FROM rc_work_order"))
    assert again[0]["n"] == len(specs)


def test_a_demo_order_the_services_refuse_is_reported_with_its_place(tmp_path: Path, database_url: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    workspace = tmp_path / "ws"
    shutil.copytree(EXAMPLE, workspace)
    (workspace / "demo" / "orders.yaml").write_text(
        "orders:\n  - template: customer_order\n    by: anna.gruber\n    fields: {customer_ref: nope}\n")
    assert main(["demo", str(workspace), "--no-serve", "--db", database_url]) == 2
    err = capsys.readouterr().err
    assert "demo/orders.yaml order 1: refused" in err and "fields.customer_ref" in err
