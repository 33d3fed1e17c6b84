"""The JSON bodies the API accepts, as strict msgspec Structs (they become the OpenAPI schemas).

Unknown keys are refused (``forbid_unknown_fields``): a PATCH carrying ``status`` or
``created_by`` is a 422 naming that key, never silently ignored. A key left out of a
PATCH is ``UNSET`` (unchanged); ``null`` clears the value.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from engine.model.common import PRIORITIES

Priority = Literal[PRIORITIES]  # type: ignore[valid-type]
ID_MAX = 2**63 - 1
"""Ids are 64-bit integers in both databases: a larger number can name nothing, and must not reach SQL."""
VERSION_MAX = 2**31 - 1
"""Versions are `integer` columns (32 bits on PostgreSQL); no work order gets near that many changes."""
Id = Annotated[int, Meta(ge=1, le=ID_MAX)]
Version = Annotated[int, Meta(ge=1, le=VERSION_MAX,
                              description="The version of the work order you read (optimistic concurrency).")]


class Body(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Base of request bodies."""


class OrderPatch(Body):
    """A change of the work order's content; keys left out stay as they are."""

    version: Version
    title: Annotated[str, Meta(max_length=300)] | UnsetType = UNSET
    priority: Priority | UnsetType = UNSET
    requested_at: dt.datetime | None | UnsetType = UNSET
    planned_at: dt.datetime | None | UnsetType = UNSET
    customer_id: Id | None | UnsetType = UNSET
    project_id: Id | None | UnsetType = UNSET
    fields: dict[str, Any] | UnsetType = UNSET
    """Custom fields by name (the template's shape is in its create schema)."""


class ActionBody(Body):
    version: Version
    skip: bool = False
    note: Annotated[str, Meta(max_length=2000)] | None = None
    follow_up: bool | None = None


class AdvanceBody(Body):
    version: Version
    to: str | None = None
    follow_up: bool | None = None


class ReturnBody(Body):
    version: Version
    to: Annotated[str, Meta(description="`previous`, `supervisor` or an earlier step's name")]


class AssignBody(Body):
    version: Version
    owner: Annotated[str, Meta(description="login of a member of the current group; null: nobody")] | None | UnsetType = UNSET
    rule: Annotated[Literal["round_robin", "least_open"] | None, Meta(
        description="let this rule pick the member instead of naming one")] = None


class CancelBody(Body):
    version: Version
    reason: Annotated[str, Meta(max_length=300)] | None = None


class MacroBody(Body):
    version: Version


class LinkBody(Body):
    number: Annotated[str, Meta(max_length=60, description="the other work order's number")]


class LoginBody(Body):
    login: Annotated[str, Meta(max_length=100)]
    password: Annotated[str, Meta(max_length=1000)]


class TokenBody(Body):
    name: Annotated[str, Meta(min_length=1, max_length=100)]


def set_values(body: msgspec.Struct, *, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keys of ``body`` the client sent (not ``UNSET``), as JSON-like values."""
    out: dict[str, Any] = {}
    for name in body.__struct_fields__:
        value = getattr(body, name)
        if value is UNSET or name in skip:
            continue
        out[name] = value.isoformat() if isinstance(value, dt.datetime) else value
    return out
