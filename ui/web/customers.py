"""Customers on the screens: the list with search, and a customer's page with its projects (open and
closed work orders), users and followers, each added and changed through htmx forms.

The pages are for staff holding ``customer.manage`` (others get 403, customer users 404, as the
services decide). Every change goes through ``engine.runtime.customers.Customers``, so the
screens check and audit exactly what the API does. A form that fails comes back in the page
(422, or 409 for a customer declared in the definitions) with each message at its input; one
that succeeds reloads the customer's page.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Mapping
from typing import Any

from litestar import Request, Response, get, post
from litestar.params import FromPath

from engine.errors import Invalid, NotFound, ServiceError
from engine.runtime import Actor, Runtime
from engine.runtime.customers import Customers
from engine.runtime.lookups import search_customers

from ..deps import RuntimeDep
from .common import redirect, show
from .orders import error_map, read_form

FormLists = Mapping[str, list[Any]]


def _service(runtime: Runtime) -> Customers:
    return Customers(runtime.db, runtime.workspace)


def _text(form: FormLists, name: str) -> str:
    values = [v for v in form.get(name, ()) if isinstance(v, str)]
    return values[-1].strip() if values else ""


def _values(form: FormLists, names: tuple[str, ...]) -> dict[str, Any]:
    """The form's inputs as the services take them; an empty input is "not given" (``None``)."""
    values: dict[str, Any] = {}
    for name in names:
        text = _text(form, name)
        if name == "email_domains":
            values[name] = [d for d in re.split(r"[\s,;]+", text) if d]
        else:
            values[name] = text or None
    return values


def _problem(form_id: str, exc: ServiceError, form: FormLists) -> dict[str, Any]:
    """What the page shows at the form that failed: its messages by input and what was typed."""
    # a list's items (``email_domains.1``) are shown at the list's one input
    errors = error_map([{**e, "field": e.get("field", "").split(".")[0]} for e in exc.errors]) \
        if exc.errors else {"": exc.detail}
    return {"form": form_id, "errors": errors, "values": {k: _text(form, k) for k in form if k != "_csrf_token"}}


async def _list_page(request: Request[Actor, Any, Any], runtime: Runtime, *, status: int = 200,
                     problem: dict[str, Any] | None = None) -> Response[str]:
    actor = request.user
    if not actor.is_staff:
        raise NotFound("no such page")
    actor.require("customer.manage")
    query = (request.query_params.get("q") or "")[:200]
    found = await search_customers(runtime.db, actor, query, limit=50)
    service = _service(runtime)
    for customer in found:
        customer["declared_in"] = service.declared_in(customer["name"])
    return show(request, runtime, "customers.html", status=status, customers=found, q=query,
                problem=problem or {"form": "", "errors": {}, "values": {}})


async def _customer_page(request: Request[Actor, Any, Any], runtime: Runtime, customer_id: int, *,
                         status: int = 200, problem: dict[str, Any] | None = None) -> Response[str]:
    service = _service(runtime)
    customer = await service.get(request.user, customer_id)
    users = await service.users(request.user, customer_id)
    logins = {u["id"]: u["login"] for u in users}
    return show(request, runtime, "customers_page.html", status=status, customer=customer, users=users,
                logins=logins, projects_by_id={p["id"]: p for p in customer["projects"]},
                problem=problem or {"form": "", "errors": {}, "values": {}})


async def _own_project(runtime: Runtime, actor: Actor, customer_id: int, project_id: int) -> None:
    """A project URL must name the customer the project belongs to."""
    projects = await _service(runtime).projects(actor, customer_id)
    if project_id not in {p["id"] for p in projects}:
        raise NotFound(f"no project {project_id}")


async def _refuse(field: str, message: str) -> None:
    raise Invalid("the form is incomplete", [{"field": field, "message": message}])


