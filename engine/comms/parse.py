"""Reading a received mail: a raw RFC 822 message as plain data (``Received``).

``parse`` never trusts the message: every header is read defensively (a header the
library cannot parse counts as missing), texts become single lines where they will be
used as one (subjects become titles and reply subjects), the body is plain text (an HTML
body is reduced to its text: scripts, styles and markup dropped), and attachments are
counted and capped. It also tells whether the mail was sent by a machine (``auto``:
auto-replies, lists, bulk mail) or is a bounce (``bounce``: a delivery report), so
nothing automatic ever answers it (docs/mail.md, "Loop protection").
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.policy import default
from html.parser import HTMLParser
from typing import Any

from ..errors import ServiceError
from .mail import check_address, one_line

MAX_TEXT = 100_000
"""Characters of the body kept (the thread's limit)."""
MAX_TITLE = 300
MAX_IDENT = 300
MAX_REFERENCES = 50
MAX_PARTS = 2000
"""MIME parts looked at; a message with more is refused as unreadable."""
_IDENT = re.compile(r"<[^<>\s]{1,298}>")
_BOUNCE_SENDERS = ("mailer-daemon", "postmaster", "mail-daemon")
_AUTO_PRECEDENCE = ("bulk", "junk", "list", "auto_reply")
_AUTO_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Auto-Response-Suppress", "List-Id")


class Unreadable(ServiceError):
    """The bytes are not a mail we can read (no headers, no sender address)."""

    status = 400
    code = "unreadable_mail"


class MailTooLarge(ServiceError):
    """The raw message is larger than ``mail.inbound.max_bytes``."""

    status = 413
    code = "too_large"


@dataclass(frozen=True)
class Part:
    """An attachment of the mail: the sender's filename and its bytes (the type is sniffed when stored)."""

    filename: str
    data: bytes


@dataclass
class Received:
    """A parsed mail."""

    sender: str
    """The From address, lower case."""
    sender_name: str
    to: list[str]
    subject: str
    """One line, at most ``MAX_TITLE`` characters (may be empty)."""
    message_ident: str | None
    """The Message-ID, ``<...>``, if it has a usable one."""
    in_reply_to: list[str]
    references: list[str]
    text: str
    attachments: list[Part] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Names of attachments beyond the limit, not kept."""
    auto: bool = False
    """Sent by a machine (auto-reply, list, bulk mail, bounce): never answered automatically."""
    bounce: bool = False
    """A delivery report (bounce): kept, but it starts nothing."""
    why_auto: str | None = None


def _header(message: Message, name: str) -> str:
    """A header's text, or ``""`` when it is missing or cannot be parsed."""
    try:
        value = message.get(name)
    except Exception:  # noqa: BLE001 - a malformed header counts as missing
        return ""
    return "" if value is None else str(value)


def _sender(message: Message) -> tuple[str, str]:
    try:
        header: Any = message.get("From")
    except Exception:  # noqa: BLE001
        header = None
    for address in getattr(header, "addresses", ()) or ():
        errors: list[dict[str, str]] = []
        checked = check_address(address.addr_spec, "from", errors)
        if checked:
            return checked.lower(), clean_line(address.display_name or "")[:200]
    raise Unreadable("the mail has no usable sender address",
                     [{"field": "From", "message": "expected one email address"}])


def _recipients(message: Message) -> list[str]:
    out: list[str] = []
    for name in ("To", "Cc"):
        try:
            header: Any = message.get(name)
        except Exception:  # noqa: BLE001
            continue
        for address in getattr(header, "addresses", ()) or ():
            errors: list[dict[str, str]] = []
            checked = check_address(address.addr_spec, name.lower(), errors)
            if checked and checked.lower() not in out:
                out.append(checked.lower())
    return out[:50]


def clean_line(value: str) -> str:
    """``value`` as one line without control characters (a title, a name)."""
    return one_line("".join(" " if ord(c) < 32 or 0x7F <= ord(c) < 0xA0 else c for c in one_line(value)))


def idents(value: str) -> list[str]:
    """The Message-IDs (``<...>``) in a header's text, at most ``MAX_REFERENCES``, in order."""
    return _IDENT.findall(value)[:MAX_REFERENCES]


class _Text(HTMLParser):
    """The visible text of an HTML body: no scripts, styles or markup; block elements start lines."""

    SKIP = frozenset({"script", "style", "head", "title", "template", "noscript", "iframe", "object", "svg"})
    BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre",
                       "table", "ul", "ol", "hr", "section", "article"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_text(source: str) -> str:
    """The text of an HTML document (what a person would read), never its markup."""
    parser = _Text()
    parser.feed(source)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _content(part: Message) -> str:
    try:
        value = part.get_content() if isinstance(part, EmailMessage) else None
        if isinstance(value, str):
            return value
    except Exception:  # noqa: BLE001 - unknown charsets, broken encodings: decode by hand below
        pass
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, "replace")
    except LookupError:
        return payload.decode("utf-8", "replace")


