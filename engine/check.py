"""Stage 2, check: validate each document against its kind's JSON Schema.

Every error of every document is reported, each at the line and column of the
value it concerns, in words an admin understands: which key, what was expected,
what was found, and "did you mean" where a close spelling exists. Documents that
pass are converted to the typed model (``engine.model``).
"""

from __future__ import annotations

import difflib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from jsonschema import ValidationError

from .diagnostics import Diagnostic, Diagnostics, Location
from .load import WORKSPACE_FILE, Document
from .model import DOCUMENT_KINDS, Definition, Workspace
from .model.automation import SCHEDULE_PATTERN
from .model.common import (
    CLOCK_RANGE_PATTERN,
    DATE_PATTERN,
    DURATION_PATTERN,
    EMAIL_PATTERN,
    IDENTITY_MAX,
    IDENTITY_PATTERN,
    LANGUAGE_PATTERN,
    PLUGIN_ACTION_PATTERN,
)
from .schemas import WORKSPACE_KIND, validators

TYPE_WORDS = {
    "object": "a mapping (key: value)",
    "array": "a list",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing",
}


PATTERN_FORMS = {
    DURATION_PATTERN: "a duration; write days, hours and minutes like 30m, 4h or 1d4h",
    LANGUAGE_PATTERN: "a language code; write e.g. en or de-CH",
    EMAIL_PATTERN: "an email address",
    PLUGIN_ACTION_PATTERN: "a plugin action; write plugin.action, e.g. invoice.generate",
    CLOCK_RANGE_PATTERN: "a time range; write HH:MM-HH:MM, e.g. 08:00-17:00",
    DATE_PATTERN: "a date; write YYYY-MM-DD, e.g. 2025-12-24",
    SCHEDULE_PATTERN: "a schedule; write e.g. every day 08:00, every monday 09:30, every weekday 07:00 or every 2h",
}
"""What a value of a common pattern is, in words (identities have their own message)."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean `x`?)`` for the closest candidate, or an empty string."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean `{close[0]}`?" if close else ""


def path_text(path: Sequence[str | int]) -> str:
    """A key path as an admin reads it: ``steps[2].actions[0].name``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "the document"


