"""What a request gives of a work order, checked: its own attributes (title, priority, dates,
customer, project) and its custom fields, with every problem of both reported at once
(``Invalid`` names each field). Used by create and edit alike. ``Checks`` does the same
for the plainer bodies of customers, projects and customer users.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..db import Database
from ..errors import Forbidden, Invalid
from ..identifiers import quote
from ..model.common import PRIORITIES
from .actors import Actor
from .fields import FieldCodec, aware
from .references import record_problems


async def checked_input(db: Database, data: dict[str, Any], allowed: tuple[str, ...], codec: FieldCodec, *,
                        partial: bool, actor: Actor, order_id: int | None = None
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The work order's own values and its custom fields, with every problem of both reported at once."""
    errors: list[dict[str, str]] = []
    core: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    try:
        core = await core_values(db, data, allowed)
    except Invalid as exc:
        errors += exc.errors
    try:
        fields = codec.validate(data.get("fields") or {}, partial=partial)
    except Invalid as exc:
        errors += exc.errors
    else:
        errors += await record_problems(db, codec.template, fields, actor, order_id)
    if errors:
        raise Invalid(f"{len(errors)} value{'s' if len(errors) != 1 else ''} not valid", errors)
    return core, fields


async def core_values(db: Database, data: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Check the work order's own attributes in ``data``; ``Invalid`` names every bad one."""
    errors: list[dict[str, str]] = []
    out: dict[str, Any] = {}
    for key in data:
        if key not in allowed:
            errors.append({"field": key, "message": f"`{key}` cannot be set here; allowed: {', '.join(allowed)}"})
    if "title" in data:
        title = data["title"]
        if not isinstance(title, str) or len(title) > 300 or "\x00" in title:
            errors.append({"field": "title", "message": "expected text of at most 300 characters"})
        else:
            out["title"] = title.strip()
    if "priority" in data:
        if data["priority"] not in PRIORITIES:
            errors.append({"field": "priority", "message": f"one of: {', '.join(PRIORITIES)}"})
        else:
            out["priority"] = data["priority"]
    for key in ("requested_at", "planned_at"):
        if key in data:
            value = data[key]
            if value is None:
                out[key] = None
                continue
            try:
                moment = dt.datetime.fromisoformat(str(value))
            except ValueError:
                errors.append({"field": key, "message": "expected a date and time (ISO 8601)"})
                continue
            out[key] = aware(moment)
    for key, table in (("customer_id", "rc_customer"), ("project_id", "rc_project")):
        if key in data and data[key] is not None:
            value = data[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**63 \
                    or await db.fetch_value(
                    f"SELECT id FROM {quote(table)} WHERE id = {{}}", value) is None:
                errors.append({"field": key, "message": f"no {key.removesuffix('_id')} {value}"})
            else:
                out[key] = value
        elif key in data:
            out[key] = None
    if out.get("project_id") is not None:
        project = (await db.fetch("SELECT customer_id, archived_at FROM rc_project WHERE id = {}",
                                       out["project_id"]))[0]
        if "customer_id" in out and out["customer_id"] is not None and project["customer_id"] != out["customer_id"]:
            errors.append({"field": "project_id", "message": "the project belongs to another customer"})
        elif project["archived_at"] is not None:
            errors.append({"field": "project_id", "message": "the project is archived: it takes no new work"})
    if errors:
        raise Invalid(f"{len(errors)} value{'s' if len(errors) != 1 else ''} not valid", errors)
    return out


def for_customer(actor: Actor, core: dict[str, Any]) -> dict[str, Any]:
    """A customer user's order is always for the user's own customer."""
    if actor.customer_id is None:
        raise Forbidden(f"{actor.login} belongs to no customer")
    if core.get("customer_id") not in (None, actor.customer_id):
        raise Forbidden("a customer user can only create work orders for its own customer")
    return {**core, "customer_id": actor.customer_id}


RATE_PATTERN = r"^\d{1,9}(\.\d{1,2})?$"
DOMAIN_PATTERN = r"^[a-z0-9.-]+\.[a-z]{2,}$"
MAX_DOMAINS = 50


class Checks:
    """A request body's values, checked key by key: keys outside ``allowed`` and every value's
    problem are kept with their field path, and ``check`` raises ``Invalid`` naming them all."""

    def __init__(self, data: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
        self.data = data
        self.errors: list[dict[str, str]] = [
            {"field": str(key), "message": f"not a field here; use one of: {', '.join(allowed)}"}
            for key in data if key not in allowed]

    def fail(self, field: str, message: str) -> None:
        self.errors.append({"field": field, "message": message})

    def fixed(self, key: str, why: str) -> None:
        """``key`` may not change: its "not a field here" becomes ``why``."""
        if key in self.data:
            self.errors = [e for e in self.errors if e["field"] != key]
            self.fail(key, why)

    def text(self, key: str, *, max_length: int, required: bool = False, pattern: str | None = None,
             hint: str = "") -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(key, "expected text")
            return None
        text = (value or "").strip()
        if not text:
            if required:
                self.fail(key, "required")
            return None
        if len(text) > max_length:
            self.fail(key, f"at most {max_length} characters")
        elif pattern is not None and not re.fullmatch(pattern, text):
            self.fail(key, hint or "not in the expected form")
        return text

    def rate(self, key: str) -> Decimal | None:
        value = self.data.get(key)
        if value is None or value == "":
            return None
        text = str(value).strip() if isinstance(value, str | int | Decimal) and not isinstance(value, bool) else None
        if text is None or not re.fullmatch(RATE_PATTERN, text):
            self.fail(key, "a rate per hour such as 95 or 95.50 (at most 9 digits and 2 decimals)")
            return None
        return Decimal(text)

    def domains(self, key: str) -> list[str]:
        value = self.data.get(key)
        if value is None:
            return []
        if not isinstance(value, list | tuple) or len(value) > MAX_DOMAINS:
            self.fail(key, f"a list of at most {MAX_DOMAINS} mail domains")
            return []
        out: list[str] = []
        for index, item in enumerate(value):
            domain = item.strip().lower() if isinstance(item, str) else ""
            if len(domain) > 253 or not re.fullmatch(DOMAIN_PATTERN, domain):
                self.fail(f"{key}.{index}", "a mail domain such as example.com")
            elif domain not in out:
                out.append(domain)
        return out

    def flag(self, key: str) -> bool | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, bool):
            self.fail(key, "expected true or false")
            return None
        return value

    def check(self, detail: str) -> None:
        if self.errors:
            raise Invalid(detail, self.errors)
