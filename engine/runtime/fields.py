"""Custom-field values: validated per template, stored as typed columns, shown as JSON.

For every template a msgspec type is compiled per field (length, pattern, bounds,
options); ``FieldCodec.validate`` checks every given field and reports all problems
at once by field path, and ``FieldCodec.struct`` is the template's Struct that the
JSON API publishes in its OpenAPI document.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from ..errors import Invalid
from ..link.resolved import ResolvedField, ResolvedTemplate
from ..link.values import decimal_problem
from ..model.common import EMAIL_PATTERN

URL_PATTERN = r"^https?://[^\s]+$"
MAX_TEXT = 100_000


def _value_type(field: ResolvedField) -> Any:
    """The msgspec type one value of ``field`` must have."""
    kind = field.type
    described = Meta(title=next(iter(field.label.values()), field.name),
                     description=next(iter(field.help.values()), None) if field.help else None)
    if kind == "input":
        meta = Meta(max_length=field.max_length or 255, pattern=field.pattern or None)
        return Annotated[str, meta, described]
    if kind == "text":
        return Annotated[str, Meta(max_length=MAX_TEXT), described]
    if kind == "email":
        return Annotated[str, Meta(max_length=320, pattern=EMAIL_PATTERN), described]
    if kind == "url":
        return Annotated[str, Meta(max_length=2048, pattern=URL_PATTERN), described]
    if kind == "select":
        if field.can_enter:
            return Annotated[str, Meta(max_length=255, examples=list(field.options)), described]
        return Annotated[Literal[tuple(field.options)], described]
    if kind == "multiselect":
        return Annotated[list[Literal[tuple(field.options)]], described]  # type: ignore[misc]
    if kind == "number":
        low = int(field.min) if field.min is not None else -(2**63)
        high = int(field.max) if field.max is not None else 2**63 - 1
        return Annotated[int, Meta(ge=low, le=high), described]
    if kind == "decimal":
        return Annotated[Decimal, described]  # msgspec has no bounds for Decimal: see _extra_problem
    if kind == "boolean":
        return Annotated[bool, described]
    if kind == "date":
        return Annotated[dt.date, described]
    if kind == "datetime":
        return Annotated[dt.datetime, Meta(tz=True), described]
    record_id = Annotated[int, Meta(ge=1, le=2**63 - 1)]
    if kind == "upload":
        return Annotated[list[record_id], Meta(max_length=100), described]
    return Annotated[record_id, described]  # user, customer, reference: a record's id


class FieldCodec:
    """Validation and conversion of one template's custom fields."""

    def __init__(self, template: ResolvedTemplate) -> None:
        self.template = template
        self.fields = {f.name: f for f in template.fields}
        self.types = {name: _value_type(f) for name, f in self.fields.items()}
        self.struct = msgspec.defstruct(
            "".join(p.capitalize() for p in template.name.split("_")) + "Fields",
            [(name, typ | None, None) for name, typ in self.types.items()],
            kw_only=True,
            forbid_unknown_fields=True,
        )

    def validate(self, values: Any, *, partial: bool) -> dict[str, Any]:
        """Python values for ``values`` (JSON data); ``Invalid`` listing every bad field.

        With ``partial`` (an update), only the given fields are checked and required
        fields may be absent, but not set to null.
        """
        if not isinstance(values, dict):
            raise Invalid("`fields` must be an object", [{"field": "fields", "message": "expected an object"}])
        errors: list[dict[str, str]] = []
        out: dict[str, Any] = {}
        # all fields in one conversion, the template's Struct (msgspec keeps what it learnt of a
        # Struct type, not of a field's Annotated type); one field at a time only when that fails,
        # to name every bad one
        try:
            together: msgspec.Struct | None = msgspec.convert(values, self.struct, strict=False)
        except msgspec.ValidationError:
            together = None
        for name, value in values.items():
            field = self.fields.get(name)
            if field is None:
                errors.append({"field": f"fields.{name}",
                               "message": f"template `{self.template.name}` has no field `{name}`"})
                continue
            if value is None or value == "" or value == []:
                if field.required:
                    errors.append({"field": f"fields.{name}", "message": "a value is required"})
                out[name] = None
                continue
            try:
                converted = (getattr(together, name) if together is not None
                             else msgspec.convert(value, self.types[name], strict=False))
            except msgspec.ValidationError as exc:
                errors.append({"field": f"fields.{name}", "message": _message(str(exc), field)})
                continue
            problem = _extra_problem(field, converted)
            if problem is None and field.extension is not None:
                converted, problem = field.extension.check(converted)
            if problem:
                errors.append({"field": f"fields.{name}", "message": problem})
                continue
            out[name] = converted
        if not partial:
            for name, field in self.fields.items():
                if name in values:
                    continue
                if field.default is not None:
                    out[name] = msgspec.convert(field.default, self.types[name], strict=False)
                elif field.required:
                    errors.append({"field": f"fields.{name}", "message": "a value is required"})
        if errors:
            raise Invalid(f"{len(errors)} field{'s' if len(errors) != 1 else ''} not valid", errors)
        return out

    def to_storage(self, name: str, value: Any) -> Any:
        """A Python value as the database driver takes it (lists travel as JSON text)."""
        if value is None:
            return None
        if self.fields[name].type in ("multiselect", "upload"):
            return json.dumps(value)
        return value

    def to_json(self, name: str, value: Any) -> Any:
        """A stored value as the API shows it (read back from either database)."""
        if value is None:
            return None
        kind = self.fields[name].type
        if kind in ("multiselect", "upload"):
            return json.loads(value) if isinstance(value, str) else value
        if kind == "decimal":
            places = self.fields[name].places or 0
            return str(Decimal(str(value)).quantize(Decimal(1).scaleb(-places)))
        if kind == "boolean":
            return bool(value)
        if kind == "date":
            return value.isoformat() if isinstance(value, dt.date) else str(value)[:10]
        if kind == "datetime":
            return to_json_time(value)
        return value


