"""Search-as-you-type for inputs that name a record: staff users by login, customers.

An input asks ``/pick/users?field=<its name>`` (htmx adds its value under its own
name) or ``?q=``; the answer is the ``<option>`` list of its ``<datalist>``.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from engine.runtime import Actor
from engine.runtime.lookups import MAX_USERS, search_customers, search_users

from ..deps import RuntimeDep
from .common import page_for
from .orders import fragment, html

MAX_QUERY = 200


def _query(request: Request[Any, Any, Any]) -> str:
    params = request.query_params
    field = params.get("field")
    text = params.get("q") if field is None else params.get(field)
    return (text or "")[:MAX_QUERY]


@get("/pick/users", include_in_schema=False)
async def pick_users(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Active staff users whose login or name contains the text (at most 20)."""
    users = await search_users(runtime.db, request.user, _query(request), limit=MAX_USERS)
    options = [(u["login"], u["name"] if u["name"] != u["login"] else "") for u in users]
    return html(fragment(page_for(request, runtime), "order_options.html", {"options": options}))


@get("/pick/customers", include_in_schema=False)
async def pick_customers(request: Request[Actor, Any, Any], runtime: RuntimeDep) -> Response[str]:
    """Customers whose number, name, label or e-mail domain matches the text (at most 20)."""
    customers = await search_customers(runtime.db, request.user, _query(request), limit=MAX_USERS)
    options = [(c["name"], c["label"] if c["label"] != c["name"] else "") for c in customers]
    return html(fragment(page_for(request, runtime), "order_options.html", {"options": options}))
