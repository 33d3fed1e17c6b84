"""An example Routecard plugin: the ``iban`` field type and the ``provision.server`` order action.

Routecard loads this module through the entry point ``iban = "routecard_iban"`` in the
group ``routecard`` (see pyproject.toml) and calls the functions marked ``@hookimpl``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from engine import hookimpl
from engine.comms.webhook import Refused, post_json
from engine.plugin_api import ActionContext, ActionResult, ConditionFunction, FieldType, OrderAction

IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18, "FR": 27, "GB": 22,
    "IE": 22, "IT": 27, "LI": 21, "LU": 20, "NL": 18, "NO": 15, "PL": 28, "PT": 25, "SE": 24, "SK": 24,
}
"""The length of an IBAN per country (the countries this example knows; others: 15 to 34)."""

_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}$")

SETTINGS_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "provisioning_url": {"type": "string", "pattern": "^https?://", "maxLength": 2048,
                             "description": "Where provision.server POSTs the order."},
        "allow_hosts": {"type": "array", "items": {"type": "string"},
                        "description": "Internal hosts provision.server may call (SSRF guard)."},
        "timeout": {"type": "number", "minimum": 1, "maximum": 60},
    },
}


def normalize_iban(value: Any) -> Any:
    """An IBAN as stored: without spaces, upper case (``de89 3704 ...`` -> ``DE893704...``)."""
    return re.sub(r"\s+", "", value).upper() if isinstance(value, str) else value


def iban_problem(value: Any) -> str | None:
    """Why ``value`` (normalized) is not an IBAN, or ``None``: shape, country length, mod-97 check digits."""
    if not isinstance(value, str) or not _SHAPE.match(value):
        return "not an IBAN: two letters, two check digits, then 11 to 30 letters or digits"
    expected = IBAN_LENGTHS.get(value[:2])
    if expected is not None and len(value) != expected:
        return f"an IBAN of {value[:2]} has {expected} characters, not {len(value)}"
    rearranged = value[4:] + value[:4]
    digits = "".join(str(int(c, 36)) for c in rearranged)
    if int(digits) % 97 != 1:
        return "the IBAN's check digits do not match (a typing error?)"
    return None


IBAN = FieldType(name="iban", base="input", column="varchar(34)", validate=iban_problem, normalize=normalize_iban,
                 placeholder="DE89 3704 0044 0532 0130 00", description="An International Bank Account Number.")


async def provision_server(context: ActionContext) -> ActionResult:
    """POST the order to the provisioning service; record the server it answers with."""
    url = context.settings.get("provisioning_url")
    if not url:
        return ActionResult(ok=False, error="set plugins.iban.provisioning_url in routecard.yaml")
    order = context.order
    body = json.dumps({"order": order["number"], "plan": context.parameters.get("plan", "standard"),
                       "fields": order.get("fields", {})}).encode()
    try:
        response = await post_json(str(url), body, allow_hosts=context.settings.get("allow_hosts", ()),
                                   timeout=float(context.settings.get("timeout", 10)))
    except Refused as exc:
        return ActionResult(ok=False, error=f"the provisioning URL is refused: {exc}")
    if not response.ok:
        return ActionResult(ok=False, error=f"the provisioning service answered {response.status}",
                            data={"status": response.status})
    try:
        answer = json.loads(response.body)
        server = str(answer["server"])
    except (ValueError, KeyError, TypeError):
        return ActionResult(ok=False, error="the provisioning service's answer has no `server`",
                            data={"status": response.status})
    return ActionResult(message=f"server {server} provisioned", data={"server": server, "status": response.status})


@hookimpl
def routecard_settings_schema() -> Mapping[str, Any]:
    return SETTINGS_SCHEMA


@hookimpl
def routecard_field_types() -> Sequence[FieldType]:
    return [IBAN]


def iban_country(value: Any) -> str | None:
    """The country code of an IBAN (``DE`` for ``DE89 3704 ...``), for conditions; ``None`` without one."""
    text = normalize_iban(value) if isinstance(value, str) else None
    return text[:2] if isinstance(text, str) and len(text) >= 2 and text[:2].isalpha() else None


@hookimpl
def routecard_conditions() -> Sequence[ConditionFunction]:
    return [ConditionFunction(name="iban_country", function=iban_country,
                              description="The country code of an IBAN, e.g. `function: iban_country, in: [DE, AT]`.")]


@hookimpl
def routecard_actions() -> Sequence[OrderAction]:
    return [OrderAction(name="provision.server", run=provision_server, timeout=20.0,
                        description="Order a server from the provisioning service.")]
