"""Running workflow scenarios against a throw-away SQLite database.

Each scenario gets a fresh database with the workspace applied, the groups' members
and the scenario's own users and customers; its clock stands still (``state.CLOCK``)
and moves only on ``wait``. A scenario stops at its first failing step or
expectation; the failure names the scenario file's line and column and shows what
was expected against what was found, one ``-``/``+`` pair per difference.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from ..automation.macros import apply_macro
from ..automation.sla import sla_status
from ..automation.worker import Worker
from ..comms.inbound import Inbound
from ..db import Database, connect
from ..diagnostics import Diagnostics, Location
from ..errors import ServiceError
from ..link.resolved import LinkedWorkspace
from ..load import Document, parse_text
from ..model.common import duration_span
from ..migrate import apply_workspace
from ..runtime import Actor, Runtime, add_user, load_actor
from ..runtime.attachments import Attachments
from ..runtime.state import CLOCK, load_order
from .model import STEP_VERBS, Expect, Scenario, Step, When

SCENARIO_FOLDER = "tests"


class Outcome(msgspec.Struct, kw_only=True):
    """How one scenario went: ``failure`` is ``None`` when it passed."""

    name: str
    location: Location
    failure: str | None = None


class ScenarioFailed(Exception):
    def __init__(self, at: Location, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def read_scenarios(root: Path, diagnostics: Diagnostics) -> list[tuple[Document, Scenario]]:
    """Every scenario under ``root/tests``; unreadable ones go to ``diagnostics`` with their location."""
    found: list[tuple[Document, Scenario]] = []
    folder = root / SCENARIO_FOLDER
    for path in sorted(folder.rglob("*.y*ml")) if folder.is_dir() else []:
        relative = path.relative_to(root).as_posix()
        for document in parse_text(path.read_text(encoding="utf-8"), relative, diagnostics):
            try:
                found.append((document, msgspec.convert(document.data, Scenario)))
            except msgspec.ValidationError as exc:
                message, _, where = str(exc).partition(" - at `$")
                diagnostics.error(document.locate(_path(where.rstrip("`"))),
                                  message.replace("Object contains unknown field", "unknown key"))
    return found


def _path(where: str) -> list[str | int]:
    """``.when[2].process`` (msgspec's error path) as ``["when", 2, "process"]``."""
    return [int(index) if index else key for index, key in re.findall(r"\[(\d+)\]|\.(\w+)", where)]


def _when_verb(item: When) -> tuple[str, Any]:
    given = [(verb, getattr(item, "return_" if verb == "return" else verb))
             for verb in (*STEP_VERBS, "wait", "expect")]
    chosen = [(verb, value) for verb, value in given if value is not None]
    if len(chosen) != 1:
        raise ValueError(f"each item of `when` needs exactly one of: {', '.join(v for v, _ in given)}")
    return chosen[0]


def _diff(label: str, expected: Any, actual: Any) -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        lines: list[str] = []
        for key, value in expected.items():
            lines += _diff(f"{label}.{key}", value, actual.get(key))
        return lines
    if expected != actual:
        return [f"  {label}:", f"    - expected {json.dumps(expected, default=str)}",
                f"    + found    {json.dumps(actual, default=str)}"]
    return []


class Run:
    """One scenario being played on its own database."""

    def __init__(self, runtime: Runtime, document: Document, started: dt.datetime, folder: Path) -> None:
        self.runtime = runtime
        self.document = document
        self.folder = folder
        """A scratch folder of the scenario (its database, stored files)."""
        self.time = started
        self.orders: dict[str, str] = {}
        """Scenario name of each order -> its number."""

    @property
    def db(self) -> Database:
        return self.runtime.db

    def number(self, name: str, at: Location) -> str:
        if name not in self.orders:
            known = ", ".join(sorted(self.orders)) or "none yet"
            raise ScenarioFailed(at, f"no order `{name}` was created before this step (created: {known})")
        return self.orders[name]

    async def actor(self, step: Step, at: Location) -> Actor:
        login = step.as_
        if login is None and step.order in self.orders:
            view = await self.view(self.orders[step.order])
            login = view["owner"] or view["created_by"]
        if login is None:
            raise ScenarioFailed(at, "say who does this: `as: LOGIN`")
        try:
            return await load_actor(self.db, self.runtime.workspace, login=login)
        except ServiceError:
            raise ScenarioFailed(at, f"no user `{login}` (add it under given.users)") from None

    async def view(self, number: str) -> dict[str, Any]:
        workspace = self.runtime.workspace
        order = await load_order(self.db, workspace.templates, workspace.queues, self.runtime.codecs, number)
        return await self.runtime.view(order)

    async def customer_id(self, name: str, at: Location) -> int:
        found = await self.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", name)
        if found is None:
            raise ScenarioFailed(at, f"no customer `{name}` (declare it, or add it under given.customers)")
        return int(found)

    async def step(self, verb: str, step: Step, at: Location) -> None:
        runtime = self.runtime
        try:
            if verb == "email":
                await self.email(step, at)
                return
            actor = await self.actor(step, at)
            if verb == "create":
                if step.order in self.orders:
                    raise ScenarioFailed(at, f"order `{step.order}` was already created")
                if step.template is None:
                    raise ScenarioFailed(at, "`create` needs `template`")
                body: dict[str, Any] = {"fields": step.fields or {}}
                for key in ("title", "priority"):
                    if getattr(step, key) is not None:
                        body[key] = getattr(step, key)
                if step.customer is not None:
                    body["customer_id"] = await self.customer_id(step.customer, at)
                view = await runtime.create(actor, step.template, body)
                self.orders[step.order] = view["number"]
            else:
                number = self.number(step.order, at)
                version = (await self.view(number))["version"]
                await self._change(verb, step, actor, number, version, at)
        except ServiceError as exc:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            text = exc.detail + (f" ({details})" if details else "")
            if step.refused is None:
                raise ScenarioFailed(at, f"`{verb}` was refused: {text}") from None
            if step.refused.lower() not in text.lower():
                raise ScenarioFailed(at, f"`{verb}` was refused, but not as expected:\n"
                                         + "\n".join(_diff("refused", step.refused, text))) from None
            return
        if step.refused is not None:
            raise ScenarioFailed(at, f"`{verb}` went through, but it should have been refused ({step.refused})")

    async def _change(self, verb: str, step: Step, actor: Actor, number: str, version: int, at: Location) -> None:
        runtime = self.runtime
        if verb in ("process", "skip"):
            if step.action is None:
                raise ScenarioFailed(at, f"`{verb}` needs `action`")
            await runtime.process(actor, number, version, step.action, skip=verb == "skip", follow_up=step.follow_up)
        elif verb == "advance":
            await runtime.advance(actor, number, version, step.to, follow_up=step.follow_up)
        elif verb == "return":
            await runtime.return_order(actor, number, version, step.to or "previous")
        elif verb == "assign":
            await runtime.assign(actor, number, version, None if step.to in (None, "nobody") else step.to)
        elif verb == "update":
            body: dict[str, Any] = {k: getattr(step, k) for k in ("title", "priority") if getattr(step, k) is not None}
            if step.fields:
                body["fields"] = step.fields
            if step.customer is not None:
                body["customer_id"] = await self.customer_id(step.customer, at)
            await runtime.update(actor, number, version, body)
        elif verb == "comment":
            await runtime.messages.comment(actor, number, step.text or "", client_viewable=step.client_viewable)
        elif verb == "cancel":
            await runtime.cancel(actor, number, version, step.reason)
        elif verb == "macro":
            if step.name is None:
                raise ScenarioFailed(at, "`macro` needs `name`")
            await apply_macro(runtime, actor, number, version, step.name)

    async def email(self, step: Step, at: Location) -> None:
        """A mail arrives through the inbound service, as the endpoint or the IMAP poller hand it over."""
        if step.from_ is None:
            raise ScenarioFailed(at, "`email` needs `from`")
        settings = self.runtime.workspace.settings.mail
        message = EmailMessage()
        message["From"] = step.from_
        message["To"] = settings.from_address if settings is not None else "desk@example.invalid"
        subject = step.subject or ""
        if step.order in self.orders:
            subject = f"Re: {subject} [{self.orders[step.order]}]"
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain="scenario.invalid")
        message["Date"] = format_datetime(self.time)
        for name, value in (step.headers or {}).items():
            message[name] = value
        message.set_content(step.body or "")
        delivered = await Inbound(self.runtime, Attachments.on_disk(self.runtime, self.folder)).receive(
            message.as_bytes(), source="scenario")
        if step.outcome is not None and delivered.outcome != step.outcome:
            raise ScenarioFailed(at, "the mail did not end as expected:\n"
                                     + "\n".join(_diff("outcome", step.outcome, delivered.outcome))
                                     + (f"\n  ({delivered.detail})" if delivered.detail else ""))
        if delivered.outcome == "created" and delivered.number is not None:
            if step.order in self.orders:
                raise ScenarioFailed(at, f"the reply made a new work order {delivered.number} instead of "
                                         f"landing on `{step.order}` ({self.orders[step.order]})")
            self.orders[step.order] = delivered.number

    async def wait(self, span: str) -> None:
        self.time += duration_span(span)
        await Worker(self.runtime, outbox=False).run_once()

    async def expect(self, expect: Expect, at: Location) -> None:
        number = self.number(expect.order, at)
        view = await self.view(number)
        lines: list[str] = []
        for key in ("step", "status", "group", "priority", "title"):
            wanted = getattr(expect, key)
            if wanted is not None:
                lines += _diff(key, wanted, view[key])
        if expect.owner is not None:
            lines += _diff("owner", expect.owner, view["owner"] or "nobody")
        if expect.fields is not None:
            lines += _diff("fields", expect.fields, view["fields"])
        if expect.actions is not None:
            lines += _diff("actions", expect.actions, {a["name"]: a["state"] for a in view["actions"]})
        if expect.rules_fired is not None:
            fired = [self._json(r["after"]).get("rule") for r in await self.db.fetch(
                "SELECT e.after FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
                "WHERE w.number = {} AND e.kind = 'rule_fired' ORDER BY e.id", number)]
            lines += _diff("rules_fired", list(expect.rules_fired), fired)
        if expect.mails is not None:
            lines += await self._mails(number, expect)
        if expect.sla is not None:
            lines += await self._sla(number, expect.sla)
        if lines:
            raise ScenarioFailed(at, f"order `{expect.order}` ({number}) is not as expected:\n" + "\n".join(lines))

    @staticmethod
    def _json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else (value or {})

    async def _mails(self, number: str, expect: Expect) -> list[str]:
        rows = await self.db.fetch("SELECT payload FROM rc_outbox WHERE kind = 'email' ORDER BY id")
        mails = [m for m in (self._json(r["payload"]) for r in rows) if m.get("order") == number]
        lines: list[str] = []
        unmatched = list(mails)
        for wanted in expect.mails or ():
            match = next((m for m in unmatched if (wanted.to is None or wanted.to in m.get("to", []))
                          and (wanted.subject is None or wanted.subject in m.get("subject", ""))
                          and (wanted.body is None or wanted.body in m.get("body", ""))), None)
            if match is None:
                lines += _diff("mails", msgspec.to_builtins(wanted),
                               [{"to": m.get("to"), "subject": m.get("subject")} for m in mails] or "no mail")
            else:
                unmatched.remove(match)
        if not expect.mails and mails:
            lines += _diff("mails", [], [{"to": m.get("to"), "subject": m.get("subject")} for m in mails])
        return lines

    async def _sla(self, number: str, wanted: dict[str, Any]) -> list[str]:
        status = await sla_status(self.runtime, number) or {"name": None}
        return _diff("sla", wanted, {key: status.get(key, "(not an SLA value)") for key in wanted})


