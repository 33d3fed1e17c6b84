"""Who is acting: users, their groups and roles, and what they may do.

Group membership and supervisors come from the definitions (``Group.members``,
``Group.supervisor``, by login) and from the database (``routecard users add
--group``); roles from the definitions (``Role.groups``) and from the database.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import time
from typing import Any, NamedTuple

import msgspec

from ..db import Database
from ..errors import Forbidden, Invalid, NotFound
from ..link.resolved import LinkedWorkspace
from .fields import as_utc

LOGIN_PATTERN = r"^[A-Za-z0-9_.@+-]{1,100}$"
TOKEN_PREFIX = "rc_"


class Actor(msgspec.Struct, frozen=True, kw_only=True):
    """The user a service call acts for."""

    id: int | None
    login: str
    name: str = ""
    groups: frozenset[str] = frozenset()
    supervises: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    permissions: frozenset[str] = frozenset()
    is_staff: bool = True
    customer_id: int | None = None
    email: str | None = None
    follows: frozenset[int] = frozenset()
    """The projects a customer user follows (``rc_project_follower``)."""
    language: str | None = None
    """The user's chosen language for the UI (``None``: the browser's)."""

    def can(self, permission: str) -> bool:
        return "admin" in self.permissions or permission in self.permissions

    def require(self, permission: str) -> None:
        if not self.can(permission):
            raise Forbidden(f"{self.login} lacks the permission {permission}")


SYSTEM = Actor(id=None, login="system", name="Routecard", permissions=frozenset({"admin"}))
"""The actor of changes made by Routecard itself (migrations, rules, end actions)."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password``, as stored in ``rc_user.password_hash``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, salt, _digest = stored.split("$")
    return hmac.compare_digest(hash_password(password, salt=bytes.fromhex(salt)), stored)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def group_members(db: Database, workspace: LinkedWorkspace, group: str) -> dict[int, str]:
    """The active staff members of ``group``: user id -> login (definitions and database)."""
    definition = workspace.groups.get(group)
    logins = set(definition.members) if definition else set()
    rows = await db.fetch(
        "SELECT u.id AS id, u.login AS login FROM rc_user u WHERE u.is_active = {} AND u.is_staff = {} AND "
        "(u.id IN (SELECT m.user_id FROM rc_group_member m JOIN rc_group g ON g.id = m.group_id "
        "WHERE g.name = {}))", True, True, group)
    members = {int(r["id"]): r["login"] for r in rows}
    if logins:
        marks = ", ".join("{}" for _ in logins)
        for row in await db.fetch(
            f"SELECT id, login FROM rc_user WHERE is_active = {{}} AND is_staff = {{}} AND login IN ({marks})",
            True, True, *sorted(logins)):
            members[int(row["id"])] = row["login"]
    return members


async def user_id(db: Database, login: str) -> int | None:
    value = await db.fetch_value("SELECT id FROM rc_user WHERE login = {}", login)
    return int(value) if value is not None else None


