"""The workspace file, routecard.yaml: settings of the whole workspace."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .common import LANGUAGE_PATTERN, Definition, Duration, Email, Identity, describe

Language = Annotated[str, describe("A language code, e.g. en or de-CH.", pattern=LANGUAGE_PATTERN)]


class Smtp(Definition, frozen=True, kw_only=True):
    """The SMTP server outgoing mail is sent through."""

    host: Annotated[str, describe("Host name of the SMTP server.", max_length=255)]
    port: Annotated[int, describe("Port of the SMTP server.", ge=1, le=65535)] = 587
    security: Annotated[
        Literal["none", "starttls", "ssl"], describe("Connection security.")
    ] = "starttls"
    username: Annotated[Annotated[str, Meta(max_length=255)] | None, describe("Login at the SMTP server.")] = None
    password_env: Annotated[
        Annotated[str, Meta(pattern=r"^[A-Z_][A-Z0-9_]*$")] | None,
        describe("Name of the environment variable holding the password (never the password itself)."),
] = None


EnvName = Annotated[str, Meta(pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=100)]


class Imap(Definition, frozen=True, kw_only=True):
    """The IMAP mailbox `routecard worker --imap` fetches incoming mail from."""

    host: Annotated[str, describe("Host name of the IMAP server.", max_length=255)]
    port: Annotated[int, describe("Port of the IMAP server (993 with ssl, 143 with starttls).", ge=1, le=65535)] = 993
    security: Annotated[
        Literal["ssl", "starttls", "none"], describe("Connection security (none only for a server on this machine).")
    ] = "ssl"
    username: Annotated[str, describe("Login at the IMAP server.", max_length=255)]
    password_env: Annotated[
        EnvName, describe("Name of the environment variable holding the password (never the password itself).")]
    mailbox: Annotated[str, describe("The folder to read.", min_length=1, max_length=200)] = "INBOX"
    after: Annotated[
        Literal["seen", "move"], describe("What happens to a fetched message: flagged \\Seen, or moved to move_to.")
    ] = "seen"
    move_to: Annotated[
        Annotated[str, Meta(min_length=1, max_length=200)] | None,
        describe("The folder fetched messages are moved to (with after: move)."),
    ] = None
    interval: Annotated[int, describe("Seconds between two looks into the mailbox.", ge=5, le=3600)] = 60


class RateLimit(Definition, frozen=True, kw_only=True):
    """How many mails one sender may send before further ones are only kept."""

    mails: Annotated[int, describe("Mails per sender within `per`.", ge=1, le=100000)] = 20
    per: Annotated[Duration, describe("The window the mails are counted in, e.g. 1h.")] = "1h"


class Inbound(Definition, frozen=True, kw_only=True):
    """Incoming mail: where new mail becomes a work order, how it is received, and its limits."""

    template: Annotated[Identity, describe("The template of the work order a new mail creates.")]
    queue: Annotated[Identity | None, describe("The queue it enters (default: the template's first).")] = None
    token_env: Annotated[
        EnvName | None,
        describe("Name of the environment variable holding the token of POST /api/inbound/email "
                 "(without it the endpoint is closed)."),
    ] = None
    max_bytes: Annotated[int, describe(
        "Largest raw message accepted, in bytes (at most 100 MiB).", ge=1024, le=100 * 1024 * 1024)] = 25 * 1024 * 1024
    max_attachments: Annotated[int, describe(
        "Most attachments kept of one message; further ones are listed but not kept.", ge=0, le=100)] = 20
    rate_limit: Annotated[RateLimit, describe(
        "Mails per sender; beyond it a mail is kept but creates no work order and runs no automation.")] = RateLimit()
    imap: Annotated[Imap | None, describe("The IMAP mailbox `routecard worker --imap` reads.")] = None


class Mail(Definition, frozen=True, kw_only=True):
    """Mail settings."""

    from_address: Annotated[Email, describe("Sender address of outgoing mail.")]
    from_name: Annotated[Annotated[str, Meta(max_length=200)] | None, describe("Sender name of outgoing mail.")] = None
    smtp: Annotated[Smtp | None, describe("Outgoing mail server; without it mail stays in the outbox.")] = None
    inbound: Annotated[Inbound | None, describe(
        "Incoming mail (POST /api/inbound/email and the IMAP poller); without it no mail is received.")] = None


DEFAULT_FILE_TYPES = (
    "application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv",
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
)
"""The file types accepted when ``attachments.allowed_types`` is not set."""
MAX_FILE_SIZE = 100 * 1024 * 1024
"""The largest ``attachments.max_size`` that may be set (upload requests are bounded accordingly)."""
FileType = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9.+-]*/[a-z0-9][a-z0-9.+-]*$", max_length=100)]


class Attachments(Definition, frozen=True, kw_only=True):
    """Where uploaded files are kept, and which ones are accepted."""

    folder: Annotated[str, describe(
        "Folder the files are stored in: relative to the workspace folder, or absolute.",
        min_length=1, max_length=1000)] = ".routecard/files"
    max_size: Annotated[int, describe(
        "Largest file accepted, in bytes (at most 100 MiB).", ge=1, le=MAX_FILE_SIZE)] = 25 * 1024 * 1024
    allowed_types: Annotated[tuple[FileType, ...], describe(
        "Content types accepted, as detected from the file's content (never its name or the browser's word): "
        "application/pdf, image/png, image/jpeg, image/gif, image/webp, text/plain, text/csv, application/zip, "
        "the Office and OpenDocument types, text/html, image/svg+xml, application/octet-stream. "
        "Default: PDF, PNG, JPEG, GIF, WebP, plain text, CSV, ZIP, Office and OpenDocument files.")] = DEFAULT_FILE_TYPES
    daily_quota: Annotated[int, describe(
        "Most bytes one user may upload within 24 hours, all work orders together (default 1 GiB; 0: no limit). "
        "Files that arrive by mail do not count.", ge=0)] = 1024 * 1024 * 1024
    max_per_mail: Annotated[int, describe(
        "Most bytes of files one reply, comment or follow-up may carry as mail attachments (default 20 MiB).",
        ge=1, le=MAX_FILE_SIZE)] = 20 * 1024 * 1024


class Workspace(Definition, frozen=True, kw_only=True, tag_field="kind", tag="Workspace"):
    """Settings of the whole workspace, in routecard.yaml."""

    name: Annotated[
        str, describe("The workspace's short name.", pattern=r"^[a-z][a-z0-9_-]*$", max_length=63)
    ]
    title: Annotated[Annotated[str, Meta(max_length=200)] | None, describe("The workspace's title, shown in the header.")] = None
    language: Annotated[Language, describe("The default language of labels and mail.")] = "en"
    languages: Annotated[tuple[Language, ...], describe("All languages labels are given in.")] = ()
    timezone: Annotated[str, describe("The default IANA timezone, e.g. Europe/Berlin.", max_length=64)] = "UTC"
    database: Annotated[
        str | None,
        describe(
            "Database URL: sqlite:///relative/or/absolute/path.db or postgresql://user@host/db. "
            "Default: .routecard/routecard.db in the workspace. --db or ROUTECARD_DATABASE_URL win."
        ),
    ] = None
    base_url: Annotated[
        str, describe("The address people reach Routecard at; links in mail start with it.",
                      pattern=r"^https?://[^\s/]+(/\S*)?$")
    ] = "http://localhost:8000"
    mail: Annotated[Mail | None, describe("Mail settings.")] = None
    attachments: Annotated[Attachments, describe(
        "Uploaded files: storage folder, size limits, accepted types, the daily quota per user.")] = (
        Attachments())
    plugins: Annotated[
        dict[str, dict[str, Any]], describe("Settings per plugin, checked against each plugin's schema.")
    ] = msgspec.field(default_factory=dict)
