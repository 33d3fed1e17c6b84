"""SLA warnings and breaches: the sweep finds them, a job fires each exactly once.

The sweep (a worker tick) takes the orders whose SLA clock is due - ``sla_state =
'running' AND sla_next_at <= now``, the index ``(sla_state, sla_next_at)`` - up to
``SWEEP_BATCH`` at a time (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so sweepers in several
workers take distinct orders), enqueues one ``sla.escalate`` job per order (its unique key
is the order and the due moment, so a second sweep of the same moment adds nothing) and
marks the orders ``escalating``, all in one transaction.

The job, in the worker's transaction together with its completion: every level due and
not yet fired - per target, ``warning`` at the warning time, ``breach`` at the due time -
is marked fired in the clock (the order's row locked first, so no other change of the
order commits meanwhile), recorded as an audit event ``sla_warning`` / ``sla_breach``
(a ``Change`` saved through ``Runtime._save``, so rules react), and the SLA's
``on_warning`` / ``on_breach`` actions run once for it (``actions.apply_actions``). A
worker killed in the middle commits none of it; the job runs again elsewhere. A failing
action rolls the escalation back and the job is retried; once it is dead-lettered, the
levels that were due are fired without their actions, the error noted in their events
(``escalation_failed``), so the order's later levels are not held up.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .. import metrics
from ..errors import NotFound
from ..runtime.fields import to_json_time
from ..runtime.state import Change, load_order
from .actions import apply_actions
from .jobs import enqueue_many, job_kind, tick, when_dead
from .sla import _time, policies_of, read_clock, summary, write_clock

if TYPE_CHECKING:
    from ..runtime.service import Runtime

SWEEP_BATCH = 500
JOB_KIND = "sla.escalate"


async def sweep(runtime: Runtime, moment: dt.datetime, batch: int = SWEEP_BATCH) -> int:
    """Enqueue an escalation job for each order whose SLA clock is due at ``moment``; returns how many."""
    db = runtime.db
    metrics.SLA_SWEEPS.inc()
    lock = " FOR UPDATE SKIP LOCKED" if db.dialect == "postgresql" else ""
    async with db.transaction():
        rows = await db.fetch(
            "SELECT id, number, sla_next_at FROM rc_work_order WHERE sla_state = 'running' AND sla_next_at <= {} "
            f"ORDER BY sla_next_at LIMIT {{}}{lock}", moment, batch)
        if not rows:
            return 0
        await enqueue_many(db, [(JOB_KIND, f"sla:{row['id']}:{to_json_time(row['sla_next_at'])}", moment,
                                 {"order": row["number"], "at": to_json_time(moment)}) for row in rows])
        await db.execute(
            f"UPDATE rc_work_order SET sla_state = 'escalating' WHERE id IN ({', '.join('{}' for _ in rows)})",
            *(row["id"] for row in rows))
    return len(rows)


@tick
async def sla_sweep(runtime: Runtime, moment: dt.datetime) -> None:
    """The worker's tick: sweep until no due order is left (batch by batch)."""
    while await sweep(runtime, moment) == SWEEP_BATCH:
        pass


@job_kind(JOB_KIND)
async def escalate(runtime: Runtime, payload: dict[str, Any]) -> None:
    """Fire the due warnings and breaches of one order (see the module)."""
    await fire_due(runtime, str(payload["order"]))


@when_dead(JOB_KIND)
async def escalation_failed(runtime: Runtime, payload: dict[str, Any], error: str) -> None:
    """The escalation failed at every attempt (an action that keeps failing): fire the levels
    that were due when it was queued without their actions, with the error in their events,
    so that the order's SLA goes on (its later levels fire as usual) instead of waiting in
    ``escalating`` for good."""
    at = _time(payload.get("at"))
    await fire_due(runtime, str(payload["order"]), at, failed=error)


async def fire_due(runtime: Runtime, number: str, moment: dt.datetime | None = None, *,
                   failed: str | None = None) -> list[tuple[str, str]]:
    """Fire what is due on order ``number`` at ``moment`` (default: now); returns the (target, level) fired.

    ``failed``: the error of an escalation that failed at every attempt; the levels are then
    fired without their actions, and their events carry it as ``actions_failed``.
    """
    moment = moment or runtime.sla.clock()
    db = runtime.db
    lock = " FOR NO KEY UPDATE" if db.dialect == "postgresql" else ""  # as an UPDATE of the order takes
    # the order's row lock first: no change of the order commits between the reads below and
    # the save, so the escalation does not lose the race to an edit (and use up its retries)
    locked = await db.fetch(f"SELECT id FROM rc_work_order WHERE number = {{}}{lock}", number)
    if not locked:
        return []
    try:
        order = await load_order(db, runtime.workspace.templates, runtime.workspace.queues, runtime.codecs, number)
    except NotFound:
        return []
    row = await read_clock(runtime, order.id)
    policy = next((p for p in policies_of(runtime.workspace) if p.name == row["sla_name"]), None)
    if policy is None or row["sla_state"] not in ("running", "escalating"):
        return []
    clock = row["sla_clock"]
    fired: list[tuple[str, str, str | None]] = []
    for target, entry in sorted(clock.items(), key=lambda item: str(item[1].get("due") or "")):
        for key, level in (("warn", "warning"), ("due", "breach")):
            at = _time(entry.get(key))
            if at is not None and at <= moment and level not in entry["fired"]:
                entry["fired"].append(level)
                fired.append((target, level, entry.get("due")))
    await write_clock(runtime, order.id, {**summary(clock, False), "sla_clock": clock})
    if not fired:
        return []
    change = Change(order, None, runtime.workspace.fingerprint)
    for target, level, due in fired:
        note: dict[str, Any] = {"name": policy.name, "target": target, "level": level, "due_at": due}
        if failed is not None:
            note["actions_failed"] = failed
        change.events.append((f"sla_{level}", {}, {"sla": note}, f"sla {policy.name} {level} ({target})"))
    await runtime._save(change)
    for target, level, _ in fired:
        metrics.SLA_ESCALATIONS.inc(level)
        if failed is not None:
            continue
        actions = policy.sla.on_warning if level == "warning" else policy.sla.on_breach
        if actions:
            await apply_actions(runtime, number, actions, source=f"sla {policy.name} {level} ({target})")
    return [(target, level) for target, level, _ in fired]