async def _prepare(workspace: LinkedWorkspace, scenario: Scenario, url: str, at: Location) -> Database:
    await apply_workspace(workspace, url)
    db = await connect(url)
    await db.start_pool()
    for customer in scenario.given.customers:
        await db.execute("INSERT INTO rc_customer (name, label, email_domains) VALUES ({}, {}, {})",
                         customer.name, customer.label or customer.name, json.dumps(list(customer.email_domains)))
    for user in scenario.given.users:
        customer_id = None
        if user.customer is not None:
            customer_id = await db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", user.customer)
            if customer_id is None:
                raise ScenarioFailed(at, f"user {user.login}: no customer `{user.customer}`")
        try:
            await add_user(db, workspace, user.login, name=user.name, email=user.email, groups=user.groups,
                           roles=user.roles, is_staff=customer_id is None, customer_id=customer_id)
        except ServiceError as exc:
            raise ScenarioFailed(at, f"user {user.login}: {exc.detail}") from None
    # the groups' members and supervisors (after the scenario's users, which may give them an address)
    logins = {login for g in workspace.groups.values() for login in (*g.members, *([g.supervisor] if g.supervisor else []))}
    for login in sorted(logins):
        await add_user(db, workspace, login)
    return db


def _start(scenario: Scenario, at: Location) -> dt.datetime:
    if scenario.given.clock is None:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    try:
        moment = dt.datetime.fromisoformat(scenario.given.clock)
    except ValueError:
        raise ScenarioFailed(at, f"`clock` is not an ISO 8601 time: {scenario.given.clock}") from None
    if moment.tzinfo is None:
        raise ScenarioFailed(at, "`clock` needs an offset, e.g. 2026-03-02T09:00:00+01:00")
    return moment.astimezone(dt.timezone.utc)


