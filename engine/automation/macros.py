"""Macros: named bundles of actions an agent applies to a work order with one click.

A macro is all or nothing: its actions run in one transaction, and if one fails
nothing of it is kept. Its changes to the order are saved as ONE audit event
(``macro_applied``, source ``macro NAME``) at one new version; what it did elsewhere
(comments, mails, new work orders) is listed in that event's ``notes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import Forbidden, NotFound
from ..model.automation import Macro
from ..runtime.actors import Actor
from ..runtime.state import MERGED_KEYS, Change, Order
from .actions import NOTE_KINDS, Doing, run_actions

if TYPE_CHECKING:
    from ..runtime.service import Runtime


def macros_for(runtime: Runtime, template: str) -> list[Macro]:
    """The macros offered on work orders of ``template``, by name."""
    return [m for _, m in sorted(runtime.workspace.macros.items())
            if not m.templates or template in m.templates]


def merge_events(change: Change, kind: str, source: str) -> None:
    """Fold the events of ``change`` into one: first ``before`` and last ``after`` per key, notes listed."""
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    notes: list[dict[str, Any]] = []
    for event_kind, old, new, _source in change.events:
        if event_kind in NOTE_KINDS:
            notes.append({"kind": event_kind, **new})
            continue
        for key, value in new.items():
            if key in MERGED_KEYS:
                if event_kind in ("step_entered", "returned") and key == "actions":
                    before.setdefault(key, {})
                    after[key] = {}
                for name, item in value.items():
                    before.setdefault(key, {}).setdefault(name, old.get(key, {}).get(name))
                    after.setdefault(key, {})[name] = item
            else:
                before.setdefault(key, old.get(key))
                after[key] = value
    if notes:
        after["notes"] = notes
    change.events[:] = [(kind, before, after, source)]


async def apply_macro(runtime: Runtime, actor: Actor, number: str, version: Any, macro_name: str) -> dict[str, Any]:
    """Apply macro ``macro_name`` to work order ``number`` (at ``version``) as ``actor``; the order's view.

    The actor must be allowed to edit the order. Raises ``ActionFailed`` (nothing kept)
    when an action cannot be done.
    """
    macro = runtime.workspace.macros.get(macro_name)
    async with runtime.db.transaction():
        order: Order = await runtime._load_for_change(actor, number, version)
        if macro is None or (macro.templates and order.template.name not in macro.templates):
            raise NotFound(f"no macro {macro_name} for work order {number}")
        if not actor.is_staff or not runtime.abilities_on(actor, order).edit:
            raise Forbidden(f"{actor.login} may not edit work order {number}, so may not apply a macro to it")
        source = f"macro {macro_name}"
        change = Change(order, actor.id, runtime.workspace.fingerprint)
        await run_actions(Doing(runtime, order, actor, change, source), macro.actions)
        if not change.events:
            return await runtime.view(order)
        merge_events(change, "macro_applied", source)
        await runtime._save(change)
    return await runtime.view(order)
