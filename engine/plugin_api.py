"""The typed values plugins hand to Routecard and receive from it (see ``engine.hookspec``).

Plugin authors build these small frozen structs in their hook implementations:
``FieldType`` (a custom field type), ``OrderAction`` (a step or rule action),
``ConditionFunction``, ``Channel`` (an outbox delivery kind), ``OrderPanel`` (a box
on the order page), ``CliCommand``; they receive ``ActionContext``, ``Event`` and
return ``ActionResult``. Nothing here touches the database or imports a plugin.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

BaseType = Literal["input", "text", "number", "decimal", "boolean", "date", "datetime", "email", "url"]
"""The core field types a plugin field type may behave as (in conditions, JSON and forms)."""

BASE_TYPES: tuple[str, ...] = BaseType.__args__  # type: ignore[attr-defined]

COLUMN_TYPE = re.compile(r"^(varchar\((?P<length>\d{1,5})\)|numeric\(\d{1,2},\d{1,2}\)|text|bigint|integer|boolean|date"
                         r"|timestamptz)$")
"""The column types a plugin field type may ask for (checked against this allow-list, never raw DDL)."""

COLUMNS_OF_BASE: dict[str, tuple[str, ...]] = {
    "input": ("varchar", "text"), "text": ("text",), "email": ("varchar", "text"), "url": ("varchar", "text"),
    "number": ("bigint", "integer"), "decimal": ("numeric",), "boolean": ("boolean",), "date": ("date",),
    "datetime": ("timestamptz",),
}
"""Which column types suit each base type (the first word of the column type)."""

PLUGIN_ACTION = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


@dataclass(frozen=True, kw_only=True)
class FieldType:
    """A field type a plugin adds: usable as ``type: <name>`` in templates and shared fields."""

    name: str
    """The type's name as written in definitions, e.g. ``iban`` (lowercase identity)."""
    base: BaseType = "input"
    """The core type it behaves as: its JSON form, the conditions it allows, the default input."""
    column: str = "varchar(255)"
    """The database column type, one of COLUMN_TYPE, e.g. ``varchar(34)``."""
    validate: Callable[[Any], str | None] | None = None
    """Why a (normalized) value is refused, in words, or ``None`` when it is fine."""
    normalize: Callable[[Any], Any] | None = None
    """The canonical form a value is stored in (e.g. an IBAN without spaces, upper case)."""
    placeholder: str | None = None
    """Shown in the empty input of forms."""
    input_mode: str | None = None
    """The HTML ``inputmode`` of the input (text, numeric, email, ...)."""
    description: str = ""

    @property
    def max_length(self) -> int | None:
        """The column's length for varchar columns."""
        match = COLUMN_TYPE.match(self.column)
        return int(match.group("length")) if match and match.group("length") else None

    def problem(self) -> str | None:
        """Why this declaration is unusable, or ``None``."""
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", self.name):
            return f"field type name {self.name!r} is not a lowercase identity"
        if self.base not in BASE_TYPES:
            return f"field type {self.name}: base {self.base!r} is not one of {', '.join(BASE_TYPES)}"
        if not COLUMN_TYPE.match(self.column):
            return f"field type {self.name}: column type {self.column!r} is not allowed"
        if self.column.split("(")[0] not in COLUMNS_OF_BASE[self.base]:
            return f"field type {self.name}: column {self.column} does not store {self.base} values"
        return None

    def check(self, value: Any) -> tuple[Any, str | None]:
        """``(normalized value, problem)`` for a value already converted to the base type."""
        try:
            if self.normalize is not None:
                value = self.normalize(value)
            problem = self.validate(value) if self.validate is not None else None
        except Exception as exc:  # noqa: BLE001 - a plugin's bug becomes a refusal, never a crash
            return value, f"the {self.name} field type could not check the value ({type(exc).__name__})"
        return value, problem


