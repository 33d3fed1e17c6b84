"""Browser sessions and API-token bookkeeping, stored in ``rc_session`` and ``rc_api_token``.

A session is a random key in an HttpOnly cookie; the database keeps only its SHA-256,
the user and a CSRF token. Sessions live in the database, so any number of
``routecard serve`` processes share them.

NOTE: this SQL belongs in ``engine.runtime.actors`` (no SQL above the runtime); it is
here until the runtime gains ``list_tokens``, ``revoke_token`` and the session calls.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from typing import Any

from engine.db import Database
from engine.runtime.actors import GENERATION, hash_password, token_hash, verify_password
from engine.runtime.fields import as_utc, to_json_time

SESSION_COOKIE = "routecard_session"
SESSION_AGE = dt.timedelta(days=14)
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
"""Checked for unknown logins, so that they take as long as wrong passwords."""


class Session:
    """A live browser session: who, and the CSRF token their unsafe requests must carry."""

    def __init__(self, key: str, user_id: int, csrf: str, generation: Any = None) -> None:
        self.key = key
        self.user_id = user_id
        self.csrf = csrf
        self.generation = generation
        """The ``actors_changed`` count read with the session (see ``ActorCache``)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


async def open_session(db: Database, user_id: int) -> Session:
    """A new session (always a new key: a login never reuses a key the browser sent)."""
    key = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO rc_session (key, user_id, data, expires_at) VALUES ({}, {}, {}, {})",
        token_hash(key), user_id, json.dumps({"csrf": csrf}), _now() + SESSION_AGE)
    return Session(key, user_id, csrf)


async def find_session(db: Database, key: str) -> Session | None:
    """The live session for a cookie value, if any."""
    if not key or len(key) > 200:
        return None
    rows = await db.fetch(f"SELECT user_id, data, expires_at, {GENERATION} FROM rc_session WHERE key = {{}}",
                          token_hash(key))
    if not rows or rows[0]["user_id"] is None or as_utc(rows[0]["expires_at"]) <= _now():
        return None
    data = rows[0]["data"]
    data = json.loads(data) if isinstance(data, str) else data
    return Session(key, int(rows[0]["user_id"]), str(data.get("csrf", "")), rows[0]["generation"])


async def close_session(db: Database, key: str) -> None:
    await db.execute("DELETE FROM rc_session WHERE key = {}", token_hash(key))


async def token_id(db: Database, token: str) -> int:
    return int(await db.fetch_value("SELECT id FROM rc_api_token WHERE token_hash = {}", token_hash(token)))


async def list_tokens(db: Database, user_id: int) -> list[dict[str, Any]]:
    """The user's API tokens, without their hashes."""
    rows = await db.fetch(
        "SELECT id, name, created_at, last_used_at, expires_at FROM rc_api_token WHERE user_id = {} ORDER BY id",
        user_id)
    return [{"id": int(r["id"]), "name": r["name"],
             **{k: to_json_time(r[k]) for k in ("created_at", "last_used_at", "expires_at")}} for r in rows]


async def revoke_token(db: Database, user_id: int, token: int) -> bool:
    """Delete one of the user's tokens; ``False`` when the user has no such token."""
    async with db.transaction():
        found = await db.fetch_value("SELECT id FROM rc_api_token WHERE id = {} AND user_id = {}", token, user_id)
        if found is None:
            return False
        await db.execute("DELETE FROM rc_api_token WHERE id = {}", token)
    return True


async def check_password(db: Database, login: str, password: str) -> int | None:
    """The id of the active user ``login`` if ``password`` is theirs (the hash is checked even for unknown users)."""
    rows = await db.fetch("SELECT id, password_hash, is_active FROM rc_user WHERE login = {}", login)
    stored = rows[0]["password_hash"] if rows and rows[0]["is_active"] else None
    if not verify_password(password, stored or _DUMMY_HASH) or stored is None:
        return None
    return int(rows[0]["id"])
