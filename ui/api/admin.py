"""Admin actions in the JSON API: the SMTP test (``POST /api/admin/mail/test``).

The mail goes through the configured ``mail.smtp`` server only; the body names the
recipient and nothing else (an unknown key such as ``host`` is a 422). See
``engine.comms.smtp_check`` for the guards and ``ui.web.admin`` for the page's button.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, post
from litestar.params import JSONBody
from msgspec import Meta

from engine.comms.smtp_check import MailTestResult
from engine.runtime import Actor

from ..deps import RuntimeDep
from ..errors import error_response
from ..web.admin import admin_mail_test, mail_test
from .bodies import Body


class MailTestBody(Body):
    """Where the test mail goes."""

    to: Annotated[str, Meta(max_length=320, description="One email address (no list, no line breaks).")]


@post("/api/admin/mail/test", status_code=200, tags=["admin"], summary="Send a test mail through the SMTP settings",
      description="Admins only. Sends a fixed test mail to `to` through the workspace's `mail.smtp` server and "
                  "reports `sent` with a `detail`: the server's acceptance, or why it failed (SMTP code or "
                  "connection error, in Routecard's words). 409 without SMTP settings, 422 for a bad address, "
                  "429 after too many tests.",
      responses={429: error_response(429, "Too many test mails in a short time; wait a while.")})
async def mail_test_api(request: Request[Actor, Any, Any], runtime: RuntimeDep,
                        data: JSONBody[MailTestBody]) -> MailTestResult:
    return await mail_test(request, runtime, data.to)


MAIL_TEST_HANDLERS = (mail_test_api, admin_mail_test)
"""The SMTP test's routes: the API's and the admin page's."""
