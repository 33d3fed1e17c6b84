"""Outgoing mail as data: addresses checked, texts rendered in a sandbox, headers that thread.

A mail is first a JSON payload (``Payload``), stored in ``rc_outbox`` in the same
transaction as the change it tells of; the worker turns it into an
``email.message.EmailMessage`` (``to_email``) only when it sends it. Files a mail
carries are named in the payload by their storage keys (``MailFile``); their bytes are
read from the store only then, so the outbox never holds copies of files.

Texts are rendered by the built-in templates below in a sandboxed Jinja environment
(``ImmutableSandboxedEnvironment``). What people type (comments, subjects, titles,
field values) only ever enters a template as a *value*: it is never compiled, so
``{{ 7*7 }}`` in a comment arrives as written (SECURITY E23).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import msgspec
from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import Invalid
from ..model.common import EMAIL_PATTERN
from ..storage import OCTET_STREAM, clean_filename

MAX_ADDRESS = 254
MAX_SUBJECT = 200
_ADDRESS = re.compile(EMAIL_PATTERN)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9.-]")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9.+-]{0,126}/[a-z0-9][a-z0-9.+-]{0,126}$")


class MailFile(msgspec.Struct, kw_only=True):
    """A file a mail carries: where its bytes are kept (read when the mail is sent), its name and type."""

    key: str
    """The storage key (``engine.storage``); never a path or a person's filename."""
    filename: str
    """The name the recipient sees (cleaned again when the mail is made)."""
    content_type: str
    """The type detected from the content when the file was stored."""
    size: int


class FileUnavailable(Exception):
    """A file of the mail cannot be read now (``permanent``: it never will be)."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


class Payload(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One mail to one recipient, as ``rc_outbox.payload`` holds it."""

    sender: str
    sender_name: str | None = None
    to: list[str]
    cc: list[str] = []
    subject: str
    body: str
    message_id: str
    in_reply_to: str | None = None
    references: list[str] = []
    order: str | None = None
    """The work order's number (for people reading the outbox)."""
    automatic: bool = False
    """A notice Routecard sends by itself (copies to subscribers, status changes): ``Auto-Submitted``."""
    attachments: list[MailFile] = []
    """Files sent along, as MIME parts after the text."""


# -- addresses and header values -----------------------------------------------------------------


