"""Helpers for API tests: an applied example workspace served by ``create_app`` in-process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from engine.db import Database, connect
from engine.migrate import apply_workspace
from engine.plugins import Plugins
from engine.runtime import Runtime, add_user, create_token
from engine.workspace import open_workspace
from ui.app import create_app

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


class Api:
    """A test client on a served workspace, with a token per user."""

    def __init__(self, client: AsyncTestClient[Any], runtime: Runtime, db: Database, tokens: dict[str, str]) -> None:
        self.client = client
        self.runtime = runtime
        self.db = db
        """A connection of the test's own: the app runs its lifespan (and database) in another event loop."""
        self.tokens = tokens

    def auth(self, login: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[login]}"}

    async def get(self, login: str, url: str, **kwargs: Any) -> Any:
        return await self.client.get(url, headers=self.auth(login), **kwargs)

    async def post(self, login: str, url: str, body: Any = None, **kwargs: Any) -> Any:
        headers = {**self.auth(login), **kwargs.pop("headers", {})}
        return await self.client.post(url, json=body, headers=headers, **kwargs)

    async def patch(self, login: str, url: str, body: Any) -> Any:
        return await self.client.patch(url, json=body, headers=self.auth(login))

    async def order(self, login: str, number: str) -> dict[str, Any]:
        response = await self.get(login, f"/api/orders/{number}")
        assert response.status_code == 200, response.text
        return dict(response.json())


@contextlib.asynccontextmanager
async def served(example: str | Path, database_url: str, users: dict[str, dict[str, Any]],
                 plugins: Plugins | None = None) -> AsyncIterator[Api]:
    """Apply ``example`` (a name in examples/, or a workspace folder) to the database, start the app,
    add ``users`` (login -> add_user options); ``plugins`` default to the installed ones."""
    root = example if isinstance(example, Path) else EXAMPLES / example
    workspace = open_workspace(root, plugins=plugins)
    await apply_workspace(workspace, database_url)
    app = create_app(root, database_url, workspace=workspace, plugins=plugins)
    db = await connect(database_url)
    try:
        tokens = {}
        for login, options in users.items():
            user = await add_user(db, workspace, login, **options)
            tokens[login] = await create_token(db, user, "tests")
        async with AsyncTestClient(app=app) as client:
            yield Api(client, app.state.runtime, db, tokens)
    finally:
        await db.close()


HOSTING_USERS: dict[str, dict[str, Any]] = {
    login: {"password": "correct horse"} for login in (
        "jana.kowalski", "tom.berger", "lea.schmitt", "piotr.nowak", "ahmed.yilmaz", "clara.weiss", "ben.otto")
}
HOSTING_USERS["outsider"] = {}
"""The hosting example's staff (members by login in its groups.yaml) and one user in no group."""

SUPERVISORS = {"sales": "jana.kowalski", "provisioning": "piotr.nowak", "billing": "clara.weiss"}

SERVER_FIELDS: dict[str, Any] = {
    "domain_name": "example.com", "contact_email": "ops@example.com", "monthly_price": "129.00",
    "server_line": "performance", "os_image": "debian_12", "datacenter": "fra1",
}
