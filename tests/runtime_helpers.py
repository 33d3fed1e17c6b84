"""Helpers for runtime tests: a workspace applied to a database, its users, actors and a ``Runtime``.

Test modules import the fixtures they need (``ecommerce``, ``hosting``) from here;
pytest picks up fixtures imported into a module's namespace.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest

from engine.db import Database, connect
from engine.link.resolved import LinkedWorkspace
from engine.migrate import apply_workspace
from engine.runtime import Actor, Runtime, add_user, load_actor
from engine.runtime.state import load_order
from engine.workspace import open_workspace
from tests.migration_helpers import dump, write_workspace

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

__all__ = ["EXAMPLES", "Env", "dump", "ecommerce", "hosting", "make_env", "tmp_env", "write_workspace"]


class Env:
    """One workspace on one database: its runtime, and an actor per login (loaded once)."""

    def __init__(self, workspace: LinkedWorkspace, db: Database) -> None:
        self.workspace = workspace
        self.db = db
        self.rt = Runtime(workspace, db)
        self._actors: dict[str, Actor] = {}

    async def actor(self, login: str) -> Actor:
        if login not in self._actors:
            self._actors[login] = await load_actor(self.db, self.workspace, login=login)
        return self._actors[login]

    async def user(self, login: str, *, groups: tuple[str, ...] = (), roles: tuple[str, ...] = (),
                   is_staff: bool = True, customer_id: int | None = None) -> Actor:
        """Add a user (or give an existing one more groups and roles) and return its actor."""
        await add_user(self.db, self.workspace, login, groups=groups, roles=roles, is_staff=is_staff,
                       customer_id=customer_id)
        self._actors.pop(login, None)
        return await self.actor(login)

    async def user_id(self, login: str) -> int:
        return int(await self.db.fetch_value("SELECT id FROM rc_user WHERE login = {}", login))

    async def state(self, number: str) -> dict[str, Any]:
        """The order's state as the runtime loads it (the keys the audit trail replays)."""
        order = await load_order(self.db, self.workspace.templates, self.workspace.queues, self.rt.codecs, number)
        return order.state

    async def customer(self, name: str) -> int:
        await self.db.execute("INSERT INTO rc_customer (name, label) VALUES ({}, {})", name, name.title())
        return int(await self.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", name))

    async def step_actions(self, number: str) -> list[dict[str, Any]]:
        """The rc_step_action rows of an order, oldest first (result decoded)."""
        rows = await self.db.fetch(
            "SELECT a.step, a.action, a.round, a.state, a.processed_by, a.result FROM rc_step_action a "
            "JOIN rc_work_order w ON w.id = a.work_order_id WHERE w.number = {} ORDER BY a.id", number)
        for row in rows:
            if isinstance(row["result"], str):
                row["result"] = json.loads(row["result"])
        return rows

    async def work_step(self, login: str, number: str, *, skip: Iterable[str] = (),
                        follow_up: bool | None = None) -> dict[str, Any]:
        """``login`` processes (or skips) every pending action of the order's current step, in order."""
        actor = await self.actor(login)
        view = await self.rt.get(actor, number)
        step = view["step"]
        skip = set(skip)
        for action in [a["name"] for a in view["actions"] if a["state"] == "pending"]:
            view = await self.rt.process(actor, number, view["version"], action, skip=action in skip,
                                         follow_up=follow_up)
            if view["step"] != step or view["status"] != "open":
                break
        return view


def group_logins(workspace: LinkedWorkspace) -> list[str]:
    """Every login the definitions name as a member or supervisor."""
    logins: set[str] = set()
    for group in workspace.groups.values():
        logins.update(group.members)
        if group.supervisor:
            logins.add(group.supervisor)
    return sorted(logins)


async def make_env(root: Path, url: str, *, extra_users: Iterable[str] = ()) -> Env:
    """Apply the workspace at ``root`` to ``url``, add its users and return a connected ``Env``."""
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    db = await connect(url)
    await db.start_pool()
    for login in [*group_logins(workspace), *extra_users]:
        await add_user(db, workspace, login)
    return Env(workspace, db)


@pytest.fixture
async def ecommerce(database_url: str) -> AsyncIterator[Env]:
    env = await make_env(EXAMPLES / "ecommerce-workorders", database_url)
    try:
        yield env
    finally:
        await env.db.close()


@pytest.fixture
async def hosting(database_url: str) -> AsyncIterator[Env]:
    env = await make_env(EXAMPLES / "hosting-orders", database_url)
    try:
        yield env
    finally:
        await env.db.close()


@pytest.fixture
async def tmp_env(database_url: str, tmp_path: Path) -> AsyncIterator[Any]:
    """A factory: ``await tmp_env({"file.yaml": "..."})`` -> an ``Env`` on a small workspace of one's own."""
    made: list[Env] = []

    async def factory(files: dict[str, str], *, extra_users: Iterable[str] = ()) -> Env:
        root = write_workspace(tmp_path / f"ws{len(made)}", files)
        env = await make_env(root, database_url, extra_users=extra_users)
        made.append(env)
        return env

    try:
        yield factory
    finally:
        for env in made:
            await env.db.close()


ORDER = {
    "customer_ref": "K0048213",
    "shipping_address": "Hauptstraße 1\n1010 Wien",
    "order_items": "A-100 x2 Teapot",
    "order_total": "99.90",
    "payment_method": "invoice",
}
"""Valid custom fields of an e-commerce ``customer_order``."""

DEDICATED = {
    "domain_name": "example.com",
    "contact_email": "ops@example.com",
    "monthly_price": "89.00",
    "server_line": "performance",
    "os_image": "debian_12",
    "datacenter": "fra1",
}
"""Valid custom fields of a hosting ``dedicated_server_order``."""

HOSTING = {
    "domain_name": "shop-example.de",
    "contact_email": "web@shop-example.de",
    "monthly_price": "9.90",
}
"""Valid custom fields of a hosting ``hosting_order``."""