def has_line_break(value: str) -> bool:
    """Would ``value`` start a new header line (CR, LF or another line separator)?"""
    return any(c in value for c in "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def check_address(value: Any, field: str, errors: list[dict[str, str]]) -> str | None:
    """``value`` as an email address, or an entry in ``errors`` (header injection included)."""
    if not isinstance(value, str):
        errors.append({"field": field, "message": "expected an email address"})
        return None
    text = value.strip()
    if has_line_break(value):
        errors.append({"field": field, "message": "an address cannot contain a line break"})
    elif len(text) > MAX_ADDRESS or not _ADDRESS.match(text) or any(ord(c) < 32 or c in '"()[]\\' for c in text):
        errors.append({"field": field, "message": f"not an email address: {text[:80]!r}"})
    else:
        return text
    return None


def addresses(value: str | Sequence[str] | None, field: str, errors: list[dict[str, str]]) -> list[str]:
    """A list of checked addresses from a list or a comma-separated text."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    if isinstance(value, str) and has_line_break(value):
        errors.append({"field": field, "message": "an address cannot contain a line break"})
        return []
    out: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, str) and not item.strip() and isinstance(value, str):
            continue
        where = field if isinstance(value, str) else f"{field}.{index}"
        address = check_address(item, where, errors)
        if address is not None and address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out


def check_subject(value: Any, errors: list[dict[str, str]]) -> str | None:
    """A subject line typed by a person: one line, at most ``MAX_SUBJECT`` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append({"field": "subject", "message": "expected text"})
        return None
    if has_line_break(value):
        errors.append({"field": "subject", "message": "a subject is one line: no line breaks"})
        return None
    if len(value) > MAX_SUBJECT:
        errors.append({"field": "subject", "message": f"at most {MAX_SUBJECT} characters"})
        return None
    return value.strip() or None


def one_line(value: str) -> str:
    """Text from the database made safe for a header: line breaks become spaces."""
    return " ".join(re.split(r"[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+", value)).strip()


# -- threading headers ------------------------------------------------------------------------


def _domain(sender: str) -> str:
    return _ID_UNSAFE.sub("-", sender.rpartition("@")[2]) or "routecard.invalid"


def thread_id(workspace: str, number: str, sender: str) -> str:
    """The Message-ID every mail about work order ``number`` refers to, so mail programs thread them."""
    return f"<routecard.{_ID_UNSAFE.sub('-', workspace)}.{_ID_UNSAFE.sub('-', number)}@{_domain(sender)}>"


def message_id(workspace: str, key: str, sender: str) -> str:
    """A Message-ID that stays the same for the same outbox key (a resent mail is recognisably the same)."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    return f"<routecard.{_ID_UNSAFE.sub('-', workspace)}.{digest}@{_domain(sender)}>"


def recipient_key(prefix: str, address: str) -> str:
    """``rc_outbox.idempotency_key`` for one recipient of one mail (bounded length)."""
    return f"{prefix}:{hashlib.sha256(address.lower().encode()).hexdigest()[:32]}"


# -- texts ------------------------------------------------------------------------------------

SUBJECT = "[{{ number }}] {{ subject }}"
MESSAGE_BODY = """\
{{ body }}
{%- if quoted %}

{{ author_line }}
{{ quoted }}
{%- endif %}

-- 
{{ number }}: {{ title }}
{{ link }}
"""
COPY_BODY = """\
{{ author }} {{ what }} on work order {{ number }} ({{ title }}):

{{ body }}

-- 
You receive this because you follow work order {{ number }}.
{{ link }}
"""
STATUS_BODY = """\
Work order {{ number }} ({{ title }}) {{ change }}.

Status: {{ status }}
Step: {{ step }}
{{ link }}
"""

_ENVIRONMENT = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined,
                                             keep_trailing_newline=True)


def compile_text(source: str, field: str = "template") -> Any:
    """An admin's mail template, compiled in the sandbox; ``Invalid`` for a broken one.

    Only templates from the definitions (or the built-in ones) are compiled; never
    what a person typed into a comment or subject.
    """
    try:
        return _ENVIRONMENT.from_string(source)
    except TemplateSyntaxError as exc:
        raise Invalid("the mail template cannot be read",
                      [{"field": field, "message": f"line {exc.lineno}: {exc.message}"}]) from None


_COMPILED = {name: compile_text(text) for name, text in
             (("subject", SUBJECT), ("message", MESSAGE_BODY), ("copy", COPY_BODY), ("status", STATUS_BODY))}


def render(name: str, values: Mapping[str, Any]) -> str:
    """A built-in template, filled with ``values`` in the sandbox."""
    try:
        return str(_COMPILED[name].render(dict(values)))
    except SecurityError as exc:  # pragma: no cover - the built-in templates call nothing unsafe
        raise Invalid("the mail template is not allowed", [{"field": name, "message": str(exc)}]) from None


def quote_lines(text: str) -> str:
    """``text`` quoted the way mail quotes: ``> `` before every line."""
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


def subject_line(number: str, subject: str) -> str:
    """A subject carrying the work order's number in brackets (once)."""
    subject = one_line(subject)
    if f"[{number}]" in subject:
        return subject[:250]
    return one_line(render("subject", {"number": number, "subject": subject}))[:250]


# -- the message itself ---------------------------------------------------------------------


def to_email(payload: Payload, read: Callable[[str], bytes] | None = None) -> EmailMessage:
    """The payload as a message with policy SMTP; every header a single line, checked again.

    ``read(key)`` gives a file's bytes for each of ``payload.attachments`` (a part each,
    base64, with a safe filename and the detected type); without it a mail that carries
    files cannot be made (``FileUnavailable``).
    """
    message = EmailMessage(policy=SMTP)
    sender = Address(display_name=one_line(payload.sender_name or ""), addr_spec=payload.sender)
    message["From"] = sender
    message["To"] = ", ".join(_checked(payload.to))
    if payload.cc:
        message["Cc"] = ", ".join(_checked(payload.cc))
    message["Subject"] = one_line(payload.subject)
    message["Message-ID"] = one_line(payload.message_id)
    if payload.in_reply_to:
        message["In-Reply-To"] = one_line(payload.in_reply_to)
    if payload.references:
        message["References"] = " ".join(one_line(r) for r in payload.references)
    if payload.automatic:
        message["Auto-Submitted"] = "auto-generated"
    message.set_content(payload.body)
    for item in payload.attachments:
        if read is None:
            raise FileUnavailable("this worker has no file store to read attachments from", permanent=False)
        maintype, subtype = mail_content_type(item.content_type).split("/")
        message.add_attachment(read(item.key), maintype=maintype, subtype=subtype,
                               filename=attachment_name(item.filename))
    return message


def attachment_name(filename: str) -> str:
    """A file's name as a mail part's ``filename``: one line, no path, no quotes or control characters."""
    return clean_filename(one_line(filename))


def mail_content_type(value: str) -> str:
    """The stored (detected) type if it is a plain ``type/subtype``, else ``application/octet-stream``."""
    value = value.strip().lower()
    return value if _CONTENT_TYPE.match(value) else OCTET_STREAM


def _checked(items: Iterable[str]) -> list[str]:
    errors: list[dict[str, str]] = []
    out = [a for a in (check_address(i, "to", errors) for i in items) if a]
    if errors:
        raise ValueError("; ".join(e["message"] for e in errors))
    return out
