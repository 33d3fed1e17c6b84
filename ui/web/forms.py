"""Forms compiled from a template's fields: what each control shows, and what a posted form means.

``parse_form`` is pure: the strings of a posted form become the JSON-like values the
runtime expects (ints, decimal strings, booleans, lists, ISO dates; empty is ``None``),
and whatever cannot be read becomes an error located at its input (``fields.x``), never
an exception. Values that name a record (a user's login, a customer, a work-order
number) stay ``Record`` until ``resolve`` looks their ids up. ``form_values`` goes the
other way: a work order's values as its inputs show them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.db import Database
from engine.errors import NotFound
from engine.link.resolved import ResolvedField
from engine.model.common import PRIORITIES
from engine.runtime import Actor, Runtime
from engine.runtime.lookups import (
    customer_id_named,
    customer_labels,
    customer_names,
    logins,
    order_id,
    order_numbers,
    staff_user_id,
)

from .times import local_input

CORE_FIELDS = ("title", "priority", "requested_at", "planned_at", "customer_id")
"""The work order's own inputs (named as the runtime names them)."""
RECORD_TYPES = ("user", "customer", "reference")
MAX_INPUT = 100_000
MAX_FILES = 20
"""Files one form may carry, over all its upload fields."""
REMOVE_SUFFIX = ".remove"
"""An upload field's ``fields.x.remove`` inputs name the files (ids) to take out of it."""
FIELD_PREFIX = "fields."
WHOLE = re.compile(r"^[+-]?[0-9]+$")

FormLists = Mapping[str, Sequence[Any]]
"""A posted form: input name -> every value sent (text, or an upload)."""


@dataclass(frozen=True)
class Record:
    """A record named the way a person types it, waiting for ``resolve`` to find its id."""

    kind: str
    text: str
    template: str | None = None
    """For ``reference``: the template the work order must be of."""


@dataclass(frozen=True)
class SentFile:
    """A file sent in an upload field: the upload object (``.file``, ``.filename``) and its input's name."""

    field: str
    upload: Any


@dataclass
class Parsed:
    """A posted form read: ``data`` for the runtime (``fields`` inside), ``errors`` by input name.

    Files are not values yet: ``files`` lists them and ``removed`` the ids to take out,
    per upload field (by field name); ``upload_values`` makes the fields' new lists once
    the files are stored.
    """

    data: dict[str, Any] = field(default_factory=dict)
    errors: list[dict[str, str]] = field(default_factory=list)
    files: list[SentFile] = field(default_factory=list)
    removed: dict[str, set[int]] = field(default_factory=dict)

    @property
    def fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = self.data.setdefault("fields", {})
        return fields


def input_name(item: ResolvedField) -> str:
    """The name of a custom field's input, which is also the runtime's path for its errors."""
    return FIELD_PREFIX + item.name


def is_upload(value: Any) -> bool:
    """Whether a posted value is a file (anything but text)."""
    return not isinstance(value, str)


def sent_files(values: Sequence[Any]) -> list[Any]:
    """The files among an input's posted values (an empty file input sends text, or a file without a name)."""
    return [v for v in values if is_upload(v) and bool(getattr(v, "filename", None))]


def _upload_problem(item: ResolvedField, files: Sequence[Any]) -> str | None:
    if len(files) > 1 and not item.multiple:
        return "choose one file for this field"
    return None


def upload_values(parsed: Parsed, fields: Sequence[ResolvedField], current: Mapping[str, Any],
                  new_ids: Mapping[str, Sequence[int]]) -> dict[str, list[int] | None]:
    """Each changed upload field's new list: the ``current`` ids, less the removed ones, plus ``new_ids``.

    A field of one file (not ``multiple``) keeps only the newest file.
    """
    out: dict[str, list[int] | None] = {}
    for item in fields:
        if item.type != "upload" or (item.name not in parsed.removed and item.name not in new_ids):
            continue
        kept = [i for i in (current.get(item.name) or []) if i not in parsed.removed.get(item.name, set())]
        added = list(new_ids.get(item.name, []))
        ids = (added[-1:] if added else kept[-1:]) if not item.multiple else [*kept, *added]
        out[item.name] = ids or None
    return out


def form_lists(items: Iterable[tuple[str, Any]]) -> dict[str, list[Any]]:
    """A posted form's ``(name, value)`` pairs grouped by name."""
    out: dict[str, list[Any]] = {}
    for name, value in items:
        out.setdefault(name, []).append(value)
    return out


# -- reading a posted form -------------------------------------------------------------------


def _text(values: Sequence[Any]) -> str:
    texts = [v for v in values if isinstance(v, str)]
    return texts[-1] if texts else ""


