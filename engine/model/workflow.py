"""Groups, roles, work-order templates and queues: who works on what, in which steps."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .common import Definition, Email, Identity, Label, Parameters, PluginAction, describe
from .fields import Field

Permission = Literal[
    "order.create",
    "order.view_all",
    "order.edit",
    "order.transition",
    "order.assign",
    "order.cancel",
    "comment.private",
    "comment.public",
    "email.send",
    "time.track",
    "time.edit_others",
    "report.view",
    "customer.manage",
    "definition.apply",
    "admin",
]
"""What a role may do."""

PERMISSIONS: tuple[str, ...] = Permission.__args__  # type: ignore[attr-defined]

Login = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_.@+-]{1,100}$", description="A user's login name.")]


class Group(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Group"):
    """An agent group, such as Sales or Finance, with a supervisor."""

    name: Identity
    label: Annotated[Label | None, describe("The group's name as people read it.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What the group does.")] = None
    supervisor: Annotated[
        Login | None,
        describe("Login of the group's supervisor, who assigns its work and may always edit it."),
    ] = None
    members: Annotated[tuple[Login, ...], describe("Logins of the group's members.")] = ()
    email: Annotated[Email | None, describe("The group's address, used for notifications.")] = None


class Role(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Role"):
    """What the holders of a role may do."""

    name: Identity
    label: Annotated[Label | None, describe("The role's name as people read it.")] = None
    permissions: Annotated[
        tuple[Permission, ...], describe("The permissions this role grants.", min_length=1)
    ]
    groups: Annotated[
        tuple[Identity, ...], describe("Members of these groups hold this role.")
    ] = ()


class Numbering(Definition, frozen=True, kw_only=True):
    """How work orders of a template are numbered, e.g. WO-00042."""

    prefix: Annotated[
        str,
        describe(
            "Text before the number: capital letters, digits, - and /. Each template needs "
            "its own: not another template's (so one template at most goes without), nor "
            "another's followed by digits only.",
            pattern=r"^[A-Z0-9/-]{0,12}$",
        ),
    ] = ""
    digits: Annotated[int, describe("The number is padded with zeros to this many digits.", ge=1, le=12)] = 5
    start: Annotated[int, describe("The first number given.", ge=1)] = 1


class Template(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Template"):
    """A type of work order: its custom fields, who works on it and how."""

    name: Identity
    label: Annotated[Label | None, describe("The template's name as people read it.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What this kind of work order is for.")] = None
    team: Annotated[Identity | None, describe("The group that owns work orders of this template.")] = None
    range: Annotated[
        tuple[Identity, ...],
        describe("The groups that may process this template; every step's group must be among them."),
    ] = ()
    initial_owner: Annotated[
        Literal["creator", "group"],
        describe(
            "creator: whoever creates a work order owns it. group: it is assigned within the "
            "first step's group (see assignment)."
        ),
    ] = "creator"
    assignment: Annotated[
        Literal["supervisor", "round_robin", "least_open"],
        describe(
            "How a group assigns work: its supervisor chooses, round_robin, or least_open "
            "(the member with the fewest open work orders)."
        ),
    ] = "supervisor"
    edit_limit: Annotated[
        Literal["everyone", "owner"],
        describe(
            "everyone: others may reply and edit content but not change the status. owner: only "
            "the owner edits, others read. Group supervisors always may."
        ),
    ] = "everyone"
    transfer_retains_agent: Annotated[
        bool,
        describe(
            "When a work order moves to another group: give it to its creator if in that group, "
            "else keep the current agent if in that group, else wait for assignment."
        ),
    ] = True
    end_action: Annotated[
        Literal["nothing", "new_work_order", "agent_decides"],
        describe("What happens when a work order completes."),
    ] = "nothing"
    end_template: Annotated[
        Identity | None, describe("The template of the work order created at the end (default: this one).")
    ] = None
    default_cc: Annotated[
        tuple[Email, ...], describe("Addresses told of every status change.")
    ] = ()
    numbering: Annotated[Numbering, describe("How work orders are numbered.")] = msgspec.field(
        default_factory=Numbering
    )
    fields: Annotated[
        tuple[Identity | Field, ...],
        describe("The custom fields: a shared Field's name, or a field defined here."),
    ] = ()
    purge: Annotated[
        tuple[Identity, ...],
        describe(
            "Removed fields whose kept (archived) columns are to be deleted with their data. "
            "apply refuses this without --allow-destructive."
        ),
    ] = ()


class StepAction(Definition, frozen=True, kw_only=True):
    """An order action of a step: processed or skipped by an agent, or run by a plugin."""

    name: Identity
    label: Annotated[Label | None, describe("What the agent reads, e.g. Provision the account.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("Instructions for the agent.")] = None
    plugin: Annotated[PluginAction | None, describe("A plugin action run when the action is processed.")] = None
    with_: Parameters = msgspec.field(default_factory=dict, name="with")
    skippable: Annotated[bool, describe("Whether the action may be skipped.")] = True


ReturnPath = Annotated[
    str,
    describe(
        "previous (the step before), supervisor (the step group's supervisor decides), or the "
        "name of an earlier step.",
        pattern=r"^[a-z][a-z0-9_]*$",
        max_length=40,
    ),
]


class Step(Definition, frozen=True, kw_only=True):
    """One step of a queue: a group does its order actions, then the work order moves on."""

    name: Annotated[Identity, describe("The step's identity; complete is reserved for the final step.")]
    label: Annotated[Label | None, describe("The step's name as people read it.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What happens in this step.")] = None
    group: Annotated[Identity | None, describe("The group that does this step.")] = None
    actions: Annotated[tuple[StepAction, ...], describe("The order actions of this step, in order.")] = ()
    next: Annotated[
        Identity | tuple[Identity, ...] | None,
        describe(
            "Where the work order goes when the step is done: a step, or several for the agent to "
            "choose from, or complete. Default: the following step (complete after the last)."
        ),
    ] = None
    returns: Annotated[
        tuple[ReturnPath, ...],
        describe("Ways back: previous, supervisor, or the name of an earlier step."),
    ] = ()


class Queue(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Queue"):
    """A queue of steps that work orders of its templates go through until complete."""

    name: Identity
    label: Annotated[Label | None, describe("The queue's name as people read it.")] = None
    description: Annotated[Annotated[str, Meta(max_length=2000)] | None, describe("What this queue is for.")] = None
    templates: Annotated[
        tuple[Identity, ...], describe("The templates whose work orders enter this queue.", min_length=1)
    ]
    steps: Annotated[tuple[Step, ...], describe("The steps, in order.", min_length=1)]
    retired_steps: Annotated[
        dict[str, Identity],
        describe(
            "Steps that were removed, each mapped to the step (or complete) its waiting work "
            "orders move to when the change is applied."
        ),
    ] = msgspec.field(default_factory=dict)


