"""Applied definition changes reach a running server without a restart."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from litestar.testing import AsyncTestClient

from engine.db import connect
from engine.migrate import apply_workspace
from engine.runtime import add_user
from engine.workspace import open_workspace
from ui.app import create_app

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ecommerce-workorders"
NEW_FIELD = """
  - name: loyalty_card
    type: input
    label: {en: Loyalty card number, de: Kundenkartennummer}
    section: Customer
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
        await add_user(db, workspace, "anna.gruber", password="pw")
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
