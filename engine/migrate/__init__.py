"""Stage 5, migrate: definition changes become database migrations, never silent data loss.

- ``diff``: pure diff of the compiled schema against the last applied snapshot;
- ``plan``: that diff checked and counted against the live data (reads only);
- ``apply``: the plan and the new definition version in one transaction;
- ``live``: reading the live schema; ``convert``: value conversion for type changes.
"""

from __future__ import annotations

from ..db import connect
from ..link.resolved import LinkedWorkspace
from .apply import apply_plan
from .plan import Plan, build_plan

__all__ = ["Plan", "apply_workspace", "plan_for"]


async def plan_for(workspace: LinkedWorkspace, url: str) -> Plan:
    """The plan for ``workspace`` against the database at ``url``."""
    db = await connect(url)
    try:
        async with db.transaction():
            return await build_plan(db, workspace)
    finally:
        await db.close()


async def apply_workspace(workspace: LinkedWorkspace, url: str, *, allow_destructive: bool = False) -> Plan:
    """Apply ``workspace`` to the database at ``url``; raise ``PlanRefused`` if it cannot."""
    db = await connect(url)
    try:
        return await apply_plan(db, workspace, allow_destructive=allow_destructive)
    finally:
        await db.close()
