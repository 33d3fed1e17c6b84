"""Automation rules at run time: triggers, conditions, order and stop, audit, failures, cascades, jobs."""
# ruff: noqa: F811
# (the fixtures imported from runtime_helpers are test parameters of the same name)

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import msgspec

from engine.automation import rules as rules_module
from engine.automation.jobs import JobWorker
from engine.automation.replay import replay_rules, report
from engine.automation.rules import MAX_DEPTH
from engine.automation.timed import next_time, schedule_rules
from engine.cli import main
from engine.comms.inbound import Inbound
from engine.runtime.attachments import Attachments
from engine.runtime.state import load_order, replay
from engine.storage import DiskStorage
from tests.helpers_workspace import diagnostics_of, write_workspace
from tests.runtime_helpers import EXAMPLES, Env, dump, make_env, tmp_env  # noqa: F401 - fixtures

TEAM = """\
    kind: Group
    name: desk
    supervisor: sue
    members: [sue, max]
    ---
    kind: Group
    name: back
    supervisor: bob
    members: [bob, bea]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition, order.cancel, order.assign, comment.private,
                  comment.public]
    groups: [desk, back]
    ---
    kind: Template
    name: ticket
    label: Ticket
    numbering: {prefix: T-}
    range: [desk, back]
    fields:
      - {name: kind, type: select, options: [bug, feature, question]}
      - {name: amount, type: decimal, digits: 10, places: 2}
      - {name: contact, type: email}
      - {name: level, type: number}
      - {name: note, type: input}
    ---
    kind: Queue
    name: tickets
    templates: [ticket]
    steps:
      - name: intake
        group: desk
        actions: [{name: check}]
      - name: work
        group: back
        actions: [{name: fix}]
    """

RULES = """\
    kind: Rule
    name: big_amount
    on: [created]
    when: {field: amount, gt: 1000}
    do:
      - set_priority: high
    order: 10
    ---
    kind: Rule
    name: bug_reported
    on: [{event: field_changed, field: kind}]
    when: {field: kind, equals: bug}
    do:
      - set_field: {field: level, value: 3}
    ---
    kind: Rule
    name: into_work
    on: [{event: step_entered, step: work}]
    do:
      - comment: {text: "Now in work: {{ number }} ({{ kind }})"}
      - email:
          to: [customer]
          subject: "{{ number }} is being worked on"
          body: "Hello, we started on {{ number }}."
    ---
    kind: Rule
    name: checked
    on: [action_processed]
    when: {field: step, changed: true}
    do:
      - set_field: {field: note, value: checked}
    ---
    kind: Rule
    name: given_to_bea
    on: [assigned]
    when: {field: owner, equals: bea}
    do:
      - set_status: waiting
    ---
    kind: Rule
    name: reopen_on_comment
    on: [comment_added]
    when: {field: status, equals: waiting}
    do:
      - set_status: open
    ---
    kind: Rule
    name: first_question
    on: [created]
    when: {field: kind, equals: question}
    do:
      - set_field: {field: note, value: first}
    order: 1
    stop: true
    ---
    kind: Rule
    name: second_question
    on: [created]
    when: {field: kind, equals: question}
    do:
      - set_field: {field: note, value: second}
    order: 2
    ---
    kind: Rule
    name: ghost_owner
    on: [created]
    when: {field: kind, equals: feature}
    do:
      - set_priority: urgent
      - assign: {user: ghost}
    order: 50
    ---
    kind: Rule
    name: later
    on: [{event: created, after: 2h}]
    when: {field: note, equals: remind}
    do:
      - set_priority: low
    ---
    kind: Rule
    name: hourly
    on: [{event: schedule, schedule: every 1h}]
    when: {field: level, gte: 7}
    do:
      - set_priority: urgent
    ---
    kind: Rule
    name: switched_off
    enabled: false
    on: [created]
    do:
      - set_priority: urgent
    """


async def _env(tmp_env: Any, rules: str = RULES) -> Env:
    env: Env = await tmp_env({"team.yaml": TEAM, "rules.yaml": rules}, extra_users=())
    for login in ("sue", "max", "bob", "bea"):
        await env.user(login, roles=("agent",))
    return env


