"""What the work-order page shows, read from the runtime: header, actions, ways on, sections, links, audit trail.

``order_context`` gathers every part for the templates ``order*.html``; the audit
trail's events are put into words here (``describe``), in the reader's language, so
that a template only lists them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from engine.automation.macros import macros_for
from engine.automation.sla import sla_status
from engine.labels import label_map
from engine.link.resolved import ResolvedField, ResolvedQueue, ResolvedStep, ResolvedTemplate
from engine.model.common import PRIORITIES
from engine.runtime import Actor, Runtime
from engine.runtime.actors import group_members
from engine.runtime.attachments import attachments_named
from engine.runtime.service import COMPLETE
from engine.storage import size_words

from .forms import Names, decimal_pattern, form_values, names_for, sections
from .times import local_input, local_text, zone_of
from .render import Page

FINAL = ("completed", "cancelled")
HEADER_PARTS = ("title", "priority", "owner", "customer_id", "requested_at", "planned_at")
"""The header's parts that can be edited in place."""
CORE_KEYS = ("title", "priority", "requested_at", "planned_at", "customer_id", "project_id", "status", "step",
             "owner_id", "group_name", "completed_at", "cancelled_at")
TIME_KEYS = ("requested_at", "planned_at", "completed_at", "cancelled_at")


def _step(queue: ResolvedQueue | None, name: str) -> ResolvedStep | None:
    return next((s for s in queue.steps if s.name == name), None) if queue else None


def _action_label(page: Page, queue: ResolvedQueue | None, name: str, step: str | None = None) -> str:
    """An action's label, from the given step, else from the first step of the queue that has it."""
    steps = [s for s in (queue.steps if queue else ()) if step is None or s.name == step] or list(
        queue.steps if queue else ())
    for candidate in steps:
        for action in candidate.actions:
            if action.name == name:
                return page.label(action.label, name)
    return name


def field_text(page: Page, item: ResolvedField, value: Any, names: Names, zone: dt.tzinfo) -> str:
    """A custom field's value in words, as the page shows it (empty: ``—``)."""
    if value is None or value == [] or value == "":
        return "—"
    kind = item.type
    if kind == "boolean":
        return page.gettext("Yes") if value else page.gettext("No")
    if kind == "select":
        return page.label(item.option_labels.get(str(value)), str(value))
    if kind == "multiselect" and isinstance(value, list):
        return ", ".join(page.label(item.option_labels.get(str(v)), str(v)) for v in value)
    if kind == "datetime":
        return local_text(value, zone)
    if kind == "customer" and isinstance(value, int):
        return names.customer_label.get(value) or names.of("customer", value)
    if kind in ("user", "reference"):
        return names.of(kind, value)
    if kind == "upload" and isinstance(value, list):
        return page.ngettext("%(num)d file", "%(num)d files", len(value))
    return str(value)


def _core_text(page: Page, key: str, value: Any, names: Names, zone: dt.tzinfo, queue: ResolvedQueue | None) -> str:
    if value is None or value == "":
        return "—"
    if key == "priority":
        return page.word("priority", str(value))
    if key == "status":
        return page.word("status", str(value))
    if key in TIME_KEYS:
        return local_text(value, zone)
    if key == "owner_id":
        return names.of("user", value)
    if key == "customer_id" and isinstance(value, int):
        return names.customer_label.get(value) or names.of("customer", value)
    if key == "step" and queue is not None:
        return page.step_label(queue.name, str(value))
    return str(value)


def core_label(page: Page, key: str) -> str:
    labels = {
        "title": page.gettext("Title"), "priority": page.gettext("Priority"),
        "requested_at": page.gettext("Requested completion"), "planned_at": page.gettext("Planned completion"),
        "customer_id": page.gettext("Customer"), "project_id": page.gettext("Project"),
        "status": page.gettext("Status"), "step": page.gettext("Step"), "owner_id": page.gettext("Owner"),
        "owner": page.gettext("Owner"), "group_name": page.gettext("Group"),
        "completed_at": page.gettext("Completed"), "cancelled_at": page.gettext("Cancelled"),
    }
    return labels.get(key, key)


