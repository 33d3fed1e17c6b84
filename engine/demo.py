"""Demo data: the work orders ``routecard demo`` creates in an empty database.

A workspace may carry ``demo/orders.yaml`` (not a definition file: the ``demo`` folder
is skipped by the loader)::

    users:                         # besides every group's members, who are added anyway
      admin: {name: Demo administrator, roles: [administrator]}
      ella: {name: Ella Marsh, customer: seaside_theatre, email: ella@example.org}   # a portal user
    orders:
      - template: customer_order
        by: anna.gruber            # who creates it (a demo user)
        title: Teapots for the café
        priority: high
        fields: {customer_ref: K0048213, ...}
        then:                      # optional, in order
          - process: confirm_items
          - skip: check_stock
          - cancel: duplicate      # the reason

Every order goes through the runtime's services, so demo data obeys the same
rules and leaves the same audit trail as real work; each step is done by the
order's owner at that moment (or its creator), as an agent would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .errors import ServiceError, UsageError
from .link.resolved import LinkedWorkspace
from .runtime import Runtime, load_actor

DEMO_FILE = Path("demo") / "orders.yaml"


def _read(root: Path) -> dict[str, Any]:
    path = root / DEMO_FILE
    if not path.is_file():
        return {}
    data = YAML(typ="safe", pure=True).load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping with `users:` and `orders:`")
    return data


def read_demo_orders(root: Path) -> list[dict[str, Any]]:
    """The demo orders of the workspace at ``root`` (none when it has no demo file)."""
    orders = _read(root).get("orders") or []
    if not isinstance(orders, list) or not all(isinstance(o, dict) for o in orders):
        raise UsageError(f"{root / DEMO_FILE}: expected `orders:` with a list of work orders")
    return orders


def read_demo_users(root: Path) -> dict[str, dict[str, Any]]:
    """Extra demo users by login: ``name`` and ``roles`` (the roles must be defined)."""
    users = _read(root).get("users") or {}
    if not isinstance(users, dict) or not all(isinstance(u, dict) for u in users.values()):
        raise UsageError(f"{root / DEMO_FILE}: expected `users:` mapping logins to {{name, roles}}")
    return {str(login): spec for login, spec in users.items()}


async def seed(runtime: Runtime, orders: list[dict[str, Any]]) -> list[str]:
    """Create ``orders`` unless the database already holds work orders; their numbers."""
    if await runtime.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order"):
        return []
    workspace: LinkedWorkspace = runtime.workspace
    numbers = []
    for index, spec in enumerate(orders, 1):
        where = f"{DEMO_FILE} order {index}"
        try:
            creator = await load_actor(runtime.db, workspace, login=str(spec["by"]))
            body: dict[str, Any] = {k: spec[k] for k in ("title", "priority", "fields") if k in spec}
            order = await runtime.create(creator, str(spec["template"]), body)
            for step in spec.get("then") or []:
                ((verb, argument),) = dict(step).items()
                owner = order["owner"] or creator.login
                actor = await load_actor(runtime.db, workspace, login=owner)
                if verb in ("process", "skip"):
                    order = await runtime.process(actor, order["number"], order["version"], str(argument),
                                                  skip=verb == "skip")
                elif verb == "cancel":
                    order = await runtime.cancel(actor, order["number"], order["version"], str(argument))
                else:
                    raise UsageError(f"{where}: unknown step {verb!r} (process, skip, cancel)")
        except (KeyError, ValueError, TypeError) as exc:
            raise UsageError(f"{where}: malformed ({exc})") from None
        except ServiceError as exc:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            raise UsageError(f"{where}: refused: {exc.detail}{' (' + details + ')' if details else ''}") from None
        numbers.append(str(order["number"]))
    return numbers