def _body(message: EmailMessage) -> tuple[str, Message | None]:
    try:
        part = message.get_body(preferencelist=("plain", "html"))
    except Exception:  # noqa: BLE001
        part = None
    if part is None:
        return "", None
    text = _content(part)
    if part.get_content_subtype() == "html":
        text = html_text(text)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    return text[:MAX_TEXT], part


def _attachments(message: EmailMessage, body: Message | None, limit: int) -> tuple[list[Part], list[str]]:
    kept: list[Part] = []
    dropped: list[str] = []
    for count, part in enumerate(message.walk()):
        if count > MAX_PARTS:
            raise Unreadable(f"the mail has more than {MAX_PARTS} parts", [{"field": "body", "message": "too many parts"}])
        if part is body or part.is_multipart():
            continue
        try:
            filename = part.get_filename()
        except Exception:  # noqa: BLE001
            filename = None
        maintype = part.get_content_maintype()
        disposition = part.get_content_disposition()
        if not filename and disposition != "attachment" and maintype in ("text", "message", "multipart"):
            continue  # an alternative body, a delivery status: part of the text, not a file
        name = clean_line(filename or f"attachment-{count}")[:200] or f"attachment-{count}"
        if len(kept) >= limit:
            dropped.append(name)
            continue
        data = part.get_payload(decode=True)
        if isinstance(data, bytes):
            kept.append(Part(name, data))
    return kept, dropped[:200]


def _machine(message: Message, sender: str) -> tuple[bool, bool, str | None]:
    """(auto, bounce, why): is the mail from a machine, and is it a delivery report?"""
    local = sender.partition("@")[0]
    content_type = message.get_content_type()
    report = _header(message, "Content-Type").lower()
    if content_type == "multipart/report" and "delivery-status" in report:
        return True, True, "a delivery report (multipart/report)"
    if _header(message, "Return-Path").strip() == "<>":
        return True, True, "an empty Return-Path (<>)"
    if local in _BOUNCE_SENDERS:
        return True, True, f"sent by {local}"
    submitted = _header(message, "Auto-Submitted").strip().lower()
    if submitted and not submitted.startswith("no"):
        return True, False, f"Auto-Submitted: {submitted[:40]}"
    precedence = _header(message, "Precedence").strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return True, False, f"Precedence: {precedence}"
    for name in _AUTO_HEADERS:
        if _header(message, name):
            return True, False, f"a {name} header"
    if content_type == "multipart/report":
        return True, False, "a report (multipart/report)"
    return False, False, None


def parse(raw: bytes, *, max_attachments: int = 20) -> Received:
    """``raw`` as a ``Received``; ``Unreadable`` when it has no headers or no sender address."""
    if not raw.strip():
        raise Unreadable("the mail is empty", [{"field": "body", "message": "send the raw message (RFC 822)"}])
    if raw.lower().count(b"content-type:") > MAX_PARTS:  # refused before the (slow) full parse
        raise Unreadable(f"the mail has more than {MAX_PARTS} parts", [{"field": "body", "message": "too many parts"}])
    message = email.message_from_bytes(raw, policy=default)
    if not isinstance(message, EmailMessage) or not message.keys():
        raise Unreadable("the mail has no headers", [{"field": "body", "message": "send the raw message (RFC 822)"}])
    sender, sender_name = _sender(message)
    ident = idents(_header(message, "Message-ID"))
    text, body = _body(message)
    kept, dropped = _attachments(message, body, max_attachments)
    auto, bounce, why = _machine(message, sender)
    return Received(
        sender=sender, sender_name=sender_name, to=_recipients(message),
        subject=clean_line(_header(message, "Subject"))[:MAX_TITLE],
        message_ident=ident[0] if ident else None,
        in_reply_to=idents(_header(message, "In-Reply-To")), references=idents(_header(message, "References")),
        text=text, attachments=kept, dropped=dropped, auto=auto, bounce=bounce, why_auto=why)