async def _events(env: Env, number: str) -> list[dict[str, Any]]:
    return await env.rt.events(await env.actor("sue"), number)


def _line(text: str, needle: str) -> int:
    """The line (from 1) of the document holding ``needle`` in the dedented ``text`` (its `kind:` line)."""
    lines = [line[4:] if line.startswith("    ") else line for line in text.splitlines()]
    index = next(i for i, line in enumerate(lines) if line.strip() == needle)
    while not lines[index].startswith("kind:"):
        index -= 1
    return index + 1


async def _consistent(env: Env, number: str) -> None:
    """The order as stored is what its audit trail replays to, and its version is the last event's."""
    events = await _events(env, number)
    state = await env.state(number)
    replayed = replay(events)
    for key in ("priority", "status", "step", "owner_id", "group_name"):
        assert replayed[key] == state[key], key
    assert replayed["fields"] == state["fields"]
    version = await env.db.fetch_value("SELECT version FROM rc_work_order WHERE number = {}", number)
    assert version == max(e["version"] for e in events)


async def test_created_fires_with_its_name_and_location_in_the_audit(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await env.rt.create(await env.actor("max"), "ticket", {"fields": {"amount": "1500"}})
    assert view["priority"] == "high" and view["version"] == 2
    events = await _events(env, view["number"])
    fired = [e for e in events if e["kind"] == "rule_fired"]
    line = _line(RULES, "name: big_amount")
    assert [e["after"] for e in fired] == [{"rule": "big_amount", "at": f"rules.yaml:{line}:1", "trigger": "created"}]
    changed = [e for e in events if e["kind"] == "updated"]
    assert changed[0]["after"] == {"priority": "high"}
    assert changed[0]["source"] == f"rule big_amount (rules.yaml:{line}:1)"
    small = await env.rt.create(await env.actor("max"), "ticket", {"fields": {"amount": "999.99"}})
    assert small["priority"] == "normal" and small["version"] == 1
    assert all(e["kind"] != "rule_fired" for e in await _events(env, small["number"]))


async def test_field_changed_fires_on_the_new_value_only(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"fields": {"kind": "bug"}})
    assert view["fields"]["level"] is None  # created is not field_changed
    view = await env.rt.update(max_, view["number"], view["version"], {"fields": {"kind": "feature"}})
    assert view["fields"]["level"] is None
    view = await env.rt.update(max_, view["number"], view["version"], {"fields": {"kind": "bug"}})
    assert view["fields"]["level"] == 3
    view = await env.rt.update(max_, view["number"], view["version"], {"fields": {"level": 1}})
    view = await env.rt.update(max_, view["number"], view["version"], {"title": "unrelated"})
    assert view["fields"]["level"] == 1  # the kind did not change again
    await _consistent(env, view["number"])


async def test_action_processed_and_step_entered(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"fields": {"contact": "cus@example.org", "kind": "bug"}})
    view = await env.rt.process(max_, view["number"], view["version"], "check")
    assert view["step"] == "work"
    assert view["fields"]["note"] == "checked"
    thread = await env.rt.messages.thread(max_, view["number"])
    assert [m["body"] for m in thread] == [f"Now in work: {view['number']} (bug)"]
    outbox = await env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")
    mails = [json.loads(r["payload"]) for r in outbox]
    sent = [m for m in mails if m["subject"] == f"{view['number']} is being worked on"]
    assert [m["to"] for m in sent] == [["cus@example.org"]]
    assert sent[0]["body"] == f"Hello, we started on {view['number']}."
    kinds = [e["kind"] for e in await _events(env, view["number"])]
    assert kinds.count("rule_fired") == 2
    await _consistent(env, view["number"])