@get("/customers", include_in_schema=False)
async def customers_list(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Customers found by number, name, label or mail domain, and the form for a new one."""
    return await _list_page(request, runtime)


@post("/customers", include_in_schema=False)
async def customer_create(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[Any]:
    form = await read_form(request)
    try:
        made = await _service(runtime).create(request.user, _values(
            form, ("name", "label", "email_domains", "hourly_rate")))
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        return await _list_page(request, runtime, status=exc.status, problem=_problem("customer-new", exc, form))
    return redirect(request, f"/customers/{made['id']}")


@get("/customers/{customer:int}", include_in_schema=False)
async def customer_page(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                        customer: FromPath[int]) -> Response[str]:
    """The customer, its projects with their work, its users and who follows which project."""
    return await _customer_page(request, runtime, customer)


async def _change(request: Request[Actor, Any, Any], runtime: Runtime, customer: int, form_id: str,
                  form: FormLists, change: Awaitable[Any]) -> Response[Any]:
    """Run ``change``; back to the customer's page, or the page with the form's problems."""
    try:
        await change
    except ServiceError as exc:
        if exc.status not in (409, 422):
            raise
        return await _customer_page(request, runtime, customer, status=exc.status,
                                    problem=_problem(form_id, exc, form))
    return redirect(request, f"/customers/{customer}")


@post("/customers/{customer:int}", include_in_schema=False)
async def customer_save(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                        customer: FromPath[int]) -> Response[Any]:
    form = await read_form(request)
    values = _values(form, ("label", "email_domains", "hourly_rate"))
    return await _change(request, runtime, customer, "customer-edit", form,
                         _service(runtime).update(request.user, customer, values))


@post("/customers/{customer:int}/projects", include_in_schema=False)
async def project_create(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                         customer: FromPath[int]) -> Response[Any]:
    form = await read_form(request)
    values = _values(form, ("name", "label", "hourly_rate"))
    return await _change(request, runtime, customer, "project-new", form,
                         _service(runtime).create_project(request.user, customer, values))


@post("/customers/{customer:int}/projects/{project:int}", include_in_schema=False)
async def project_save(request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[int],
                       project: FromPath[int]) -> Response[Any]:
    """Change a project's label and rate, or archive or restore it (``archived`` yes/no)."""
    await _own_project(runtime, request.user, customer, project)
    form = await read_form(request)
    if "archived" in form:
        values: dict[str, Any] = {"archived": _text(form, "archived") == "yes"}
    else:
        values = _values(form, ("label", "hourly_rate"))
    return await _change(request, runtime, customer, f"project-{project}", form,
                         _service(runtime).update_project(request.user, project, values))


@post("/customers/{customer:int}/users", include_in_schema=False)
async def user_create(request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[int]) -> Response[Any]:
    form = await read_form(request)
    values = _values(form, ("login", "name", "email", "password"))
    return await _change(request, runtime, customer, "user-new", form,
                         _service(runtime).create_user(request.user, customer, values))


@post("/customers/{customer:int}/users/{user:int}", include_in_schema=False)
async def user_save(request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[int],
                    user: FromPath[int]) -> Response[Any]:
    """Change a customer user's name, email or password, or (``active`` yes/no) deactivate or reactivate them."""
    form = await read_form(request)
    if "active" in form:
        values: dict[str, Any] = {"active": _text(form, "active") == "yes"}
    else:
        values = {k: v for k, v in _values(form, ("name", "email", "password")).items()
                  if v is not None or k == "email"}
    return await _change(request, runtime, customer, f"user-{user}", form,
                         _service(runtime).update_user(request.user, customer, user, values))


@post("/customers/{customer:int}/projects/{project:int}/followers", include_in_schema=False)
async def follower_add(request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[int],
                       project: FromPath[int]) -> Response[Any]:
    await _own_project(runtime, request.user, customer, project)
    form = await read_form(request)
    text = _text(form, "user_id")
    change = _service(runtime).follow(request.user, project, int(text)) if text.isdigit() and len(text) < 18 \
        else _refuse("user_id", "choose one of the customer's users")
    return await _change(request, runtime, customer, f"followers-{project}", form, change)


@post("/customers/{customer:int}/projects/{project:int}/followers/{user:int}/remove", include_in_schema=False)
async def follower_remove(request: Request[Actor, Any, Any], runtime: RuntimeDep, customer: FromPath[int],
                          project: FromPath[int], user: FromPath[int]) -> Response[Any]:
    await _own_project(runtime, request.user, customer, project)
    form = await read_form(request)
    return await _change(request, runtime, customer, f"followers-{project}", form,
                         _service(runtime).unfollow(request.user, project, user))


CUSTOMER_HANDLERS = [customers_list, customer_create, customer_page, customer_save, project_create, project_save,
                     user_create, user_save, follower_add, follower_remove]
"""The routes of this module, for ``ui.web``."""
