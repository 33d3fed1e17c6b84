"""Sign-in attempts are limited: password guessing slows to a crawl, nobody is locked out for long.

Failures are counted per (login, client address) and per login alone, in a sliding
window. While a count is at its limit, sign-ins for it are refused with 429 and a
``Retry-After`` before any password is checked. A success clears the pair's count.
The counts live in the server process: with N servers behind a proxy an attacker gets
at most N times the limit, and a restart forgets them.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException

from engine.db import Database
from engine.window import SlidingWindow

from .sessions import check_password

PER_CLIENT = 10
"""Failed sign-ins for one login from one address within the window."""
PER_LOGIN = 50
"""Failed sign-ins for one login from anywhere within the window."""
WINDOW = 15 * 60.0
MAX_KEYS = 100_000
"""Keys remembered at most (the oldest are forgotten first)."""


class TooManyAttempts(HTTPException):
    status_code = 429


class SignInLimiter:
    def __init__(self, per_client: int = PER_CLIENT, per_login: int = PER_LOGIN, window: float = WINDOW) -> None:
        self.limits = {"client": per_client, "login": per_login}
        self.failures = SlidingWindow(window, MAX_KEYS)

    def _keys(self, login: str, client: str) -> dict[str, tuple[str, ...]]:
        name = login.strip().lower()[:100]
        return {"client": ("client", name, client), "login": ("login", name)}

    def check(self, login: str, client: str) -> None:
        """Refuse (429) while ``login`` from ``client`` is at a limit."""
        for kind, key in self._keys(login, client).items():
            if self.failures.count(key) >= self.limits[kind]:
                wait = self.failures.wait(key)
                raise TooManyAttempts(
                    detail=f"too many failed sign-ins for {login[:100]}; try again in {wait // 60 + 1} minutes",
                    headers={"Retry-After": str(wait)})

    def failed(self, login: str, client: str) -> None:
        for key in self._keys(login, client).values():
            self.failures.add(key)

    def succeeded(self, login: str, client: str) -> None:
        self.failures.forget(self._keys(login, client)["client"])


async def checked_sign_in(request: Request[Any, Any, Any], db: Database, login: str, password: str) -> int | None:
    """The user id for ``login`` and ``password`` (``None`` if wrong), within the app's limits."""
    limiter: SignInLimiter = request.app.state.sign_in_limiter
    client = request.client.host if request.client else "unknown"
    limiter.check(login, client)
    user = await check_password(db, login, password)
    if user is None:
        limiter.failed(login, client)
    else:
        limiter.succeeded(login, client)
    return user
