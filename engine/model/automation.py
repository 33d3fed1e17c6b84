"""Automation: conditions, rules, macros, SLAs and business-hours calendars."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .common import (
    CLOCK_RANGE_PATTERN,
    DATE_PATTERN,
    Definition,
    Duration,
    Email,
    Identity,
    Label,
    Parameters,
    PluginAction,
    Priority,
    Status,
    describe,
)

FieldRef = Annotated[
    str,
    describe(
        "A custom field's name, or one of the work order's own attributes: priority, status, "
        "step, queue, template, owner, group, customer, project, title, sender, created_at.",
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=40,
    ),
]


class Condition(Definition, frozen=True, kw_only=True):
    """A test on a work order. Combine with all, any and not; or test one field with one operator."""

    all: Annotated[tuple[Condition, ...] | None, describe("True when every condition is true.")] = None
    any: Annotated[tuple[Condition, ...] | None, describe("True when at least one condition is true.")] = None
    not_: Annotated[Condition | None, describe("True when the condition is false.")] = msgspec.field(
        default=None, name="not"
    )
    field: Annotated[FieldRef | None, describe("The field tested by the operator beside it.")] = None
    function: Annotated[
        Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$", max_length=80)] | None,
        describe("A condition function a plugin provides, applied to the field's value before the operator "
                 "tests its result, e.g. `field: created_at, function: is_business_day, equals: true`."),
    ] = None
    equals: Annotated[Any, describe("The field has this value.")] = None
    not_equals: Annotated[Any, describe("The field does not have this value.")] = None
    in_: Annotated[tuple[Any, ...] | None, describe("The field's value is one of these.")] = msgspec.field(
        default=None, name="in"
    )
    not_in: Annotated[tuple[Any, ...] | None, describe("The field's value is none of these.")] = None
    gt: Annotated[Any, describe("The field is greater than this.")] = None
    gte: Annotated[Any, describe("The field is greater than or equal to this.")] = None
    lt: Annotated[Any, describe("The field is less than this.")] = None
    lte: Annotated[Any, describe("The field is less than or equal to this.")] = None
    contains: Annotated[Any, describe("Text contains this text; a multiselect contains this option.")] = None
    matches: Annotated[
        Annotated[str, Meta(max_length=200)] | None, describe("Text matches this regular expression.")
] = None
    empty: Annotated[bool | None, describe("true: the field has no value; false: it has one.")] = None
    changed: Annotated[bool | None, describe("true: the event changed this field.")] = None
    older_than: Annotated[
        Duration | None, describe("A date or time field lies more than this long ago (e.g. created_at, 4h).")
    ] = None
    newer_than: Annotated[
        Duration | None, describe("A date or time field lies less than this long ago.")
    ] = None
    calendar: Annotated[
        Identity | None,
        describe("older_than/newer_than count business hours of this calendar (default: around the clock)."),
    ] = None


OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "in_",
    "not_in",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "matches",
    "empty",
    "changed",
    "older_than",
    "newer_than",
)
"""Attribute names of the single-field operators of ``Condition``."""

Event = Literal[
    "created",
    "field_changed",
    "step_entered",
    "step_left",
    "action_processed",
    "action_skipped",
    "assigned",
    "comment_added",
    "email_received",
    "sla_warning",
    "sla_breach",
    "schedule",
]
"""Events a rule can react to."""


SCHEDULE_PATTERN = (
    r"^every (\d+[mhd]|day \d{2}:\d{2}|"
    r"(monday|tuesday|wednesday|thursday|friday|saturday|sunday|weekday) \d{2}:\d{2})$"
)


class Trigger(Definition, frozen=True, kw_only=True):
    """When a rule runs: an event, optionally narrowed, or a schedule."""

    event: Annotated[Event, describe("The event that runs the rule.")]
    field: Annotated[FieldRef | None, describe("field_changed: only changes of this field.")] = None
    from_: Annotated[Any, describe("field_changed: only changes from this value.")] = msgspec.field(
        default=None, name="from")
    to: Annotated[Any, describe("field_changed: only changes to this value.")] = None
    step: Annotated[Identity | None, describe("step_entered/step_left: only this step.")] = None
    schedule: Annotated[
        Annotated[str, Meta(pattern=SCHEDULE_PATTERN)] | None,
        describe("schedule: when to run, e.g. 'every day 08:00', 'every monday 09:30', 'every 2h'."),
    ] = None
    after: Annotated[
        Duration | None, describe("Run this long after the event instead of at once, e.g. 48h.")
    ] = None


class SetField(Definition, frozen=True, kw_only=True):
    """Set a custom field to a value."""

    field: FieldRef
    value: Annotated[Any, describe("The new value; must suit the field's type.")]


class Assign(Definition, frozen=True, kw_only=True):
    """Give the work order to a user, or to a group that assigns it."""

    user: Annotated[Annotated[str, Meta(max_length=100)] | None, describe("Login of the new owner.")] = None
    group: Annotated[Identity | None, describe("The group that gets the work order.")] = None
    method: Annotated[
        Literal["supervisor", "round_robin", "least_open"] | None,
        describe("How the group assigns it (default: the template's assignment)."),
    ] = None


class Route(Definition, frozen=True, kw_only=True):
    """Move the work order to a queue, a step, or a customer's project."""

    queue: Annotated[Identity | None, describe("The queue to move to.")] = None
    step: Annotated[Identity | None, describe("The step to move to.")] = None
    customer: Annotated[Identity | None, describe("The customer the work order belongs to.")] = None
    project: Annotated[Identity | None, describe("The customer's project the work order belongs to.")] = None


