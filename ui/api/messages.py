"""A work order's message thread and subscription: read the thread, post a comment, reply or follow-up.

A message may carry files: ids of files already uploaded to the order
(``POST /api/orders/{n}/attachments``) in ``attachments``, or files uploaded with the
message itself (``POST .../messages/with-files``, multipart). Either way they are tied
to the message, listed with it, and sent as parts of its mails.
"""

from __future__ import annotations

from typing import Annotated, Any, BinaryIO, Literal, cast

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import JSONBody, PathParameter, QueryParameter
from msgspec import Meta

from engine.comms.texts import label as text_label
from engine.comms.texts import offered
from engine.errors import Invalid
from engine.runtime import Actor, Runtime
from engine.runtime.attachments import Upload

from ..deps import RuntimeDep
from ..errors import decode_problem
from ..web.files import UPLOAD_REQUEST_MAX, FilesDep, send_with_files
from ..web.forms import MAX_FILES
from .bodies import Body, Id

Number = Annotated[str, PathParameter(max_length=60, description="the work order's number, e.g. WO-00001")]
Address = Annotated[str, Meta(max_length=320)]
Kind = Literal["comment", "reply", "follow_up"]


class MessageBody(Body):
    """A new message in the thread. ``kind`` says which: ``comment`` (a note in the thread, copied to the
    subscribers), ``reply`` (an email to the customer) or ``follow_up`` (a note mailed to the subscribers)."""

    kind: Kind
    body: Annotated[str, Meta(max_length=100_000, description=(
        "The text, as written (never a template). May be empty with `template`: the template's text, filled in, "
        "is sent."))] = ""
    client_viewable: bool | None = None
    """Whether the customer may read it (comments and follow-ups; a reply always is). Default: the template's
    ``client_viewable`` with ``template``, else false."""
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
    attachments: Annotated[list[Id], Meta(max_length=MAX_FILES)] = []
    """Ids of the order's files to send along (uploaded before, not yet sent with a message nor held by a field)."""
    template: Annotated[str, Meta(max_length=100)] | None = None
    """The name of a comment template offered for this kind (``GET .../comment-templates``)."""


class SubscriptionBody(Body):
    on: bool
    """``true`` to follow the work order (get its messages by mail), ``false`` to stop."""


class CommentText(msgspec.Struct, kw_only=True):
    """A comment template offered on the order, filled in for it."""

    name: str
    label: str
    body: str
    client_viewable: bool


async def _post(runtime: Runtime, actor: Actor, number: str, data: MessageBody, ids: list[int]) -> dict[str, Any]:
    messages = runtime.messages
    files = [*data.attachments, *ids]
    if data.kind == "reply":
        return await messages.reply(actor, number, data.body, to=data.to, subject=data.subject, quote=data.quote,
                                    assign_to=data.assign_to, subscribe=data.subscribe, attachments=files,
                                    template=data.template)
    if data.kind == "follow_up":
        return await messages.follow_up(actor, number, data.body, subject=data.subject,
                                        client_viewable=data.client_viewable, assign_to=data.assign_to,
                                        subscribe=data.subscribe, attachments=files, template=data.template)
    return await messages.comment(actor, number, data.body, client_viewable=data.client_viewable,
                                  assign_to=data.assign_to, subscribe=data.subscribe, attachments=files,
                                  template=data.template)


class MessageController(Controller):
    path = "/api/orders/{number:str}"
    tags = ["messages"]  # noqa: RUF012 - Litestar reads it as a class attribute

    @get("/messages", summary="The message thread, oldest first (customers see client-viewable messages only)",
         description="Each message lists its files (`attachments`: id, filename, content_type, size, download).")
    async def thread(self, request: Request[Actor, Any, Any], runtime: RuntimeDep,
                     number: Number) -> list[dict[str, Any]]:
        return await runtime.messages.thread(request.user, number)

    @post("/messages", status_code=201, summary="Add a comment, a reply to the customer, or a follow-up")
    async def post_message(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                           data: JSONBody[MessageBody]) -> dict[str, Any]:
        return await _post(runtime, request.user, number, data, [])

    @post("/messages/with-files", status_code=201, request_max_body_size=UPLOAD_REQUEST_MAX,
          summary="Add a message with files uploaded along",
          description="A multipart body: one part `message` holding the message's JSON (as for POST .../messages) "
                      "and 1 to 20 parts `file`. The files are checked like any upload (size, type from the "
                      "content, the daily quota) and, with the message, kept or refused together (422 or 413 "
                      "naming the part; nothing is kept).")
    async def post_with_files(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, files: FilesDep,
                              number: Number) -> dict[str, Any]:
        actor = request.user
        await runtime.get(actor, number)  # the order must be visible before anything is stored
        form = await request.form()
        texts = [v for k, v in form.multi_items() if k == "message" and isinstance(v, str)]
        parts = [v for k, v in form.multi_items() if k == "file" and isinstance(v, UploadFile)]
        if len(texts) != 1:
            raise Invalid("send the message as one part named `message`",
                          [{"field": "message", "message": "expected one part holding the message's JSON"}])
        if not parts or len(parts) > MAX_FILES:
            raise Invalid(f"send 1 to {MAX_FILES} files as parts named `file`",
                          [{"field": "file", "message": f"expected 1 to {MAX_FILES} files, got {len(parts)}"}])
        try:
            data = msgspec.json.decode(texts[0], type=MessageBody)
        except msgspec.ValidationError as exc:
            problem = decode_problem(str(exc))
            field = "message" if problem["field"] == "body" else f"message.{problem['field']}"
            raise Invalid("the message does not have the expected shape", [{**problem, "field": field}]) from None
        except msgspec.DecodeError:
            raise Invalid("the message part is not JSON",
                          [{"field": "message", "message": "expected the message's JSON"}]) from None
        uploads = [Upload(cast(BinaryIO, p.file), str(p.filename or "file"), "file") for p in parts]
        return await send_with_files(files, actor, uploads, lambda ids: _post(runtime, actor, number, data, ids))

    @get("/comment-templates", summary="The comment templates offered on the order for a kind of message, filled in")
    async def comment_templates(self, request: Request[Actor, Any, Any], runtime: RuntimeDep, number: Number,
                                kind: Annotated[Kind, QueryParameter(description="comment, reply or follow_up")] = "comment") -> list[CommentText]:
        actor = request.user
        order = await runtime.get(actor, number)
        if not actor.is_staff:
            return []
        out = []
        for comment in offered(runtime.workspace, str(order["template"]), kind):
            filled = await runtime.messages.fill_template(actor, number, comment.name, kind)
            out.append(CommentText(name=comment.name, label=text_label(runtime.workspace, comment),
                                   body=filled["body"], client_viewable=filled["client_viewable"]))
        return out

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
