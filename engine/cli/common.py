"""What the commands share: the workspace folder, the database URL, diagnostics."""

from __future__ import annotations

import argparse
import gc
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from ..errors import DatabaseError, UsageError
from ..link.resolved import LinkedWorkspace
from ..workspace import open_workspace


def workspace_dir(value: str) -> Path:
    """The workspace folder given on the command line (``UsageError`` if it is not one)."""
    path = Path(value)
    if not path.exists():
        raise UsageError(f"{value}: no such folder")
    if not path.is_dir():
        raise UsageError(f"{value}: not a folder (give the workspace folder)")
    return path


def print_diagnostics(items: Sequence[object], out: TextIO) -> None:
    """Each diagnostic on a line of its own."""
    for item in items:
        print(item, file=out)


def database_url(args: argparse.Namespace, root: Path, configured: str | None) -> str:
    """``--db``, else ``ROUTECARD_DATABASE_URL``, else the workspace's own database (``configured`` or the default)."""
    from ..db import default_url

    return args.db or os.environ.get("ROUTECARD_DATABASE_URL") or default_url(root, configured)


async def require_applied(linked: LinkedWorkspace, url: str, root: Path) -> None:
    """Refuse (``DatabaseError``) a database that is not at the workspace's definition version."""
    from ..migrate import plan_for

    plan = await plan_for(linked, url)
    if not plan.up_to_date:
        have = plan.previous.fingerprint[:12] if plan.previous else "none"
        raise DatabaseError(
            f"the database {plan.database} is not at the workspace's definition version "
            f"{linked.fingerprint[:12]} (it has: {have}); run `routecard apply {root}` first")


async def runtime_db(args: argparse.Namespace) -> tuple[LinkedWorkspace, str]:
    """The workspace of ``args.workspace`` and its database's URL, the database applied."""
    root = workspace_dir(args.workspace)
    linked = open_workspace(root)
    url = database_url(args, root, linked.settings.database)
    await require_applied(linked, url, root)
    return linked, url


def keep_for_good() -> None:
    """Keep what a long-running process built at start out of the garbage collector's full passes.

    The definitions, routes and OpenAPI document are some 100,000 objects that live as long as
    the process; a full pass walks them all and stops every request for tens of milliseconds.
    """
    gc.collect()
    gc.freeze()
