"""Custom fields: the typed columns of a work-order template."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from .common import Definition, Identity, Label, describe

CoreFieldType = Literal[
    "input",
    "text",
    "select",
    "multiselect",
    "number",
    "decimal",
    "boolean",
    "date",
    "datetime",
    "upload",
    "email",
    "url",
    "user",
    "customer",
    "reference",
]
"""The field types built into Routecard."""

FIELD_TYPES: tuple[str, ...] = CoreFieldType.__args__  # type: ignore[attr-defined]

FieldType = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*$", max_length=40, examples=list(FIELD_TYPES))]
"""The type of a custom field: a core type, or one a plugin adds (checked when linking)."""


class Option(Definition, frozen=True, kw_only=True):
    """One choice of a select or multiselect field."""

    value: Annotated[
        str, describe("The value stored in the database; keep it stable.", min_length=1, max_length=100)
    ]
    label: Annotated[Label | None, describe("Text shown for this option; defaults to the value.")] = None


class Field(Definition, frozen=True, kw_only=True):
    """A custom field: becomes a real, typed column of the template's table."""

    name: Annotated[
        Identity,
        describe(
            "The field's identity and column name: lowercase letters, digits and underscores, "
            "starting with a letter. Renaming it later needs renamed_from."
        ),
    ]
    type: Annotated[
        FieldType,
        describe(
            "input (one line), text (several lines), select, multiselect, number (whole), "
            "decimal, boolean, date, datetime, upload, email, url, user, customer, "
            "reference (another work order), or a field type an installed plugin adds (e.g. iban)."
        ),
    ]
    label: Annotated[Label | None, describe("The field's label; defaults to its name.")] = None
    help: Annotated[Label | None, describe("Help text shown beside the input.")] = None
    section: Annotated[
        Annotated[str, Meta(max_length=80)] | None, describe("The section of the work-order page the field appears in.")
] = None
    required: Annotated[bool, describe("Whether a value must be given.")] = False
    default: Annotated[Any, describe("The value a new work order starts with; must suit the type.")] = None
    options: Annotated[
        tuple[Annotated[str, Meta(min_length=1, max_length=100)] | Option, ...],
        describe("The choices of a select or multiselect field: values, or value and label."),
    ] = ()
    can_enter: Annotated[
        bool, describe("select only: the user may also type a value that is not among the options.")
    ] = False
    max_length: Annotated[
        Annotated[int, Meta(ge=1, le=10000)] | None, describe("input only: the longest value accepted (default 255).")
] = None
    pattern: Annotated[
        Annotated[str, Meta(max_length=200)] | None, describe("input only: a regular expression the whole value must match.")
] = None
    min: Annotated[float | None, describe("number and decimal: the smallest value accepted.")] = None
    max: Annotated[float | None, describe("number and decimal: the largest value accepted.")] = None
    digits: Annotated[
        Annotated[int, Meta(ge=1, le=38)] | None, describe("decimal only: total number of digits kept (default 12).")
] = None
    places: Annotated[
        Annotated[int, Meta(ge=0, le=12)] | None, describe("decimal only: digits after the decimal point (default 2).")
] = None
    multiple: Annotated[bool, describe("upload only: several files may be attached.")] = False
    reference: Annotated[
        Identity | None, describe("reference only: the template of the work orders this field points to.")
    ] = None
    renamed_from: Annotated[
        Identity | None,
        describe("The field's previous name: its column is renamed and keeps its data."),
    ] = None


class FieldDocument(Field, frozen=True, kw_only=True, tag_field="kind", tag="Field"):
    """A shared field, defined once and used by name in several templates."""