def shown(value: Any) -> str:
    """A value as it is quoted in a message: short, and with its type obvious."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing (null)"
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "..."
        return json.dumps(text, ensure_ascii=False)
    return str(value)


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


def _expected(types: Any) -> str:
    if isinstance(types, str):
        types = [types]
    return " or ".join(TYPE_WORDS.get(t, t) for t in types)


def _suggest_identity(text: str) -> str:
    """A valid identity close to ``text``: ``Straße Nr.`` -> ``strasse_nr``, ``ÄÖÜ`` -> ``aou``."""
    text = text.strip().lower().replace("ß", "ss").replace("æ", "ae").replace("ø", "o")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    out = "".join(c if c.isascii() and c.isalnum() else "_" for c in text)
    out = "_".join(p for p in out.split("_") if p)
    if not out:
        return "name"
    if not out[0].isalpha():
        out = "n_" + out
    return out[:IDENTITY_MAX].rstrip("_")


class _Explainer:
    """Turns jsonschema errors into located, readable diagnostics."""

    def __init__(self, document: Document, kind: str) -> None:
        self.document = document
        self.kind = kind

    def explain(self, error: ValidationError) -> list[Diagnostic]:
        path = list(error.absolute_path)
        where = f"`{path_text(path)}`"
        keyword = error.validator
        # Both are set on every error a validator reports (the stubs also allow jsonschema's Unset).
        instance: Any = error.instance
        value: Any = error.validator_value
        schema = error.schema if isinstance(error.schema, dict) else {}
        at = self.document.locate(path)
        if keyword == "additionalProperties":
            allowed = list(schema.get("properties", {}))
            out = []
            for key in instance:
                if key in allowed:
                    continue
                hint = did_you_mean(key, allowed)
                if not hint:
                    hint = "; allowed keys: " + ", ".join(allowed)
                owner = self.kind if not path else f"`{path_text(path)}`"
                out.append(self._at([*path, key], f"unknown key `{key}` in {owner}{hint}", key=True))
            return out
        if keyword == "required":
            out = []
            for key in value:
                if isinstance(instance, dict) and key not in instance:
                    owner = self.kind if not path else f"`{path_text(path)}`"
                    description = schema.get("properties", {}).get(key, {}).get("description", "")
                    extra = f" ({description})" if description and len(description) < 120 else ""
                    out.append(Diagnostic(at, f"missing required key `{key}` in {owner}{extra}"))
            return out
        if keyword == "type":
            return [Diagnostic(at, f"{where} should be {_expected(value)}, found {shown(instance)}")]
        if keyword in ("enum", "const"):
            options = value if keyword == "enum" else [value]
            hint = did_you_mean(str(instance), [str(o) for o in options]) if isinstance(instance, str) else ""
            listed = ", ".join(str(o) for o in options)
            return [Diagnostic(at, f"{where} must be one of: {listed}; found {shown(instance)}{hint}")]
        if keyword == "pattern":
            if instance == "" and schema.get("minLength", 0) >= 1:
                return []  # "must not be empty" says it
            return [Diagnostic(at, self._pattern_message(where, instance, value, schema))]
        if keyword in ("maxLength", "minLength"):
            if keyword == "minLength" and value == 1:
                return [Diagnostic(at, f"{where} must not be empty")]
            bound = "at most" if keyword == "maxLength" else "at least"
            return [
                Diagnostic(
                    at,
                    f"{where} must be {bound} {value} characters long, "
                    f"found {len(instance)} characters",
                )
            ]
        if keyword in ("minItems", "maxItems"):
            bound = "at least" if keyword == "minItems" else "at most"
            n = value
            return [Diagnostic(at, f"{where} needs {bound} {n} item{'s' if n != 1 else ''}, found {len(instance)}")]
        if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            bound = {"minimum": "at least", "maximum": "at most"}.get(keyword, keyword)
            return [Diagnostic(at, f"{where} must be {bound} {value}, found {shown(instance)}")]
        if keyword in ("anyOf", "oneOf"):
            return self._alternatives(error, where, at)
        return [Diagnostic(at, f"{where}: {error.message}")]

    def _at(self, path: list[Any], message: str, *, key: bool = False) -> Diagnostic:
        return Diagnostic(self.document.locate(path, key=key), message)

    @staticmethod
    def _pattern_message(where: str, instance: Any, pattern: str, schema: dict[str, Any]) -> str:
        if pattern == IDENTITY_PATTERN:
            return (
                f"{where}: {shown(instance)} is not a valid name; use lowercase letters, digits and "
                f"underscores, starting with a letter (e.g. `{_suggest_identity(str(instance))}`)"
            )
        form = PATTERN_FORMS.get(pattern)
        if form:
            return f"{where}: {shown(instance)} is not {form}"
        description = str(schema.get("description", "")).rstrip(".")
        about = f"{description}; " if description else ""
        return f"{where}: {shown(instance)} does not have the expected form ({about}pattern {pattern})"

    def _alternatives(self, error: ValidationError, where: str, at: Location) -> list[Diagnostic]:
        """For ``anyOf``: report the branch that accepts the value's type, if one does."""
        by_branch: dict[int, list[ValidationError]] = {}
        for sub in error.context or []:
            by_branch.setdefault(int(sub.relative_schema_path[0]), []).append(sub)
        base = len(error.absolute_path)
        expected: list[str] = []
        for branch in sorted(by_branch):
            errors = by_branch[branch]
            accepted = next((t for e in errors if len(e.absolute_path) == base for t in _mismatch(e)), None)
            if accepted is not None:
                expected.append(_expected(accepted))
                continue
            out: list[Diagnostic] = []
            for sub in errors:
                out.extend(self.explain(sub))
            return out
        words = " or ".join(dict.fromkeys(expected)) or "something else"
        return [Diagnostic(at, f"{where} should be {words}, found {shown(error.instance)}")]


