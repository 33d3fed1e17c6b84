"""Macros on the work-order page: one button per macro, applied with the version the agent read.

``POST /orders/{number}/macros/{name}`` applies the macro (all or nothing) and answers
with the flow region and the audit trail, like every change on the page; a macro that
cannot be done comes back in the region with its reason (422), a work order changed
meanwhile with the conflict notice (409).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, post
from litestar.params import FromPath

from engine.automation.actions import ActionFailed
from engine.automation.macros import apply_macro
from engine.runtime import Actor

from ..deps import RuntimeDep
from .orders import _context, _flow_change, form_version, fragment, html, read_form


@post("/orders/{number:str}/macros/{name:str}", include_in_schema=False)
async def apply(request: Request[Actor, Any, Any], runtime: RuntimeDep, number: FromPath[str],
                name: FromPath[str]) -> Response[str]:
    """Apply macro ``name`` to the work order."""
    async def change(version: int, form: Any) -> dict[str, Any]:
        return await apply_macro(runtime, request.user, number, version, name)

    try:
        return await _flow_change(request, runtime, number, change)
    except ActionFailed as exc:
        page, ctx = await _context(request, runtime, number)
        return html(fragment(page, "order_flow.html", {**ctx, "macro_error": exc.detail}), status=422)


MACRO_HANDLERS = (apply,)
"""The macros' routes, for the screens' router."""

__all__ = ["MACRO_HANDLERS", "form_version", "read_form"]