async def load_actor(db: Database, workspace: LinkedWorkspace, *, login: str | None = None,
                     id: int | None = None) -> Actor:
    """The actor for a user, by login or id; ``NotFound`` for unknown or inactive users."""
    if login is not None:
        rows = await db.fetch("SELECT * FROM rc_user WHERE login = {}", login)
    else:
        rows = await db.fetch("SELECT * FROM rc_user WHERE id = {}", id)
    if not rows or not rows[0]["is_active"]:
        raise NotFound(f"no active user {login or id}")
    user = rows[0]
    memberships = await db.fetch(
        "SELECT 'group' AS what, g.name AS name FROM rc_group g JOIN rc_group_member m ON m.group_id = g.id "
        "WHERE m.user_id = {} UNION ALL SELECT 'role' AS what, role AS name FROM rc_user_role WHERE user_id = {}",
        user["id"], user["id"])
    groups = {r["name"] for r in memberships if r["what"] == "group"}
    supervises = set()
    for name, group in workspace.groups.items():
        if user["login"] in group.members:
            groups.add(name)
        if group.supervisor == user["login"]:
            supervises.add(name)
            groups.add(name)
    roles = {r["name"] for r in memberships if r["what"] == "role"}
    for name, role in workspace.roles.items():
        if groups & set(role.groups):
            roles.add(name)
    permissions = {p for name in roles if name in workspace.roles for p in workspace.roles[name].permissions}
    follows: frozenset[int] = frozenset()
    if not user["is_staff"]:
        follows = frozenset(int(r["project_id"]) for r in await db.fetch(
            "SELECT project_id FROM rc_project_follower WHERE user_id = {}", user["id"]))
    return Actor(
        id=int(user["id"]), login=user["login"], name=user["name"], groups=frozenset(groups),
        supervises=frozenset(supervises), roles=frozenset(roles), permissions=frozenset(permissions),
        is_staff=bool(user["is_staff"]), customer_id=user["customer_id"], email=user.get("email"), follows=follows,
        language=user.get("language"),
    )


ACTORS_COUNTER = "actors"
"""The ``rc_counter`` row every change of users, groups, roles or followers counts up."""


async def actors_changed(db: Database) -> None:
    """Count a change of who may do what; call it in the transaction that makes the change.

    Every server reads the count with each request's credentials, so an actor it keeps
    (``ActorCache``) is dropped as soon as any server changed a user.
    """
    await db.execute(
        "INSERT INTO rc_counter (name, value) VALUES ({}, 1) ON CONFLICT (name) DO UPDATE "
        "SET value = rc_counter.value + 1", ACTORS_COUNTER)


GENERATION = f"(SELECT value FROM rc_counter WHERE name = '{ACTORS_COUNTER}') AS generation"
"""A select-list item giving the current count of ``actors_changed``, for credential queries."""


class ActorCache:
    """The actors of recent requests, reused while no user, group, role or follower changed.

    A request's credential query also reads the ``actors_changed`` count; an actor is
    reused only when that count, the served definitions and the user are the same as
    when it was loaded, and for at most ``seconds`` (so that a user changed with SQL
    outside Routecard is seen within that time). Loading an actor is three queries;
    reusing one is none.
    """

    def __init__(self, seconds: float = 2.0, size: int = 4096) -> None:
        self.seconds = seconds
        self.size = size
        self._actors: dict[int, tuple[Any, LinkedWorkspace, float, Actor]] = {}

    async def get(self, db: Database, workspace: LinkedWorkspace, user: int, generation: Any) -> Actor:
        """The actor of ``user`` (``NotFound`` for an unknown or inactive one)."""
        moment = time.monotonic()
        kept = self._actors.get(user)
        if kept is not None and kept[0] == generation and kept[1] is workspace and moment - kept[2] < self.seconds:
            return kept[3]
        actor = await load_actor(db, workspace, id=user)
        if len(self._actors) >= self.size:
            self._actors.clear()
        self._actors[user] = (generation, workspace, moment, actor)
        return actor


async def set_language(db: Database, user: int, language: str | None) -> None:
    """Remember the UI language ``user`` chose (``None``: follow the browser)."""
    async with db.transaction():
        await db.execute("UPDATE rc_user SET language = {} WHERE id = {}", language, user)
        await actors_changed(db)


