"""Customers over JSON: find them, and (staff with ``customer.manage``) manage customers, projects,
customer users and project followers.

The bodies are strict Structs (unknown keys are a 422 naming the key); the services in
``engine.runtime.customers`` check the values and report every problem with its field
path. To a customer user every route here but the search answers 404, as for an id that
does not exist; the one exception is following or unfollowing their own customer's
projects for themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, patch, post
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import UNSET, Meta, UnsetType

from engine.runtime import Actor
from engine.runtime.customers import Customers
from engine.runtime.lookups import search_customers

from ..deps import RuntimeDep
from .bodies import Body, set_values

Id = Annotated[int, Meta(ge=1)]
Name = Annotated[str, Meta(max_length=40, description=(
    "identifies it for good: lowercase letters, digits and _, starting with a letter"), examples=["acme_logistics"])]
Label = Annotated[str, Meta(max_length=200, description="the name as people read it")]
Rate = Annotated[str, Meta(max_length=20, description="billing rate per hour, e.g. `95.00`; null: none",
                           examples=["95.00"])]
Domains = Annotated[list[Annotated[str, Meta(max_length=253)]], Meta(
    max_length=50, description="mail from these domains is filed under the customer (each domain one customer only)",
    examples=[["acme.example"]])]
Login = Annotated[str, Meta(max_length=100, description="letters, digits and . _ @ + -")]
Email = Annotated[str, Meta(max_length=320)]
Password = Annotated[str, Meta(max_length=1000, description="8 to 1000 characters; without one the user cannot "
                                                            "sign in until one is set")]


class CustomerCreate(Body):
    """A new customer organisation."""

    name: Name
    label: Label | None = None
    email_domains: Domains = msgspec.field(default_factory=list)
    hourly_rate: Rate | None = None


class CustomerPatch(Body):
    """A change of a customer; keys left out stay as they are. The name never changes."""

    label: Label | UnsetType = UNSET
    email_domains: Domains | UnsetType = UNSET
    hourly_rate: Rate | None | UnsetType = UNSET


class ProjectCreate(Body):
    """A new project of the customer (its name unique within the customer)."""

    name: Name
    label: Label | None = None
    hourly_rate: Rate | None = None


class ProjectPatch(Body):
    """A change of a project; ``archived: true`` archives it (it keeps its work orders), ``false`` restores it."""

    label: Label | UnsetType = UNSET
    hourly_rate: Rate | None | UnsetType = UNSET
    archived: bool | UnsetType = UNSET


class CustomerUserCreate(Body):
    """A customer user (not staff) belonging to the customer."""

    login: Login
    name: Annotated[str, Meta(max_length=200)] | None = None
    email: Email | None = None
    password: Password | None = None


class CustomerUserPatch(Body):
    """A change of a customer user; ``active: false`` deactivates them (sign-in, sessions and tokens stop)."""

    name: Annotated[str, Meta(max_length=200)] | UnsetType = UNSET
    email: Email | None | UnsetType = UNSET
    password: Password | UnsetType = UNSET
    active: bool | UnsetType = UNSET


class CustomerFound(msgspec.Struct, kw_only=True):
    """A customer as the search finds it."""

    id: int
    name: str
    label: str
    email_domains: list[str]


class Project(msgspec.Struct, kw_only=True):
    """A project with its work: open and closed (completed or cancelled) work orders, and who follows it."""

    id: int
    customer_id: int
    name: str
    label: str
    hourly_rate: str | None
    archived: bool
    declared_in: str | None
    """Where the definitions declare it (then it is read-only here), else null."""
    open_orders: int
    closed_orders: int
    followers: list[int]
    """Ids of the customer users following the project."""


class OrderCounts(msgspec.Struct, kw_only=True):
    open_orders: int
    closed_orders: int


class Customer(msgspec.Struct, kw_only=True):
    """A customer with its portfolio: its projects and their work-order counts."""

    id: int
    name: str
    label: str
    email_domains: list[str]
    hourly_rate: str | None
    declared_in: str | None
    """Where the definitions declare it (then it is read-only here), else null."""
    projects: list[Project]
    without_project: OrderCounts


class CustomerUser(msgspec.Struct, kw_only=True):
    """A customer's user; ``can_sign_in`` is false while no password is set or when deactivated."""

    id: int
    customer_id: int
    login: str
    name: str
    email: str | None
    active: bool
    can_sign_in: bool
    follows: list[int]
    """Ids of the projects the user follows."""


