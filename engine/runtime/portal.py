"""What a customer user may see: the one place the portal's isolation is decided.

A staff member's view is decided by groups and permissions (``Runtime.can_see``); a
customer user's by the workspace's ``Portal`` definitions. ``CustomerScope`` turns
their ``visibility`` into two equal forms of one rule: a test of a loaded work order
(``sees``) and an SQL condition with its parameters (``where``), used by every query
that lists work orders for a customer (lists, counts, references). Nothing in the web
layer filters on its own: a screen that forgets to ask still gets only what the
scope lets through, because every service asks it.

- ``own``: orders the user created, or that came in by mail from the user's address;
- ``organisation``: every order of the user's customer;
- ``followed_projects``: orders in projects the user follows (``rc_project_follower``).

A user who belongs to no customer sees nothing but their own orders. A workspace
without a Portal definition keeps the rule of older versions: a customer user sees
the orders of their customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import Invalid
from ..link.resolved import LinkedWorkspace
from ..model import Portal
from ..model.common import STATUSES
from .actors import Actor
from .lookups import like_pattern

DEFAULT_VISIBILITY = ("organisation",)


def portal_of(workspace: LinkedWorkspace) -> Portal | None:
    """The workspace's portal (the first by name when several are declared)."""
    return workspace.portals[min(workspace.portals)] if workspace.portals else None


class CustomerScope:
    """The work orders one customer user may see."""

    def __init__(self, workspace: LinkedWorkspace, actor: Actor) -> None:
        portal = portal_of(workspace)
        self.actor = actor
        self.visibility = frozenset(portal.visibility if portal else DEFAULT_VISIBILITY)
        self.templates: frozenset[str] | None = frozenset(portal.templates) if portal and portal.templates else None

    def sees(self, state: Mapping[str, Any]) -> bool:
        """Whether the work order with core values ``state`` is visible to the customer user."""
        actor = self.actor
        if actor.is_staff:
            raise ValueError("CustomerScope is for customer users")
        if self.templates is not None and state.get("template") not in self.templates:
            return False
        if "own" in self.visibility and actor.id is not None and (
                state.get("created_by") == actor.id
                or (actor.email and (state.get("sender") or "").lower() == actor.email.lower())):
            return True
        customer = state.get("customer_id")
        if "organisation" in self.visibility and actor.customer_id is not None and customer == actor.customer_id:
            return True
        project = state.get("project_id")
        return "followed_projects" in self.visibility and project is not None and project in actor.follows

    def where(self, alias: str = "") -> tuple[str, list[Any]]:
        """The same rule as an SQL condition over ``rc_work_order`` (``alias.`` prefixed) and its parameters."""
        actor = self.actor
        p = f"{alias}." if alias else ""
        parts: list[str] = []
        args: list[Any] = []
        if "own" in self.visibility and actor.id is not None:
            parts.append(f"{p}created_by = {{}}")
            args.append(actor.id)
            if actor.email:
                parts.append(f"LOWER({p}sender) = {{}}")
                args.append(actor.email.lower())
        if "organisation" in self.visibility and actor.customer_id is not None:
            parts.append(f"{p}customer_id = {{}}")
            args.append(actor.customer_id)
        if "followed_projects" in self.visibility and actor.follows:
            follows = sorted(actor.follows)
            parts.append(f"{p}project_id IN ({', '.join('{}' for _ in follows)})")
            args += follows
        sql = f"({' OR '.join(parts)})" if parts else "1 = 0"
        if self.templates is not None:
            names = sorted(self.templates)
            sql += f" AND {p}template IN ({', '.join('{}' for _ in names)})"
            args += names
        return sql, args


def customer_where(workspace: LinkedWorkspace, actor: Actor, alias: str = "") -> tuple[str, list[Any]]:
    """``CustomerScope(workspace, actor).where(alias)``."""
    return CustomerScope(workspace, actor).where(alias)


def visible_templates_for_customer(workspace: LinkedWorkspace) -> Sequence[str]:
    """The templates a customer user may see orders of."""
    portal = portal_of(workspace)
    return list(portal.templates) if portal and portal.templates else list(workspace.templates)


MAX_PORTAL_ROWS = 100


async def portal_orders(runtime: Any, actor: Actor, *, archived: bool, search: str = "",
                        status: str | None = None, limit: int = MAX_PORTAL_ROWS) -> list[dict[str, Any]]:
    """A customer user's running (or archived: completed and cancelled) orders, newest first.

    ``search`` finds a number or words of the title; ``status`` keeps one status.
    """
    from .fields import to_json_time

    text = search.strip()
    if len(text) > 200:
        raise Invalid("the search text is too long", [{"field": "q", "message": "at most 200 characters"}])
    if status is not None and status not in STATUSES:
        raise Invalid("no such status", [{"field": "status", "message": f"one of: {', '.join(STATUSES)}"}])
    sql, args = customer_where(runtime.workspace, actor)
    where = [sql]
    where.append(f"status {'IN' if archived else 'NOT IN'} ({{}}, {{}})")
    args += ["completed", "cancelled"]
    if status is not None:
        where.append("status = {}")
        args.append(status)
    if text:
        where.append("(LOWER(number) LIKE {} ESCAPE '\\' OR LOWER(title) LIKE {} ESCAPE '\\')")
        args += [like_pattern(text), like_pattern(text)]
    rows = await runtime.db.fetch(
        "SELECT number, template, queue, step, status, title, created_at, updated_at, completed_at, cancelled_at "
        f"FROM rc_work_order WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT {{}}",
        *args, limit)
    return [{**r, **{k: to_json_time(r[k]) for k in ("created_at", "updated_at", "completed_at", "cancelled_at")}}
            for r in rows]