@dataclass(frozen=True, kw_only=True)
class ActionResult:
    """What an order action did; recorded on the step action and in the audit event."""

    ok: bool = True
    """Whether the action succeeded; a failed one leaves the step action pending."""
    message: str = ""
    """A short text for the people working the order."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """JSON data kept with the result (e.g. an invoice number, a server id)."""
    error: str | None = None
    """Why it failed (no secrets, no upstream bodies beyond a short excerpt)."""
    ran: bool = True
    """False when no plugin provides the action: the action is then done by hand."""

    def as_json(self, action: str) -> dict[str, Any]:
        """The result as stored in ``rc_step_action.result``."""
        out: dict[str, Any] = {"plugin": action, "ran": self.ran, "ok": self.ok}
        if self.message:
            out["message"] = self.message[:500]
        if self.data:
            out["data"] = dict(self.data)
        if self.error:
            out["error"] = self.error[:500]
        return out


@dataclass(frozen=True, kw_only=True)
class ActionContext:
    """What an order action is given: the order (as the API shows it), its parameters, its settings."""

    action: str
    order: Mapping[str, Any]
    parameters: Mapping[str, Any]
    settings: Mapping[str, Any]
    """This plugin's settings from routecard.yaml (``plugins: {name: ...}``), already validated."""
    workspace: str
    base_url: str


@dataclass(frozen=True, kw_only=True)
class OrderAction:
    """An action a step (``plugin: name``) or a rule (``call``) can run on a work order."""

    name: str
    """``plugin.action``, e.g. ``invoice.generate``."""
    run: Callable[[ActionContext], Awaitable[ActionResult]]
    description: str = ""
    timeout: float = 30.0
    """Seconds after which the run is abandoned and counted as failed."""


@dataclass(frozen=True, kw_only=True)
class ConditionFunction:
    """A function conditions may call by name, e.g. ``is_weekend(created_at)``; pure, no I/O."""

    name: str
    function: Callable[..., Any]
    description: str = ""


@dataclass(frozen=True, kw_only=True)
class Event:
    """One audit event of a saved change, as event subscribers see it."""

    kind: str
    order: Mapping[str, Any]
    """number, template, queue, step, status, priority, title, version, fields."""
    before: Mapping[str, Any]
    after: Mapping[str, Any]
    source: str | None
    key: str
    """Unique per event (order id, version, index): use it to make deliveries idempotent."""


@dataclass(frozen=True, kw_only=True)
class EventContext:
    """What an event subscriber may do: read its settings and hand payloads to an outbound channel."""

    settings: Mapping[str, Any]
    workspace: str
    base_url: str
    send: Callable[[str, str, Mapping[str, Any]], Awaitable[bool]]
    """``send(channel, idempotency_key, payload)`` queues a delivery in the outbox, in the
    change's transaction (so it fires once, and only if the change commits)."""


Outcome = tuple[str | None, bool]
"""A delivery's outcome: (error text or ``None`` when delivered, whether the error is permanent)."""


@dataclass(frozen=True, kw_only=True)
class Delivery:
    """One claimed outbox row handed to a channel."""

    id: int
    payload: bytes
    """The row's JSON payload as written by ``EventContext.send`` (or the mail code)."""
    attempts: int


@dataclass(frozen=True, kw_only=True)
class Channel:
    """An outbound channel: the outbox rows of ``kind`` are delivered through ``send``."""

    kind: str
    send: Callable[[Any, list[Delivery], float], Awaitable[list[Outcome]]]
    """``send(settings, deliveries, timeout)`` -> one outcome per delivery (settings: the Workspace)."""
    ready: Callable[[Any], str | None] = field(default=lambda settings: None)
    """Why the channel cannot deliver with these settings (rows then wait), or ``None``."""
    describe: Callable[[bytes], str] = field(default=lambda payload: "")
    """A short, secret-free description of a payload for the worker's log."""
    send_each: Callable[[Any, list[Delivery], float, Callable[[int, Outcome], None]], Awaitable[None]] | None = None
    """Optional, used instead of ``send``: ``send_each(settings, deliveries, timeout, done)`` calls
    ``done(index, outcome)`` from a worker thread as soon as each delivery's outcome is known; ``done`` returns
    once the outcome is recorded. A channel that sends several deliveries over one connection should offer
    it, so a worker killed half-way through a batch has recorded what went out, and nothing is sent twice."""


@dataclass(frozen=True, kw_only=True)
class OrderPanel:
    """A box on the order page; every text is escaped when rendered (never raw HTML)."""

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    """(label, value) lines."""
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class CliCommand:
    """A ``routecard <name>`` sub-command."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    """Returns the exit code."""
    configure: Callable[[argparse.ArgumentParser], None] = field(default=lambda parser: None)
