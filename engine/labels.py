"""Labels of definitions in a chosen language, with the fallback every screen and output uses."""

from __future__ import annotations

from collections.abc import Mapping


def pick_label(labels: Mapping[str, str], language: str, default: str, fallback: str = "") -> str:
    """The label in ``language``, else in the workspace default, else the first given."""
    if not labels:
        return fallback
    return labels.get(language) or labels.get(default) or next(iter(labels.values()))


def label_map(label: str | Mapping[str, str] | None, language: str) -> dict[str, str]:
    """A label as written (one text, a mapping per language, or nothing) as a mapping.

    One text counts as the workspace's default ``language``; nothing gives an empty mapping.
    """
    if label is None:
        return {}
    if isinstance(label, str):
        return {language: label}
    return dict(label)
