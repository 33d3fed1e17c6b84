"""Helpers for tests of the HTMX screens: a served example, signed in through the login form.

``Browser`` keeps one test client per user (each with its own session cookie) and sends
the session's CSRF token on changes, as the pages do (``hx-headers`` on ``<body>``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from litestar.testing import AsyncTestClient

from api_helpers import Api, served

DESK_GROUPS = """
        kind: Group
        name: desk
        label: Desk
        supervisor: sam
        members: [sam, kim]
        ---
        kind: Role
        name: agent
        permissions: [order.create, order.edit, order.transition, order.cancel]
        groups: [desk]
    """
"""A small team for test workspaces: group ``desk`` (supervisor sam, member kim) and role ``agent``."""

CSRF_PATTERN = re.compile(r'hx-headers=\'\{"x-csrftoken": "([^"]+)"\}\'')


class Browser:
    """Signed-in clients on one app; ``api`` reaches the same app with tokens."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.clients: dict[str, tuple[AsyncTestClient[Any], str]] = {}

    async def sign_in(self, login: str, password: str = "correct horse") -> AsyncTestClient[Any]:
        """A client of its own for ``login``, signed in through the login form."""
        client: AsyncTestClient[Any] = AsyncTestClient(app=self.api.client.app)
        # The app is already running in the API client's portal; share it rather than start it twice.
        client.blocking_portal = self.api.client.blocking_portal
        client.exit_stack = None
        response = await client.post("/login", data={"login": login, "password": password, "next": "/manager"},
                                     follow_redirects=False)
        assert response.status_code == 303, response.text
        page = await client.get("/manager")
        match = CSRF_PATTERN.search(page.text)
        assert match, "the page carries no CSRF token"
        self.clients[login] = (client, match.group(1))
        return client

    async def get(self, login: str, url: str, *, htmx: bool = False, **headers: str) -> Any:
        client, _ = self.clients[login]
        if htmx:
            headers["hx-request"] = "true"
        return await client.get(url, headers=headers)

    async def post(self, login: str, url: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, *,
                   csrf: bool = True, files: Any = None, **headers: str) -> Any:
        """An htmx form post, with the session's CSRF token unless ``csrf=False``."""
        client, token = self.clients[login]
        headers["hx-request"] = "true"
        if csrf:
            headers["x-csrftoken"] = token
        return await client.post(url, data=data or {}, files=files, headers=headers)


@contextlib.asynccontextmanager
async def browsing(example: str, database_url: str, users: dict[str, dict[str, Any]]) -> AsyncIterator[Browser]:
    """``example`` served on ``database_url`` with ``users``; sign them in with ``Browser.sign_in``."""
    async with served(example, database_url, users) as api:
        yield Browser(api)
