"""Requests reuse the actor of their credentials, and never past a change of users.

Two apps on one database stand for two servers: a change made through one (or by the
CLI, or by SQL outside Routecard) must reach requests served by the other.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from engine.runtime import add_user, create_token
from tests.api_helpers import EXAMPLES, HOSTING_USERS, Api, served
from ui.app import create_app

HOSTING = {"fields": {"domain_name": "example.org", "contact_email": "web@example.org", "monthly_price": "9.90"}}
CREATE = "/api/templates/hosting_order/orders"


@contextlib.asynccontextmanager
async def two_servers(database_url: str) -> AsyncIterator[tuple[Api, AsyncTestClient[Any]]]:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        other = create_app(EXAMPLES / "hosting-orders", database_url, workspace=api.runtime.workspace)
        async with AsyncTestClient(app=other) as client:
            yield api, client


async def test_a_group_added_by_the_cli_counts_at_once_on_every_server(database_url: str) -> None:
    async with two_servers(database_url) as (api, other):
        outsider = api.auth("outsider")
        assert (await other.post(CREATE, json=HOSTING, headers=outsider)).status_code == 403
        assert (await other.post(CREATE, json=HOSTING, headers=outsider)).status_code == 403  # kept, still 403
        await add_user(api.db, api.runtime.workspace, "outsider", groups=("sales",))
        created = await other.post(CREATE, json=HOSTING, headers=outsider)
        assert created.status_code == 201, created.text


async def test_a_customer_user_deactivated_on_one_server_is_refused_by_the_other(database_url: str) -> None:
    async with two_servers(database_url) as (api, other):
        acme = (await api.post("jana.kowalski", "/api/customers", {"name": "acme"})).json()
        kim = (await api.post("jana.kowalski", f"/api/customers/{acme['id']}/users", {"login": "kim"})).json()
        token = {"Authorization": f"Bearer {await create_token(api.db, kim['id'], 'tests')}"}
        assert (await other.get("/api/portal/orders", headers=token)).status_code == 200
        off = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}/users/{kim['id']}", {"active": False})
        assert off.status_code == 200, off.text
        refused = await other.get("/api/portal/orders", headers=token)
        assert refused.status_code == 401, refused.text
        on = await api.patch("jana.kowalski", f"/api/customers/{acme['id']}/users/{kim['id']}", {"active": True})
        assert on.status_code == 200, on.text
        assert (await other.get("/api/portal/orders", headers=token)).status_code == 200


async def test_a_revoked_token_is_refused_at_once(database_url: str) -> None:
    async with two_servers(database_url) as (api, other):
        headers = api.auth("tom.berger")
        assert (await other.get("/api/orders", headers=headers)).status_code == 200
        await api.db.execute("DELETE FROM rc_api_token WHERE user_id = "
                             "(SELECT id FROM rc_user WHERE login = 'tom.berger')")
        assert (await other.get("/api/orders", headers=headers)).status_code == 401


@pytest.mark.parametrize("via", ["token", "session"])
async def test_a_user_changed_by_sql_outside_routecard_is_seen_within_the_cache_time(database_url: str,
                                                                                     via: str) -> None:
    async with two_servers(database_url) as (api, other):
        other.app.state.runtime.actors.seconds = 0.2
        if via == "token":
            headers = api.auth("tom.berger")
        else:
            login = await other.post("/api/session", json={"login": "tom.berger", "password": "correct horse"})
            assert login.status_code == 201, login.text
            headers = {}
        assert (await other.get("/api/orders", headers=headers)).status_code == 200
        await api.db.execute("UPDATE rc_user SET is_active = {} WHERE login = 'tom.berger'", False)
        await asyncio.sleep(0.3)
        assert (await other.get("/api/orders", headers=headers)).status_code == 401
