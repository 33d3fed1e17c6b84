"""The web application: ``create_app(workspace_dir, database_url)`` returns a Litestar app.

The workspace is opened (loaded, checked, linked) when the app is made, so every
template's create route is in place before the first request; the database is
connected when the app starts, and the app refuses to start on a database that is not
at the workspace's definition version (``routecard apply`` brings it there).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin

from engine.automation.worker import Worker
from engine.plugins import Plugins, default_plugins
from engine.db import connect
from engine.errors import DatabaseError
from engine.link.resolved import LinkedWorkspace
from engine.migrate.plan import build_plan
from engine.runtime import Runtime
from engine.runtime.attachments import disk_store
from engine.runtime.fields import FieldCodec
from engine.workspace import open_workspace

from .api import (
    OrderController,
    SessionController,
    TokenController,
    health,
    list_queues,
    list_templates,
    create_order_of_new_template,
    template_router,
)
from .api.attachments import ATTACHMENT_HANDLERS
from .api.customers import CUSTOMER_HANDLERS
from .api.time import TIME_HANDLERS
from .api.inbound import INBOUND_HANDLERS
from .api.messages import MessageController
from .api.admin import MAIL_TEST_HANDLERS
from .api.portal import PortalController
from .auth import auth_middleware
from .deps import runtime_provider
from .errors import EXCEPTION_HANDLERS, document_errors
from .hosts import HostGuard
from .ops import OPS_HANDLERS, RequestLog, log_response
from .limits import SignInLimiter
from .web import web_handlers
from .web.files import files_provider

MAX_BODY = 1024 * 1024
"""Largest request body accepted (bytes); larger ones get 413 before they are read."""


RELOAD_INTERVAL = 2.0
"""Seconds between looks at the database for a newly applied definition version."""

log = logging.getLogger("routecard.serve")


async def watch_definitions(runtime: Runtime, workspace_dir: Path, interval: float) -> None:
    """Switch to newly applied definitions without a restart.

    Every ``interval`` seconds the applied version is read; when it differs from the
    one served, the workspace folder is opened again (in a worker thread) and, if its
    definitions are the applied ones, served from the next request on. Files edited
    but not applied are not picked up: ``routecard apply`` is the switch.
    """
    waiting_for: str | None = None
    while True:
        await asyncio.sleep(interval)
        try:
            applied = await runtime.applied_version()
            if applied is None or applied == runtime.workspace.fingerprint or applied == waiting_for:
                continue
            fresh = await anyio.to_thread.run_sync(open_workspace, workspace_dir)
            if fresh.fingerprint != applied:
                waiting_for = applied
                log.warning("the database is at definition version %s but the files in %s are at %s; "
                            "still serving %s", applied[:12], workspace_dir, fresh.fingerprint[:12],
                            runtime.workspace.fingerprint[:12])
                continue
            runtime.reload(fresh)
            waiting_for = None
            log.info("now serving definition version %s", applied[:12])
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken file or a database hiccup must not stop the watcher
            log.exception("looking for new definitions failed; trying again in %.0f s", interval)


async def ensure_current(runtime: Runtime) -> None:
    """Refuse a database that is not at the workspace's definition version."""
    async with runtime.db.transaction():
        plan = await build_plan(runtime.db, runtime.workspace)
    if not plan.up_to_date:
        have = plan.previous.fingerprint[:12] if plan.previous else "none"
        raise DatabaseError(
            f"the database {runtime.db.display_url} is at definition version {have}, the workspace at "
            f"{runtime.workspace.fingerprint[:12]}; run `routecard apply` on the workspace first")


def create_app(workspace_dir: Path, database_url: str, *, workspace: LinkedWorkspace | None = None,
               reload_interval: float = RELOAD_INTERVAL, worker: bool = False,
               plugins: Plugins | None = None) -> Litestar:
    """The API and screens for the workspace at ``workspace_dir`` on the database at ``database_url``.

    With ``reload_interval`` > 0, newly applied definitions are served without a restart
    (see ``watch_definitions``). With ``worker``, the worker (SLA sweep, jobs, outbox mail) runs within
    the app (``routecard serve`` does so on SQLite; see docs/mail.md).
    """
    plugins = plugins if plugins is not None else default_plugins()
    linked = workspace if workspace is not None else open_workspace(Path(workspace_dir), plugins=plugins)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        db = await connect(database_url)
        try:
            await db.start_pool()
            runtime = Runtime(linked, db, plugins)
            await ensure_current(runtime)
            app.state.runtime = runtime
            app.state.sign_in_limiter = SignInLimiter()
            watcher = (asyncio.create_task(watch_definitions(runtime, Path(workspace_dir), reload_interval))
                       if reload_interval > 0 else None)
            sender = asyncio.create_task(Worker(runtime, say=log.info, storage=disk_store(
                linked.settings, Path(workspace_dir))).run()) if worker else None
            try:
                yield
            finally:
                for task in (watcher, sender):
                    if task is not None:
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        finally:
            await db.close()

    routers: list[Any] = [template_router(t, FieldCodec(t)) for t in linked.templates.values()]
    app = Litestar(
        route_handlers=[OrderController, MessageController, PortalController, SessionController, TokenController, list_templates,
                        list_queues, health, *routers, create_order_of_new_template,
                        *ATTACHMENT_HANDLERS, *CUSTOMER_HANDLERS, *TIME_HANDLERS, *INBOUND_HANDLERS, *OPS_HANDLERS, *MAIL_TEST_HANDLERS, *web_handlers()],
        dependencies={"runtime": Provide(runtime_provider(lambda: app), sync_to_thread=False),
                      "files": Provide(files_provider(Path(workspace_dir)), sync_to_thread=False)},
        middleware=[RequestLog, HostGuard, auth_middleware()],
        before_send=[log_response],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY,
        openapi_config=OpenAPIConfig(
            title=f"Routecard API: {linked.settings.name}", version=linked.fingerprint[:12],
            path="/schema", render_plugins=[JsonRenderPlugin()],
            description="Work orders of the workspace's templates and queues. Authenticate with "
                        "`Authorization: Bearer <token>` (`routecard tokens create USERNAME`)."),
        debug=False,
    )
    document_errors(app)
    return app
