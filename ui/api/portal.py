"""The portal's API: order forms and their drafts, a customer's orders, chat, "send order link".

The same services as the portal's screens (``engine/runtime/forms.py``,
``engine/runtime/portal.py``), so a script or another front end sees exactly what a
customer sees there. Drafts are addressed by their random key; a draft started by a
signed-in user opens only for that user (others get 404, as for a key that does not
exist). Public forms are filled in through the screens, not the API (the API always
needs a token or a session).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import Meta

from engine.runtime import Actor
from engine.runtime.form_links import FormLinks
from engine.runtime.forms import MAX_REMARK, Forms, text_of
from engine.runtime.portal import portal_orders

from ..deps import RuntimeDep
from .bodies import Body, Id

Key = Annotated[str, PathParameter(min_length=10, max_length=100, description="the draft's key")]
Name = Annotated[str, PathParameter(max_length=40)]
Number = Annotated[str, PathParameter(max_length=60, description="the work order's number")]
DraftVersion = Annotated[int, Meta(ge=1, le=2**31 - 1, description="The version of the draft you read.")]


class FormInfo(msgspec.Struct, kw_only=True):
    name: str
    label: str
    template: str
    access: str
    pages: list[str]


class PageInfo(msgspec.Struct, kw_only=True):
    name: str
    label: str
    complete: bool
    visited: bool
    missing: list[str]


class Draft(msgspec.Struct, kw_only=True):
    key: str
    form: str
    version: int
    answers: dict[str, Any]
    visited: list[str]
    remark: str
    project_id: int | None
    pages: list[PageInfo]
    complete: bool
    submitted: bool


class PortalOrder(msgspec.Struct, kw_only=True):
    number: str
    template: str
    queue: str
    step: str
    status: str
    title: str
    created_at: str | None
    updated_at: str | None
    completed_at: str | None
    cancelled_at: str | None


class PageAnswers(Body):
    """The answers of one page: field name -> value (JSON, as the work order's fields take them)."""

    version: DraftVersion
    fields: dict[Annotated[str, Meta(max_length=40)], Any] = {}


class Submission(Body):
    version: DraftVersion
    remark: Annotated[str, Meta(max_length=MAX_REMARK)] = ""
    project_id: Id | None = None
    """One of the customer's projects (forms with ``choose_project``)."""


class ChatBody(Body):
    body: Annotated[str, Meta(min_length=1, max_length=100_000)]


class LinkSent(msgspec.Struct, kw_only=True):
    to: str
    expires_at: str


def _draft(view: dict[str, Any]) -> Draft:
    return msgspec.convert(view, Draft)


class PortalController(Controller):
    path = "/api"
    tags = ["portal"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/forms", summary="The order forms the caller may fill in")
    async def list_forms(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> list[FormInfo]:
        return [FormInfo(name=f.name, label=text_of(f.label, f.name, runtime.workspace.settings.language), template=f.template, access=f.access,
                         pages=[p.name for p in f.pages]) for f in Forms(runtime).offered(request.user)]

    @post("/forms/{name:str}/drafts", summary="Start filling in a form: a new draft", status_code=201)
    async def start(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, name: Name) -> Draft:
        return _draft(await Forms(runtime).start(request.user, name))

    @get("/drafts", summary="The caller's drafts not sent yet")
    async def mine(self, request: Request[Actor, Any, Any], runtime: RuntimeDep) -> list[Draft]:
        return [_draft(d) for d in await Forms(runtime).mine(request.user)]

    @get("/drafts/{key:str}", summary="A draft: answers so far and which pages are complete")
    async def get_draft(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, key: Key) -> Draft:
        return _draft(await Forms(runtime).get(request.user, key))

    @put("/drafts/{key:str}/pages/{page:str}", summary="Save one page's answers (pages in order)")
    async def save_page(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, key: Key, page: Name,
                        data: JSONBody[PageAnswers]) -> Draft:
        return _draft(await Forms(runtime).save_page(request.user, key, page, data.fields, data.version))

    @post("/drafts/{key:str}/submit", summary="Send the draft: the new work order", status_code=201)
    async def submit(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, key: Key,
                     data: JSONBody[Submission]) -> dict[str, Any]:
        return await Forms(runtime).submit(request.user, key, data.version, remark=data.remark,
                                           project_id=data.project_id)

    @post("/drafts/{key:str}/send-link", summary="Staff: mail the person a single-use link resuming the draft",
          status_code=202)
    async def send_link(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, key: Key) -> LinkSent:
        return msgspec.convert(await FormLinks(Forms(runtime)).send_link(request.user, key), LinkSent)

    @get("/portal/orders", summary="The caller's running or archived orders (customer users)")
    async def orders(
        self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
        tab: Annotated[Literal["running", "archived"], QueryParameter()] = "running",
        q: Annotated[str, QueryParameter(max_length=200, description="a number or words of the title")] = "",
    ) -> list[PortalOrder]:
        rows = await portal_orders(runtime, request.user, archived=tab == "archived", search=q) \
            if not request.user.is_staff else []
        return [msgspec.convert(r, PortalOrder) for r in rows]

    @post("/orders/{number:str}/chat", summary="A chat message on a running order (customer or staff)",
          status_code=201)
    async def chat(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                   data: JSONBody[ChatBody]) -> dict[str, Any]:
        return await runtime.messages.chat(request.user, number, data.body)
