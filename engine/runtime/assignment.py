"""Who owns a work order when it enters a step: creator, kept agent, or the group's choice."""

from __future__ import annotations

from ..db import Database
from ..link.resolved import LinkedWorkspace, ResolvedStep, ResolvedTemplate
from .actors import group_members
from .state import FINAL

ASSIGNMENT_RULES = ("round_robin", "least_open")
"""The rules a supervisor may ask to pick an owner (besides choosing one)."""


async def choose_in_group(db: Database, workspace: LinkedWorkspace, group: str, method: str) -> int | None:
    """The member ``method`` picks in ``group``; ``None`` when its supervisor is to choose."""
    if method == "supervisor":
        return None
    members = await group_members(db, workspace, group)
    if not members:
        return None
    ordered = sorted(members, key=lambda i: members[i])
    if method == "round_robin":
        turn = await db.fetch_value(
            "INSERT INTO rc_counter (name, value) VALUES ({}, 0) ON CONFLICT (name) DO UPDATE "
            "SET value = rc_counter.value + 1 RETURNING value", f"round_robin:{group}")
        return ordered[int(turn) % len(ordered)]
    marks = ", ".join("{}" for _ in ordered)
    rows = await db.fetch(
        f"SELECT owner_id, COUNT(*) AS n FROM rc_work_order WHERE owner_id IN ({marks}) "
        f"AND status NOT IN ({{}}, {{}}) GROUP BY owner_id", *ordered, *sorted(FINAL))
    load = {int(r["owner_id"]): int(r["n"]) for r in rows}
    return min(ordered, key=lambda i: (load.get(i, 0), members[i]))


async def initial_owner(db: Database, workspace: LinkedWorkspace, template: ResolvedTemplate,
                        step: ResolvedStep, creator: int | None) -> int | None:
    """The owner of a new work order (``initial_owner`` of its template)."""
    if template.initial_owner == "creator" or step.group is None:
        return creator
    return await choose_in_group(db, workspace, step.group, template.assignment)


async def transfer_owner(db: Database, workspace: LinkedWorkspace, template: ResolvedTemplate,
                         step: ResolvedStep, *, current_group: str | None, owner: int | None,
                         creator: int | None) -> int | None:
    """The owner when a work order moves into ``step``.

    In the same group (or a step without group) the owner stays. With
    ``transfer_retains_agent``: the creator if in the new group, else the current agent
    if in it, else the group assigns. Without it, the group assigns.
    """
    if step.group is None or step.group == current_group:
        return owner
    if template.transfer_retains_agent:
        members = await group_members(db, workspace, step.group)
        if creator is not None and creator in members:
            return creator
        if owner is not None and owner in members:
            return owner
    return await choose_in_group(db, workspace, step.group, template.assignment)
