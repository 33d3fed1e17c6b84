"""Customers (organisations), their projects, customer users and project followers.

Finding customers (``lookups.search_customers``) is open to every user, a customer user finding
only their own. Managing them (``Customers``) is for staff holding ``customer.manage``;
to a customer user the management services answer ``NotFound``, exactly as for an id
that does not exist (the one exception: a customer user may follow and unfollow their own
customer's projects for themselves).

Every change writes its audit event in the same transaction: an ``rc_event`` row without a
work order, the subject's ids in ``before``/``after`` and a ``source`` naming it.

Customers and projects declared in the definitions (``kind: Customer``) are read-only
here: ``routecard apply`` writes them from the YAML whenever the database differs, so a
change made here would be undone by the next apply. They are changed in the YAML; a
project added here to a declared customer is managed here (apply never touches projects
the YAML does not name). Customer users and followers are never declared in YAML.

The search text and every value only ever travel as parameters; ``%`` and ``_`` in a
search match themselves, not any text.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..db import Database
from ..errors import Invalid, NotFound, Refused
from ..link.resolved import LinkedWorkspace
from ..model.common import EMAIL_PATTERN, IDENTITY_MAX, IDENTITY_PATTERN
from .actors import LOGIN_PATTERN, Actor, actors_changed, hash_password
from .input import Checks
from .lookups import like_pattern, stored_domains

MANAGE = "customer.manage"
"""The permission that lets staff manage customers, projects, customer users and followers."""
PASSWORD_LENGTH = (8, 1000)
CENT = Decimal("0.01")


def _rate(value: Any) -> str | None:
    """A stored rate as text with two places (``"95.00"``), as the definitions write it."""
    return None if value is None else str(Decimal(str(value)).quantize(CENT))


def _changes(ids: dict[str, int], before: dict[str, Any],
             after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit event's before and after: the subject's ids and the values that changed."""
    changed = [k for k in after if after[k] != before[k]]
    return {**ids, **{k: before[k] for k in changed}}, {**ids, **{k: after[k] for k in changed}}


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63


