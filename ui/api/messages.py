"""A work order's message thread and subscription: read the thread, post a comment, reply or follow-up."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Controller, Request, get, post
from litestar.params import JSONBody, PathParameter
from msgspec import Meta

from engine.runtime import Actor

from ..deps import RuntimeDep
from .bodies import Body

Number = Annotated[str, PathParameter(max_length=60, description="the work order's number, e.g. WO-00001")]
Address = Annotated[str, Meta(max_length=320)]


class MessageBody(Body):
    """A new message in the thread. ``kind`` says which: ``comment`` (a note in the thread, copied to the
    subscribers), ``reply`` (an email to the customer) or ``follow_up`` (a note mailed to the subscribers)."""

    kind: Literal["comment", "reply", "follow_up"]
    body: Annotated[str, Meta(max_length=100_000, description="The text, as written (never a template).")]
    client_viewable: bool = False
    """Whether the customer may read it (comments and follow-ups; a reply always is)."""
    to: list[Address] | None = None
    """Replies only: the recipients (default: the customer's contact address)."""
    subject: Annotated[str, Meta(max_length=200)] | None = None
    """Replies and follow-ups: the subject, after the work order's number (default: its title)."""
    quote: bool = False
    """Replies only: quote the last client-viewable message."""
    assign_to: Annotated[str, Meta(max_length=100)] | None = None
    """At the same time, give the work order to this member of its group (``""``: to nobody)."""
    subscribe: bool = False
    """At the same time, follow the work order."""


class SubscriptionBody(Body):
    on: bool
    """``true`` to follow the work order (get its messages by mail), ``false`` to stop."""


class MessageController(Controller):
    path = "/api/orders/{number:str}"
    tags = ["messages"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/messages", summary="The message thread, oldest first (customers see client-viewable messages only)")
    async def thread(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                     number: Number) -> list[dict[str, Any]]:
        return await runtime.messages.thread(request.user, number)

    @post("/messages", status_code=201, summary="Add a comment, a reply to the customer, or a follow-up")
    async def post_message(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                           data: JSONBody[MessageBody]) -> dict[str, Any]:
        messages, actor = runtime.messages, request.user
        if data.kind == "reply":
            return await messages.reply(actor, number, data.body, to=data.to, subject=data.subject, quote=data.quote,
                                        assign_to=data.assign_to, subscribe=data.subscribe)
        if data.kind == "follow_up":
            return await messages.follow_up(actor, number, data.body, subject=data.subject,
                                            client_viewable=data.client_viewable, assign_to=data.assign_to,
                                            subscribe=data.subscribe)
        return await messages.comment(actor, number, data.body, client_viewable=data.client_viewable,
                                      assign_to=data.assign_to, subscribe=data.subscribe)

    @get("/subscription", summary="Who follows the work order (a customer learns only about itself)")
    async def subscription(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                           number: Number) -> dict[str, Any]:
        followers = await runtime.messages.subscribers(request.user, number)
        return {"subscribed": request.user.login in followers, "subscribers": followers}

    @post("/subscription", status_code=200, summary="Follow the work order, or stop following it")
    async def subscribe(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                        data: JSONBody[SubscriptionBody]) -> dict[str, Any]:
        await runtime.messages.subscribe(request.user, number, data.on)
        followers = await runtime.messages.subscribers(request.user, number)
        return {"subscribed": data.on, "subscribers": followers}