class AddComment(Definition, frozen=True, kw_only=True):
    """Add a comment to the work order's thread."""

    text: Annotated[str, describe("The comment; placeholders like {{ number }} are filled in.", max_length=20000)]
    client_viewable: Annotated[bool, describe("Whether the customer sees the comment.")] = False


Recipient = Annotated[
    str,
    describe(
        "An address, or one of: customer, owner, group, subscribers, sender.",
        max_length=320,
        pattern=r"^(customer|owner|group|subscribers|sender|[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+)$",
    ),
]


class SendEmail(Definition, frozen=True, kw_only=True):
    """Send an email about the work order."""

    to: Annotated[tuple[Recipient, ...], describe("Recipients.", min_length=1)]
    subject: Annotated[str, describe("Subject; placeholders are filled in.", max_length=500)]
    body: Annotated[str, describe("Body; placeholders are filled in.", max_length=100000)]
    cc: Annotated[tuple[Email, ...], describe("Copy to these addresses.")] = ()


class CreateWorkOrder(Definition, frozen=True, kw_only=True):
    """Create a new work order for the same customer."""

    template: Identity
    fields: Annotated[dict[str, Any], describe("Values of the new work order's fields.")] = msgspec.field(
        default_factory=dict
    )


class CallPlugin(Definition, frozen=True, kw_only=True):
    """Run a plugin action."""

    action: PluginAction
    with_: Parameters = msgspec.field(default_factory=dict, name="with")


class Action(Definition, frozen=True, kw_only=True):
    """One thing a rule, macro or escalation does. Exactly one key per action."""

    set_field: Annotated[SetField | None, describe("Set a custom field.")] = None
    set_priority: Annotated[Priority | None, describe("Set the priority.")] = None
    set_status: Annotated[Status | None, describe("Set the status.")] = None
    assign: Annotated[Assign | None, describe("Assign the work order.")] = None
    route: Annotated[Route | None, describe("Move the work order.")] = None
    comment: Annotated[AddComment | None, describe("Add a comment.")] = None
    email: Annotated[SendEmail | None, describe("Send an email.")] = None
    create_work_order: Annotated[CreateWorkOrder | None, describe("Create a work order.")] = None
    apply_macro: Annotated[Identity | None, describe("Apply a macro.")] = None
    call: Annotated[CallPlugin | None, describe("Run a plugin action.")] = None


ACTION_KEYS: tuple[str, ...] = Action.__struct_fields__