async def run_scenario(workspace: LinkedWorkspace, document: Document, scenario: Scenario, folder: Path) -> Outcome:
    """Play one scenario on a new SQLite database in ``folder``."""
    outcome = Outcome(name=scenario.scenario, location=document.locate())
    url = f"sqlite:///{folder / 'scenario.db'}"
    run: Run | None = None
    token = None
    try:
        started = _start(scenario, document.locate(("given", "clock")))
        db = await _prepare(workspace, scenario, url, document.locate(("given",)))
        run = Run(Runtime(workspace, db), document, started, folder)
        current = run
        token = CLOCK.set(lambda: current.time)
        for index, item in enumerate(scenario.when):
            at = document.locate(("when", index))
            try:
                verb, value = _when_verb(item)
            except ValueError as exc:
                raise ScenarioFailed(at, str(exc)) from None
            if verb == "wait":
                await run.wait(value)
            elif verb == "expect":
                await run.expect(value, at)
            else:
                await run.step(verb, value, at)
        for index, expect in enumerate(scenario.then):
            await run.expect(expect, document.locate(("then", index)))
    except ScenarioFailed as failure:
        outcome.failure = f"{failure.at}: {failure.message}"
    finally:
        if token is not None:
            CLOCK.reset(token)
        if run is not None:
            await run.db.close()
    return outcome


async def run_scenarios(workspace: LinkedWorkspace, found: Sequence[tuple[Document, Scenario]]) -> list[Outcome]:
    """Play every scenario, each on its own throw-away database."""
    outcomes = []
    for document, scenario in found:
        with tempfile.TemporaryDirectory(prefix="routecard-scenario-") as folder:
            outcomes.append(await run_scenario(workspace, document, scenario, Path(folder)))
    return outcomes
