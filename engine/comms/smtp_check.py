"""The SMTP test: an admin sends one mail through the configured server and learns whether it went.

Guarded like every outbound feature (SECURITY F27-F30):
- the server is only ever the one in ``mail.smtp`` (host, port, security, login); nothing
  in the request can name another host, so the test cannot probe the network;
- the recipient is one checked address (no line breaks, no list), the subject and body
  are fixed texts;
- a failure is described in our words with the SMTP code or the connection error's
  kind, never with the server's answer text or any environment value;
- ``MailTestLimiter`` allows a few tests per user and per process within a window.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

import msgspec

from ..errors import Invalid, Refused
from ..model.workspace import Smtp, Workspace
from ..window import SlidingWindow
from .mail import check_address, one_line
from .outbox import SmtpConfigError, connect_smtp

SUBJECT = "Routecard test mail"
BODY = ("This is a test mail from Routecard ({workspace}), sent by {login} to check the mail settings.\n"
        "Nothing needs to be done.\n")
CODES = {
    421: "the server is not available now", 450: "the mailbox is not available now",
    451: "the server had a local error", 452: "the server has too little storage",
    530: "the server wants a login (set mail.smtp.username and password_env)",
    535: "the login was refused (check mail.smtp.username and the password's variable)",
    550: "the server refused the recipient or the sender", 551: "the recipient is not local to the server",
    552: "the mail is too large for the server", 553: "the server refused an address",
    554: "the server refused the mail",
}
"""What common SMTP codes mean, in our words (the server's own text is never passed on)."""


class MailTestResult(msgspec.Struct, kw_only=True):
    """What the test found."""

    sent: bool
    server: str
    """``host:port (security)`` of the configured server."""
    detail: str
    """What happened, for the admin: the recipient on success, else why the mail did not go."""


class MailTestLimiter:
    """At most ``per_user`` tests per user and ``total`` per process within ``window`` seconds."""

    def __init__(self, per_user: int = 5, total: int = 30, window: float = 600.0) -> None:
        self.per_user, self.total = per_user, total
        self.tests = SlidingWindow(window, 10_000)

    def take(self, login: str) -> None:
        """Count one test by ``login``; ``Refused`` (429-like, nothing sent) when a limit is reached."""
        if self.tests.count(login) >= self.per_user or self.tests.count("") >= self.total:
            wait = self.tests.wait(login) if self.tests.count(login) else int(self.tests.window)
            raise TooManyMailTests(f"too many test mails; try again in {wait // 60 + 1} minutes")
        self.tests.add(login)
        self.tests.add("")


class TooManyMailTests(Refused):
    """The test limit is reached; nothing was sent."""

    status = 429
    code = "too_many_requests"


def describe_server(smtp: Smtp) -> str:
    return f"{smtp.host}:{smtp.port} ({smtp.security})"


def failure(exc: BaseException, smtp: Smtp) -> str:
    """Why the test mail did not go, in our words: the SMTP code or the kind of connection error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({code for code, _ in exc.recipients.values()})
        return f"the server refused the recipient (SMTP {', '.join(str(c) for c in codes)})"
    if isinstance(exc, smtplib.SMTPResponseException):
        meaning = CODES.get(exc.smtp_code, "the server refused")
        return f"SMTP {exc.smtp_code}: {meaning}"
    if isinstance(exc, SmtpConfigError):
        return str(exc)
    if isinstance(exc, ssl.SSLError):
        return f"the TLS connection to {smtp.host}:{smtp.port} failed ({exc.reason or type(exc).__name__})"
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return "the server does not offer what mail.smtp.security asks for (e.g. STARTTLS)"
    if isinstance(exc, (TimeoutError, ConnectionRefusedError, OSError)):
        what = {TimeoutError: "no answer in time", ConnectionRefusedError: "the connection was refused"}.get(
            type(exc), (getattr(exc, "strerror", None) or type(exc).__name__))
        return f"cannot reach {smtp.host}:{smtp.port}: {what}"
    if isinstance(exc, smtplib.SMTPException):
        return f"the SMTP conversation failed ({type(exc).__name__})"
    return f"the test failed ({type(exc).__name__})"


def _send(settings: Workspace, smtp: Smtp, to: str, login: str, timeout: float) -> None:
    mail = settings.mail
    assert mail is not None
    message = EmailMessage(policy=SMTP)
    message["From"] = Address(display_name=one_line(mail.from_name or ""), addr_spec=mail.from_address)
    message["To"] = to
    message["Subject"] = SUBJECT
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(BODY.format(workspace=settings.name, login=login))
    client = connect_smtp(smtp, timeout)
    try:
        client.send_message(message, from_addr=mail.from_address, to_addrs=[to])
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()


async def send_test_mail(settings: Workspace, to: object, login: str, *, timeout: float = 10.0) -> MailTestResult:
    """Send the test mail to ``to`` through ``settings.mail.smtp``; the outcome, never an exception for SMTP trouble.

    ``Invalid`` (at ``to``) for a bad address, ``Refused`` without SMTP settings.
    """
    errors: list[dict[str, str]] = []
    address = check_address(to, "to", errors)
    if address is None:
        raise Invalid("not an address to send the test mail to", errors)
    mail = settings.mail
    if mail is None or mail.smtp is None:
        raise Refused("no SMTP server is configured (mail.smtp in routecard.yaml)")
    smtp = mail.smtp
    try:
        await asyncio.to_thread(_send, settings, smtp, address, login, timeout)
    except (OSError, smtplib.SMTPException, SmtpConfigError, ValueError) as exc:
        return MailTestResult(sent=False, server=describe_server(smtp), detail=failure(exc, smtp))
    return MailTestResult(sent=True, server=describe_server(smtp), detail=f"the server accepted the mail to {address}")