def _changes(page: Page, before: Mapping[str, Any], after: Mapping[str, Any], template: ResolvedTemplate | None,
             names: Names, zone: dt.tzinfo, queue: ResolvedQueue | None) -> list[str]:
    """``label: old → new`` for every core attribute and custom field that changed."""
    lines = []
    for key, value in after.items():
        if key == "fields" and isinstance(value, dict):
            old_fields = before.get("fields") or {}
            for name, new in value.items():
                item = template.field(name) if template else None
                if item is None:
                    lines.append(f"{name}: {old_fields.get(name)} → {new}")
                    continue
                lines.append(page.gettext("%(what)s: %(old)s → %(new)s", what=page.label(item.label, name),
                                          old=field_text(page, item, old_fields.get(name), names, zone),
                                          new=field_text(page, item, new, names, zone)))
        elif key in CORE_KEYS and key not in ("step", "group_name", "status", "completed_at", "cancelled_at"):
            lines.append(page.gettext("%(what)s: %(old)s → %(new)s", what=core_label(page, key),
                                      old=_core_text(page, key, before.get(key), names, zone, queue),
                                      new=_core_text(page, key, value, names, zone, queue)))
    return lines


def describe(page: Page, event: Mapping[str, Any], template: ResolvedTemplate | None, queue: ResolvedQueue | None,
             names: Names, zone: dt.tzinfo) -> list[str]:
    """One audit event in words: what happened, then what changed."""
    kind = event["kind"]
    before: Mapping[str, Any] = event.get("before") or {}
    after: Mapping[str, Any] = event.get("after") or {}
    if kind == "created":
        return [page.gettext("created the work order in step %(step)s",
                             step=_core_text(page, "step", after.get("step"), names, zone, queue))]
    if kind in ("action_processed", "action_skipped"):
        words = []
        for name in (after.get("actions") or {}):
            label = _action_label(page, queue, name)
            words.append(page.gettext("processed action %(action)s", action=label) if kind == "action_processed"
                         else page.gettext("skipped action %(action)s", action=label))
        return words
    if kind in ("step_entered", "returned"):
        step = _core_text(page, "step", after.get("step"), names, zone, queue)
        lines = [page.gettext("moved to step %(step)s", step=step) if kind == "step_entered"
                 else page.gettext("sent the work order back to step %(step)s", step=step)]
        if before.get("owner_id") != after.get("owner_id"):
            lines += _changes(page, before, {"owner_id": after.get("owner_id")}, template, names, zone, queue)
        return lines
    if kind == "returned_to_supervisor":
        return [page.gettext("handed the work order to the supervisor %(owner)s",
                             owner=names.of("user", after.get("owner_id")))]
    if kind == "assigned":
        if event.get("source") == "taken":
            return [page.gettext("took the work order")]
        owner = after.get("owner_id")
        return [page.gettext("gave the work order to %(owner)s", owner=names.of("user", owner)) if owner
                else page.gettext("took the owner off the work order")]
    if kind == "completed":
        return [page.gettext("completed the work order")]
    if kind == "cancelled":
        lines = [page.gettext("cancelled the work order")]
        if event.get("source"):
            lines.append(page.gettext("Reason: %(reason)s", reason=event["source"]))
        return lines
    if kind == "linked":
        return [page.gettext("linked work order %(number)s", number=after.get("linked", ""))]
    if kind == "follow_up_failed":
        return [page.gettext("could not create the follow-up work order (%(template)s): %(reason)s",
                             template=after.get("follow_up_template", ""), reason=event.get("source") or "")]
    if kind == "attached":
        return [page.gettext("attached %(files)s", files=", ".join(
            str(f.get("filename", "")) for f in after.get("attachments") or [] if isinstance(f, dict)))]
    if kind == "comment_added":
        return [page.gettext("added a comment the customer can read") if after.get("client_viewable")
                else page.gettext("added an internal comment")]
    if kind == "reply_added":
        return [page.gettext("replied to the customer")]
    if kind == "follow_up_added":
        return [page.gettext("sent a follow-up to the subscribers")]
    if kind == "subscribed":
        return [page.gettext("started following the work order")]
    if kind == "unsubscribed":
        return [page.gettext("stopped following the work order")]
    if kind == "updated":
        return _changes(page, before, after, template, names, zone, queue) or [page.gettext("edited the work order")]
    return [str(kind)]