def aware(moment: dt.datetime) -> dt.datetime:
    """``moment`` with its time zone, or as UTC when it has none (naive values are UTC)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def as_utc(value: Any) -> dt.datetime:
    """A stored timestamp (datetime or ISO text, by database) as an aware UTC datetime (naive values are UTC)."""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(moment, dt.datetime)
    return aware(moment).astimezone(dt.timezone.utc)


def to_json_time(value: Any) -> str | None:
    """A timestamp as ISO 8601 text in UTC, whichever database returned it."""
    return None if value is None else as_utc(value).isoformat()


def _extra_problem(field: ResolvedField, value: Any) -> str | None:
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(t, str) and "\x00" in t for t in texts):
        return "text may not contain NUL characters"
    if field.type == "decimal":
        return decimal_problem(field, value)
    if field.type == "multiselect" and len(set(value)) != len(value):
        return "an option is chosen twice"
    return None


def _message(text: str, field: ResolvedField) -> str:
    """msgspec's message without its ``- at `$...``` suffix, with the options when they matter."""
    message = text.split(" - at `")[0]
    if field.type in ("select", "multiselect") and "Invalid enum value" in message:
        return f"{message.split('Invalid enum value ')[-1]} is not an option; options: {', '.join(field.options)}"
    if "matching regex" in message and field.pattern:
        return f"does not have the form this field asks for (the pattern {field.pattern})"
    if message.startswith("Expected `str` of length <= "):
        return f"at most {message.removeprefix('Expected `str` of length <= ')} characters"
    if message.startswith("Expected `int` >= "):
        return f"at least {message.removeprefix('Expected `int` >= ')}"
    if message.startswith("Expected `int` <= "):
        return f"at most {message.removeprefix('Expected `int` <= ')}"
    return message
