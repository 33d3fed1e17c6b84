"""The ``invoice.generate`` order action and the invoice panel of the order page.

The action drafts an invoice for the work order: its number is the configured
``prefix`` followed by the order's number; the result (number, copies) is recorded on
the step action and shown in an "Invoice" panel on the order page. Settings in
routecard.yaml: ``plugins: {invoice: {prefix: "INV-"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine import hookimpl
from engine.plugin_api import ActionContext, ActionResult, OrderAction, OrderPanel

SETTINGS_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "prefix": {"type": "string", "pattern": "^[A-Za-z0-9-]{0,12}$",
                   "description": "Put before the order number to make the invoice number (default INV-)."},
    },
}


async def generate(context: ActionContext) -> ActionResult:
    """Draft the invoice of the order: a number derived from the order's, and the copies asked for."""
    copies = context.parameters.get("copies", 1)
    if isinstance(copies, bool) or not isinstance(copies, int) or not 1 <= copies <= 10:
        return ActionResult(ok=False, error="the parameter `copies` must be a whole number from 1 to 10")
    number = f"{context.settings.get('prefix', 'INV-')}{context.order['number']}"
    return ActionResult(message=f"invoice {number} drafted ({copies} cop{'y' if copies == 1 else 'ies'})",
                        data={"invoice": number, "copies": copies})


@hookimpl
def routecard_settings_schema() -> Mapping[str, Any]:
    return SETTINGS_SCHEMA


@hookimpl
def routecard_actions() -> Sequence[OrderAction]:
    return [OrderAction(name="invoice.generate", run=generate, description="Draft the order's invoice.")]


@hookimpl
def routecard_order_panels(order: Mapping[str, Any]) -> Sequence[OrderPanel]:
    """An "Invoice" panel once the order's current step has generated one."""
    for action in order.get("actions", ()):
        result = action.get("result") or {}
        if result.get("plugin") == "invoice.generate" and result.get("ok"):
            data = result.get("data") or {}
            return [OrderPanel(title="Invoice", rows=(("Number", str(data.get("invoice", ""))),
                                                      ("Copies", str(data.get("copies", 1)))))]
    return []
