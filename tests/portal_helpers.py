"""Helpers for the portal tests: customer users, walking an order to Complete, reading pages."""

from __future__ import annotations

import re
from typing import Any

from engine.errors import Invalid
from engine.runtime import SYSTEM, Runtime, add_user
from engine.db import Database

PASSWORD = "correct horse"


async def customer_id(db: Database, name: str) -> int:
    value = await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", name)
    assert value is not None, f"no customer {name}"
    return int(value)


async def add_customer_user(db: Database, runtime: Runtime, login: str, customer: str, email: str) -> int:
    """A customer user of ``customer`` (by name) who signs in with ``PASSWORD``."""
    return await add_user(db, runtime.workspace, login, email=email, password=PASSWORD, is_staff=False,
                          customer_id=await customer_id(db, customer))


async def complete(runtime: Runtime, number: str) -> dict[str, Any]:
    """Walk work order ``number`` to Complete as Routecard itself: skip what may be skipped, process the rest."""
    for _ in range(100):
        order = await runtime.get(SYSTEM, number)
        if order["status"] == "completed":
            return order
        pending = [a for a in order["actions"] if a["state"] == "pending"]
        if pending:
            action = pending[0]
            await runtime.process(SYSTEM, number, order["version"], action["name"], skip=action["skippable"])
            continue
        try:
            await runtime.advance(SYSTEM, number, order["version"])
        except Invalid:  # several ways on: take the first
            await runtime.advance(SYSTEM, number, order["version"], to=order["next"][0])
    raise AssertionError(f"{number} did not complete")


HX_REDIRECT = "hx-redirect"


def redirected(response: Any) -> str:
    """Where an htmx post sends the browser next."""
    assert response.status_code in (204, 303), (response.status_code, response.text[:500])
    return str(response.headers.get(HX_REDIRECT) or response.headers["location"])


def page_states(html: str) -> dict[str, str]:
    """The summary's pages: name -> ``complete`` or ``incomplete`` (and the mark shown)."""
    out = {}
    for match in re.finditer(r'<li class="page-state (complete|incomplete)" data-page="([^"]+)">\s*'
                             r'<span class="(tick|cross)"', html):
        state, page, mark = match.groups()
        assert (state, mark) in (("complete", "tick"), ("incomplete", "cross"))
        out[page] = state
    return out
