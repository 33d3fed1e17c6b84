"""The HTMX screens: server-rendered pages and fragments, generated from the definitions.

Every screen is a Jinja template of ``ui/templates`` filled from the linked workspace
(labels, fields, steps) and the runtime's services; nothing in a template names a
field or a step of a particular workspace, so a definition change shows up as soon
as it is applied. Changes are htmx requests carrying the session's CSRF token in the
``x-csrftoken`` header (set once on ``<body>``).
"""

from __future__ import annotations

from typing import Any

from litestar import Router
from litestar.static_files import create_static_files_router

from ..auth import PUBLIC_OPT
from .admin import admin_overview, admin_queue, admin_queue_diagram, admin_template
from .common import WEB_EXCEPTION_HANDLERS
from .customers import CUSTOMER_HANDLERS
from .files import FILE_HANDLERS
from .macros import MACRO_HANDLERS
from .manager import manager, manager_panel, manager_rows, manager_statuses
from .new import NEW_HANDLERS
from .orders import ORDER_HANDLERS
from .pages import choose_language, home, login, login_page, logout
from .pickers import pick_customers, pick_users
from .portal import PORTAL_HANDLERS
from .portal_forms import PORTAL_FORM_HANDLERS
from .render import HTMX_FILE, STATIC_DIR
from .thread import THREAD_HANDLERS
from .timesheets import TIMESHEET_HANDLERS
from .dashboards import dashboards
from .work import assign, assignment, my_work


class MissingAsset(RuntimeError):
    """A static file the screens need was not installed."""


def web_handlers() -> list[Any]:
    """The screens' routes and the static files, ready for ``Litestar(route_handlers=...)``."""
    if not HTMX_FILE.is_file():
        raise MissingAsset(f"{HTMX_FILE} is missing: run `make install` (it fetches the pinned htmx.org package)")
    screens = Router(path="/", route_handlers=[
        home, login_page, login, logout, choose_language, manager, manager_rows, manager_panel, manager_statuses,
        my_work, assignment, assign, admin_overview, admin_queue, admin_queue_diagram, admin_template,
        *ORDER_HANDLERS, *MACRO_HANDLERS, *NEW_HANDLERS, *FILE_HANDLERS, *THREAD_HANDLERS, *TIMESHEET_HANDLERS, *PORTAL_HANDLERS,
        *PORTAL_FORM_HANDLERS, dashboards, pick_users, pick_customers, *CUSTOMER_HANDLERS,
    ], exception_handlers=WEB_EXCEPTION_HANDLERS, include_in_schema=False)
    static = create_static_files_router(
        path="/static", directories=[STATIC_DIR], opt={PUBLIC_OPT: True}, include_in_schema=False,
        cache_control=None, send_as_attachment=False)
    return [screens, static]
