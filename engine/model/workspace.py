"""The workspace file, routecard.yaml: settings of the whole workspace."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from .common import LANGUAGE_PATTERN, Definition, Email, describe

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


class Mail(Definition, frozen=True, kw_only=True):
    """Mail settings."""

    from_address: Annotated[Email, describe("Sender address of outgoing mail.")]
    from_name: Annotated[Annotated[str, Meta(max_length=200)] | None, describe("Sender name of outgoing mail.")] = None
    smtp: Annotated[Smtp | None, describe("Outgoing mail server; without it mail stays in the outbox.")] = None


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
    plugins: Annotated[
        dict[str, dict[str, Any]], describe("Settings per plugin, checked against each plugin's schema.")
    ] = msgspec.field(default_factory=dict)