class Rule(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Rule"):
    """An automation: when a trigger fires and the condition holds, do the actions."""

    name: Identity
    label: Annotated[Label | None, describe("The rule's name as people read it.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What the rule is for.")] = None
    on: Annotated[
        tuple[Event | Trigger, ...],
        describe("Triggers: event names, or events with details.", min_length=1),
    ]
    templates: Annotated[tuple[Identity, ...], describe("Only work orders of these templates (default: all).")] = ()
    queues: Annotated[tuple[Identity, ...], describe("Only work orders in these queues (default: all).")] = ()
    when: Annotated[Condition | None, describe("The condition; without it the rule always runs.")] = None
    do: Annotated[tuple[Action, ...], describe("The actions, in order.", min_length=1)]
    order: Annotated[int, describe("Rules run in ascending order, then by name.")] = 100
    enabled: Annotated[bool, describe("A disabled rule never runs.")] = True
    stop: Annotated[bool, describe("Later rules do not run for the same event after this one ran.")] = False


class Macro(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Macro"):
    """A named bundle of actions an agent applies with one click."""

    name: Identity
    label: Annotated[Label | None, describe("The button's text.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What the macro does.")] = None
    templates: Annotated[tuple[Identity, ...], describe("Offered on these templates (default: all).")] = ()
    actions: Annotated[tuple[Action, ...], describe("The actions, in order.", min_length=1)]


ClockRange = Annotated[str, describe("Opening hours as HH:MM-HH:MM.", pattern=CLOCK_RANGE_PATTERN)]


class WeekHours(Definition, frozen=True, kw_only=True):
    """Working hours per weekday; a day not listed is closed."""

    mon: Annotated[tuple[ClockRange, ...], describe("Monday's working hours.")] = ()
    tue: Annotated[tuple[ClockRange, ...], describe("Tuesday's working hours.")] = ()
    wed: Annotated[tuple[ClockRange, ...], describe("Wednesday's working hours.")] = ()
    thu: Annotated[tuple[ClockRange, ...], describe("Thursday's working hours.")] = ()
    fri: Annotated[tuple[ClockRange, ...], describe("Friday's working hours.")] = ()
    sat: Annotated[tuple[ClockRange, ...], describe("Saturday's working hours.")] = ()
    sun: Annotated[tuple[ClockRange, ...], describe("Sunday's working hours.")] = ()


class Holiday(Definition, frozen=True, kw_only=True):
    """A day on which the calendar is closed."""

    date: Annotated[str, describe("The day, as YYYY-MM-DD.", pattern=DATE_PATTERN)]
    label: Annotated[Annotated[str, Meta(max_length=200)] | None, describe("The holiday's name.")] = None


class Calendar(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Calendar"):
    """Business hours and holidays in a timezone, used to count SLA time."""

    name: Identity
    label: Annotated[Label | None, describe("The calendar's name as people read it.")] = None
    timezone: Annotated[str, describe("An IANA timezone, e.g. Europe/Berlin.", max_length=64)]
    hours: Annotated[WeekHours, describe("Working hours per weekday.")]
    holidays: Annotated[tuple[Holiday, ...], describe("Closed days.")] = ()


class SlaTargets(Definition, frozen=True, kw_only=True):
    """The times within which work orders must be answered and resolved."""

    first_response: Annotated[Duration | None, describe("Time to the first reply to the customer.")] = None
    next_response: Annotated[Duration | None, describe("Time to answer each further customer message.")] = None
    resolution: Annotated[Duration | None, describe("Time to complete the work order.")] = None
    steps: Annotated[
        dict[str, Duration], describe("Time allowed in each named step.")
    ] = msgspec.field(default_factory=dict)


class SLA(Definition, frozen=True, kw_only=True, tag_field="kind", tag="SLA"):
    """A service level agreement: targets counted in business hours, with escalations."""

    name: Identity
    label: Annotated[Label | None, describe("The SLA's name as people read it.")] = None
    calendar: Annotated[Identity | None, describe("The calendar time is counted in (default: around the clock).")] = None
    templates: Annotated[tuple[Identity, ...], describe("Applies to these templates (default: all).")] = ()
    when: Annotated[Condition | None, describe("Applies only to work orders matching this.")] = None
    targets: Annotated[SlaTargets, describe("The times to meet.")]
    pause_on: Annotated[
        tuple[Status, ...], describe("The clock stops while a work order has one of these statuses.")
    ] = ()
    warn_before: Annotated[Duration | None, describe("Warn this long before a target is breached.")] = None
    on_warning: Annotated[tuple[Action, ...], describe("Actions when a warning is due.")] = ()
    on_breach: Annotated[tuple[Action, ...], describe("Actions when a target is breached.")] = ()
    priority: Annotated[int, describe("When several SLAs apply, the lowest number wins.")] = 100
