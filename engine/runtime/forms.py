"""Order forms: drafts filled page by page, a summary of complete pages, submission.

A draft (``rc_form_draft``) holds the answers given so far, as JSON, and the pages
the person has saved. A page is saved only after every page before it (no skipping
ahead by URL), with only that page's fields (no fields of another page or form),
each value checked by the template's field types. Values may be missing while the
draft is open; the summary marks each page complete or not, and ``submit`` refuses
until every page is. Submitting creates the work order through ``Runtime.create``
(with the person's rights: a customer user's order is their customer's), ties the
draft's uploads to it, and writes two mails into the outbox in the same transaction:
a receipt to the person and "a new order has arrived" to the form's ``notify`` groups.

Who may open a draft: its user (a customer user, or staff for ``access: staff``
forms), or, for a draft started without a login on a ``public`` form, whoever holds
its key (the web layer keeps the keys a browser started in that browser's cookie).
Anybody else gets ``NotFound``, as for a draft that does not exist.

"Send order link" (``form_links``): staff mail the person a single-use link that
resumes the draft.
"""

from __future__ import annotations

import functools
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import msgspec

from ..automation.conditions import compile_condition, to_python
from ..comms.mail import check_address, compile_text
from ..errors import Invalid, NotFound, Refused
from ..labels import label_map, pick_label
from ..link.resolved import ResolvedField, ResolvedTemplate
from ..model import Condition, Form, FormField
from .actors import SYSTEM, Actor, group_members
from .portal import portal_of
from .state import insert_event, now

if TYPE_CHECKING:
    from .service import Runtime

MAX_REMARK = 5000

RECEIPT = compile_text("""\
Thank you, we have received your order {{ number }} ({{ form }}).

You can follow it here:
{{ link }}
""")
ARRIVED = compile_text("""\
A new order has arrived: {{ number }} ({{ form }}) from {{ who }}.
{%- if remark %}

Remark:
{{ remark }}
{%- endif %}

{{ link }}
""")


class PageState(msgspec.Struct, kw_only=True):
    """One page of a draft as the summary shows it."""

    name: str
    label: str
    complete: bool
    visited: bool
    missing: list[str]
    """Field paths (``fields.x``) still to answer on this page."""


class Question(msgspec.Struct, kw_only=True):
    """A field as one page asks it, given the answers so far."""

    field: ResolvedField
    shown: bool
    required: bool



