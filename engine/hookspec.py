"""Every hook a Routecard plugin can implement, in one module.

A plugin is a module (or object) with functions marked ``@engine.hookimpl`` whose names
are the hooks below. It is found through the entry-point group ``routecard`` (the
built-ins in ``plugins/`` are declared there too) and registered under the entry
point's name. ``engine.plugins.Plugins`` calls each implementation on its own, so a
plugin that raises is reported by name and the others still run; none of these hooks
is ``firstresult`` (every plugin contributes) and none is ``historic`` (all plugins
are registered before any hook is called). Implementations may take any subset of
a hook's arguments. Hooks marked "may be async" may return an awaitable.

The values exchanged are the small frozen structs of ``engine.plugin_api``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import pluggy

from .plugin_api import (
    Channel,
    CliCommand,
    ConditionFunction,
    Event,
    EventContext,
    FieldType,
    OrderAction,
    OrderPanel,
)

PROJECT = "routecard"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)
"""Mark a plugin's hook implementations with this (exported as ``engine.hookimpl``)."""


# -- settings -------------------------------------------------------------------------------


@hookspec
def routecard_settings_schema() -> Mapping[str, Any] | None:
    """The JSON Schema (Draft 2020-12) of this plugin's settings, or ``None`` if it takes none.

    Called once when plugins load. The settings are written in routecard.yaml under
    ``plugins: {<plugin name>: {...}}`` and checked against this schema by ``routecard
    check`` (located errors); a plugin without a schema accepts no settings.
    """
    return None


@hookspec
def routecard_settings_problems(settings: Mapping[str, Any]) -> Sequence[tuple[Sequence[str | int], str]]:
    """Problems of this plugin's settings a schema cannot see, as (key path, message) pairs.

    Called by ``routecard check`` (and whenever a workspace is opened) after the settings
    passed the plugin's schema; e.g. the webhook plugin refuses an internal URL here.
    """
    return ()


# -- the definition language -----------------------------------------------------------------


@hookspec
def routecard_field_types() -> Sequence[FieldType]:
    """The field types this plugin adds (``type: <name>`` in templates and shared fields).

    Called once when plugins load. Each type names a core base type (its JSON form and
    the conditions it allows), a column type from an allow-list, and its validation.
    A name that clashes with a core type or another plugin's type is refused and reported.
    """
    return ()


@hookspec
def routecard_conditions() -> Sequence[ConditionFunction]:
    """Pure functions that conditions may call by name (e.g. ``is_business_day``).

    Called once when plugins load. The functions get field values and return a value;
    they must not do I/O (conditions run inside transactions).
    """
    return ()


# -- the runtime -------------------------------------------------------------------------------


@hookspec
def routecard_actions() -> Sequence[OrderAction]:
    """The order actions this plugin provides, named ``plugin.action`` (e.g. ``invoice.generate``).

    Called once when plugins load. An action runs when a step action bound to it
    (``plugin: invoice.generate``) is processed, or from a rule's ``call`` action; it
    receives an ``ActionContext`` and returns an ``ActionResult``, recorded on the action.
    """
    return ()


@hookspec
def routecard_event(event: Event, context: EventContext) -> Awaitable[None] | None:
    """Called for every audit event of every saved change, inside its transaction (may be async).

    Subscribers hand deliveries to an outbound channel with ``context.send`` (written to
    the outbox in the same transaction: they fire once, and only if the change commits).
    A subscriber that raises is recorded as a failure of its plugin; the change still commits.
    """
    return None


@hookspec
def routecard_event_wanted(kind: str, template: str, settings: Mapping[str, Any]) -> bool:
    """Whether this plugin's ``routecard_event`` wants events of ``kind`` (``created``,
    ``step_entered``, ...) about work orders of ``template``; ``settings`` are the plugin's
    settings in the workspace (``plugins.<name>``).

    Optional and plain (not async): a subscriber is not called with events its plugin says
    no to. A plugin without it is handed every event. The answer must depend on the
    arguments alone: it is asked once per kind and template for the workspace's settings
    as loaded, and kept until they are loaded again. When no subscriber wants
    ``created`` for a template (and no rule, SLA or other listener writes for it), a new
    work order of it is saved on PostgreSQL in one statement, without BEGIN and COMMIT.
    """
    return True


@hookspec
def routecard_channels() -> Sequence[Channel]:
    """The outbound channels this plugin delivers (outbox row kinds, e.g. ``email``, ``webhook``).

    Called once when plugins load. The outbox worker claims due rows of each channel's
    kind, hands them to its ``send`` and records the outcomes (retries with backoff).
    """
    return ()


# -- screens and commands ----------------------------------------------------------------------


@hookspec
def routecard_order_panels(order: Mapping[str, Any], settings: Mapping[str, Any]) -> Sequence[OrderPanel]:
    """Boxes shown on the order page of ``order`` (the API's view of it); may be async.

    Called when the page is rendered. Panels are plain data: every text is escaped,
    so a plugin cannot put markup or script on the page.
    """
    return ()


@hookspec
def routecard_cli_commands() -> Sequence[CliCommand]:
    """Sub-commands this plugin adds to ``routecard`` (``routecard <name> ...``).

    Called when the command line is built; a name that clashes with a built-in
    command is refused and reported.
    """
    return ()
