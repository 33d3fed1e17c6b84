"""Linking templates and their fields: shared fields merged, every option checked."""

from __future__ import annotations

import msgspec

from ..check import did_you_mean, path_text
from ..identifiers import identity_problem
from ..model import FIELD_TYPES, Field, FieldDocument, Option, Template
from .context import Entry, Linker
from .resolved import ResolvedField, ResolvedTemplate
from .values import regex_problem, value_problem

TYPE_OPTIONS = {
    "options": ("select", "multiselect"),
    "can_enter": ("select",),
    "max_length": ("input",),
    "pattern": ("input",),
    "min": ("number", "decimal"),
    "max": ("number", "decimal"),
    "digits": ("decimal",),
    "places": ("decimal",),
    "multiple": ("upload",),
    "reference": ("reference",),
}
"""Which field types each type-specific key applies to."""


def resolve_field(linker: Linker, entry: Entry[Template] | Entry[FieldDocument], field: Field,
                  path: tuple[str | int, ...]) -> ResolvedField | None:
    """Check one field definition (at ``path`` in ``entry``) and resolve it."""
    ok = True
    kind, extension = field.type, None
    if kind not in FIELD_TYPES:
        extension = linker.field_types.get(kind)
        if extension is None:
            plugin_types = f"; plugin field types: {', '.join(sorted(linker.field_types))}" if linker.field_types else ""
            hint = did_you_mean(kind, [*FIELD_TYPES, *linker.field_types])
            linker.error(entry.at(*path, "type"), f"`{path_text([*path, 'type'])}` must be one of: "
                         f"{', '.join(sorted(FIELD_TYPES))}{plugin_types}; found \"{kind}\"{hint}")
            return None
        kind = extension.base
    problem = identity_problem(field.name, column=True)
    if problem:
        linker.error(entry.at(*path, "name"), problem)
        ok = False
    if field.renamed_from is not None:  # its form is checked by the schema (an Identity)
        if field.renamed_from == field.name:
            linker.error(entry.at(*path, "renamed_from"), "`renamed_from` names the field itself")
            ok = False
    for key, types in TYPE_OPTIONS.items():
        value = getattr(field, key)
        if value not in (None, False, ()) and kind not in types:
            linker.error(
                entry.at(*path, key, key=True),
                f"`{key}` applies to {' and '.join(types)} fields, not to {field.type} field `{field.name}`",
            )
            ok = False
    options: list[str] = []
    option_labels: dict[str, dict[str, str]] = {}
    for index, option in enumerate(field.options):
        value = option.value if isinstance(option, Option) else option
        if value in options:
            linker.error(entry.at(*path, "options", index), f"the option `{value}` is listed twice")
            ok = False
            continue
        options.append(value)
        label = option.label if isinstance(option, Option) else None
        option_labels[value] = linker.labels(label, value)
    if kind in ("select", "multiselect") and not options:
        linker.error(entry.at(*path, "type"), f"{kind} field `{field.name}` needs `options`")
        ok = False
    if field.pattern is not None:
        problem = regex_problem(field.pattern)
        if problem:
            linker.error(entry.at(*path, "pattern"), problem)
            ok = False
    if field.min is not None and field.max is not None and field.min > field.max:
        linker.error(entry.at(*path, "min"), f"`min` ({field.min:g}) is larger than `max` ({field.max:g})")
        ok = False
    if kind == "decimal":
        digits = field.digits or 12
        places = field.places if field.places is not None else 2
        if places > digits:
            linker.error(entry.at(*path, "places"), f"`places` ({places}) cannot exceed `digits` ({digits})")
            ok = False
    if kind == "reference":
        if field.reference is None:
            linker.error(entry.at(*path, "type"), f"reference field `{field.name}` needs `reference: <template>`")
            ok = False
        elif not linker.require("Template", field.reference, entry.at(*path, "reference"), "template"):
            ok = False
    column_length = extension.max_length if extension is not None else None
    if column_length is not None and field.max_length is not None and field.max_length > column_length:
        linker.error(entry.at(*path, "max_length"),
                     f"`max_length` ({field.max_length}) exceeds the {field.type} column's {column_length}")
        ok = False
    if extension is not None and kind == "decimal":
        digits_places = extension.column[len("numeric("):-1].split(",")
        field = msgspec.structs.replace(field, digits=int(digits_places[0]), places=int(digits_places[1]))
    if not ok:
        return None
    resolved = ResolvedField(
        name=field.name,
        type=kind,
        label=linker.labels(field.label, field.name.replace("_", " ").capitalize()),
        location=entry.at(*path),
        help=linker.labels(field.help, "") if field.help is not None else {},
        section=field.section,
        required=field.required,
        default=field.default,
        options=tuple(options),
        option_labels=option_labels,
        can_enter=field.can_enter,
        max_length=field.max_length if kind != "input" else field.max_length or column_length or 255,
        pattern=field.pattern,
        min=field.min,
        max=field.max,
        digits=(field.digits or 12) if kind == "decimal" else None,
        places=(field.places if field.places is not None else 2) if kind == "decimal" else None,
        multiple=field.multiple,
        reference=field.reference,
        renamed_from=field.renamed_from,
        extension=extension,
    )
    if field.default is not None:
        problem = value_problem(resolved, field.default)
        if problem is None and extension is not None:
            normalized, problem = extension.check(field.default)
            resolved = msgspec.structs.replace(resolved, default=normalized)
        if problem:
            linker.error(entry.at(*path, "default"), f"the default of `{field.name}` is not valid: {problem}")
            return None
    return resolved


