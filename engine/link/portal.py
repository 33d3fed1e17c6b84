"""Linking forms, portals and customers."""

from __future__ import annotations

from ..model import Customer, Form, FormField, Portal
from .conditions import Scope, check_condition
from .context import Entry, Linker
from .resolved import ResolvedQueue, ResolvedTemplate


def link_forms(linker: Linker, templates: dict[str, ResolvedTemplate],
               queues: dict[str, ResolvedQueue]) -> dict[str, Form]:
    out = {}
    for name, entry in linker.of("Form").items():
        form: Form = entry.definition
        ok = linker.require("Template", form.template, entry.at("template"), "template")
        template = templates.get(form.template)
        if form.queue is not None:
            ok &= linker.require("Queue", form.queue, entry.at("queue"), "queue")
            if form.queue in queues and form.template not in queues[form.queue].templates:
                linker.error(entry.at("queue"), f"queue `{form.queue}` does not serve template `{form.template}`")
                ok = False
        ok &= linker.require_all("Group", form.notify, entry, "notify", "group")
        linker.check_unique(entry, ("pages",), [p.name for p in form.pages], "page")
        asked: dict[str, tuple[int, int]] = {}
        for page_index, page in enumerate(form.pages):
            for index, item in enumerate(page.fields):
                field_name = item.field if isinstance(item, FormField) else item
                at = ("pages", page_index, "fields", index)
                if template is None:
                    continue
                if template.field(field_name) is None:
                    linker.unknown("field", field_name, [f.name for f in template.fields],
                                   entry.at(*at), "field", f"in template `{form.template}`")
                    ok = False
                elif field_name in asked:
                    first = entry.at("pages", asked[field_name][0], "fields", asked[field_name][1])
                    linker.error(entry.at(*at), f"field `{field_name}` is asked twice (first at {first})")
                    ok = False
                else:
                    asked[field_name] = (page_index, index)
        if template is not None and form.access == "public":
            for field_name, (page_index, index) in asked.items():
                field = template.field(field_name)
                if field is not None and field.type == "upload":
                    linker.error(entry.at("pages", page_index, "fields", index),
                                 f"a public form cannot ask for the upload field `{field_name}`: visitors "
                                 "without a login cannot upload files (use access: customer)")
                    ok = False
        if template is not None:
            ok &= _check_form_conditions(linker, entry, template, asked)
            for field in template.fields:
                if field.required and field.default is None and field.name not in asked:
                    linker.error(
                        entry.at("pages"),
                        f"required field `{field.name}` of template `{form.template}` is on no page, "
                        "so the form could never be submitted",
                    )
                    ok = False
        if ok:
            out[name] = form
    return out


def _check_form_conditions(linker: Linker, entry: Entry[Form], template: ResolvedTemplate,
                           asked: dict[str, tuple[int, int]]) -> bool:
    """``show_if`` and ``require_if`` may test only fields asked on the same or an earlier page."""
    form: Form = entry.definition
    ok = True
    for page_index, page in enumerate(form.pages):
        for index, item in enumerate(page.fields):
            if not isinstance(item, FormField):
                continue

            def available(name: str, page_index: int = page_index) -> str | None:
                if name not in asked:
                    return f"field `{name}` is asked on no page of form `{form.name}`, so it has no answer to test"
                if asked[name][0] > page_index:
                    later = form.pages[asked[name][0]].name
                    return (f"field `{name}` is asked only on a later page (`{later}`); a condition can test "
                            "answers from its own page and earlier ones")
                return None

            scope = Scope((template,), every=True, where=f"in template `{template.name}`",
                          what=f"form `{form.name}`", core=False, changed=False, available=available)
            for key in ("show_if", "require_if"):
                condition = getattr(item, key)
                if condition is None:
                    continue
                at = ("pages", page_index, "fields", index, key)
                if key == "show_if" and condition.field == item.field:
                    linker.error(entry.at(*at, "field"),
                                 f"`show_if` of `{item.field}` tests the field itself, so it could never be shown")
                    ok = False
                    continue
                ok &= check_condition(linker, entry, at, condition, scope)
    return ok


def link_portals(linker: Linker) -> dict[str, Portal]:
    out = {}
    for name, entry in linker.of("Portal").items():
        portal: Portal = entry.definition
        ok = True
        ok &= linker.require_all("Form", portal.forms, entry, "forms", "form")
        ok &= linker.require_all("Template", portal.templates, entry, "templates", "template")
        linker.check_unique(entry, ("visibility",), portal.visibility, "visibility")
        if ok:
            out[name] = portal
    return out


def link_customers(linker: Linker) -> dict[str, Customer]:
    out = {}
    for name, entry in linker.of("Customer").items():
        customer: Customer = entry.definition
        linker.check_unique(entry, ("projects",), [p.name for p in customer.projects], "project")
        out[name] = customer
    return out
