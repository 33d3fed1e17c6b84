"""Applied definition changes reach a running server without a restart."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from litestar.testing import AsyncTestClient

from engine.db import connect
from engine.migrate import apply_workspace
from engine.runtime import add_user, create_token
from engine.workspace import open_workspace
from ui.app import create_app

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ecommerce-workorders"
NEW_FIELD = """
  - name: loyalty_card
    type: input
    label: {en: Loyalty card number, de: Kundenkartennummer}
    section: Customer
"""

VOUCHERS = """\
kind: Template
name: gift_voucher
label: Gift voucher
range: [sales]
numbering: {prefix: GV-}
fields:
  - {name: amount, type: decimal, digits: 8, places: 2, required: true}
---
kind: Queue
name: vouchers
templates: [gift_voucher]
steps:
  - name: issue
    group: sales
    actions: [{name: send_voucher}]
"""


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the server did not switch in time"
        await asyncio.sleep(0.05)


async def test_an_applied_change_is_served_and_an_unapplied_one_is_not(tmp_path: Path, database_url: str) -> None:
    root = tmp_path / "ws"
    shutil.copytree(EXAMPLE, root)
    workspace = open_workspace(root)
    await apply_workspace(workspace, database_url)
    db = await connect(database_url)
    try:
        anna = await add_user(db, workspace, "anna.gruber", password="pw")
        token = await create_token(db, anna, "tests")
    finally:
        await db.close()
    app = create_app(root, database_url, workspace=workspace, reload_interval=0.05)
    async with AsyncTestClient(app=app) as client:
        runtime = app.state.runtime
        await client.post("/login", data={"login": "anna.gruber", "password": "pw"})
        before = await client.get("/manager")
        assert "Take the order" in before.text

        # Edited but not applied: the server keeps serving what the database is at.
        queues = root / "queues.yaml"
        queues.write_text(queues.read_text().replace("{en: Take the order,", "{en: Order intake,"))
        await asyncio.sleep(0.3)
        assert runtime.workspace.fingerprint == workspace.fingerprint
        assert "Take the order" in (await client.get("/manager")).text

        # Applied (with a new field too): served from the next request on.
        template = root / "templates" / "customer_order.yaml"
        text = template.read_text()
        anchor = "  - name: customer_phone\n"
        template.write_text(text.replace(anchor, NEW_FIELD.lstrip("\n") + anchor))
        (root / "vouchers.yaml").write_text(VOUCHERS, encoding="utf-8")
        changed = open_workspace(root)
        await apply_workspace(changed, database_url)
        await _until(lambda: runtime.workspace.fingerprint == changed.fingerprint)
        assert "loyalty_card" in runtime.codecs["customer_order"].fields
        page = await client.get("/manager")
        assert "Order intake" in page.text and "Take the order" not in page.text
        form = await client.get("/new/customer_order")  # the new field is on the order form
        assert "Loyalty card number" in form.text and 'name="fields.loyalty_card"' in form.text
        csrf = page.text.split('"x-csrftoken": "')[1].split('"')[0]
        fields = {"fields.customer_ref": "K0048213", "fields.shipping_address": "Ring 1", "fields.order_items": "x",
                  "fields.order_total": "10.00", "fields.payment_method": "invoice", "fields.loyalty_card": "LC-7",
                  "title": "With a loyalty card", "priority": "normal"}
        created = await client.post("/new/customer_order", data=fields,
                                    headers={"hx-request": "true", "x-csrftoken": csrf})
        assert created.status_code in (200, 204), created.text
        number = created.headers["hx-redirect"].rsplit("/", 1)[-1]
        shown = await client.get(f"/orders/{number}")
        assert "Loyalty card number" in shown.text and "LC-7" in shown.text

        # The JSON API follows too: the new field, and a template that did not exist at start.
        bearer = {"Authorization": f"Bearer {token}"}
        body = {"fields": {**{k.removeprefix("fields."): v for k, v in fields.items() if k.startswith("fields.")}}}
        made = await client.post("/api/templates/customer_order/orders", json=body, headers=bearer)
        assert made.status_code == 201, made.text
        assert made.json()["fields"]["loyalty_card"] == "LC-7"
        voucher = await client.post("/api/templates/gift_voucher/orders", json={"fields": {"amount": "25.00"}},
                                    headers=bearer)
        assert voucher.status_code == 201, voucher.text
        assert voucher.json()["number"].startswith("GV-") and voucher.json()["queue"] == "vouchers"
        wrong = await client.post("/api/templates/gift_voucher/orders", json={"fields": {"amount": "x"}},
                                  headers=bearer)
        assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "fields.amount"
        missing = await client.post("/api/templates/no_such/orders", json={}, headers=bearer)
        assert missing.status_code == 404
