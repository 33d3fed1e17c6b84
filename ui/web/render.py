"""Rendering HTML: one Jinja environment for the app, and the context every page gets.

Templates are the app's own files (never user text), rendered with autoescaping on,
so every value from users or definitions is escaped unless a template says otherwise.
Pages render the layout; htmx requests (``HX-Request``) get only the block they asked
for, named by the handler.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from litestar import Request, Response
from litestar.enums import MediaType

from engine.runtime import Actor, Runtime

from ..auth import CSRF_HEADER, Credentials
from .i18n import LANGUAGES, choose_language, pick_label, translations
from .times import local_text, zone_of

UI_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"
HTMX_FILE = STATIC_DIR / "vendor" / "htmx.min.js"
LANGUAGE_COOKIE = "rc_lang"


def N_(message: str) -> str:
    """Marks ``message`` for the catalogues; it is translated where it is shown."""
    return message


WORDS: dict[str, dict[str, str]] = {
    "status": {"open": N_("Open"), "completed": N_("Completed"), "cancelled": N_("Cancelled")},
    "priority": {"low": N_("Low"), "normal": N_("Normal"), "high": N_("High"), "urgent": N_("Urgent")},
    "action": {"pending": N_("Pending"), "processed": N_("Processed"), "skipped": N_("Skipped")},
}
"""The fixed values of work orders in words, translated when shown."""


def _asset_versions() -> dict[str, str]:
    """A short content hash per static file, appended to its URL so browsers may cache it for long."""
    versions = {}
    for path in STATIC_DIR.rglob("*"):
        if path.is_file():
            versions[path.relative_to(STATIC_DIR).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()[:10]
    return versions


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    versions = _asset_versions()
    env.globals["static"] = lambda name: f"/static/{name}?v={versions.get(name, '0')}"
    env.globals["languages"] = LANGUAGES
    env.filters["when"] = _when
    env.filters["urlq"] = lambda value: quote(str(value), safe="")
    env.globals["query"] = _query
    return env


@pass_context
def _when(context: Any, value: Any, with_time: bool = True) -> str:
    """An ISO date-time (as the API gives it) shown briefly in the workspace's time zone."""
    if value in (None, ""):
        return ""
    page = context.get("page")
    text = local_text(value.isoformat() if isinstance(value, dt.datetime) else value,
                      page.zone if isinstance(page, Page) else dt.timezone.utc)
    return text if with_time else text[:10]


def _query(base: Mapping[str, Any], **changes: Any) -> str:
    """``base`` as a query string with ``changes`` applied (``None`` drops a key)."""
    merged = {k: v for k, v in {**base, **changes}.items() if v not in (None, "")}
    return urlencode(merged)


class Page:
    """What every template knows about the request: who, in which language, with which CSRF token."""

    def __init__(self, request: Request[Any, Any, Any], runtime: Runtime, language_setting: str | None = None) -> None:
        self.request = request
        self.runtime = runtime
        settings = runtime.workspace.settings
        self.default_language = settings.language
        cookie = request.cookies.get(LANGUAGE_COOKIE)
        self.language = choose_language(language_setting or cookie, request.headers.get("accept-language"),
                                        settings.language)
        self.translations = translations(self.language)
        user = request.scope.get("user")
        self.user: Actor | None = user if isinstance(user, Actor) else None
        auth = request.scope.get("auth")
        self.csrf: str | None = auth.csrf if isinstance(auth, Credentials) else None
        self.title = settings.title or settings.name
        self.zone = zone_of(settings.timezone)
        self.is_htmx = request.headers.get("hx-request") == "true"

    def gettext(self, message: str, **values: Any) -> str:
        text = self.translations.gettext(message)
        return text % values if values else text

    def ngettext(self, singular: str, plural: str, n: int, **values: Any) -> str:
        text = self.translations.ngettext(singular, plural, n)
        return text % {"num": n, **values}

    def label(self, labels: Mapping[str, str] | None, fallback: str = "") -> str:
        return pick_label(dict(labels or {}), self.language, self.default_language, fallback)

    def word(self, kind: str, value: str | None) -> str:
        """A fixed value (``status``, ``priority``, ``action`` state) in the user's language."""
        text = WORDS[kind].get(value or "")
        return self.gettext(text) if text else (value or "")

    def step_label(self, queue: str, step: str) -> str:
        """A step's label, or its name when the queue or step is no longer defined."""
        found = self.runtime.workspace.queues.get(queue)
        for candidate in found.steps if found else ():
            if candidate.name == step:
                return self.label(candidate.label, step)
        return step

    def context(self) -> dict[str, Any]:
        return {
            "page": self, "user": self.user, "csrf": self.csrf, "csrf_header": CSRF_HEADER,
            "lang": self.language, "_": self.gettext, "gettext": self.gettext, "ngettext": self.ngettext,
            "label": self.label, "step_label": self.step_label,
            "status_word": lambda v: self.word("status", v), "priority_word": lambda v: self.word("priority", v),
            "action_word": lambda v: self.word("action", v), "workspace_title": self.title, "path": self.request.url.path,
        }


def render(env: Environment, page: Page, name: str, *, status: int = 200, headers: dict[str, str] | None = None,
           **values: Any) -> Response[str]:
    """``name`` rendered with the page's context and ``values`` as an HTML response."""
    html = env.get_template(name).render({**page.context(), **values})
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers or {})


def render_block(env: Environment, page: Page, name: str, block: str, *, status: int = 200,
                 headers: dict[str, str] | None = None, **values: Any) -> Response[str]:
    """One block of template ``name`` (an htmx fragment) as an HTML response."""
    template = env.get_template(name)
    context = template.new_context({**page.context(), **values})
    html = "".join(template.blocks[block](context))
    return Response(html, status_code=status, media_type=MediaType.HTML, headers=headers or {})
