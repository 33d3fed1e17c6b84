"""The UI's own words: every one extracted from the code is translated in every catalogue."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from ui.web.i18n import LANGUAGES, LOCALE_DIR, accepted, choose_language, pick_label, translations

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _messages() -> set[str]:
    method_map = [("ui/**.py", "python"), ("ui/templates/**.html", "jinja2")]
    options = {"ui/templates/**.html": {"extensions": "jinja2.ext.i18n", "trim_blocks": "True",
                                        "lstrip_blocks": "True"}}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options, keywords={"_": None, "N_": None}):
        found.add(message if isinstance(message, str) else message[0])
    return found


MESSAGES = _messages()


def test_the_ui_has_words_to_translate() -> None:
    assert {"Sign in", "Order Manager", "Open", "Wrong login or password."} <= MESSAGES
    assert len(MESSAGES) > 80


@pytest.mark.parametrize("language", [code for code in LANGUAGES if code != "en"])
def test_every_word_is_translated(language: str) -> None:
    path = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as handle:
        catalog = read_po(handle, locale=language)
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(m for m in MESSAGES if not translated.get(m))
    assert not missing, f"{path.relative_to(ROOT)} lacks {len(missing)} translations (run `make messages`): {missing[:10]}"
    for message in MESSAGES:
        assert set(PLACEHOLDER.findall(translated[message])) == set(PLACEHOLDER.findall(message)), (
            f"{language}: the placeholders of {message!r} differ in {translated[message]!r}")
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not fuzzy, f"{language}: fuzzy (unchecked) translations: {fuzzy[:10]}"


def test_catalogues_load_and_translate() -> None:
    assert translations("de").gettext("Sign in") == "Anmelden"
    assert translations("en").gettext("Sign in") == "Sign in"


def test_accept_language_and_label_fallback() -> None:
    assert accepted("fr-CH, fr;q=0.9, de;q=0.8, *;q=0.5") == ["fr", "fr", "de", "*"]
    assert accepted("en;q=0, ru") == ["ru"]
    assert choose_language(None, "fr, zh-CN;q=0.7", "de") == "zh"
    assert choose_language("ru", "de", "en") == "ru"
    assert choose_language(None, "fr", "de") == "de"
    assert choose_language(None, None, "xx") == "en"
    labels = {"en": "Take the order", "de": "Auftrag aufnehmen"}
    assert pick_label(labels, "de", "en") == "Auftrag aufnehmen"
    assert pick_label(labels, "ru", "en") == "Take the order"
    assert pick_label({"de": "Nur Deutsch"}, "ru", "en") == "Nur Deutsch"
    assert pick_label({}, "de", "en", "fallback") == "fallback"