async def test_assigned_fires(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    sue = await env.actor("sue")
    view = await env.rt.create(sue, "ticket", {"fields": {}})
    view = await env.rt.assign(sue, view["number"], view["version"], "max")
    assert view["status"] == "open"
    view = await env.rt.process(await env.actor("max"), view["number"], view["version"], "check")
    bob = await env.actor("bob")
    view = await env.rt.assign(bob, view["number"], view["version"], "bea")
    assert view["owner"] == "bea" and view["status"] == "waiting"
    await _consistent(env, view["number"])
    # a comment someone writes is comment_added
    await env.rt.messages.comment(await env.actor("bea"), view["number"], "I am on it")
    assert (await env.state(view["number"]))["status"] == "open"
    fired = [e["after"] for e in await _events(env, view["number"]) if e["kind"] == "rule_fired"]
    assert fired[-1]["rule"] == "reopen_on_comment" and fired[-1]["trigger"] == "comment_added"
    await _consistent(env, view["number"])


async def test_order_and_stop(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await env.rt.create(await env.actor("max"), "ticket", {"fields": {"kind": "question"}})
    assert view["fields"]["note"] == "first"
    fired = [e["after"]["rule"] for e in await _events(env, view["number"]) if e["kind"] == "rule_fired"]
    assert fired == ["first_question"]
    # without stop, the later rule runs after it and wins
    relaxed = RULES.replace("    stop: true\n", "")
    other = await _env(tmp_env, relaxed)
    view = await other.rt.create(await other.actor("max"), "ticket", {"fields": {"kind": "question"}})
    assert view["fields"]["note"] == "second"
    fired = [e["after"]["rule"] for e in await _events(other, view["number"]) if e["kind"] == "rule_fired"]
    assert fired == ["first_question", "second_question"]


async def test_disabled_rule_never_runs(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await env.rt.create(await env.actor("max"), "ticket", {"fields": {}})
    assert view["priority"] == "normal"
    assert "switched_off" not in env.rt.rules.index.by_name


async def test_a_failing_rule_is_rolled_back_and_recorded_and_the_change_kept(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    view = await env.rt.create(await env.actor("max"), "ticket", {"fields": {"kind": "feature", "amount": "5000"}})
    number = view["number"]
    assert view["priority"] == "high"  # big_amount fired; ghost_owner's set_priority was undone with it
    events = await _events(env, number)
    failed = [e for e in events if e["kind"] == "rule_failed"]
    assert len(failed) == 1 and failed[0]["after"]["rule"] == "ghost_owner"
    assert "no active staff user ghost" in failed[0]["after"]["error"]
    assert all(e["after"].get("rule") != "ghost_owner" for e in events if e["kind"] == "rule_fired")
    assert await env.db.fetch_value("SELECT priority FROM rc_work_order WHERE number = {}", number) == "high"
    await _consistent(env, number)


PING_PONG = """\
    kind: Rule
    name: ping
    enabled: false
    on: [{event: field_changed, field: note}]
    when: {field: note, equals: ping}
    do:
      - set_field: {field: note, value: pong}
    ---
    kind: Rule
    name: pong
    enabled: false
    on: [{event: field_changed, field: note}]
    when: {field: note, equals: pong}
    do:
      - set_field: {field: note, value: ping}
    """


async def test_two_rule_cycle_is_caught_by_check_with_locations(tmp_path: Path) -> None:
    files = {"team.yaml": TEAM, "rules.yaml": PING_PONG.replace("    enabled: false\n", "")}
    found = diagnostics_of(tmp_path, files)
    cycle = [d for d in found if "cycle" in d]
    assert len(cycle) == 1, found
    assert cycle[0].startswith("rules.yaml:2:7: error: rules trigger each other in a cycle: `ping` -> `pong` -> `ping`")
    assert diagnostics_of(tmp_path / "ok", {"team.yaml": TEAM, "rules.yaml": PING_PONG}) == []


async def test_runtime_cascade_stops_at_the_limit_and_leaves_the_order_consistent(tmp_env: Any) -> None:
    env = await _env(tmp_env, PING_PONG)
    # a cycle check cannot see (as through a plugin): switch the rules on behind the linker's back
    workspace = env.workspace
    rules = {name: msgspec.structs.replace(rule, enabled=True) for name, rule in workspace.rules.items()}
    env.rt.reload(msgspec.structs.replace(workspace, rules=rules))
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"fields": {}})
    view = await env.rt.update(max_, view["number"], view["version"], {"fields": {"note": "ping"}})
    events = await _events(env, view["number"])
    fired = [e for e in events if e["kind"] == "rule_fired"]
    assert len(fired) == MAX_DEPTH
    assert [e["after"]["rule"] for e in fired] == ["ping", "pong", "ping", "pong", "ping"][:MAX_DEPTH]
    stopped = [e for e in events if e["kind"] == "rule_cascade_stopped"]
    assert len(stopped) == 1 and stopped[0]["after"]["depth"] == MAX_DEPTH
    assert view["fields"]["note"] == ("pong" if MAX_DEPTH % 2 else "ping")
    assert view["version"] == 2 + MAX_DEPTH  # created, updated, then one version per firing
    await _consistent(env, view["number"])


async def test_firing_count_limit(tmp_env: Any, monkeypatch: Any) -> None:
    env = await _env(tmp_env, PING_PONG)
    rules = {name: msgspec.structs.replace(rule, enabled=True) for name, rule in env.workspace.rules.items()}
    env.rt.reload(msgspec.structs.replace(env.workspace, rules=rules))
    monkeypatch.setattr(rules_module, "MAX_FIRINGS", 2)
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"fields": {}})
    view = await env.rt.update(max_, view["number"], view["version"], {"fields": {"note": "ping"}})
    events = await _events(env, view["number"])
    assert len([e for e in events if e["kind"] == "rule_fired"]) == 2
    assert [e["after"]["fired"] for e in events if e["kind"] == "rule_cascade_stopped"] == [2]
    await _consistent(env, view["number"])