def _moment(text: str, zone: dt.tzinfo) -> str:
    """``YYYY-MM-DDTHH:MM`` (a ``datetime-local`` value, in ``zone``) as ISO 8601 with its offset."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


def parse_value(item: ResolvedField, values: Sequence[Any], zone: dt.tzinfo) -> tuple[Any, str | None]:
    """One custom field's posted values as the runtime takes them, or an error message."""
    kind = item.type
    if kind == "upload":  # the files themselves are read by ``parse_form``
        return None, _upload_problem(item, sent_files(values))
    if kind == "multiselect":
        return [v for v in values if isinstance(v, str) and v] or None, None
    if kind == "boolean":
        return any(v in ("true", "on", "1") for v in values if isinstance(v, str)), None
    text = _text(values)
    if len(text) > MAX_INPUT:
        return None, f"at most {MAX_INPUT} characters"
    text = text.rstrip() if kind == "text" else text.strip()
    if not text:
        return None, None
    if kind == "number":
        plain = text.replace(" ", "")
        if not WHOLE.match(plain) or len(plain) > 20:
            return None, f"“{text[:40]}” is not a whole number"
        return int(plain), None
    if kind == "decimal":
        plain = text.replace(" ", "").replace("\u00a0", "")
        if "," in plain and "." not in plain:
            plain = plain.replace(",", ".")
        try:
            number = Decimal(plain)
        except InvalidOperation:
            return None, f"“{text[:40]}” is not a number"
        if not number.is_finite():
            return None, f"“{text[:40]}” is not a number"
        return str(number), None
    if kind == "date":
        try:
            return dt.date.fromisoformat(text).isoformat(), None
        except ValueError:
            return None, f"“{text[:40]}” is not a date (YYYY-MM-DD)"
    if kind == "datetime":
        try:
            return _moment(text, zone), None
        except ValueError:
            return None, f"“{text[:40]}” is not a date and time (YYYY-MM-DD HH:MM)"
    if kind in RECORD_TYPES:
        return Record(kind, text, item.reference), None
    return text, None


def _parse_core(name: str, values: Sequence[Any], zone: dt.tzinfo) -> tuple[Any, str | None]:
    text = _text(values).strip()
    if name == "title":
        return text, None
    if name == "priority":
        return (text, None) if text in PRIORITIES else (None, f"one of: {', '.join(PRIORITIES)}")
    if name in ("requested_at", "planned_at"):
        if not text:
            return None, None
        try:
            return _moment(text, zone), None
        except ValueError:
            return None, f"“{text[:40]}” is not a date and time (YYYY-MM-DD HH:MM)"
    if name == "customer_id":
        return (Record("customer", text), None) if text else (None, None)
    raise KeyError(name)


def parse_form(form: FormLists, fields: Sequence[ResolvedField], core: Sequence[str] = (), *,
               zone: dt.tzinfo = dt.timezone.utc) -> Parsed:
    """The inputs of ``core`` and ``fields`` that ``form`` carries, read; inputs not sent stay out.

    A checkbox or a set of checkboxes sends nothing when none is ticked, so their
    controls carry a hidden empty input: a field whose name was sent at all is read.
    """
    parsed = Parsed()
    for name in core:
        if name in form:
            value, problem = _parse_core(name, form[name], zone)
            if problem:
                parsed.errors.append({"field": name, "message": problem})
            else:
                parsed.data[name] = value
    for item in fields:
        name = input_name(item)
        if item.type == "upload":
            _parse_upload(parsed, item, form)
            continue
        if name not in form:
            continue
        value, problem = parse_value(item, form[name], zone)
        if problem:
            parsed.errors.append({"field": name, "message": problem})
        else:
            parsed.fields[name.removeprefix(FIELD_PREFIX)] = value
    if len(parsed.files) > MAX_FILES:
        parsed.errors.append({"field": input_name(next(f for f in fields if f.name == parsed.files[-1].field)),
                              "message": f"at most {MAX_FILES} files at once"})
    return parsed


def _parse_upload(parsed: Parsed, item: ResolvedField, form: FormLists) -> None:
    """An upload field's new files and the ids ticked for removal."""
    name = input_name(item)
    files = sent_files(form.get(name, ()))
    problem = _upload_problem(item, files)
    if problem:
        parsed.errors.append({"field": name, "message": problem})
        return
    parsed.files += [SentFile(item.name, f) for f in files]
    removed = {int(v) for v in form.get(name + REMOVE_SUFFIX, ()) if isinstance(v, str) and v.isdigit() and len(v) < 19}
    if removed:
        parsed.removed[item.name] = removed


async def _record_id(runtime: Runtime, actor: Actor, record: Record) -> tuple[int | None, str]:
    db = runtime.db
    if record.kind == "user":
        return await staff_user_id(db, record.text), f"no user with the login “{record.text[:60]}”"
    if record.kind == "customer":
        return await customer_id_named(db, record.text), f"no customer “{record.text[:60]}”; choose one from the list"
    missing = f"no work order {record.text[:60]}"
    try:
        await runtime.get(actor, record.text)  # a work order the actor may not see is as good as none
    except NotFound:
        return None, missing
    found = await order_id(db, record.text)
    if found is None:
        return None, missing
    if record.template and found[1] != record.template:
        label = runtime.workspace.templates[record.template].label if record.template in runtime.workspace.templates else {}
        return None, f"{record.text[:60]} is not a {next(iter(label.values()), record.template)} work order"
    return found[0], missing