def _service(runtime: Any) -> Customers:
    return Customers(runtime.db, runtime.workspace)


class CustomerController(Controller):
    path = "/api/customers"
    tags = ["customers"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/", summary="Find customers by number, name, label or e-mail domain (customer users: their own)")
    async def find(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                   q: Annotated[str, QueryParameter(max_length=200)] = "",
                   limit: FromQuery[int] = 20) -> list[CustomerFound]:
        found = await search_customers(runtime.db, request.user, q, limit=limit)
        return [msgspec.convert(c, CustomerFound) for c in found]

    @post("/", summary="Create a customer (staff with customer.manage)")
    async def create(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                     data: JSONBody[CustomerCreate]) -> Customer:
        made = await _service(runtime).create(request.user, msgspec.to_builtins(data))
        return msgspec.convert(made, Customer)

    @get("/{customer:int}", summary="A customer and its portfolio: projects with open and closed work-order counts")
    async def read(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                   customer: FromPath[Id]) -> Customer:
        return msgspec.convert(await _service(runtime).get(request.user, customer), Customer)

    @patch("/{customer:int}", summary="Change a customer (not one declared in the definitions)")
    async def update(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[Id],
                     data: JSONBody[CustomerPatch]) -> Customer:
        return msgspec.convert(await _service(runtime).update(request.user, customer, set_values(data)), Customer)

    @get("/{customer:int}/projects", summary="The customer's projects with their work-order counts and followers")
    async def projects(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                       customer: FromPath[Id]) -> list[Project]:
        return msgspec.convert(await _service(runtime).projects(request.user, customer), list[Project])

    @post("/{customer:int}/projects", summary="Create a project of the customer")
    async def create_project(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[Id],
                             data: JSONBody[ProjectCreate]) -> Project:
        made = await _service(runtime).create_project(request.user, customer, msgspec.to_builtins(data))
        return msgspec.convert(made, Project)

    @get("/{customer:int}/users", summary="The customer's users and the projects each follows")
    async def users(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                    customer: FromPath[Id]) -> list[CustomerUser]:
        return msgspec.convert(await _service(runtime).users(request.user, customer), list[CustomerUser])

    @post("/{customer:int}/users", summary="Create a customer user (no password: cannot sign in until one is set)")
    async def create_user(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[Id],
                          data: JSONBody[CustomerUserCreate]) -> CustomerUser:
        made = await _service(runtime).create_user(request.user, customer, msgspec.to_builtins(data))
        return msgspec.convert(made, CustomerUser)

    @patch("/{customer:int}/users/{user:int}", summary="Change, deactivate or reactivate a customer user, "
                                                       "or set their password")
    async def update_user(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[Id],
                          user: FromPath[Id], data: JSONBody[CustomerUserPatch]) -> CustomerUser:
        changed = await _service(runtime).update_user(request.user, customer, user, set_values(data))
        return msgspec.convert(changed, CustomerUser)


class ProjectController(Controller):
    path = "/api/projects"
    tags = ["customers"]  # noqa: RUF012

    @patch("/{project:int}", summary="Change, archive or restore a project (not one declared in the definitions)")
    async def update(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, project: FromPath[Id],
                     data: JSONBody[ProjectPatch]) -> Project:
        return msgspec.convert(await _service(runtime).update_project(request.user, project, set_values(data)), Project)

    @get("/{project:int}/followers", summary="The customer users following the project")
    async def followers(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                        project: FromPath[Id]) -> list[CustomerUser]:
        return msgspec.convert(await _service(runtime).followers(request.user, project), list[CustomerUser])

    @post("/{project:int}/followers/{user:int}", status_code=200,
          summary="A customer user follows the project (only projects of the user's own customer)")
    async def follow(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, project: FromPath[Id],
                     user: FromPath[Id]) -> CustomerUser:
        return msgspec.convert(await _service(runtime).follow(request.user, project, user), CustomerUser)

    @delete("/{project:int}/followers/{user:int}", status_code=200, summary="The user no longer follows the project")
    async def unfollow(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, project: FromPath[Id],
                       user: FromPath[Id]) -> CustomerUser:
        return msgspec.convert(await _service(runtime).unfollow(request.user, project, user), CustomerUser)


CUSTOMER_HANDLERS = [CustomerController, ProjectController]
"""The API's customer routes, for ``ui.app``."""
