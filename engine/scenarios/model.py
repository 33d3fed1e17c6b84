"""What a workflow scenario says: the world it starts from, what happens, what must then be true.

A scenario is a YAML document in a file under the workspace's ``tests/`` folder::

    scenario: A server order is provisioned and billed
    given:
      clock: "2026-03-02T09:00:00+01:00"   # time stands still but for `wait`
      users: [{login: eva.klein, groups: [sales]}]
    when:
      - create: {order: o1, as: tom.berger, template: hosting_order, fields: {...}}
      - process: {order: o1, action: check_order}
      - expect: {order: o1, step: provisioning}
      - wait: 2h
    then:
      - {order: o1, status: completed, mails: [{to: ops@example.com}], rules_fired: [welcome]}

Orders are named by the scenario (``o1``), not by their numbers. Every step of
``when`` goes through the runtime's services as its actor (``as``; default: the
order's owner, else its creator), so a scenario sees the same checks and
automation as real work.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from msgspec import Meta

from ..model.common import Duration

Name = Annotated[str, Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.\-]*$", max_length=100)]


class Strict(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every scenario struct: unknown keys are errors."""


class GivenUser(Strict, frozen=True, kw_only=True):
    """A user besides the groups' members and supervisors (who are always there)."""

    login: Annotated[str, Meta(max_length=100)]
    name: str = ""
    email: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    customer: str | None = None
    """Makes the user a customer user of this customer (by name)."""


class GivenCustomer(Strict, frozen=True, kw_only=True):
    """A customer besides those the definitions declare."""

    name: Name
    label: str = ""
    email_domains: tuple[str, ...] = ()


class Given(Strict, frozen=True, kw_only=True):
    clock: str | None = None
    """ISO 8601 with an offset; default: the real time when the scenario starts."""
    users: tuple[GivenUser, ...] = ()
    customers: tuple[GivenCustomer, ...] = ()


class Step(Strict, frozen=True, kw_only=True):
    """One thing that happens to a work order (the key of the step says what)."""

    order: Name
    as_: str | None = msgspec.field(default=None, name="as")
    refused: str | None = None
    """The step must be refused, with a message containing this text."""
    template: str | None = None
    title: str | None = None
    priority: str | None = None
    customer: str | None = None
    fields: dict[str, Any] | None = None
    action: str | None = None
    to: str | None = None
    text: str | None = None
    client_viewable: bool = False
    reason: str | None = None
    follow_up: bool | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    """email: the sender's address."""
    subject: str | None = None
    body: str | None = None
    headers: dict[str, str] | None = None
    """email: further headers, e.g. {Auto-Submitted: auto-replied}."""
    name: str | None = None
    """macro: the macro applied."""
    outcome: str | None = None
    """email: what must become of the mail: created, threaded, duplicate, ignored, limited, failed."""


class Mail(Strict, frozen=True, kw_only=True):
    """A mail that must have been written to the outbox about the order."""

    to: str | None = None
    subject: str | None = None
    """Text the subject contains."""
    body: str | None = None
    """Text the body contains."""


class Expect(Strict, frozen=True, kw_only=True):
    """What must be true of one work order; keys left out are not checked."""

    order: Name
    step: str | None = None
    status: str | None = None
    owner: str | None = None
    """A login, or `nobody`."""
    group: str | None = None
    priority: str | None = None
    title: str | None = None
    fields: dict[str, Any] | None = None
    actions: dict[str, str] | None = None
    """Action name -> pending, processed or skipped (of the current step)."""
    mails: tuple[Mail, ...] | None = None
    rules_fired: tuple[str, ...] | None = None
    """The rules that fired on the order so far, in order."""
    sla: dict[str, Any] | None = None
    """The order's SLA, as the order page shows it: name, state (running, paused, escalating, stopped),
    target (the nearest), due_at, left (business seconds), paused, breached (the targets missed)."""


STEP_VERBS = ("create", "process", "skip", "advance", "return", "assign", "update", "comment", "cancel", "email", "macro")


class When(Strict, frozen=True, kw_only=True):
    """One item of `when`: exactly one of the keys."""

    create: Step | None = None
    process: Step | None = None
    skip: Step | None = None
    advance: Step | None = None
    return_: Step | None = msgspec.field(default=None, name="return")
    assign: Step | None = None
    update: Step | None = None
    comment: Step | None = None
    cancel: Step | None = None
    macro: Step | None = None
    """An agent applies the macro `name`."""
    email: Step | None = None
    """A mail arrives (as through the inbound endpoint): a new order named `order`, or, when `order`
    names one already, a reply carrying its number in the subject."""
    wait: Duration | None = None
    """Time passes (e.g. 90m, 2h, 1d4h): due jobs, rules on a timer and SLA escalations run."""
    expect: Expect | None = None


class Scenario(Strict, frozen=True, kw_only=True):
    scenario: Annotated[str, Meta(min_length=1, max_length=300)]
    given: Given = Given()
    when: tuple[When, ...] = ()
    then: tuple[Expect, ...] = ()
