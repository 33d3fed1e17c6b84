"""The invariants bench/fault_harness.py checks from the database after the run.

Each check returns a ``Check``: its name, how many items it looked at, and the violations
found (at most a few shown). The database is read directly (``engine.db``), never through
the API, so a check cannot be fooled by the code it checks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from engine.db import Database
from engine.link.resolved import LinkedWorkspace
from engine.runtime import Runtime, replay
from engine.runtime.state import load_order

from .fault_load import Ledger


@dataclass
class Check:
    name: str
    items: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.violations

    def line(self) -> str:
        verdict = "held" if self.held else f"VIOLATED ({len(self.violations)})"
        shown = "".join(f"\n      - {v}" for v in self.violations[:5])
        return f"  {verdict:<16} {self.name} ({self.items:,} checked){shown}"


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _money(value: Any) -> str | None:
    return None if value is None else f"{Decimal(str(value)):.2f}"


async def acknowledged_creates(db: Database, ledger: Ledger) -> Check:
    """Every create a client was told about exists once, with its values; a retried key gave one order."""
    check = Check("every acknowledged create is stored once, with its values (idempotency keys hold)")
    rows = await db.fetch("SELECT w.number, w.title, t.summary, t.contact, t.tier FROM rc_work_order w "
                          "LEFT JOIN tpl_ticket t ON t.work_order_id = w.id WHERE w.title LIKE 'order key-%'")
    by_title: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_title[str(row["title"])].append(row)
    for key, record in ledger.creates.items():
        check.items += 1
        found = by_title.get(record["title"], [])
        if len(set(record["numbers"])) != 1:
            check.violations.append(f"{key}: the same key answered with {sorted(set(record['numbers']))}")
        if len(found) != 1:
            check.violations.append(f"{key}: {len(found)} orders titled {record['title']!r}")
            continue
        row = found[0]
        if row["number"] != record["number"]:
            check.violations.append(f"{key}: stored as {row['number']}, acknowledged as {record['number']}")
        for name in ("summary", "contact", "tier"):
            if row[name] != record["fields"][name]:
                check.violations.append(f"{row['number']}: {name} is {row[name]!r}, sent {record['fields'][name]!r}")
    for key in ledger.create_unknown:  # never acknowledged: zero or one order, never two
        check.items += 1
        if len(by_title.get(f"order {key}", [])) > 1:
            check.violations.append(f"{key} (no answer): {len(by_title[f'order {key}'])} orders")
    return check


async def _events(db: Database) -> dict[int, list[dict[str, Any]]]:
    rows = await db.fetch("SELECT work_order_id, kind, after, version, source FROM rc_event "
                          "WHERE work_order_id IS NOT NULL ORDER BY work_order_id, id")
    events: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        row["after"] = _json(row["after"]) or {}
        events[int(row["work_order_id"])].append(row)
    return events


async def acknowledged_changes(db: Database, ledger: Ledger, events: dict[int, list[dict[str, Any]]]) -> list[Check]:
    """Edits, processed actions and messages the clients were told about are in the audit trail and the tables."""
    ids = {str(r["number"]): int(r["id"]) for r in await db.fetch("SELECT id, number FROM rc_work_order")}
    edits = Check("every acknowledged edit is in the audit trail at its version, with its values")
    for number, version, note, amount in ledger.edits:
        edits.items += 1
        trail = [e for e in events.get(ids.get(number, -1), []) if e["version"] == version]
        values = [e["after"].get("fields", {}) for e in trail]
        if not any(v.get("note") == note and _money(v.get("amount")) == _money(amount) for v in values):
            near = [(e["version"], e["kind"], e["after"].get("fields", {}).get("note"))
                    for e in events.get(ids.get(number, -1), []) if abs(int(e["version"] or 0) - version) <= 2]
            edits.violations.append(f"{number} v{version}: note {note!r} / amount {amount} not in its events; "
                                    f"events near it (version, kind, note): {near}")
    # the stored value is that of the last acknowledged edit, or of one whose answer never came
    last: dict[str, tuple[int, str]] = {}
    for number, version, note, _ in ledger.edits:
        if version > last.get(number, (0, ""))[0]:
            last[number] = (version, note)
    maybe: dict[str, set[str]] = defaultdict(set)
    for number, note, _ in ledger.edits_unknown:
        maybe[number].add(note)
    lost = Check("no lost update: each order's note is its last acknowledged edit (or one without an answer)")
    notes = {str(r["number"]): r["note"] for r in await db.fetch(
        "SELECT w.number, t.note FROM rc_work_order w JOIN tpl_ticket t ON t.work_order_id = w.id")}
    for number, (version, note) in last.items():
        lost.items += 1
        stored = notes.get(number)
        if stored != note and stored not in maybe[number]:
            lost.violations.append(f"{number}: note {stored!r}, last acknowledged {note!r} at v{version}")
    processed = Check("every acknowledged process/skip is in the audit trail at its version")
    for number, version, action, state in ledger.processed:
        processed.items += 1
        trail = [e for e in events.get(ids.get(number, -1), []) if e["version"] == version]
        if not any(e["after"].get("actions", {}).get(action) == state for e in trail):
            processed.violations.append(f"{number} v{version}: {action} {state} not in its events")
    messages = Check("every acknowledged comment/reply is stored on its order")
    stored = {int(r["id"]): r for r in await db.fetch("SELECT id, work_order_id, body FROM rc_message")}
    for number, message, body in ledger.messages:
        messages.items += 1
        row = stored.get(message)
        if row is None or row["body"] != body or int(row["work_order_id"]) != ids.get(number):
            messages.violations.append(f"{number}: message {message} missing or changed")
    return [edits, lost, processed, messages]


async def acknowledged_mail(db: Database, ledger: Ledger) -> Check:
    """Every acknowledged inbound mail is kept once; a mail sent twice at once made one message."""
    check = Check("every acknowledged inbound mail is kept exactly once (also when sent to both servers at once)")
    rows = await db.fetch("SELECT message_ident, outcome, message_id FROM rc_inbound_mail")
    kept = Counter(str(r["message_ident"]) for r in rows)
    messages = Counter(str(r["message_ident"]) for r in rows if r["message_id"] is not None)
    for ident, outcome in ledger.inbound.items():
        check.items += 1
        if kept[ident] != 1:
            check.violations.append(f"{ident}: kept {kept[ident]} times (answered {outcome})")
        elif outcome in ("created", "threaded") and messages[ident] != 1:
            check.violations.append(f"{ident}: answered {outcome} but has no message")
    threaded = await db.fetch("SELECT headers FROM rc_message WHERE kind = 'email'")
    per_ident = Counter(str((_json(r["headers"]) or {}).get("message_id", "")) for r in threaded)
    for ident in ledger.inbound_twice:
        check.items += 1
        if per_ident.get(ident, 0) > 1:
            check.violations.append(f"{ident}: sent twice at once, {per_ident[ident]} messages")
    return check


async def audit_replays(db: Database, runtime: Runtime, events: dict[int, list[dict[str, Any]]]) -> Check:
    """For every order, the audit trail replays to the stored state (nothing changed without its event)."""
    check = Check("the audit trail replays to the stored state of every order")
    workspace = runtime.workspace
    for row in await db.fetch("SELECT id, number FROM rc_work_order ORDER BY id"):
        check.items += 1
        order = await load_order(db, workspace.templates, workspace.queues, runtime.codecs, str(row["number"]))
        replayed = replay(events.get(int(row["id"]), []))
        state = order.state
        differs = [k for k in state if _norm(replayed.get(k)) != _norm(state[k])]
        differs += [k for k in replayed if k not in state]
        if differs:
            check.violations.append(f"{row['number']}: {', '.join(sorted(set(differs)))} differ "
                                    f"(e.g. {differs[0]}: trail {replayed.get(differs[0])!r}, "
                                    f"stored {state.get(differs[0])!r})")
    return check


def _norm(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_norm(v) for v in value]
    return value


async def escalations(db: Database, workspace: LinkedWorkspace, ended: dt.datetime) -> list[Check]:
    """Each SLA level fires exactly once per order and target; none that came due was left unfired."""
    once = Check("each SLA warning/breach fired exactly once per order and target")
    rows = await db.fetch("SELECT work_order_id, kind, source, COUNT(*) AS n FROM rc_event "
                          "WHERE kind IN ('sla_warning', 'sla_breach') GROUP BY work_order_id, kind, source")
    for row in rows:
        once.items += 1
        if int(row["n"]) != 1:
            once.violations.append(f"order {row['work_order_id']}: {row['source']} fired {row['n']} times")
    due = Check("every SLA level that came due before the drain ended has fired")
    late = ended - dt.timedelta(seconds=60)
    stuck = await db.fetch(
        "SELECT number, sla_state, sla_next_at FROM rc_work_order WHERE sla_name IS NOT NULL "
        "AND sla_state IN ('running', 'escalating') AND sla_next_at < {}", late)
    due.items = int(await db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order WHERE sla_name IS NOT NULL") or 0)
    due.violations += [f"{r['number']}: {r['sla_state']}, next level due {r['sla_next_at']}" for r in stuck]
    dead = await db.fetch("SELECT kind, unique_key, last_error FROM rc_job WHERE state = 'dead'")
    due.violations += [f"dead job {r['kind']} {r['unique_key']}: {r['last_error']}" for r in dead]
    return [once, due]


async def outbound_mail(db: Database, received: Counter[str]) -> Check:
    """Each outbox row was received by the SMTP sink exactly once; nothing arrived that the outbox did not send."""
    check = Check("each outbound mail delivered exactly once (outbox vs the SMTP sink)")
    rows = await db.fetch("SELECT id, state, payload, attempts, last_error FROM rc_outbox WHERE kind = 'email'")
    known: set[str] = set()
    for row in rows:
        check.items += 1
        ident = str((_json(row["payload"]) or {}).get("message_id", ""))
        known.add(ident)
        count = received.get(ident, 0)
        if row["state"] == "sent" and count != 1:
            check.violations.append(f"outbox {row['id']} sent, received {count} times ({ident})")
        elif row["state"] == "failed":
            check.violations.append(f"outbox {row['id']} failed after {row['attempts']}: {row['last_error']}")
        elif row["state"] == "pending":
            check.violations.append(f"outbox {row['id']} still pending (received {count} times) "
                                    f"after {row['attempts']} attempts: {row['last_error']}")
    for ident, count in received.items():
        if ident not in known:
            check.violations.append(f"the sink received {ident} ({count}x) with no outbox row")
    return check


ORPHANS = (
    ("messages", "SELECT COUNT(*) AS n FROM rc_message m LEFT JOIN rc_work_order w ON w.id = m.work_order_id "
                 "WHERE w.id IS NULL"),
    ("attachments", "SELECT COUNT(*) AS n FROM rc_attachment a LEFT JOIN rc_work_order w ON w.id = a.work_order_id "
                    "WHERE a.work_order_id IS NOT NULL AND w.id IS NULL"),
    ("events", "SELECT COUNT(*) AS n FROM rc_event e LEFT JOIN rc_work_order w ON w.id = e.work_order_id "
               "WHERE e.work_order_id IS NOT NULL AND w.id IS NULL"),
    ("step actions", "SELECT COUNT(*) AS n FROM rc_step_action a LEFT JOIN rc_work_order w ON w.id = a.work_order_id "
                     "WHERE w.id IS NULL"),
    ("subscriptions", "SELECT COUNT(*) AS n FROM rc_subscription s LEFT JOIN rc_work_order w "
                      "ON w.id = s.work_order_id WHERE w.id IS NULL"),
    ("idempotency keys", "SELECT COUNT(*) AS n FROM rc_idempotency i LEFT JOIN rc_work_order w "
                         "ON w.id = i.work_order_id WHERE w.id IS NULL"),
    ("inbound mail", "SELECT COUNT(*) AS n FROM rc_inbound_mail i LEFT JOIN rc_work_order w ON w.id = i.work_order_id "
                     "LEFT JOIN rc_message m ON m.id = i.message_id WHERE (i.work_order_id IS NOT NULL AND w.id IS NULL) "
                     "OR (i.message_id IS NOT NULL AND m.id IS NULL)"),
    ("outbox rows", "SELECT COUNT(*) AS n FROM rc_outbox o LEFT JOIN rc_message m ON m.id = o.message_id "
                    "WHERE o.message_id IS NOT NULL AND m.id IS NULL"),
    ("extension rows", "SELECT COUNT(*) AS n FROM tpl_ticket t LEFT JOIN rc_work_order w ON w.id = t.work_order_id "
                       "WHERE w.id IS NULL"),
    ("orders without extension row", "SELECT COUNT(*) AS n FROM rc_work_order w LEFT JOIN tpl_ticket t "
                                     "ON t.work_order_id = w.id WHERE w.template = 'ticket' AND t.work_order_id IS NULL"),
)


async def orphans(db: Database) -> Check:
    check = Check("no orphan rows (messages, attachments, events, step actions, ... without their order)")
    for what, sql in ORPHANS:
        check.items += 1
        count = int(await db.fetch_value(sql) or 0)
        if count:
            check.violations.append(f"{count} {what}")
    return check


async def all_checks(db: Database, runtime: Runtime, ledger: Ledger, received: Counter[str],
                     ended: dt.datetime) -> list[Check]:
    events = await _events(db)
    return [await acknowledged_creates(db, ledger), *await acknowledged_changes(db, ledger, events),
            await acknowledged_mail(db, ledger), await audit_replays(db, runtime, events),
            *await escalations(db, runtime.workspace, ended), await outbound_mail(db, received), await orphans(db)]