class Forms:
    """The order-form services of one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    @property
    def language(self) -> str:
        """The workspace's language: mails and titles are written in it."""
        return self.runtime.workspace.settings.language

    # -- definitions ---------------------------------------------------------------------------

    def form(self, actor: Actor | None, name: str) -> Form:
        """The form ``name`` if ``actor`` (``None``: a visitor) may fill it in; else ``NotFound``."""
        form = self.runtime.workspace.forms.get(name)
        if form is None or not self._may_use(actor, form):
            raise NotFound(f"no form {name}")
        return form

    def offered(self, actor: Actor | None) -> list[Form]:
        """The forms ``actor`` may fill in, in the portal's order (then by name)."""
        portal = portal_of(self.runtime.workspace)
        names = list(portal.forms) if portal else []
        names += sorted(n for n in self.runtime.workspace.forms if n not in names)
        return [f for f in (self.runtime.workspace.forms[n] for n in names) if self._may_use(actor, f)]

    def _may_use(self, actor: Actor | None, form: Form) -> bool:
        """Public forms are for anyone, visitors too unless the portal requires a login; the others as declared."""
        if actor is None:
            portal = portal_of(self.runtime.workspace)
            return form.access == "public" and (portal is None or portal.login == "optional")
        if form.access == "public":
            return True
        if form.access == "customer":
            return not actor.is_staff and actor.customer_id is not None
        return actor.is_staff and actor.can("order.create")

    def template(self, form: Form) -> ResolvedTemplate:
        return self.runtime.workspace.templates[form.template]

    def questions(self, form: Form, page_index: int, answers: Mapping[str, Any],
                  facts: Mapping[str, Any] | None = None) -> list[Question]:
        """The fields of page ``page_index`` with whether each is shown and required given ``answers``
        (``facts``: the answers as conditions read them, when the caller has them already)."""
        template = self.template(form)
        types = tuple((f.name, f.type) for f in template.fields)
        if facts is None:
            facts = self.facts(form, answers)
        out = []
        for item in form.pages[page_index].fields:
            name = item.field if isinstance(item, FormField) else item
            field = template.field(name)
            assert field is not None  # the linker checked every field
            shown, required = True, field.required
            if isinstance(item, FormField):
                shown = _compiled(item.show_if, types)(facts)
                if item.required is not None:
                    required = item.required
                if item.require_if is not None:
                    required = _compiled(item.require_if, types)(facts)
            out.append(Question(field=field, shown=shown, required=required and shown))
        return out

    def facts(self, form: Form, answers: Mapping[str, Any]) -> dict[str, Any]:
        """The answers (JSON) as the conditions read them (Python values of the fields' types)."""
        return {f.name: to_python(f.type, answers.get(f.name)) for f in self.template(form).fields}

    def pages(self, form: Form, answers: Mapping[str, Any], visited: Sequence[str]) -> list[PageState]:
        """Every page: complete when visited and every shown, required field has an answer."""
        facts = self.facts(form, answers)
        out = []
        for index, page in enumerate(form.pages):
            missing = [f"fields.{q.field.name}" for q in self.questions(form, index, answers, facts)
                       if q.required and answers.get(q.field.name) in (None, "", [])]
            seen = page.name in visited
            out.append(PageState(name=page.name, label=text_of(page.label, page.name, self.language),
                                 complete=seen and not missing, visited=seen, missing=missing))
        return out

    # -- drafts ----------------------------------------------------------------------------

    async def start(self, actor: Actor | None, form_name: str, *, project_id: int | None = None) -> dict[str, Any]:
        """A new draft of ``form_name`` for ``actor`` (``None``: a visitor of a public form)."""
        form = self.form(actor, form_name)
        db = self.runtime.db
        key = secrets.token_urlsafe(24)
        moment = now()
        user = actor.id if actor is not None else None
        template = self.template(form)
        asked = asked_fields(form)
        defaults = {f.name: f.default for f in template.fields if f.name in asked and f.default is not None}
        customer = actor.customer_id if actor is not None and not actor.is_staff else None
        async with db.transaction():
            await db.execute(
                "INSERT INTO rc_form_draft (key, form, user_id, customer_id, project_id, answers, visited, version, "
                "created_at, updated_at) VALUES ({}, {}, {}, {}, {}, {}, {}, 1, {}, {})",
                key, form.name, user, customer, None, json.dumps(defaults), "[]", moment, moment)
            if project_id is not None:
                await self._check_project(actor, form, project_id)
                await db.execute("UPDATE rc_form_draft SET project_id = {} WHERE key = {}", project_id, key)
            row = (await db.fetch("SELECT * FROM rc_form_draft WHERE key = {}", key))[0]
        return self._view(row)

    async def get(self, actor: Actor | None, key: Any, *, held: Sequence[str] = ()) -> dict[str, Any]:
        """The draft ``key`` as its owner sees it; ``held`` are the keys a visitor's browser holds."""
        row = await self._row(actor, key, held)
        return self._view(row)

    async def mine(self, actor: Actor) -> list[dict[str, Any]]:
        """``actor``'s drafts not yet submitted, newest first."""
        rows = await self.runtime.db.fetch(
            "SELECT * FROM rc_form_draft WHERE user_id = {} AND submitted_at IS NULL ORDER BY updated_at DESC, id DESC "
            "LIMIT 100", actor.id)
        return [self._view(r) for r in rows if r["form"] in self.runtime.workspace.forms]

    async def _row(self, actor: Actor | None, key: Any, held: Sequence[str] = ()) -> dict[str, Any]:
        if not isinstance(key, str) or not 10 <= len(key) <= 100:
            raise NotFound("no such draft")
        rows = await self.runtime.db.fetch("SELECT * FROM rc_form_draft WHERE key = {}", key)
        if not rows:
            raise NotFound("no such draft")
        row = rows[0]
        if row["user_id"] is not None:
            mine = actor is not None and row["user_id"] == actor.id
        else:
            mine = key in held
        form = self.runtime.workspace.forms.get(row["form"])
        if not mine or form is None or not self._may_use(actor, form):
            raise NotFound("no such draft")
        return dict(row)

    async def _open(self, actor: Actor | None, key: Any, held: Sequence[str], version: Any) -> dict[str, Any]:
        """The draft to change (inside the caller's transaction): not sent yet, and at ``version``."""
        row = await self._row(actor, key, held)
        if row["submitted_at"] is not None:
            raise Refused("this form was already sent")
        if version != row["version"]:
            raise _stale(row["version"])
        return row

    async def _bump(self, row: Mapping[str, Any], sql: str, *args: Any) -> None:
        """``UPDATE rc_form_draft SET <sql>, version = version + 1`` if nobody changed the draft since ``row``."""
        changed = await self.runtime.db.fetch(
            f"UPDATE rc_form_draft SET {sql}, version = version + 1 WHERE id = {{}} AND version = {{}} RETURNING id",
            *args, row["id"], row["version"])
        if not changed:
            raise _stale(row["version"] + 1)

    def _view(self, row: Mapping[str, Any]) -> dict[str, Any]:
        form = self.runtime.workspace.forms[row["form"]]
        answers = loaded(row["answers"], {})
        visited = loaded(row["visited"], [])
        pages = self.pages(form, answers, visited)
        return {
            "key": row["key"], "form": form.name, "version": int(row["version"]), "answers": answers,
            "visited": visited, "remark": row["remark"] or "", "project_id": row["project_id"],
            "pages": [msgspec.to_builtins(p) for p in pages],
            "complete": all(p.complete for p in pages),
            "submitted": row["submitted_at"] is not None,
        }

    async def save_page(self, actor: Actor | None, key: Any, page_name: Any, values: Any, version: Any, *,
                        held: Sequence[str] = (), files: Mapping[str, list[int] | None] | None = None) -> dict[str, Any]:
        """Save the answers of one page (a JSON object of field -> value); the draft as it is now.

        ``files``: upload fields' new lists of attachment ids, stored by the caller in
        this transaction (never taken from ``values``).
        """
        if not isinstance(values, dict):
            raise Invalid("the answers must be an object", [{"field": "fields", "message": "expected an object"}])
        db = self.runtime.db
        async with db.transaction():
            row = await self._open(actor, key, held, version)
            form = self.runtime.workspace.forms[row["form"]]
            index = next((i for i, p in enumerate(form.pages) if p.name == page_name), None)
            if index is None:
                raise Invalid(f"form `{form.name}` has no page `{page_name}`",
                              [{"field": "page", "message": f"one of: {', '.join(p.name for p in form.pages)}"}])
            visited: list[str] = loaded(row["visited"], [])
            earlier = [p.name for p in form.pages[:index] if p.name not in visited]
            if earlier:
                raise Invalid("pages come in order", [{"field": "page",
                                                       "message": f"fill in page `{earlier[0]}` first"}])
            answers: dict[str, Any] = loaded(row["answers"], {})
            template = self.template(form)
            on_page = {q.field.name for q in self.questions(form, index, answers)}
            uploads = {n for n in on_page if template.field(n) and template.field(n).type == "upload"}  # type: ignore[union-attr]
            errors = [{"field": f"fields.{name}", "message": f"page `{page_name}` does not ask for `{name}`"}
                      for name in values if name not in on_page or name in uploads]
            if errors:
                raise Invalid("answers for fields this page does not ask", errors)
            codec = self.runtime.codecs[template.name]
            given = {n: v for n, v in values.items() if v not in (None, "", [])}
            checked = codec.validate(given, partial=True)
            for name in on_page - uploads:
                answers[name] = codec.to_json(name, codec.to_storage(name, checked.get(name))) \
                    if name in checked else None
            for name, ids in (files or {}).items():
                if name in uploads:
                    answers[name] = list(ids or []) or None
            # answers a later condition hides are kept in the draft but not sent
            if page_name not in visited:
                visited.append(page_name)
            await self._bump(row, "answers = {}, visited = {}, updated_at = {}", json.dumps(answers),
                             json.dumps(visited), now())
            row = {**row, "answers": answers, "visited": visited, "version": row["version"] + 1}
        return self._view(row)

    async def _check_project(self, actor: Actor | None, form: Form, project_id: Any) -> None:
        if not form.choose_project:
            raise Invalid("this form does not ask for a project", [{"field": "project_id", "message": "not asked"}])
        customer = actor.customer_id if actor is not None else None
        found = await self.runtime.db.fetch(
            "SELECT id FROM rc_project WHERE id = {} AND customer_id = {} AND archived_at IS NULL",
            project_id if isinstance(project_id, int) else -1, customer if customer is not None else -1)
        if not found:
            raise Invalid("no such project", [{"field": "project_id", "message": "choose one of your projects"}])

    async def projects(self, actor: Actor) -> list[dict[str, Any]]:
        """The projects a customer user may file an order under (their customer's)."""
        if actor.customer_id is None:
            return []
        rows = await self.runtime.db.fetch(
            "SELECT id, name, label FROM rc_project WHERE customer_id = {} AND archived_at IS NULL ORDER BY label, name",
            actor.customer_id)
        return [{"id": int(r["id"]), "name": r["name"], "label": r["label"] or r["name"]} for r in rows]

    async def submit(self, actor: Actor | None, key: Any, version: Any, *, remark: Any = "",
                     project_id: Any = None, email: Any = None, held: Sequence[str] = ()) -> dict[str, Any]:
        """Send the draft: the new work order (as ``Runtime.get`` shows it to the sender)."""
        errors: list[dict[str, str]] = []
        if not isinstance(remark, str) or len(remark) > MAX_REMARK:
            errors.append({"field": "remark", "message": f"at most {MAX_REMARK} characters"})
        address = check_address(email, "email", errors) if email not in (None, "") else None
        if errors:
            raise Invalid("the form cannot be sent", errors)
        runtime = self.runtime
        db = runtime.db
        async with db.transaction():
            row = await self._open(actor, key, held, version)
            form = runtime.workspace.forms[row["form"]]
            answers = loaded(row["answers"], {})
            pages = self.pages(form, answers, loaded(row["visited"], []))
            open_pages = [p for p in pages if not p.complete]
            if open_pages:
                raise Invalid(f"{len(open_pages)} page{'s are' if len(open_pages) != 1 else ' is'} not complete", [
                    {"field": f"pages.{p.name}" if not p.missing else f"pages.{p.name}.{p.missing[0]}",
                     "message": "not filled in yet" if not p.visited else "a value is required"}
                    for p in open_pages])
            if actor is None and form.access == "public" and address is None:
                raise Invalid("the form cannot be sent", [{"field": "email", "message": "your e-mail address, "
                                                           "so we can answer"}])
            fields = {}
            for index, _page in enumerate(form.pages):
                for q in self.questions(form, index, answers):
                    if q.shown and answers.get(q.field.name) not in (None, "", []):
                        fields[q.field.name] = answers[q.field.name]
            data: dict[str, Any] = {"fields": fields, "title": _title(form, self.template(form), fields, self.language)}
            if form.queue:
                data["queue"] = form.queue
            chosen = project_id if project_id not in (None, "") else row["project_id"]
            if chosen is not None:
                await self._check_project(actor, form, chosen)
                data["project_id"] = chosen
            creator = actor if actor is not None else SYSTEM
            order = await runtime.create(creator, form.template, data)
            order_id = int(await db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", order["number"]))
            template = self.template(form)
            for field in template.fields:
                if field.type == "upload":
                    for attachment in fields.get(field.name) or []:
                        await db.execute("UPDATE rc_attachment SET work_order_id = {} WHERE id = {} AND "
                                         "work_order_id IS NULL AND uploaded_by = {}", order_id, attachment, creator.id)
            if address is not None:
                await db.execute("UPDATE rc_work_order SET sender = {} WHERE id = {}", address, order_id)
            note: dict[str, Any] = {"form": form.name, "draft": row["key"]}
            if isinstance(remark, str) and remark.strip():  # the customer's own words: no mail of its own
                note["message"] = int(await db.fetch_value(
                    "INSERT INTO rc_message (work_order_id, kind, author_id, body, client_viewable, created_at) "
                    "VALUES ({}, 'comment', {}, {}, {}, {}) RETURNING id", order_id, creator.id, remark.strip(), True,
                    now()))
            await insert_event(db, order_id, creator.id, "form_submitted", {}, note, None,
                               runtime.workspace.fingerprint, order["version"], now())
            await self._bump(row, "submitted_at = {}, work_order_id = {}, remark = {}", now(), order_id,
                             remark or None)
            await self._mail_submitted(actor, form, order["number"], remark, address)
        return order

    # -- mail ---------------------------------------------------------------------------------

    async def _mail_submitted(self, actor: Actor | None, form: Form, number: str, remark: Any,
                              address: str | None) -> None:
        runtime = self.runtime
        settings = runtime.workspace.settings
        base = settings.base_url.rstrip("/")
        label = text_of(form.label, form.name, self.language)
        own = address or await self._email_of(actor)
        if own:
            await self.enqueue(f"form:{number}:receipt", own, f"[{number}] {label}: received",
                               RECEIPT.render(number=number, form=label, link=f"{base}/portal/orders/{number}"),
                               number)
        staff: set[str] = set()
        for group in form.notify:
            members = await group_members(runtime.db, runtime.workspace, group)
            if members:
                marks = ", ".join("{}" for _ in members)
                for r in await runtime.db.fetch(
                        f"SELECT email FROM rc_user WHERE id IN ({marks}) AND email IS NOT NULL", *sorted(members)):
                    staff.add(str(r["email"]))
        who = (actor.name or actor.login) if actor is not None else (address or "a visitor")
        for mail in sorted(staff):
            await self.enqueue(f"form:{number}:arrived", mail, f"[{number}] New order: {label}",
                               ARRIVED.render(number=number, form=label, who=who,
                                              remark=remark if isinstance(remark, str) else "",
                                              link=f"{base}/orders/{number}"), number)

    async def _email_of(self, actor: Actor | None) -> str | None:
        if actor is None or actor.id is None:
            return None
        value = await self.runtime.db.fetch_value("SELECT email FROM rc_user WHERE id = {}", actor.id)
        return str(value) if value else None

    async def enqueue(self, key: str, address: str, subject: str, body: str, number: str | None) -> None:
        """One automatic mail into the outbox (inside the caller's transaction), once per ``key`` and address."""
        await self.runtime.messages.notices.automatic_mail(key, address, subject, body, number)


def _stale(version: int) -> Invalid:
    return Invalid("the draft changed in another window; reload it",
                   [{"field": "version", "message": f"the draft is at version {version}"}])


def text_of(label: str | Mapping[str, str] | None, fallback: str, language: str = "") -> str:
    """A definition's label in ``language`` (mails and titles: the workspace's), else ``fallback``."""
    labels = label_map(label, language)
    return pick_label(labels, language, language, fallback)


def asked_fields(form: Form) -> set[str]:
    """The names of the template fields a form asks for, on any page."""
    return {item if isinstance(item, str) else item.field for page in form.pages for item in page.fields}


@functools.lru_cache(maxsize=4096)
def _compiled(condition: Condition | None, types: tuple[tuple[str, str], ...]) -> Callable[[Mapping[str, Any]], bool]:
    """A form condition compiled once (conditions and field types are immutable; a changed definition is
    another key)."""
    return compile_condition(condition, dict(types))


def loaded(value: Any, empty: Any) -> Any:
    """A JSON column's value as stored (text or decoded, by database); ``empty`` for NULL."""
    if value is None:
        return empty
    return json.loads(value) if isinstance(value, str) else value


def _title(form: Form, template: ResolvedTemplate, fields: Mapping[str, Any], language: str) -> str:
    """The new order's title: the form's label and the first short text answer."""
    label = text_of(form.label, form.name, language)
    for field in template.fields:
        value = fields.get(field.name)
        if field.type == "input" and isinstance(value, str) and value.strip():
            return f"{label}: {value.strip()}"[:300]
    return label[:300]