def _mismatch(error: ValidationError) -> list[list[str]]:
    """The types a branch accepts, when ``error`` says the value's type is not among them."""
    value: Any = error.validator_value  # set on every error a validator reports
    if error.validator == "type":
        return [[value] if isinstance(value, str) else value]
    if error.validator in ("enum", "const"):
        options = value if error.validator == "enum" else [value]
        types = list(dict.fromkeys(_type_of(o) for o in options))
        if _type_of(error.instance) not in types:
            return [types]
    return []


def document_kind(document: Document, diagnostics: Diagnostics) -> str | None:
    """The document's kind, or ``None`` after reporting why it has none."""
    is_workspace_file = document.path == WORKSPACE_FILE
    if not isinstance(document.data, dict):
        what = "nothing" if document.data is None else shown(document.data)
        diagnostics.error(document.locate(), f"a definition document must be a mapping of keys, found {what}")
        return None
    kind = document.data.get("kind", WORKSPACE_KIND if is_workspace_file else None)
    kinds = list(DOCUMENT_KINDS)
    if kind is None:
        diagnostics.error(
            document.locate(),
            f"the document has no `kind:`; it should be one of: {', '.join(kinds)}",
        )
        return None
    if is_workspace_file:
        if kind != WORKSPACE_KIND:
            diagnostics.error(
                document.locate(["kind"]),
                f"{WORKSPACE_FILE} holds the workspace settings (kind: Workspace); "
                f"put {shown(kind)} definitions in another file",
            )
            return None
        return WORKSPACE_KIND
    if kind == WORKSPACE_KIND:
        diagnostics.error(document.locate(["kind"]), f"workspace settings belong in {WORKSPACE_FILE}")
        return None
    if not isinstance(kind, str) or kind not in DOCUMENT_KINDS:
        hint = did_you_mean(str(kind), kinds) if isinstance(kind, str) else ""
        diagnostics.error(
            document.locate(["kind"]),
            f"unknown kind {shown(kind)}{hint or '; kinds are: ' + ', '.join(kinds)}",
        )
        return None
    return kind


def check_document(document: Document, diagnostics: Diagnostics) -> Definition | None:
    """Validate one document; return its typed model, or ``None`` after reporting every error."""
    kind = document_kind(document, diagnostics)
    if kind is None:
        return None
    data = document.data
    model: type[Definition] = Workspace if kind == WORKSPACE_KIND else DOCUMENT_KINDS[kind]
    if kind == WORKSPACE_KIND and "kind" not in data:
        data = {"kind": WORKSPACE_KIND, **data}
    # Fast path: the model enforces the same constraints the schema is generated from.
    # Only a document it rejects goes through the schema, to report every error located.
    if not _has_null(data):  # the model takes null for "not given"; the schema (and editors) do not
        try:
            return msgspec.convert(data, model)
        except msgspec.ValidationError:
            pass
    explainer = _Explainer(document, kind)
    found = False
    for error in validators()[kind].iter_errors(document.data):
        found = True
        diagnostics.extend(explainer.explain(error))
    if found:
        return None
    try:
        return msgspec.convert(data, model)
    except msgspec.ValidationError as exc:  # the schema accepted it: the model is stricter
        diagnostics.error(document.locate(_msgspec_path(str(exc))), f"invalid definition: {exc}")
        return None


def _has_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_null(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_null(v) for v in value)
    return False


def _msgspec_path(message: str) -> list[str | int]:
    """The path in a msgspec error such as ``... - at `$.fields[0].name```."""
    marker = message.rfind("`$")
    if marker < 0:
        return []
    text = message[marker + 2 :].rstrip("`")
    path: list[str | int] = []
    for part in text.replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("[") and part.endswith("]") and part[1:-1].isdigit():
            path.append(int(part[1:-1]))
        else:
            path.append(part.strip("[]'\""))
    return path