class Customers:
    """Managing customers, projects, customer users and followers on one database."""

    def __init__(self, db: Database, workspace: LinkedWorkspace) -> None:
        self.db = db
        self.workspace = workspace

    # -- who may, what is declared ---------------------------------------------------------------

    def _manager(self, actor: Actor, hidden: str) -> None:
        """Staff with ``customer.manage`` only; a customer user gets ``hidden`` as a 404."""
        if not actor.is_staff:
            raise NotFound(hidden)
        actor.require(MANAGE)

    def declared_in(self, customer: str, project: str | None = None) -> str | None:
        """Where the definitions declare this customer (or its project), e.g. ``customers.yaml:5:1``."""
        definition = self.workspace.customers.get(customer)
        if definition is None or (project is not None and project not in {p.name for p in definition.projects}):
            return None
        place = self.workspace.locations.get("Customer", {}).get(customer)
        return str(place) if place is not None else "the definitions"

    def _refuse_declared(self, what: str, place: str) -> None:
        raise Refused(f"{what} is declared in {place}; change it there and run `routecard apply`",
                      [{"field": "name", "message": f"declared in {place}"}])

    async def _audit(self, actor: Actor, kind: str, before: dict[str, Any], after: dict[str, Any],
                     source: str) -> None:
        await self.db.execute(
            "INSERT INTO rc_event (work_order_id, actor_id, kind, at, before, after, source, definition_version) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
            None, actor.id, kind, dt.datetime.now(dt.timezone.utc), json.dumps(before, default=str),
            json.dumps(after, default=str), source[:300], self.workspace.fingerprint)

    # -- rows --------------------------------------------------------------------------------------

    async def _customer_row(self, customer_id: Any) -> dict[str, Any]:
        rows = await self.db.fetch("SELECT id, name, label, hourly_rate, email_domains FROM rc_customer WHERE id = {}",
                                   customer_id) if _is_id(customer_id) else []
        if not rows:
            raise NotFound(f"no customer {customer_id}")
        return rows[0]

    async def _project_row(self, project_id: Any) -> dict[str, Any]:
        rows = await self.db.fetch(
            "SELECT p.id, p.customer_id, p.name, p.label, p.hourly_rate, p.archived_at, c.name AS customer "
            "FROM rc_project p JOIN rc_customer c ON c.id = p.customer_id WHERE p.id = {}",
            project_id) if _is_id(project_id) else []
        if not rows:
            raise NotFound(f"no project {project_id}")
        return rows[0]

    async def _user_row(self, user_id: Any, customer_id: int | None = None) -> dict[str, Any]:
        rows = await self.db.fetch(
            "SELECT id, login, name, email, password_hash, is_active, is_staff, customer_id FROM rc_user WHERE id = {}",
            user_id) if _is_id(user_id) else []
        if not rows or (customer_id is not None and (rows[0]["is_staff"] or rows[0]["customer_id"] != customer_id)):
            raise NotFound(f"no user {user_id}" + (f" of customer {customer_id}" if customer_id is not None else ""))
        return rows[0]

    def _customer_out(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"id": int(row["id"]), "name": row["name"], "label": row["label"],
                "email_domains": stored_domains(row["email_domains"]), "hourly_rate": _rate(row["hourly_rate"]),
                "declared_in": self.declared_in(row["name"])}

    async def _projects_out(self, customer: dict[str, Any], only: int | None = None) -> list[dict[str, Any]]:
        """The customer's projects (or one of them), each with its open and closed work-order counts and followers."""
        where, args = "p.customer_id = {}", [customer["id"]]
        if only is not None:
            where, args = where + " AND p.id = {}", [*args, only]
        rows = await self.db.fetch(
            "SELECT p.id, p.name, p.label, p.hourly_rate, p.archived_at, "
            "(SELECT COUNT(*) FROM rc_work_order w WHERE w.project_id = p.id AND w.status = {}) AS open_orders, "
            "(SELECT COUNT(*) FROM rc_work_order w WHERE w.project_id = p.id AND w.status <> {}) AS closed_orders "
            f"FROM rc_project p WHERE {where} ORDER BY p.name", "open", "open", *args)
        followers: dict[int, list[int]] = {}
        for row in await self.db.fetch(
                "SELECT f.project_id, f.user_id FROM rc_project_follower f JOIN rc_project p ON p.id = f.project_id "
                f"WHERE {where} ORDER BY f.user_id", *args):
            followers.setdefault(int(row["project_id"]), []).append(int(row["user_id"]))
        return [{"id": int(r["id"]), "customer_id": int(customer["id"]), "name": r["name"], "label": r["label"],
                 "hourly_rate": _rate(r["hourly_rate"]), "archived": r["archived_at"] is not None,
                 "declared_in": self.declared_in(customer["name"], r["name"]),
                 "open_orders": int(r["open_orders"]), "closed_orders": int(r["closed_orders"]),
                 "followers": followers.get(int(r["id"]), [])} for r in rows]

    async def _users_out(self, customer_id: int, only: int | None = None) -> list[dict[str, Any]]:
        where, args = "u.customer_id = {} AND u.is_staff = {}", [customer_id, False]
        if only is not None:
            where, args = where + " AND u.id = {}", [*args, only]
        rows = await self.db.fetch(
            f"SELECT u.id, u.login, u.name, u.email, u.password_hash, u.is_active FROM rc_user u WHERE {where} "
            "ORDER BY u.login", *args)
        follows: dict[int, list[int]] = {}
        for row in await self.db.fetch(
                f"SELECT f.user_id, f.project_id FROM rc_project_follower f JOIN rc_user u ON u.id = f.user_id "
                f"WHERE {where} ORDER BY f.project_id", *args):
            follows.setdefault(int(row["user_id"]), []).append(int(row["project_id"]))
        return [{"id": int(r["id"]), "customer_id": customer_id, "login": r["login"], "name": r["name"],
                 "email": r["email"], "active": bool(r["is_active"]),
                 "can_sign_in": bool(r["is_active"]) and bool(r["password_hash"]),
                 "follows": follows.get(int(r["id"]), [])} for r in rows]

    async def _domains_taken(self, domains: list[str], customer_id: int | None, check: Checks) -> None:
        """Each domain may belong to one customer only (mail from it is filed under that customer)."""
        for index, domain in enumerate(domains):
            rows = await self.db.fetch(
                "SELECT name, email_domains FROM rc_customer WHERE LOWER(CAST(email_domains AS TEXT)) LIKE {} "
                "ESCAPE '\\' AND id <> {}", like_pattern(f'"{domain}"'), customer_id or 0)
            owner = next((r["name"] for r in rows if domain in stored_domains(r["email_domains"])), None)
            if owner is not None:
                check.fail(f"email_domains.{index}", f"{domain} already belongs to customer {owner}")

    # -- customers ---------------------------------------------------------------------------------

    async def get(self, actor: Actor, customer_id: Any) -> dict[str, Any]:
        """The customer with its portfolio: its projects with open and closed work-order counts."""
        self._manager(actor, f"no customer {customer_id}")
        row = await self._customer_row(customer_id)
        counts = await self.db.fetch(
            "SELECT SUM(CASE WHEN status = {} THEN 1 ELSE 0 END) AS open_orders, "
            "SUM(CASE WHEN status <> {} THEN 1 ELSE 0 END) AS closed_orders FROM rc_work_order "
            "WHERE customer_id = {} AND project_id IS NULL", "open", "open", row["id"])
        return {**self._customer_out(row), "projects": await self._projects_out(row),
                "without_project": {"open_orders": int(counts[0]["open_orders"] or 0),
                                    "closed_orders": int(counts[0]["closed_orders"] or 0)}}

    async def create(self, actor: Actor, data: Mapping[str, Any]) -> dict[str, Any]:
        """A new customer: ``name`` (an identity, for good), ``label``, ``email_domains``, ``hourly_rate``."""
        self._manager(actor, "no such page")
        check = Checks(data, ("name", "label", "email_domains", "hourly_rate"))
        name = check.text("name", max_length=IDENTITY_MAX, required=True, pattern=IDENTITY_PATTERN,
                          hint="lowercase letters, digits and _, starting with a letter")
        label = check.text("label", max_length=200)
        rate = check.rate("hourly_rate")
        domains = check.domains("email_domains")
        async with self.db.transaction():
            if name and await self.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", name) is not None:
                check.fail("name", f"a customer named {name} exists already")
            await self._domains_taken(domains, None, check)
            check.check("the customer cannot be created")
            assert name is not None
            new_id = await self.db.fetch_value(
                "INSERT INTO rc_customer (name, label, hourly_rate, email_domains, created_at) "
                "VALUES ({}, {}, {}, {}, {}) RETURNING id",
                name, label or name, rate, json.dumps(domains), dt.datetime.now(dt.timezone.utc))
            after = {"customer_id": int(new_id), "name": name, "label": label or name, "email_domains": domains,
                     "hourly_rate": _rate(rate)}
            await self._audit(actor, "customer_created", {}, after, f"customer {name}")
        return await self.get(actor, int(new_id))

    async def update(self, actor: Actor, customer_id: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """Change ``label``, ``email_domains`` or ``hourly_rate`` (null clears it); the name stays."""
        self._manager(actor, f"no customer {customer_id}")
        check = Checks(data, ("label", "email_domains", "hourly_rate"))
        check.fixed("name", "a customer's name identifies it for good (rules and definitions use it)")
        async with self.db.transaction():
            row = await self._customer_row(customer_id)
            place = self.declared_in(row["name"])
            if place is not None:
                self._refuse_declared(f"customer {row['name']}", place)
            before = {"customer_id": int(row["id"]), "label": row["label"],
                      "email_domains": stored_domains(row["email_domains"]), "hourly_rate": _rate(row["hourly_rate"])}
            after = dict(before)
            if "label" in data:
                after["label"] = check.text("label", max_length=200, required=True)
            if "hourly_rate" in data:
                after["hourly_rate"] = _rate(check.rate("hourly_rate"))
            if "email_domains" in data:
                after["email_domains"] = check.domains("email_domains")
                await self._domains_taken(after["email_domains"], int(row["id"]), check)
            check.check("the customer cannot be changed")
            if after != before:
                await self.db.execute(
                    "UPDATE rc_customer SET label = {}, hourly_rate = {}, email_domains = {} WHERE id = {}",
                    after["label"], None if after["hourly_rate"] is None else Decimal(after["hourly_rate"]),
                    json.dumps(after["email_domains"]), row["id"])
                await self._audit(actor, "customer_changed", *_changes({"customer_id": int(row["id"])}, before, after),
                                  f"customer {row['name']}")
        return await self.get(actor, int(row["id"]))

    # -- projects ----------------------------------------------------------------------------------

    async def projects(self, actor: Actor, customer_id: Any) -> list[dict[str, Any]]:
        self._manager(actor, f"no customer {customer_id}")
        return await self._projects_out(await self._customer_row(customer_id))

    async def create_project(self, actor: Actor, customer_id: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """A new project of the customer: ``name`` (unique within the customer), ``label``, ``hourly_rate``."""
        self._manager(actor, f"no customer {customer_id}")
        check = Checks(data, ("name", "label", "hourly_rate"))
        name = check.text("name", max_length=IDENTITY_MAX, required=True, pattern=IDENTITY_PATTERN,
                          hint="lowercase letters, digits and _, starting with a letter")
        label = check.text("label", max_length=200)
        rate = check.rate("hourly_rate")
        async with self.db.transaction():
            customer = await self._customer_row(customer_id)
            if name and await self.db.fetch_value("SELECT id FROM rc_project WHERE customer_id = {} AND name = {}",
                                                  customer["id"], name) is not None:
                check.fail("name", f"customer {customer['name']} has a project named {name} already")
            check.check("the project cannot be created")
            new_id = await self.db.fetch_value(
                "INSERT INTO rc_project (customer_id, name, label, hourly_rate) VALUES ({}, {}, {}, {}) RETURNING id",
                customer["id"], name, label or name, rate)
            await self._audit(actor, "project_created", {},
                              {"customer_id": int(customer["id"]), "project_id": int(new_id), "name": name,
                               "label": label or name, "hourly_rate": _rate(rate)},
                              f"project {customer['name']}/{name}")
        return (await self._projects_out(customer, int(new_id)))[0]

    async def update_project(self, actor: Actor, project_id: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """Change ``label`` or ``hourly_rate``, or archive (``archived: true``) or restore the project."""
        self._manager(actor, f"no project {project_id}")
        check = Checks(data, ("label", "hourly_rate", "archived"))
        check.fixed("name", "a project's name identifies it for good (rules use it)")
        async with self.db.transaction():
            row = await self._project_row(project_id)
            place = self.declared_in(row["customer"], row["name"])
            if place is not None:
                self._refuse_declared(f"project {row['customer']}/{row['name']}", place)
            before = {"label": row["label"], "hourly_rate": _rate(row["hourly_rate"]),
                      "archived": row["archived_at"] is not None}
            after = dict(before)
            if "label" in data:
                after["label"] = check.text("label", max_length=200, required=True)
            if "hourly_rate" in data:
                after["hourly_rate"] = _rate(check.rate("hourly_rate"))
            if "archived" in data:
                after["archived"] = check.flag("archived")
                if after["archived"] is None:
                    after["archived"] = before["archived"]
            check.check("the project cannot be changed")
            changed = [k for k in after if after[k] != before[k]]
            if changed:
                archived_at = row["archived_at"] if after["archived"] == before["archived"] else (
                    dt.datetime.now(dt.timezone.utc) if after["archived"] else None)
                await self.db.execute(
                    "UPDATE rc_project SET label = {}, hourly_rate = {}, archived_at = {} WHERE id = {}",
                    after["label"], None if after["hourly_rate"] is None else Decimal(after["hourly_rate"]),
                    archived_at, row["id"])
                ids = {"customer_id": int(row["customer_id"]), "project_id": int(row["id"])}
                kind = "project_archived" if changed == ["archived"] and after["archived"] else "project_changed"
                await self._audit(actor, kind, *_changes(ids, before, after),
                                  f"project {row['customer']}/{row['name']}")
        customer = await self._customer_row(row["customer_id"])
        return (await self._projects_out(customer, int(row["id"])))[0]

    # -- customer users ----------------------------------------------------------------------------

    async def users(self, actor: Actor, customer_id: Any) -> list[dict[str, Any]]:
        """The customer's users (active or not), each with the projects they follow."""
        self._manager(actor, f"no customer {customer_id}")
        customer = await self._customer_row(customer_id)
        return await self._users_out(int(customer["id"]))

    async def create_user(self, actor: Actor, customer_id: Any, data: Mapping[str, Any]) -> dict[str, Any]:
        """A customer user: ``login``, ``name``, ``email``, ``password`` (optional: without one the user
        cannot sign in until one is set)."""
        self._manager(actor, f"no customer {customer_id}")
        check = Checks(data, ("login", "name", "email", "password"))
        login = check.text("login", max_length=100, required=True, pattern=LOGIN_PATTERN,
                           hint="letters, digits and . _ @ + -")
        name = check.text("name", max_length=200)
        email = check.text("email", max_length=320, pattern=EMAIL_PATTERN, hint="an email address")
        password = self._password(check)
        async with self.db.transaction():
            customer = await self._customer_row(customer_id)
            if login and await self.db.fetch_value("SELECT id FROM rc_user WHERE LOWER(login) = {}",
                                                   login.lower()) is not None:
                check.fail("login", f"the login {login} is taken")
            check.check("the customer user cannot be created")
            new_id = await self.db.fetch_value(
                "INSERT INTO rc_user (login, name, email, password_hash, is_active, is_staff, customer_id, created_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {}) RETURNING id",
                login, name or login, email, hash_password(password) if password else None, True, False,
                customer["id"], dt.datetime.now(dt.timezone.utc))
            await actors_changed(self.db)
            await self._audit(actor, "customer_user_created", {},
                              {"customer_id": int(customer["id"]), "user_id": int(new_id), "login": login,
                               "name": name or login, "email": email, "password": "set" if password else None},
                              f"customer user {login} of {customer['name']}")
        return (await self._users_out(int(customer["id"]), int(new_id)))[0]

    def _password(self, check: Checks) -> str | None:
        value = check.data.get("password")
        if value is None or value == "":
            return None
        low, high = PASSWORD_LENGTH
        if not isinstance(value, str) or not low <= len(value) <= high:
            check.fail("password", f"between {low} and {high} characters")
            return None
        return value

    async def update_user(self, actor: Actor, customer_id: Any, user_id: Any,
                          data: Mapping[str, Any]) -> dict[str, Any]:
        """Change a customer user's ``name``, ``email`` or ``password``; ``active: false`` deactivates them
        (they can no longer sign in; their sessions and tokens stop working), ``true`` reactivates them."""
        self._manager(actor, f"no customer {customer_id}")
        check = Checks(data, ("name", "email", "password", "active"))
        async with self.db.transaction():
            customer = await self._customer_row(customer_id)
            row = await self._user_row(user_id, int(customer["id"]))
            before = {"name": row["name"], "email": row["email"], "active": bool(row["is_active"])}
            after = dict(before)
            if "name" in data:
                after["name"] = check.text("name", max_length=200, required=True)
            if "email" in data:
                after["email"] = check.text("email", max_length=320, pattern=EMAIL_PATTERN, hint="an email address")
            if "active" in data:
                flag = check.flag("active")
                after["active"] = before["active"] if flag is None else flag
            password = self._password(check)
            check.check("the customer user cannot be changed")
            changed = [k for k in after if after[k] != before[k]]
            if changed or password:
                await self.db.execute(
                    "UPDATE rc_user SET name = {}, email = {}, is_active = {}, password_hash = {} WHERE id = {}",
                    after["name"], after["email"], after["active"],
                    hash_password(password) if password else row["password_hash"], row["id"])
                await actors_changed(self.db)
                ids = {"customer_id": int(customer["id"]), "user_id": int(row["id"])}
                kind = "customer_user_deactivated" if changed == ["active"] and not after["active"] \
                    else "customer_user_changed"
                old, new = _changes(ids, before, after)
                await self._audit(actor, kind, old, {**new, **({"password": "set"} if password else {})},
                                  f"customer user {row['login']} of {customer['name']}")
        return (await self._users_out(int(customer["id"]), int(row["id"])))[0]

    async def add_user_to(self, actor: Actor, customer_name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """``create_user`` for the customer called ``customer_name`` (``routecard users add --customer``)."""
        found = await self.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", customer_name)
        if found is None:
            raise Invalid(f"no customer {customer_name}",
                          [{"field": "customer", "message": f"no customer named {customer_name}"}])
        return await self.create_user(actor, int(found), data)

    # -- followers ---------------------------------------------------------------------------------

    async def followers(self, actor: Actor, project_id: Any) -> list[dict[str, Any]]:
        """The customer users following the project."""
        self._manager(actor, f"no project {project_id}")
        project = await self._project_row(project_id)
        users = await self._users_out(int(project["customer_id"]))
        return [u for u in users if int(project["id"]) in u["follows"]]

    async def _follow_target(self, actor: Actor, project_id: Any,
                             user_id: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The project and the user, once ``actor`` may change who follows it (managers, or the user themselves)."""
        if not actor.is_staff:
            row = await self._project_row(project_id) if actor.id == user_id else None
            if row is None or row["customer_id"] != actor.customer_id:
                raise NotFound(f"no project {project_id}")
        else:
            actor.require(MANAGE)
        return await self._project_row(project_id), await self._user_row(user_id)

    async def _following(self, project: dict[str, Any], user: dict[str, Any]) -> Any:
        return await self.db.fetch_value("SELECT id FROM rc_project_follower WHERE project_id = {} AND user_id = {}",
                                         project["id"], user["id"])

    async def follow(self, actor: Actor, project_id: Any, user_id: Any) -> dict[str, Any]:
        """The customer user follows the project (of their own customer only); nothing changes if they do already."""
        async with self.db.transaction():
            project, user = await self._follow_target(actor, project_id, user_id)
            check = Checks({}, ())
            if user["is_staff"]:
                check.fail("user_id", "staff follow work orders (subscriptions), not projects")
            elif user["customer_id"] != project["customer_id"]:
                check.fail("user_id", f"{user['login']} may follow only projects of their own customer")
            elif not user["is_active"]:
                check.fail("user_id", f"{user['login']} is deactivated")
            if project["archived_at"] is not None:
                check.fail("project_id", f"project {project['name']} is archived")
            check.check("the user cannot follow this project")
            exists = await self._following(project, user)
            if exists is None:
                await self.db.execute("INSERT INTO rc_project_follower (project_id, user_id) VALUES ({}, {})",
                                      project["id"], user["id"])
                await actors_changed(self.db)
                await self._audit(actor, "project_followed", {},
                                  {"customer_id": int(project["customer_id"]), "project_id": int(project["id"]),
                                   "user_id": int(user["id"])},
                                  f"{user['login']} follows project {project['customer']}/{project['name']}")
        return (await self._users_out(int(project["customer_id"]), int(user["id"])))[0]

    async def unfollow(self, actor: Actor, project_id: Any, user_id: Any) -> dict[str, Any]:
        """The user no longer follows the project; nothing changes if they did not."""
        async with self.db.transaction():
            project, user = await self._follow_target(actor, project_id, user_id)
            if user["is_staff"] or user["customer_id"] != project["customer_id"]:
                raise NotFound(f"no user {user_id} of customer {project['customer_id']}")
            exists = await self._following(project, user)
            if exists is not None:
                await self.db.execute("DELETE FROM rc_project_follower WHERE id = {}", exists)
                await actors_changed(self.db)
                await self._audit(actor, "project_unfollowed",
                                  {"customer_id": int(project["customer_id"]), "project_id": int(project["id"]),
                                   "user_id": int(user["id"])}, {},
                                  f"{user['login']} no longer follows project {project['customer']}/{project['name']}")
        return (await self._users_out(int(project["customer_id"]), int(user["id"])))[0]

