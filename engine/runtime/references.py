"""Custom-field values that name records: they must name records that exist and may be named.

A ``user`` field holds an active user's id, a ``customer`` field a customer's id, a
``reference`` field the id of a work order of the template the field names, and an
``upload`` field ids of files. The types are checked by ``FieldCodec``; this module
checks the records, so an API client cannot point a field at a record that is not
there, at another customer's work order, or at a file of another work order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..db import Database
from ..link.resolved import ResolvedTemplate
from .actors import Actor

RECORD_KINDS = frozenset({"user", "customer", "reference", "upload"})
"""The field types whose values name records."""


async def record_problems(db: Database, template: ResolvedTemplate, values: Mapping[str, Any], actor: Actor,
                          order_id: int | None) -> list[dict[str, str]]:
    """Every field of ``values`` (validated Python values) naming a record it may not; as API errors.

    ``order_id`` is the work order being edited (``None`` while it is created): its own
    files may stay in an upload field, and new ones must have been uploaded by ``actor``
    and not yet be tied to any work order.
    """
    errors: list[dict[str, str]] = []
    for name, value in values.items():
        field = template.field(name)
        if field is None or field.type not in RECORD_KINDS or value is None or value == []:
            continue
        problem = await _problem(db, field.type, field.reference, value, actor, order_id)
        if problem:
            errors.append({"field": f"fields.{name}", "message": problem})
    return errors


async def _problem(db: Database, kind: str, reference: str | None, value: Any, actor: Actor,
                   order_id: int | None) -> str | None:
    own_customer = None if actor.is_staff else actor.customer_id
    if kind == "user":
        found = await db.fetch("SELECT id FROM rc_user WHERE id = {} AND is_active = {}", value, True)
        return None if found else f"no active user has id {value}"
    if kind == "customer":
        found = await db.fetch("SELECT id FROM rc_customer WHERE id = {}", value)
        if not found or (own_customer is not None and value != own_customer):
            return f"no customer has id {value}"
        return None
    if kind == "reference":
        rows = await db.fetch("SELECT template, customer_id FROM rc_work_order WHERE id = {}", value)
        if not rows or rows[0]["template"] != reference or (
                own_customer is not None and rows[0]["customer_id"] != own_customer):
            return f"no work order of template `{reference}` has id {value}"
        return None
    if kind == "upload":
        ids = sorted(set(value))
        marks = ", ".join("{}" for _ in ids)
        rows = await db.fetch(
            f"SELECT id FROM rc_attachment WHERE id IN ({marks}) AND (work_order_id = {{}} "
            "OR (work_order_id IS NULL AND uploaded_by = {}))", *ids, order_id if order_id is not None else -1,
            actor.id if actor.id is not None else -1)
        missing = [i for i in ids if i not in {int(r["id"]) for r in rows}]
        if missing:
            return f"not files of this work order: {', '.join(str(i) for i in missing)}"
    return None
