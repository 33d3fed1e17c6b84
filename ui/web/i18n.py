"""The UI's own words in the user's language, and labels from the definitions.

The UI's text is English in the templates, marked with ``_()``; translations live in
gettext catalogues (``ui/locale/<lang>/LC_MESSAGES/messages.po``), read with Babel
when the app is made. Labels of fields, steps and queues come from the definitions
and fall back to the workspace's default language, then to the first one given.
"""

from __future__ import annotations

import functools
import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from engine.labels import pick_label as pick_label  # the fallback is the engine's, shared with the diagrams

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGES: dict[str, str] = {"en": "English", "de": "Deutsch", "ru": "Русский", "zh": "中文"}
"""The languages the UI's own text is translated into, with their own names."""

DOMAIN = "messages"


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The catalogue of ``language`` (English, the source language, needs none)."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if language == "en" or not path.is_file():
        return gettext.NullTranslations()
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def accepted(header: str | None) -> list[str]:
    """The primary language tags of an ``Accept-Language`` header, most wanted first."""
    if not header:
        return []
    wanted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().split("-")[0].lower()
        if primary and quality > 0:
            wanted.append((-quality, index, primary))
    return [tag for _, _, tag in sorted(wanted)]


def choose_language(setting: str | None, header: str | None, default: str) -> str:
    """The user's setting, else the browser's best supported wish, else the workspace default."""
    if setting in LANGUAGES:
        return setting
    for tag in accepted(header):
        if tag in LANGUAGES:
            return tag
    return default if default in LANGUAGES else "en"