async def test_delayed_trigger_fires_later_if_the_condition_still_holds(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    max_ = await env.actor("max")
    kept = await env.rt.create(max_, "ticket", {"fields": {"note": "remind"}})
    dropped = await env.rt.create(max_, "ticket", {"fields": {"note": "remind"}})
    jobs = await env.db.fetch("SELECT kind, run_at FROM rc_job ORDER BY id")
    assert [j["kind"] for j in jobs] == ["rule_delayed", "rule_delayed"]
    assert (await env.state(kept["number"]))["priority"] == "normal"
    dropped = await env.rt.update(max_, dropped["number"], dropped["version"], {"fields": {"note": "never mind"}})
    soon = JobWorker(env.rt, clock=lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    assert (await soon.run_once()).done == 0
    later = JobWorker(env.rt, clock=lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=3))
    assert (await later.run_once()).done == 2
    assert (await env.state(kept["number"]))["priority"] == "low"
    assert (await env.state(dropped["number"]))["priority"] == "normal"
    assert (await later.run_once()).done == 0  # once
    await _consistent(env, kept["number"])


async def test_schedule_fires_once_per_time_on_matching_open_orders(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    max_ = await env.actor("max")
    high = await env.rt.create(max_, "ticket", {"fields": {"level": 9}})
    low = await env.rt.create(max_, "ticket", {"fields": {"level": 1}})
    moment = dt.datetime.now(dt.timezone.utc)
    for _ in range(3):  # several workers ticking: one job per time
        await schedule_rules(env.rt, moment)
    jobs = await env.db.fetch("SELECT kind, run_at FROM rc_job WHERE kind = 'rule_schedule'")
    assert len(jobs) == 1
    worker = JobWorker(env.rt, clock=lambda: moment + dt.timedelta(hours=1, seconds=1))
    assert (await worker.run_once()).done == 1
    assert (await env.state(high["number"]))["priority"] == "urgent"
    assert (await env.state(low["number"]))["priority"] == "normal"


def test_next_time_of_schedules() -> None:
    utc = dt.timezone.utc
    monday = dt.datetime(2026, 3, 23, 10, 0, tzinfo=utc)  # a Monday
    assert next_time("every day 08:00", monday, "UTC") == dt.datetime(2026, 3, 24, 8, 0, tzinfo=utc)
    assert next_time("every day 11:00", monday, "UTC") == dt.datetime(2026, 3, 23, 11, 0, tzinfo=utc)
    assert next_time("every friday 09:30", monday, "UTC") == dt.datetime(2026, 3, 27, 9, 30, tzinfo=utc)
    saturday = dt.datetime(2026, 3, 28, 10, 0, tzinfo=utc)
    assert next_time("every weekday 08:00", saturday, "UTC") == dt.datetime(2026, 3, 30, 8, 0, tzinfo=utc)
    assert next_time("every 2h", monday, "UTC") == dt.datetime(2026, 3, 23, 12, 0, tzinfo=utc)
    # 08:00 in Berlin: 07:00 UTC in winter, 06:00 UTC after the change on 29 March 2026
    berlin = "Europe/Berlin"
    assert next_time("every day 08:00", dt.datetime(2026, 3, 28, 12, tzinfo=utc), berlin) == \
        dt.datetime(2026, 3, 29, 6, 0, tzinfo=utc)
    assert next_time("every day 08:00", dt.datetime(2026, 3, 27, 12, tzinfo=utc), berlin) == \
        dt.datetime(2026, 3, 28, 7, 0, tzinfo=utc)


async def test_rules_index_touches_only_candidates(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    index = env.rt.rules.index
    order = await load_order(env.db, env.workspace.templates, env.workspace.queues, env.rt.codecs,
                             (await env.rt.create(await env.actor("max"), "ticket", {"fields": {}}))["number"])
    names = [c.compiled.name for c in index.candidates([("field_changed", "kind")], order)]
    assert names == ["bug_reported"]
    names = [c.compiled.name for c in index.candidates([("created", None)], order)]
    assert names == ["first_question", "second_question", "big_amount", "ghost_owner", "later"]
    assert [c.compiled.name for c in index.candidates([("comment_added", None)], order)] == ["reopen_on_comment"]
    assert [c.compiled.name for c in index.candidates([("step_entered", "intake")], order)] == []
    assert [c.compiled.name for c in index.candidates([("step_entered", "work")], order)] == ["into_work"]


# -- the agency example: mail routed by its rules, confirmed once ----------------------------------


def _agency(tmp_path: Path) -> Path:
    """The contract-agency example, with incoming mail switched on if the example does not already."""
    root = tmp_path / "agency"
    shutil.copytree(EXAMPLES / "contract-agency", root)
    settings = root / "routecard.yaml"
    text = settings.read_text(encoding="utf-8")
    if "  inbound:" not in text:
        settings.write_text(text + "  inbound:\n    template: client_request\n", encoding="utf-8")
    return root


def _mail(sender: str, subject: str, **headers: str) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = "desk@fernwood.example"
    message["Subject"] = subject
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("Hello,\nplease have a look.\n")
    return message.as_bytes()


async def test_agency_routes_customer_mail_and_confirms_it_once(database_url: str, tmp_path: Path) -> None:
    root = _agency(tmp_path)
    env = await make_env(root, database_url)
    try:
        inbound = Inbound(env.rt, Attachments(env.rt, DiskStorage(root / "files")))
        first = await inbound.receive(_mail("Jo Doe <jo@acme-logistics.example>", "Checkout broken"), source="test")
        number = str(first.number)
        order = await env.db.fetch(
            "SELECT w.group_name, w.priority, c.name AS customer, p.name AS project FROM rc_work_order w "
            "LEFT JOIN rc_customer c ON c.id = w.customer_id LEFT JOIN rc_project p ON p.id = w.project_id "
            "WHERE w.number = {}", number)
        assert order[0]["customer"] == "acme_logistics" and order[0]["project"] == "web_shop"
        assert order[0]["group_name"] == "development"
        sam = await env.actor("sam.okafor")
        view = await env.rt.get(sam, number)
        await env.rt.assign(sam, number, view["version"], "hannah.lee")
        await inbound.receive(_mail("jo@acme-logistics.example", f"Re: [{number}] Checkout broken"), source="test")
        assert (await env.rt.get(sam, number))["owner"] == "hannah.lee"  # routing again keeps her
        mails = [json.loads(r["payload"]) for r in await env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")]
        confirmations = [m for m in mails if m["subject"] == f"[{number}] We have your request"]
        assert [m["to"] for m in confirmations] == [["jo@acme-logistics.example"]]
        fired = [e["after"]["rule"] for e in await env.rt.events(await env.actor("rachel.morgan"), number)
                 if e["kind"] == "rule_fired"]
        assert fired.count("confirm_new_mail") == 1 and fired[:2] == ["confirm_new_mail", "acme_web_shop"]
        # an auto-reply from a machine starts a request, but nothing answers it
        auto = await inbound.receive(_mail("robot@bloomandco.example", "Out of office", Auto_Submitted="auto-replied"),
                                     source="test")
        mails = [json.loads(r["payload"]) for r in await env.db.fetch("SELECT payload FROM rc_outbox ORDER BY id")]
        assert not [m for m in mails if m["subject"] == f"[{auto.number}] We have your request"]
    finally:
        await env.db.close()


# -- replay: what the rules would have done, nothing written ---------------------------------------


async def test_replay_reports_what_rules_would_have_done_and_writes_nothing(tmp_env: Any) -> None:
    env = await _env(tmp_env)
    max_ = await env.actor("max")
    big = await env.rt.create(max_, "ticket", {"fields": {"amount": "5000"}})
    small = await env.rt.create(max_, "ticket", {"fields": {"amount": "5", "kind": "question"}})
    await env.rt.update(max_, small["number"], small["version"], {"fields": {"kind": "bug"}})
    before = await dump(env.db)
    yesterday = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    found = await replay_rules(env.workspace, env.db, yesterday)
    assert await dump(env.db) == before
    by_rule: dict[str, list[str]] = {}
    for item in found:
        by_rule.setdefault(item.rule, []).append(item.number)
    # the disabled rule is tried too; first_question stops second_question; ghost_owner did not match
    assert by_rule["big_amount"] == [big["number"]]
    assert by_rule["switched_off"] == [big["number"]]  # on the small one, first_question stopped the rest
    assert by_rule["first_question"] == [small["number"]] and "second_question" not in by_rule
    assert by_rule["bug_reported"] == [small["number"]]
    assert "ghost_owner" not in by_rule
    text = report(found, env.workspace)
    line = _line(RULES, "name: big_amount")
    assert f"rule big_amount (rules.yaml:{line}:1): would have fired 1 time on 1 work order" in text
    assert f"  {big['number']} at " in text and "on created: set priority to high" in text
    assert "rule switched_off" in text and "[disabled]" in text
    assert await replay_rules(env.workspace, env.db, dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)) == []


def test_replay_command(tmp_path: Path, capsys: Any) -> None:
    root = write_workspace(tmp_path / "ws", {"team.yaml": TEAM, "rules.yaml": RULES})
    url = f"sqlite:///{tmp_path / 'ws.db'}"

    async def prepare() -> None:
        env = await make_env(root, url)
        try:
            await env.user("max", roles=("agent",))
            await env.rt.create(await env.actor("max"), "ticket", {"fields": {"amount": "5000"}})
        finally:
            await env.db.close()

    asyncio.run(prepare())
    assert main(["rules", "replay", str(root), "--since", "2000-01-01", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "rule big_amount (rules.yaml:" in out and "T-" in out and "set priority to high" in out
    assert main(["rules", "replay", str(root), "--since", "yesterday", "--db", url]) == 2
    assert "--since: expected a date" in capsys.readouterr().err


TEXTS = """\
    kind: Rule
    name: echo_title
    on: [created]
    when: {field: note, equals: echo}
    do:
      - comment: {text: "Title: {{ title }}"}
    """


async def test_rule_texts_are_sandboxed_and_data_is_never_template_code(tmp_env: Any) -> None:
    """What people type is a value, never template code; templates reaching into internals are refused by
    `routecard check` already (tests/test_link_templates.py), and the sandbox stays as a second wall."""
    env = await _env(tmp_env, TEXTS)
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"title": "{{ 7*7 }}", "fields": {"note": "echo"}})
    assert [m["body"] for m in await env.rt.messages.thread(max_, view["number"])] == ["Title: {{ 7*7 }}"]


MORE = {"tasks.yaml": """\
    kind: Template
    name: task
    label: Task
    numbering: {prefix: K-}
    fields:
      - {name: note, type: input}
    ---
    kind: Queue
    name: tasks
    templates: [task]
    steps:
      - {name: todo, group: back}
    ---
    kind: Macro
    name: tidy
    actions:
      - set_priority: low
      - set_field: {field: level, value: 0}
    """, "rules.yaml": """\
    kind: Rule
    name: route_it
    on: [created]
    templates: [ticket]
    when: {field: note, equals: route}
    do:
      - route: {step: work}
      - assign: {group: back, method: round_robin}
    ---
    kind: Rule
    name: spawn
    on: [created]
    templates: [ticket]
    when: {field: note, equals: spawn}
    do:
      - create_work_order: {template: task, fields: {note: child}}
    ---
    kind: Rule
    name: macro_rule
    on: [created]
    templates: [ticket]
    when: {field: note, equals: macro}
    do:
      - apply_macro: tidy
    ---
    kind: Rule
    name: plugin_rule
    on: [created]
    templates: [ticket]
    when: {field: note, equals: plugin}
    do:
      - set_priority: urgent
      - call: {action: nothing.here}
    ---
    kind: Rule
    name: cancel_rule
    on: [created]
    templates: [ticket]
    when: {field: note, equals: cancel}
    do:
      - set_priority: high
      - set_status: cancelled
      - comment: {text: Cancelled by the rules}
    """}


async def test_route_assign_create_macro_call_and_status_actions(tmp_env: Any) -> None:
    env: Env = await tmp_env({"team.yaml": TEAM, **MORE})
    for login in ("sue", "max", "bob", "bea"):
        await env.user(login, roles=("agent",))
    max_ = await env.actor("max")
    view = await env.rt.create(max_, "ticket", {"fields": {"note": "route"}})
    assert (view["step"], view["group"]) == ("work", "back") and view["owner"] in ("bob", "bea")
    assert [a["name"] for a in view["actions"]] == ["fix"]
    await _consistent(env, view["number"])

    view = await env.rt.create(max_, "ticket", {"fields": {"note": "spawn"}})
    created = [e["after"] for e in await _events(env, view["number"]) if e["kind"] == "work_order_created"]
    assert [c["template"] for c in created] == ["task"]
    child = await env.rt.get(await env.actor("bob"), created[0]["created"])
    assert child["fields"]["note"] == "child" and child["template"] == "task"

    view = await env.rt.create(max_, "ticket", {"fields": {"note": "macro", "level": 5}})
    assert view["priority"] == "low" and view["fields"]["level"] == 0
    sources = {e["source"] for e in await _events(env, view["number"]) if e["kind"] == "updated"}
    assert len(sources) == 1 and next(iter(sources)).endswith("> macro tidy")

    view = await env.rt.create(max_, "ticket", {"fields": {"note": "plugin"}})
    assert view["priority"] == "normal"
    failed = [e["after"] for e in await _events(env, view["number"]) if e["kind"] == "rule_failed"]
    assert [f["rule"] for f in failed] == ["plugin_rule"] and "nothing.here" in failed[0]["error"]

    view = await env.rt.create(max_, "ticket", {"fields": {"note": "cancel"}})
    assert view["status"] == "cancelled" and view["cancelled_at"] and view["priority"] == "high"
    assert [m["body"] for m in await env.rt.messages.thread(max_, view["number"])] == ["Cancelled by the rules"]
    await _consistent(env, view["number"])


def test_schedules_that_never_fire_are_located_errors(tmp_path: Path) -> None:
    rules = """\
        kind: Rule
        name: never
        on: [{event: schedule, schedule: every 0h}]
        do: [{set_priority: high}]
        ---
        kind: Rule
        name: no_such_time
        on: [{event: schedule, schedule: every day 25:10}]
        do: [{set_priority: high}]
        """
    found = diagnostics_of(tmp_path, {"team.yaml": TEAM, "rules.yaml": rules})
    assert found == [
        "rules.yaml:3:34: error: `every 0h` never fires: give an interval of at least 1h",
        "rules.yaml:8:34: error: `25:10` is not a time of day (00:00 to 23:59)",
    ]