async def resolve(runtime: Runtime, actor: Actor, parsed: Parsed) -> None:
    """Replace every ``Record`` in ``parsed`` by its id; a record not found becomes an error."""
    targets: list[tuple[dict[str, Any], str, str]] = [(parsed.data, k, k) for k in CORE_FIELDS]
    targets += [(parsed.fields, k, FIELD_PREFIX + k) for k in list(parsed.data.get("fields", {}))]
    for holder, key, name in targets:
        record = holder.get(key)
        if not isinstance(record, Record):
            continue
        found, problem = await _record_id(runtime, actor, record)
        if found is None:
            del holder[key]
            parsed.errors.append({"field": name, "message": problem})
        else:
            holder[key] = found


# -- showing values ----------------------------------------------------------------------------


@dataclass
class Names:
    """Records kept by id, named: user id -> login, customer id -> name, work-order id -> number."""

    user: dict[int, str] = field(default_factory=dict)
    customer: dict[int, str] = field(default_factory=dict)
    reference: dict[int, str] = field(default_factory=dict)
    customer_label: dict[int, str] = field(default_factory=dict)

    def of(self, kind: str, value: Any) -> str:
        table: dict[int, str] = getattr(self, kind)
        if isinstance(value, int) and not isinstance(value, bool):
            return table.get(value, f"#{value}")
        return "" if value is None else str(value)


async def names_for(db: Database, fields: Sequence[ResolvedField], values: Iterable[Mapping[str, Any]],
                    *, customer_ids: Iterable[Any] = (), user_ids: Iterable[Any] = ()) -> Names:
    """The names of every record ``values`` (custom fields by name, several sets) and the ids given point to."""
    wanted: dict[str, set[int]] = {kind: set() for kind in RECORD_TYPES}
    kinds = {f.name: f.type for f in fields if f.type in RECORD_TYPES}
    for mapping in values:
        for name, value in mapping.items():
            if name in kinds and isinstance(value, int) and not isinstance(value, bool):
                wanted[kinds[name]].add(value)
    wanted["customer"].update(i for i in customer_ids if isinstance(i, int) and not isinstance(i, bool))
    wanted["user"].update(i for i in user_ids if isinstance(i, int) and not isinstance(i, bool))
    return Names(user=await logins(db, wanted["user"]), customer=await customer_names(db, wanted["customer"]),
                 reference=await order_numbers(db, wanted["reference"]),
                 customer_label=await customer_labels(db, wanted["customer"]))


def input_value(item: ResolvedField, value: Any, names: Names, zone: dt.tzinfo) -> Any:
    """What the input of ``item`` shows for a stored (JSON) value."""
    if value is None:
        return [] if item.type == "multiselect" else ("" if item.type != "boolean" else False)
    if item.type == "datetime":
        return local_input(value, zone)
    if item.type in RECORD_TYPES:
        return names.of(item.type, value)
    if item.type in ("multiselect", "boolean", "upload"):
        return value
    return str(value)


def form_values(fields: Sequence[ResolvedField], values: Mapping[str, Any], names: Names,
                zone: dt.tzinfo) -> dict[str, Any]:
    """Every custom field's input value (by input name) for stored ``values``."""
    return {input_name(f): input_value(f, values.get(f.name), names, zone) for f in fields}


def entered_values(form: FormLists, fields: Sequence[ResolvedField], core: Sequence[str] = ()) -> dict[str, Any]:
    """The inputs as the person filled them in, to show again with the errors."""
    out: dict[str, Any] = {}
    for name in core:
        if name in form:
            out[name] = _text(form[name])
    for item in fields:
        name = input_name(item)
        if name not in form:
            continue
        values = form[name]
        if item.type == "multiselect":
            out[name] = [v for v in values if isinstance(v, str) and v]
        elif item.type == "boolean":
            out[name] = any(v in ("true", "on", "1") for v in values if isinstance(v, str))
        elif item.type != "upload":
            out[name] = _text(values)
    return out


def decimal_pattern(item: ResolvedField) -> str:
    """An HTML ``pattern`` for a decimal field's digits and places (``,`` or ``.`` as the point)."""
    places = item.places if item.places is not None else 2
    whole = max((item.digits or 12) - places, 1)
    sign = "" if item.min is not None and item.min >= 0 else "-?"
    if places == 0:
        return f"{sign}[0-9]{{1,{whole}}}"
    return f"{sign}[0-9]{{0,{whole}}}([.,][0-9]{{0,{places}}})?"


def sections(fields: Sequence[ResolvedField]) -> list[tuple[str | None, list[ResolvedField]]]:
    """The fields grouped by section, in the order sections first appear; unsectioned ones first."""
    groups: dict[str | None, list[ResolvedField]] = {}
    if any(f.section is None for f in fields):
        groups[None] = []
    for item in fields:
        groups.setdefault(item.section, []).append(item)
    return list(groups.items())
