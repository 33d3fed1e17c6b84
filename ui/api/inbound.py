"""Incoming mail over HTTP: ``POST /api/inbound/email`` takes one raw RFC 822 message.

For an MTA's pipe (``curl --data-binary @-``) or a mail service's webhook. The route is
outside the users' authentication: it takes its own token, ``Authorization: Bearer
<token>``, compared in constant time with the value of the environment variable that
``mail.inbound.token_env`` names. Checked in this order, before the body is read: the
token (401), the declared size (413); then the body is read up to
``mail.inbound.max_bytes`` (413 past it), and handed to ``engine.comms.inbound``
(400 for a message that cannot be read). The answer says what became of the mail: 201
with the new work order's number, or 202 (a reply threaded, a duplicate, a mail kept
but not acted on).
"""

from __future__ import annotations

import hmac
import os
from typing import Any

from litestar import Request, Response, post
from litestar.exceptions import NotAuthorizedException
from litestar.openapi.datastructures import ResponseSpec

from engine.comms.inbound import Delivered, Inbound
from engine.comms.parse import MailTooLarge
from engine.errors import NotFound, ServiceError
from engine.model.workspace import Inbound as InboundSettings

from ..auth import PUBLIC_OPT
from ..deps import RuntimeDep
from ..errors import error_response
from ..web.files import FilesDep

MAX_RAW = 100 * 1024 * 1024 + 64 * 1024
"""The route's own ceiling; the workspace's ``max_bytes`` (at most 100 MiB) is checked while reading."""
MEDIA_TYPES = ("message/rfc822",)


class UnsupportedMail(ServiceError):
    status = 415
    code = "unsupported_media_type"


def _check_token(request: Request[Any, Any, Any], settings: InboundSettings) -> None:
    expected = os.environ.get(settings.token_env or "") if settings.token_env else None
    header = request.headers.get("authorization") or ""
    scheme, _, sent = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not sent.strip():
        raise NotAuthorizedException("send the inbound mail token: `Authorization: Bearer <token>`")
    if not hmac.compare_digest(sent.strip().encode(), expected.encode()):
        raise NotAuthorizedException("the inbound mail token is not valid")


async def _read(request: Request[Any, Any, Any], limit: int) -> bytes:
    declared = request.headers.get("content-length")
    too_large = MailTooLarge(f"the mail is larger than {limit} bytes",
                             [{"field": "body", "message": f"at most {limit} bytes"}])
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


@post("/api/inbound/email", opt={PUBLIC_OPT: True}, tags=["mail"], request_max_body_size=MAX_RAW,
      summary="Receive one mail (raw RFC 822), as an MTA pipe or a mail service's webhook",
      description="Body: the raw message, `Content-Type: message/rfc822`. Authenticated by the inbound token "
                  "(`Authorization: Bearer <token>`; the token is the value of the environment variable that "
                  "`mail.inbound.token_env` names). 201: a new work order; 202: a reply added to its work "
                  "order, a duplicate, or a mail kept without action (see `outcome`). 401: no or a wrong "
                  "token; 413: larger than `mail.inbound.max_bytes`; 400: not a readable mail.",
      responses={201: ResponseSpec(Delivered, generate_examples=False, description="A new work order."),
                 202: ResponseSpec(Delivered, generate_examples=False,
                                   description="A reply added to its work order, a duplicate, or a mail kept "
                                               "without action (see `outcome`)."),
                 401: error_response(401, "No inbound token, or a wrong one."),
                 415: error_response(415, "The body is not `Content-Type: message/rfc822`.")})
async def receive_email(request: Request[Any, Any, Any], runtime: RuntimeDep, files: FilesDep) -> Response[Any]:
    mail = runtime.workspace.settings.mail
    if mail is None or mail.inbound is None:
        raise NotFound("this workspace receives no mail (no mail.inbound in routecard.yaml)")
    settings = mail.inbound
    _check_token(request, settings)
    media = (request.headers.get("content-type") or "").partition(";")[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise UnsupportedMail("send the raw message as `Content-Type: message/rfc822`",
                              [{"field": "Content-Type", "message": "expected message/rfc822"}])
    raw = await _read(request, settings.max_bytes)
    delivered = await Inbound(runtime, files).receive(raw, source="api")
    body = {"outcome": delivered.outcome, "number": delivered.number, "message": delivered.message,
            "auto": delivered.auto, "detail": delivered.detail}
    return Response(body, status_code=201 if delivered.outcome == "created" else 202)


INBOUND_HANDLERS = (receive_email,)
"""The inbound mail route."""