async def add_user(db: Database, workspace: LinkedWorkspace, login: str, *, name: str = "", email: str | None = None,
                   password: str | None = None, groups: tuple[str, ...] = (), roles: tuple[str, ...] = (),
                   is_staff: bool = True, customer_id: int | None = None) -> int:
    """Create a user (or add groups and roles to an existing one); return its id."""
    errors = []
    if not re.match(LOGIN_PATTERN, login):
        errors.append({"field": "login", "message": "use 1-100 letters, digits and . _ @ + -"})
    for group in groups:
        if group not in workspace.groups:
            errors.append({"field": "groups", "message": f"unknown group `{group}`"})
    for role in roles:
        if role not in workspace.roles:
            errors.append({"field": "roles", "message": f"unknown role `{role}`"})
    if errors:
        raise Invalid("the user cannot be added", errors)
    async with db.transaction():
        existing = await user_id(db, login)
        if existing is None:
            await db.execute(
                "INSERT INTO rc_user (login, name, email, password_hash, is_active, is_staff, customer_id, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                login, name or login, email, hash_password(password) if password else None, True, is_staff,
                customer_id, dt.datetime.now(dt.timezone.utc))
            existing = await user_id(db, login)
        elif password:
            await db.execute("UPDATE rc_user SET password_hash = {} WHERE id = {}", hash_password(password), existing)
        assert existing is not None
        for group in groups:
            group_id = await _group_id(db, group)
            if await db.fetch_value("SELECT id FROM rc_group_member WHERE group_id = {} AND user_id = {}",
                                    group_id, existing) is None:
                await db.execute("INSERT INTO rc_group_member (group_id, user_id) VALUES ({}, {})", group_id, existing)
        for role in roles:
            if await db.fetch_value("SELECT id FROM rc_user_role WHERE user_id = {} AND role = {}",
                                    existing, role) is None:
                await db.execute("INSERT INTO rc_user_role (user_id, role) VALUES ({}, {})", existing, role)
        await actors_changed(db)
    return existing


async def _group_id(db: Database, name: str) -> int:
    found = await db.fetch_value("SELECT id FROM rc_group WHERE name = {}", name)
    if found is None:
        await db.execute("INSERT INTO rc_group (name) VALUES ({})", name)
        found = await db.fetch_value("SELECT id FROM rc_group WHERE name = {}", name)
    return int(found)


async def create_token(db: Database, user: int, name: str) -> str:
    """A new API token for ``user``; only its hash is stored, the token is shown once."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    await db.execute(
        "INSERT INTO rc_api_token (user_id, name, token_hash, created_at) VALUES ({}, {}, {}, {})",
        user, name, token_hash(token), dt.datetime.now(dt.timezone.utc))
    return token


class Holder(NamedTuple):
    """Whose credentials a request carries, and the ``actors_changed`` count read with them."""

    user: int
    generation: Any


async def user_for_token(db: Database, token: str) -> int | None:
    """The user an API token belongs to (``None`` for unknown, revoked or expired tokens)."""
    holder = await token_holder(db, token)
    return holder.user if holder is not None else None


USE_RECORDED_EVERY = dt.timedelta(minutes=1)
"""A token's ``last_used_at`` is written when it is older than this: not one write per request."""


async def token_holder(db: Database, token: str) -> Holder | None:
    """The holder of an API token (``None`` for unknown, revoked or expired tokens), in one query.

    The token's ``last_used_at`` is brought up to date too, to the minute (a second statement
    once a minute per token, so that the list of tokens shows which are still in use).
    """
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    hashed = token_hash(token)
    rows = await db.fetch(
        f"SELECT user_id, expires_at, last_used_at, {GENERATION} FROM rc_api_token WHERE token_hash = {{}}", hashed)
    if not rows:
        return None
    moment = dt.datetime.now(dt.timezone.utc)
    expires, used = rows[0]["expires_at"], rows[0]["last_used_at"]
    if expires is not None and as_utc(expires) <= moment:
        return None
    if used is None or moment - as_utc(used) >= USE_RECORDED_EVERY:
        await db.execute(  # the condition again: of several servers at the same moment, one writes
            "UPDATE rc_api_token SET last_used_at = {} WHERE token_hash = {} AND "
            "(last_used_at IS NULL OR last_used_at < {})", moment, hashed, moment - USE_RECORDED_EVERY)
    return Holder(int(rows[0]["user_id"]), rows[0]["generation"])


def public(row: dict[str, Any]) -> dict[str, Any]:
    """A token row without its hash."""
    return {k: v for k, v in row.items() if k != "token_hash"}