def link_templates(linker: Linker, queues_of: dict[str, list[str]]) -> dict[str, ResolvedTemplate]:
    """Resolve every template; ``queues_of`` maps a template to the queues serving it."""
    shared: dict[str, ResolvedField | None] = {}
    for name, entry in linker.of("Field").items():
        shared[name] = resolve_field(linker, entry, entry.definition, ())
    out: dict[str, ResolvedTemplate] = {}
    for name, entry in linker.of("Template").items():
        template: Template = entry.definition
        ok = True
        fields: list[ResolvedField] = []
        seen: dict[str, int] = {}
        for index, item in enumerate(template.fields):
            if isinstance(item, str):
                if item not in linker.of("Field"):
                    linker.unknown("Field", item, linker.of("Field"), entry.at("fields", index), "shared field")
                    ok = False
                    continue
                resolved = shared[item]
            else:
                resolved = resolve_field(linker, entry, item, ("fields", index))
            if resolved is None:
                ok = False
                continue
            if resolved.name in seen:
                linker.error(
                    entry.at("fields", index),
                    f"template `{name}` has two fields named `{resolved.name}` "
                    f"(first at {entry.at('fields', seen[resolved.name])})",
                )
                ok = False
                continue
            seen[resolved.name] = index
            fields.append(resolved)
        renamed = {f.renamed_from: f.name for f in fields if f.renamed_from}
        for index, field in enumerate(fields):
            if field.renamed_from and field.renamed_from in seen:
                linker.error(
                    field.location,
                    f"`{field.name}` is renamed from `{field.renamed_from}`, but that field still exists",
                )
                ok = False
        for index, purged in enumerate(template.purge):
            if purged in seen or purged in renamed:
                linker.error(
                    entry.at("purge", index),
                    f"`{purged}` is still a field of `{name}`; only removed fields can be purged",
                )
                ok = False
        for key in ("team",):
            group = getattr(template, key)
            if group is not None and not linker.require("Group", group, entry.at(key), "group"):
                ok = False
        for index, group in enumerate(template.range):
            if not linker.require("Group", group, entry.at("range", index), "group"):
                ok = False
        if template.end_template is not None and not linker.require(
            "Template", template.end_template, entry.at("end_template"), "template"
        ):
            ok = False
        if template.end_template is not None and template.end_action != "new_work_order":
            linker.warning(entry.at("end_template"), "`end_template` is used only with end_action: new_work_order")
        queues = tuple(queues_of.get(name, ()))
        if not queues:
            linker.error(entry.at("name"), f"no queue serves template `{name}`; list it in a Queue's `templates`")
            ok = False
        if not ok:
            continue
        out[name] = ResolvedTemplate(
            name=name,
            label=linker.labels(template.label, name.replace("_", " ").capitalize()),
            location=entry.at("name"),
            team=template.team,
            range=template.range,
            initial_owner=template.initial_owner,
            assignment=template.assignment,
            edit_limit=template.edit_limit,
            transfer_retains_agent=template.transfer_retains_agent,
            end_action=template.end_action,
            end_template=template.end_template or name,
            default_cc=template.default_cc,
            prefix=template.numbering.prefix,
            digits=template.numbering.digits,
            start=template.numbering.start,
            fields=tuple(fields),
            purge=template.purge,
            queues=queues,
        )
    _check_prefixes(linker, out)
    return out


def _check_prefixes(linker: Linker, templates: dict[str, ResolvedTemplate]) -> None:
    """Two templates' numbers must never be the same: no template may number with another's
    prefix, nor with another's followed by digits only (``A`` and ``A1``: ``A10005`` is both
    ``A1``'s fifth and ``A``'s 10,005th). Each template counts on its own sequence."""
    ordered = sorted(templates.values(), key=lambda t: (len(t.prefix), t.location.path, t.location.line,
                                                        t.location.column))
    for index, template in enumerate(ordered):
        for other in ordered[:index]:
            rest = template.prefix[len(other.prefix):]
            if template.prefix.startswith(other.prefix) and (rest == "" or rest.isdigit()):
                entry = linker.of("Template")[template.name]
                given = ("numbering", "prefix") in entry.document.values
                where = entry.at("numbering", "prefix") if given else template.location
                if not template.prefix:
                    clash = f"no prefix, as template `{other.name}` does"
                elif rest:
                    clash = f"prefix `{template.prefix}`, template `{other.name}`'s `{other.prefix}` and digits"
                else:
                    clash = f"the same prefix `{template.prefix}` as template `{other.name}`"
                linker.error(where, f"template `{template.name}` numbers its work orders with {clash}: their "
                             f"numbers would be the same; give each template a prefix of its own (`numbering: "
                             f"{{prefix: ...}}`)")
                break
