"""Time tracking: timers on work orders and the timesheet entries people book.

A user has at most one running timer (``rc_timer.user_id`` is unique): starting one on
another work order stops the first and books its time as an entry. Stopping a timer
gives a *draft* (work order, start, minutes) that the entry form is filled with. A timer
left running longer than ``MAX_TIMER_HOURS`` is flagged while it runs and its draft is
capped at that many hours.

Entries are booked in whole minutes, stored in UTC; a time without an offset is read in
the workspace's time zone (a local time that does not exist there, in a spring-forward
gap, is refused). An entry may carry the work order's percent complete and a change of
its status (process an action of the current step, or move it on) — both are applied
in the entry's transaction through the runtime's own services, so they are audited and
checked exactly as if made on the order page. Every entry booked, edited or deleted
writes an audit event on its work order (``time_logged``, ``time_edited``,
``time_deleted``).

Who may do what: staff with the permission ``time.track`` book their own time on work
orders they can see; the author, a supervisor of the order's group, or a holder of
``time.edit_others`` edits or deletes an entry. Customer users never see time.
Entries on cancelled work orders are refused.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING, Any

from ..errors import Forbidden, Invalid, NotFound, Refused
from .actors import Actor
from .fields import as_utc, to_json_time
from .state import Order, insert_event, load_order, now

if TYPE_CHECKING:
    from .service import Runtime

MAX_TIMER_HOURS = 12
"""The policy limit of one timer: longer runs are flagged and their drafts capped at this."""
MAX_ENTRY_MINUTES = 24 * 60
"""The longest single entry."""
MAX_NOTE = 2000


def zone(runtime: Runtime) -> dt.tzinfo:
    """The workspace's time zone (UTC when unknown)."""
    try:
        return zoneinfo.ZoneInfo(runtime.workspace.settings.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return dt.timezone.utc


def parse_moment(value: Any, tz: dt.tzinfo, field: str) -> dt.datetime:
    """``value`` (ISO 8601; no offset: local time in ``tz``) as UTC, to the minute; ``Invalid`` names ``field``."""
    if isinstance(value, dt.datetime):
        moment = value
    else:
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            raise Invalid(f"`{field}` is not a date and time",
                          [{"field": field, "message": "expected a date and time (ISO 8601)"}]) from None
    if moment.tzinfo is None:
        local = moment.replace(tzinfo=tz)
        back = local.astimezone(dt.timezone.utc).astimezone(tz)
        if back.replace(tzinfo=None) != moment:
            raise Invalid(f"{moment:%Y-%m-%d %H:%M} does not exist in the time zone {tz}",
                          [{"field": field, "message": "this local time is skipped by a clock change"}])
        moment = local
    return moment.astimezone(dt.timezone.utc).replace(second=0, microsecond=0)


def may_track(actor: Actor) -> None:
    """Staff with ``time.track`` track time; customers never see it."""
    if not actor.is_staff:
        raise NotFound("no such page")
    actor.require("time.track")


class Timesheets:
    """Timers and timesheet entries of one runtime."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.db = runtime.db

    async def _order(self, actor: Actor, number: str) -> Order:
        rt = self.runtime
        order = await load_order(self.db, rt.workspace.templates, rt.workspace.queues, rt.codecs, number)
        if not rt.can_see(actor, order):
            raise NotFound(f"no work order {number}")
        return order

    async def _order_by_id(self, order_id: int) -> Order:
        number = await self.db.fetch_value("SELECT number FROM rc_work_order WHERE id = {}", order_id)
        rt = self.runtime
        return await load_order(self.db, rt.workspace.templates, rt.workspace.queues, rt.codecs, str(number))

    # -- timers ---------------------------------------------------------------------------------

    async def current(self, actor: Actor) -> dict[str, Any] | None:
        """The actor's running timer (``over_limit`` when it ran past the policy), or ``None``."""
        may_track(actor)
        rows = await self.db.fetch(
            "SELECT t.started_at, w.number, w.title FROM rc_timer t JOIN rc_work_order w ON w.id = t.work_order_id "
            "WHERE t.user_id = {}", actor.id)
        return self._timer(rows[0]) if rows else None

    @staticmethod
    def _timer(row: dict[str, Any], until: dt.datetime | None = None) -> dict[str, Any]:
        started = as_utc(row["started_at"])
        seconds = max(0, int(((until or now()) - started).total_seconds()))
        limit = MAX_TIMER_HOURS * 3600
        return {"order": row["number"], "title": row.get("title"), "started_at": to_json_time(started),
                "elapsed_seconds": seconds, "over_limit": seconds > limit}

    async def start(self, actor: Actor, number: str) -> dict[str, Any]:
        """Start the actor's timer on ``number``; a timer running elsewhere is stopped and booked.

        Returns ``{"timer": ..., "stopped": draft or None, "booked": entry or None}``.
        """
        may_track(actor)
        async with self.db.transaction():
            order = await self._order(actor, number)
            if order.status == "cancelled":
                raise Refused(f"work order {number} is cancelled; no time can be tracked on it")
            # the old timer goes in the same statement that makes way for the new one
            old = await self.db.fetch(
                "DELETE FROM rc_timer WHERE user_id = {} RETURNING work_order_id, started_at", actor.id)
            moment = now()
            await self.db.execute(
                "INSERT INTO rc_timer (user_id, work_order_id, started_at) VALUES ({}, {}, {}) "
                "ON CONFLICT (user_id) DO UPDATE SET work_order_id = excluded.work_order_id, "
                "started_at = excluded.started_at", actor.id, order.id, moment)
            stopped = booked = None
            if old:
                previous = await self._order_by_id(int(old[0]["work_order_id"]))
                if previous.id == order.id:
                    moment = as_utc(old[0]["started_at"])  # already running here: keep it running
                    await self.db.execute("UPDATE rc_timer SET started_at = {} WHERE user_id = {}", moment, actor.id)
                else:
                    stopped = self._draft(previous, as_utc(old[0]["started_at"]), moment)
                    booked = await self._book_switched(actor, previous, stopped)
        timer = {"order": order.number, "title": order.state["title"], "started_at": to_json_time(moment),
                 "elapsed_seconds": 0, "over_limit": False}
        return {"timer": timer, "stopped": stopped, "booked": booked}

    async def _book_switched(self, actor: Actor, order: Order, draft: dict[str, Any]) -> dict[str, Any] | None:
        """Book a switched-away timer's time, unless it is under a minute, on a cancelled order, or overlaps."""
        if draft["minutes"] < 1 or order.status == "cancelled":
            return None
        start = as_utc(draft["started_at"])
        if await self._overlaps(actor.id, start, start + dt.timedelta(minutes=draft["minutes"]), None):
            return None
        return await self._insert(actor, order, actor.id, start, draft["minutes"], True,
                                  "timer stopped by starting another", None)

    def _draft(self, order: Order, started: dt.datetime, until: dt.datetime) -> dict[str, Any]:
        seconds = max(0, int((until - started).total_seconds()))
        capped = seconds > MAX_TIMER_HOURS * 3600
        minutes = MAX_TIMER_HOURS * 60 if capped else round(seconds / 60)
        start = started.replace(second=0, microsecond=0)
        return {"order": order.number, "started_at": to_json_time(start), "minutes": minutes, "capped": capped,
                "elapsed_seconds": seconds}

    async def stop(self, actor: Actor) -> dict[str, Any]:
        """Stop the actor's timer; its draft entry (``minutes`` capped by the policy) to book."""
        may_track(actor)
        async with self.db.transaction():
            old = await self.db.fetch(
                "DELETE FROM rc_timer WHERE user_id = {} RETURNING work_order_id, started_at", actor.id)
            if not old:
                raise Refused("no timer is running")
            order = await self._order_by_id(int(old[0]["work_order_id"]))
        return self._draft(order, as_utc(old[0]["started_at"]), now())

    # -- entries ----------------------------------------------------------------------------------

    async def _may_edit(self, actor: Actor, order: Order, author: int) -> bool:
        return (actor.is_staff and (author == actor.id or actor.can("time.edit_others")
                                    or self.runtime.abilities_on(actor, order).supervises))

    async def _overlaps(self, user: int | None, start: dt.datetime, end: dt.datetime, entry: int | None) -> bool:
        found = await self.db.fetch_value(
            "SELECT id FROM rc_time_entry WHERE user_id = {} AND started_at < {} AND ended_at > {} AND id <> {} "
            "LIMIT 1", user, end, start, entry or 0)
        return found is not None

    def _checked(self, data: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        """The entry's values from ``data``; every problem named by field path at once."""
        errors: list[dict[str, str]] = []
        out: dict[str, Any] = {}
        allowed = ("order", "user", "started_at", "minutes", "billable", "note", "percent_complete",
                   "process_action", "advance_to", "version", "entry_version")
        for key in data:
            if key not in allowed:
                errors.append({"field": key, "message": f"`{key}` cannot be set here; allowed: {', '.join(allowed)}"})
        required = () if partial else ("order", "started_at", "minutes")
        for key in required:
            if data.get(key) in (None, ""):
                errors.append({"field": key, "message": "required"})
        if data.get("started_at") not in (None, ""):
            try:
                out["started_at"] = parse_moment(data["started_at"], zone(self.runtime), "started_at")
            except Invalid as exc:
                errors += exc.errors
        if data.get("minutes") not in (None, ""):
            minutes = data["minutes"]
            if isinstance(minutes, bool) or not isinstance(minutes, int):
                errors.append({"field": "minutes", "message": "expected a whole number of minutes"})
            elif not 0 < minutes <= MAX_ENTRY_MINUTES:
                errors.append({"field": "minutes", "message": f"between 1 and {MAX_ENTRY_MINUTES} minutes"})
            else:
                out["minutes"] = minutes
        if "billable" in data:
            if not isinstance(data["billable"], bool):
                errors.append({"field": "billable", "message": "expected true or false"})
            else:
                out["billable"] = data["billable"]
        if data.get("note") is not None:
            note = data["note"]
            if not isinstance(note, str) or len(note) > MAX_NOTE or "\x00" in note:
                errors.append({"field": "note", "message": f"text of at most {MAX_NOTE} characters"})
            else:
                out["note"] = note.strip() or None
        if data.get("percent_complete") is not None:
            percent = data["percent_complete"]
            if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
                errors.append({"field": "percent_complete", "message": "a whole number from 0 to 100"})
            else:
                out["percent_complete"] = percent
        for key in ("order", "user", "process_action", "advance_to"):
            value = data.get(key)
            if value not in (None, ""):
                if not isinstance(value, str) or len(value) > 100 or "\x00" in value:
                    errors.append({"field": key, "message": "at most 100 characters of text"})
                else:
                    out[key] = value
        if errors:
            raise Invalid(f"{len(errors)} value{'s' if len(errors) != 1 else ''} not valid", errors)
        return out

    async def _author(self, actor: Actor, order: Order, login: str | None) -> int:
        """The user the entry is for: the actor, or (for those who may edit others' time) ``login``."""
        if login is None or login == actor.login:
            assert actor.id is not None
            return actor.id
        if not await self._may_edit(actor, order, -1):
            raise Forbidden(f"{actor.login} may book time only for themselves")
        found = await self.db.fetch_value(
            "SELECT id FROM rc_user WHERE login = {} AND is_active = {} AND is_staff = {}", login, True, True)
        if found is None:
            raise Invalid(f"no user {login}", [{"field": "user", "message": f"no active staff user {login}"}])
        return int(found)

    async def create(self, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
        """Book an entry; with ``percent_complete``, ``process_action`` or ``advance_to`` the order changes too."""
        may_track(actor)
        values = self._checked(data, partial=False)
        async with self.db.transaction():
            order = await self._order(actor, values["order"])
            if order.status == "cancelled":
                raise Refused(f"work order {order.number} is cancelled; no time can be booked on it")
            user = await self._author(actor, order, values.get("user"))
            start, minutes = values["started_at"], values["minutes"]
            if await self._overlaps(user, start, start + dt.timedelta(minutes=minutes), None):
                raise Invalid("the entry overlaps another entry of the same person", [
                    {"field": "started_at", "message": "overlaps another entry of the same person"}])
            order = await self._status_change(actor, order, data, values)
            return await self._insert(actor, order, user, start, minutes, values.get("billable", True),
                                      values.get("note"), values.get("percent_complete"))

    async def _status_change(self, actor: Actor, order: Order, data: dict[str, Any],
                             values: dict[str, Any]) -> Order:
        """Process an action or move the order on (the runtime's services join this transaction)."""
        if "process_action" not in values and "advance_to" not in values:
            return order
        version = data.get("version")
        if "process_action" in values:
            view = await self.runtime.process(actor, order.number, version, values["process_action"])
            version = view["version"]
        if "advance_to" in values:
            await self.runtime.advance(actor, order.number, version, values["advance_to"])
        return await self._order_by_id(order.id)

    async def _insert(self, actor: Actor, order: Order, user: int | None, start: dt.datetime, minutes: int,
                      billable: bool, note: str | None, percent: int | None) -> dict[str, Any]:
        moment = now()
        end = start + dt.timedelta(minutes=minutes)
        rows = await self.db.fetch(
            "INSERT INTO rc_time_entry (work_order_id, user_id, started_at, ended_at, minutes, billable, note, "
            "percent_complete, version, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, 1, {}) RETURNING id",
            order.id, user, start, end, minutes, billable, note, percent, moment)
        entry = int(rows[0]["id"])
        after = {"time_entry": entry, "minutes": minutes, "billable": billable, "started_at": to_json_time(start)}
        if percent is not None:
            after["percent_complete"] = percent
        await insert_event(self.db, order.id, actor.id, "time_logged", {}, after, None,
                           self.runtime.workspace.fingerprint, order.version, moment)
        return await self._read(entry)

    async def _read(self, entry: int) -> dict[str, Any]:
        rows = await self.db.fetch(
            "SELECT e.id, e.started_at, e.ended_at, e.minutes, e.billable, e.note, e.percent_complete, e.version, "
            "e.user_id, w.number, u.login FROM rc_time_entry e JOIN rc_work_order w ON w.id = e.work_order_id "
            "JOIN rc_user u ON u.id = e.user_id WHERE e.id = {}", entry)
        if not rows:
            raise NotFound(f"no time entry {entry}")
        r = rows[0]
        return {"id": int(r["id"]), "order": r["number"], "user": r["login"],
                "started_at": to_json_time(r["started_at"]), "ended_at": to_json_time(r["ended_at"]),
                "minutes": int(r["minutes"]), "billable": bool(r["billable"]), "note": r["note"],
                "percent_complete": r["percent_complete"], "version": int(r["version"])}

    async def get(self, actor: Actor, entry: int) -> dict[str, Any]:
        """One entry, for whoever may edit it or see its work order's time."""
        found, order = await self._entry(actor, entry)
        return found

    async def _entry(self, actor: Actor, entry: int) -> tuple[dict[str, Any], Order]:
        """The entry and its order, when the actor may edit it; else ``NotFound`` (never a hint it exists)."""
        if not actor.is_staff:
            raise NotFound(f"no time entry {entry}")
        row = await self.db.fetch("SELECT work_order_id, user_id FROM rc_time_entry WHERE id = {}", entry)
        if not row:
            raise NotFound(f"no time entry {entry}")
        order = await self._order_by_id(int(row[0]["work_order_id"]))
        if not self.runtime.can_see(actor, order) or not await self._may_edit(actor, order, int(row[0]["user_id"])):
            raise NotFound(f"no time entry {entry}")
        return await self._read(entry), order

    async def entries_of(self, actor: Actor, number: str) -> list[dict[str, Any]]:
        """The entries of one work order the actor may see (all for supervisors, else their own)."""
        if not actor.is_staff:
            raise NotFound(f"no work order {number}")
        order = await self._order(actor, number)
        everyone = actor.can("time.edit_others") or actor.can("report.view") or \
            self.runtime.abilities_on(actor, order).supervises
        ids = await self.db.fetch(
            "SELECT id FROM rc_time_entry WHERE work_order_id = {} AND (user_id = {} OR {}) ORDER BY started_at, id",
            order.id, actor.id, everyone)
        return [await self._read(int(r["id"])) for r in ids]

    async def update(self, actor: Actor, entry: int, version: Any, data: dict[str, Any]) -> dict[str, Any]:
        """Change an entry (start, minutes, billable, note, percent complete) read at ``version``."""
        values = self._checked(data, partial=True)
        for key in ("order", "user", "process_action", "advance_to"):
            if key in values:
                raise Invalid(f"`{key}` cannot be changed on an entry",
                              [{"field": key, "message": "book a new entry instead"}])
        async with self.db.transaction():
            found, order = await self._entry(actor, entry)
            _check_changeable(found, order, version)
            start = values.get("started_at", as_utc(found["started_at"]))
            minutes = values.get("minutes", found["minutes"])
            user = await self.db.fetch_value("SELECT user_id FROM rc_time_entry WHERE id = {}", entry)
            if await self._overlaps(int(user), start, start + dt.timedelta(minutes=minutes), entry):
                raise Invalid("the entry overlaps another entry of the same person", [
                    {"field": "started_at", "message": "overlaps another entry of the same person"}])
            merged = {"started_at": start, "ended_at": start + dt.timedelta(minutes=minutes), "minutes": minutes,
                      "billable": values.get("billable", found["billable"]),
                      "note": values["note"] if "note" in values else found["note"],
                      "percent_complete": values.get("percent_complete", found["percent_complete"])}
            updated = await self.db.fetch(
                "UPDATE rc_time_entry SET started_at = {}, ended_at = {}, minutes = {}, billable = {}, note = {}, "
                "percent_complete = {}, version = version + 1 WHERE id = {} AND version = {} RETURNING id",
                *merged.values(), entry, version)
            if not updated:
                raise Invalid("the entry changed since you read it", [{"field": "version", "message": "reload it"}])
            before = {k: found[k] for k in ("started_at", "minutes", "billable", "percent_complete")}
            after = {"time_entry": entry, "started_at": to_json_time(start), "minutes": minutes,
                     "billable": merged["billable"], "percent_complete": merged["percent_complete"]}
            await insert_event(self.db, order.id, actor.id, "time_edited", before, after, None,
                               self.runtime.workspace.fingerprint, order.version, now())
            return await self._read(entry)

    async def delete(self, actor: Actor, entry: int, version: Any) -> None:
        """Delete an entry read at ``version``."""
        async with self.db.transaction():
            found, order = await self._entry(actor, entry)
            _check_changeable(found, order, version)
            await self.db.execute("DELETE FROM rc_time_entry WHERE id = {} AND version = {}", entry, version)
            before = {k: found[k] for k in ("started_at", "minutes", "billable", "user")}
            await insert_event(self.db, order.id, actor.id, "time_deleted", before, {"time_entry": entry}, None,
                               self.runtime.workspace.fingerprint, order.version, now())


def _check_changeable(found: dict[str, Any], order: Order, version: Any) -> None:
    """An entry changes only while its order is not cancelled, and only from the version it was read at."""
    if order.status == "cancelled":
        raise Refused(f"work order {order.number} is cancelled; its time can no longer change")
    if isinstance(version, bool) or not isinstance(version, int) or version != found["version"]:
        raise Invalid("the entry changed since you read it", [
            {"field": "version", "message": f"the entry is at version {found['version']}"}])