def _record_ids(events: Sequence[Mapping[str, Any]], key: str) -> set[Any]:
    found = set()
    for event in events:
        for side in ("before", "after"):
            value = (event.get(side) or {}).get(key)
            if value is not None:
                found.add(value)
    return found


def _field_sets(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [(event.get(side) or {}).get("fields") or {} for event in events for side in ("before", "after")]


def moves(page: Page, order: Mapping[str, Any], queue: ResolvedQueue | None) -> dict[str, Any]:
    """The ways on and back the current step offers: ``advance`` (when several) and ``returns``."""
    step = _step(queue, order["step"])
    done = all(a["state"] != "pending" for a in order["actions"])

    def target(name: str) -> str:
        return page.gettext("Complete") if name == COMPLETE else page.step_label(order["queue"], name)

    returns = []
    for name in order["returns"]:
        if name == "previous":
            if order["path"]:
                returns.append((name, page.gettext("Back to the previous step (%(step)s)",
                                                   step=target(order["path"][-1]))))
        elif name == "supervisor":
            returns.append((name, page.gettext("Hand to the supervisor")))
        elif name in order["path"]:
            returns.append((name, page.gettext("Back to %(step)s", step=target(name))))
    return {
        "advance": [(n, target(n)) for n in order["next"]] if len(order["next"]) > 1 or (done and step and step.actions == ()) else [],
        "ready": done, "returns": returns,
    }


def _span_words(page: Page, seconds: float) -> str:
    """A span of business time as "2 d 3 h", "3 h 20 min" or "12 min" (hours of 60 minutes, days of 24 h)."""
    minutes = max(1, int(abs(seconds) // 60))
    days, hours, rest = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return page.gettext("%(days)s d %(hours)s h", days=days, hours=hours)
    if hours:
        return page.gettext("%(hours)s h %(minutes)s min", hours=hours, minutes=rest)
    return page.gettext("%(minutes)s min", minutes=rest)


async def sla_panel(runtime: Runtime, page: Page, number: str) -> dict[str, Any] | None:
    """The order's SLA as the page shows it: its name, the nearest target, time left or overdue, paused."""
    status = await sla_status(runtime, number)
    if status is None:
        return None
    label = page.label(label_map(status["label"], runtime.workspace.settings.language), status["name"])
    target = str(status["target"] or "")
    targets = {"first_response": page.gettext("first response"), "next_response": page.gettext("next response"),
               "resolution": page.gettext("resolution")}
    target_words = targets.get(target) or (page.gettext("step %(step)s", step=target.removeprefix("step:"))
                                           if target.startswith("step:") else target)
    left = status["left"]
    if status["state"] == "stopped":
        text = page.gettext("stopped")
    elif left is None:
        text = page.gettext("all targets met")
    elif left < 0:
        text = page.gettext("overdue by %(time)s", time=_span_words(page, left))
    else:
        text = page.gettext("%(time)s left", time=_span_words(page, left))
    return {**status, "label_text": label, "target_words": target_words, "text": text,
            "overdue": left is not None and left < 0}


async def order_context(runtime: Runtime, actor: Actor, page: Page, order: dict[str, Any], *,
                        with_trail: bool = True) -> dict[str, Any]:
    """Everything the work-order page and its fragments show of ``order`` (as ``Runtime.view`` gives it)."""
    workspace = runtime.workspace
    template = workspace.templates.get(order["template"])
    queue = workspace.queues.get(order["queue"])
    fields = template.fields if template else ()
    zone = zone_of(workspace.settings.timezone)
    events = await runtime.events(actor, order["number"]) if with_trail else []
    names = await names_for(runtime.db, fields, [order["fields"], *_field_sets(events)],
                            customer_ids=[order["customer_id"], *_record_ids(events, "customer_id")],
                            user_ids=_record_ids(events, "owner_id"))
    step = _step(queue, order["step"])
    actions = [{**a, "label": _action_label(page, queue, a["name"], order["step"])} for a in order["actions"]]
    trail = [{"at": local_text(e["at"], zone), "iso": e["at"], "actor": e["actor"] or "Routecard", "kind": e["kind"],
              "lines": describe(page, e, template, queue, names, zone)} for e in reversed(events)]
    members: list[str] = []
    if order["group"] and order["status"] not in FINAL:
        members = sorted((await group_members(runtime.db, workspace, order["group"])).values())
    return {
        "order": order, "template": template, "queue": queue, "step": step, "actions": actions,
        "template_label": page.label(template.label, order["template"]) if template else order["template"],
        "queue_label": page.label(queue.label, order["queue"]) if queue else order["queue"],
        "moves": moves(page, order, queue), "final": order["status"] in FINAL,
        "offers_follow_up": bool(template and step and template.end_action == "agent_decides"
                                 and tuple(step.next) == (COMPLETE,)),
        "history": [(name, page.step_label(order["queue"], name)) for name in order["path"]],
        "sections": [{"index": i, "title": title or page.gettext("Details"), "fields": items,
                      "shown": {f.name: field_text(page, f, order["fields"].get(f.name), names, zone) for f in items}}
                     for i, (title, items) in enumerate(sections(fields))],
        "customer": (names.customer_label.get(order["customer_id"]) or names.of("customer", order["customer_id"]))
        if order["customer_id"] else None,
        "trail": trail, "members": members, "local": lambda value: local_text(value, zone), "names": names, "zone_name": workspace.settings.timezone,
        "values": {**form_values(fields, order["fields"], names, zone), **header_values(order, names, zone)},
        "errors": {}, "editing": None, "section_editing": None, "confirming": False, "conflict": None,
        "priorities": PRIORITIES, "decimal_pattern": decimal_pattern, **abilities(runtime, actor, order, template),
        "header_parts": HEADER_PARTS, "link_error": None, "link_value": "",
        "macros": [(m.name, page.label(label_map(m.label, workspace.settings.language), m.name), m.description)
                   for m in macros_for(runtime, order["template"])],
        "links": await runtime.links(actor, order["number"]),
        "files": await _files(runtime, order, fields), "upload_limit": size_words(workspace.settings.attachments.max_size),
        "plugin_panels": await runtime.plugins.order_panels(order, workspace.settings),
        "sla": await sla_panel(runtime, page, order["number"]) if actor.is_staff else None,
    }


async def _files(runtime: Runtime, order: Mapping[str, Any], fields: Sequence[ResolvedField]) -> dict[int, dict[str, Any]]:
    """The files the order's upload fields name (its own files only), with their sizes in words."""
    ids = [i for f in fields if f.type == "upload" for i in (order["fields"].get(f.name) or [])]
    found = await attachments_named(runtime.db, order["number"], ids)
    return {i: {**row, "size_text": size_words(row["size"])} for i, row in found.items()}


def abilities(runtime: Runtime, actor: Actor, order: Mapping[str, Any], template: ResolvedTemplate | None) -> dict[str, bool]:
    """Which controls to offer ``actor``, by the runtime's own rules (which check every change again)."""
    if template is None:
        return {"can_move": False, "can_edit": False, "can_cancel": False}
    owner = order["owner"]
    may = runtime.abilities(actor, template=template, group=order["group"],
                            queue=runtime.workspace.queues.get(order["queue"]),
                            owned_by_actor=None if owner is None else owner == actor.login)
    return {"can_move": may.move, "can_edit": may.edit, "can_cancel": may.cancel, "can_assign": may.assign}


def header_values(order: Mapping[str, Any], names: Names, zone: dt.tzinfo) -> dict[str, Any]:
    """The header's inputs for ``order``."""
    return {
        "title": order["title"], "priority": order["priority"], "owner": order["owner"] or "",
        "requested_at": local_input(order["requested_at"], zone), "planned_at": local_input(order["planned_at"], zone),
        "customer_id": names.of("customer", order["customer_id"]) if order["customer_id"] else "",
    }
