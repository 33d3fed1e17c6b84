"""The plugin manager: discovery, failure isolation, settings, and the calls into plugins.

Plugins (the built-ins of ``plugins/`` and third-party packages alike) are found through
the entry-point group ``routecard`` and registered under the entry point's name. A
plugin that raises while loading, or that implements a hook that does not exist
(``check_pending``), is disabled and reported with its name and the reason. Every
hook implementation is called on its own: one that raises is recorded as a failure
of its plugin (``Plugins.failures``), and the others still run. The engine never
imports ``plugins``: it only knows the names of the built-ins (``BUILTINS``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

import pluggy
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from . import hookspec
from .model.fields import FIELD_TYPES
from .plugin_api import (
    PLUGIN_ACTION,
    ActionContext,
    ActionResult,
    Channel,
    CliCommand,
    ConditionFunction,
    Event,
    EventContext,
    FieldType,
    OrderAction,
    OrderPanel,
)

if TYPE_CHECKING:
    from .runtime.service import Runtime
    from .runtime.state import Change

GROUP = "routecard"
"""The entry-point group plugins are declared in."""
BUILTINS: tuple[str, ...] = ("email", "webhook", "invoice")
"""The built-in plugins: entry points of the routecard distribution itself (see pyproject.toml)."""
MAX_FAILURES = 50

log = logging.getLogger("routecard.plugins")


@dataclass
class PluginInfo:
    """One plugin as ``routecard plugins`` shows it."""

    name: str
    source: str
    """``built-in``, or the distribution (package) that declares it."""
    status: str = "loaded"
    """``loaded`` or ``disabled``."""
    reason: str = ""
    hooks: tuple[str, ...] = ()
    failures: list[str] = field(default_factory=list)
    """Hooks of this plugin that raised (newest last, at most MAX_FAILURES)."""


Loader = Callable[[], object]


class Plugins:
    """The plugins of one process, their contributions, and their failures."""

    def __init__(self, *, discover: bool = True, extra: Iterable[tuple[str, Loader]] = (),
                 exclude: Collection[str] = ()) -> None:
        self.pm = pluggy.PluginManager(hookspec.PROJECT)
        self.pm.add_hookspecs(hookspec)
        self.info: dict[str, PluginInfo] = {}
        found: list[tuple[str, str, Loader]] = []
        if discover:
            for point in entry_points(group=GROUP):
                dist = point.dist.name if point.dist is not None else "unknown"
                found.append((point.name, "built-in" if dist == "routecard" else dist, point.load))
        found += [(name, "given", loader) for name, loader in extra]
        for name, source, loader in found:
            if name not in exclude:
                self._load(name, source, loader)
        for name in BUILTINS:
            if discover and name not in self.info and name not in exclude:
                self.info[name] = PluginInfo(name, "built-in", "disabled",
                                             "not installed: reinstall routecard (pip install -e .)")
        self._check_pending()
        self.schemas: dict[str, Mapping[str, Any]] = {}
        for name, schema in self._each("routecard_settings_schema"):
            self._settings_schema(name, schema)
        self.field_types: dict[str, FieldType] = self._named("routecard_field_types", FieldType, _field_problem)
        self.actions: dict[str, OrderAction] = self._named("routecard_actions", OrderAction, _action_problem)
        self.conditions: dict[str, ConditionFunction] = self._named("routecard_conditions", ConditionFunction)
        self.channels: dict[str, Channel] = {c.kind: c for c in self._named(
            "routecard_channels", Channel, key=lambda c: c.kind).values()}
        self.action_plugin: dict[str, str] = {}
        for plugin, actions in self._each("routecard_actions"):
            for action in actions or ():
                self.action_plugin.setdefault(getattr(action, "name", ""), plugin)
        self._event_impls: list[Any] = self.pm.hook.routecard_event.get_hookimpls()  # a copy each time it is asked
        self._event_wanted: dict[str, Any] = {
            impl.plugin_name: impl for impl in self.pm.hook.routecard_event_wanted.get_hookimpls()}
        self._answers: tuple[Any, dict[tuple[str, str, str], bool]] = (None, {})
        """The answers of ``routecard_event_wanted`` for the workspace settings they were given."""

    # -- loading --------------------------------------------------------------------------

    def _load(self, name: str, source: str, loader: Loader) -> None:
        if name in self.info:
            self.info[name] = PluginInfo(name, source, "disabled", f"a plugin named {name} is already loaded")
            return
        try:
            plugin = loader()
            self.pm.register(plugin, name=name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin is disabled, never fatal
            self.info[name] = PluginInfo(name, source, "disabled", f"failed to load: {_explain(exc)}")
            log.error("plugin %s disabled: %s", name, self.info[name].reason)
            return
        hooks = tuple(sorted(h.name for h in self.pm.get_hookcallers(plugin) or ()))
        self.info[name] = PluginInfo(name, source, hooks=hooks)

    def _check_pending(self) -> None:
        """Disable plugins implementing hooks that do not exist (misspelt names)."""
        while True:
            try:
                self.pm.check_pending()
                return
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin) or "?"
                self.pm.unregister(exc.plugin)
                info = self.info.setdefault(name, PluginInfo(name, "unknown"))
                info.status, info.reason = "disabled", f"invalid: {exc}"
                log.error("plugin %s disabled: %s", name, info.reason)

    def _settings_schema(self, name: str, schema: Any) -> None:
        if schema is None:
            return
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            self.fail(name, "routecard_settings_schema", f"its settings schema is invalid: {exc.message}")
            return
        self.schemas[name] = schema

    def _named(self, hook: str, kind: type[Any], problem: Callable[[Any], str | None] = lambda _: None,
               key: Callable[[Any], str] = lambda item: str(item.name)) -> dict[str, Any]:
        """The items a hook returns, by name; wrong, clashing or duplicate items are reported."""
        out: dict[str, Any] = {}
        for plugin, items in self._each(hook):
            for item in items or ():
                if not isinstance(item, kind):
                    self.fail(plugin, hook, f"returned {type(item).__name__}, not {kind.__name__}")
                    continue
                why = problem(item)
                if why is None and key(item) in out:
                    why = f"{key(item)} is already provided by another plugin"
                if why:
                    self.fail(plugin, hook, why)
                    continue
                out[key(item)] = item
        return out

    # -- calling ----------------------------------------------------------------------------

    def _each(self, hook: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Call every implementation of ``hook`` on its own; ``(plugin, result)`` of those that worked."""
        out: list[tuple[str, Any]] = []
        for impl in getattr(self.pm.hook, hook).get_hookimpls():
            try:
                out.append((impl.plugin_name, impl.function(**{a: kwargs[a] for a in impl.argnames})))
            except Exception as exc:  # noqa: BLE001 - recorded against the plugin
                self.fail(impl.plugin_name, hook, _explain(exc))
        return out

    def fail(self, plugin: str, hook: str, reason: str) -> None:
        """Record that ``plugin``'s ``hook`` failed (shown by ``routecard plugins``, logged)."""
        info = self.info.setdefault(plugin, PluginInfo(plugin, "unknown"))
        info.failures.append(f"{hook}: {reason}")
        del info.failures[:-MAX_FAILURES]
        log.error("plugin %s: %s failed: %s", plugin, hook, reason)

    @property
    def condition_functions(self) -> dict[str, Callable[[Any], Any]]:
        """The condition functions by name, as conditions call them."""
        return {name: item.function for name, item in self.conditions.items()}

    @property
    def failures(self) -> dict[str, list[str]]:
        """The recorded hook failures, by plugin."""
        return {name: list(info.failures) for name, info in self.info.items() if info.failures}

    def settings_problems(self, settings: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str, bool]]:
        """Problems of routecard.yaml's ``plugins`` settings: (path, message, is_error)."""
        out: list[tuple[tuple[str | int, ...], str, bool]] = []
        for name, values in settings.items():
            info = self.info.get(name)
            if info is None or info.status != "loaded":
                known = ", ".join(sorted(n for n, i in self.info.items() if i.status == "loaded"))
                out.append(((name,), f"no plugin named `{name}` is loaded, so its settings are not used"
                            f"{f' ({info.reason})' if info else ''}; loaded plugins: {known or 'none'}", False))
                continue
            schema = self.schemas.get(name)
            if schema is None:
                if values:
                    out.append(((name,), f"plugin `{name}` takes no settings", True))
                continue
            errors = list(Draft202012Validator(schema).iter_errors(values))
            for error in errors:
                path = list(error.absolute_path)
                if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                    allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
                    path += [next((k for k in error.instance if k not in allowed), "")]
                where = ".".join(str(p) for p in error.absolute_path)
                out.append(((name, *path),
                            f"plugin `{name}` setting{f' `{where}`' if where else 's'}: {error.message}", True))
            if not errors:
                for impl in self.pm.hook.routecard_settings_problems.get_hookimpls():
                    if impl.plugin_name != name:
                        continue
                    try:
                        answer: Any = impl.function(**{a: values for a in impl.argnames})
                        found = list(answer or ())
                    except Exception as exc:  # noqa: BLE001 - recorded against the plugin
                        self.fail(name, "routecard_settings_problems", _explain(exc))
                        continue
                    for path, message in found:
                        out.append(((name, *path), f"plugin `{name}`: {message}", True))
        return out

    def settings_of(self, plugin: str, workspace_settings: Any) -> Mapping[str, Any]:
        """The ``plugins.<plugin>`` settings of a workspace (empty when not set)."""
        values = getattr(workspace_settings, "plugins", {}) or {}
        return dict(values.get(plugin) or {})

    def cli_commands(self, taken: Collection[str] = ()) -> list[CliCommand]:
        """The plugins' sub-commands; one clashing with ``taken`` (or another plugin's) is refused."""
        out: dict[str, CliCommand] = {}
        for plugin, items in self._each("routecard_cli_commands"):
            for item in items or ():
                if not isinstance(item, CliCommand):
                    self.fail(plugin, "routecard_cli_commands", f"returned {type(item).__name__}, not CliCommand")
                elif item.name in taken or item.name in out:
                    self.fail(plugin, "routecard_cli_commands", f"the command name {item.name} is taken")
                else:
                    out[item.name] = item
        return list(out.values())

    async def order_panels(self, order: Mapping[str, Any], workspace_settings: Any) -> list[OrderPanel]:
        """The panels plugins show on the order page of ``order``."""
        out: list[OrderPanel] = []
        for impl in self.pm.hook.routecard_order_panels.get_hookimpls():
            args = {"order": order, "settings": self.settings_of(impl.plugin_name, workspace_settings)}
            items = await self._call(impl, "routecard_order_panels", args)
            for item in items or ():
                if isinstance(item, OrderPanel):
                    out.append(item)
                else:
                    self.fail(impl.plugin_name, "routecard_order_panels",
                              f"returned {type(item).__name__}, not OrderPanel")
        return out

    async def _call(self, impl: Any, hook: str, args: Mapping[str, Any]) -> Any:
        """One implementation of a hook that may be async; ``None`` (and a recorded failure) if it raises."""
        try:
            result = impl.function(**{a: args[a] for a in impl.argnames})
            if inspect.isawaitable(result):
                result = await result
            return result
        except Exception as exc:  # noqa: BLE001 - recorded against the plugin
            self.fail(impl.plugin_name, hook, _explain(exc))
            return None

    def _wanted(self, plugin: str, kind: str, template: str, workspace_settings: Any) -> bool:
        """Does ``plugin``'s event subscriber want events of ``kind`` about ``template``'s work orders?

        Yes unless the plugin's ``routecard_event_wanted`` says no; one that raises or answers
        other than True or False is recorded as a failure and handed the event. Each answer
        is asked once for the workspace settings in force (a reload gives new ones).
        """
        impl = self._event_wanted.get(plugin)
        if impl is None:
            return True
        given, answers = self._answers
        if given is not workspace_settings:
            answers = {}
            self._answers = (workspace_settings, answers)
        answer = answers.get((plugin, kind, template))
        if answer is None:
            answer = answers[plugin, kind, template] = self._ask_wanted(impl, kind, template, workspace_settings)
        return answer

    def _ask_wanted(self, impl: Any, kind: str, template: str, workspace_settings: Any) -> bool:
        plugin = impl.plugin_name
        args: dict[str, Any] = {"kind": kind, "template": template}
        if "settings" in impl.argnames:
            args["settings"] = self.settings_of(plugin, workspace_settings)
        try:
            answer = impl.function(**{name: args[name] for name in impl.argnames})
        except Exception as exc:  # noqa: BLE001 - recorded against the plugin
            self.fail(plugin, "routecard_event_wanted", _explain(exc))
            return True
        if not isinstance(answer, bool):
            self.fail(plugin, "routecard_event_wanted", f"returned {type(answer).__name__}, not bool")
            return True
        return answer

    def wants_event(self, kind: str, template: str, workspace_settings: Any) -> bool:
        """Does any event subscriber want events of ``kind`` about ``template``'s work orders?"""
        return any(self._wanted(impl.plugin_name, kind, template, workspace_settings) for impl in self._event_impls)

    async def dispatch(self, runtime: Runtime, change: Change) -> None:
        """Hand every event of a saved ``change`` to the event subscribers that want it (in its transaction)."""
        impls = self._event_impls
        if not impls:
            return
        order = change.order
        settings = runtime.workspace.settings
        template = order.template.name
        handed = [(index, [impl for impl in impls if self._wanted(impl.plugin_name, kind, template, settings)])
                  for index, (kind, *_) in enumerate(change.events)]
        if not any(wanting for _, wanting in handed):
            return
        state = order.state
        view = {"number": order.number, "template": state.get("template"), "queue": state.get("queue"),
                "step": state.get("step"), "status": state.get("status"), "priority": state.get("priority"),
                "title": state.get("title"), "version": order.version, "fields": dict(state.get("fields") or {})}

        async def send(channel: str, key: str, payload: Mapping[str, Any]) -> bool:
            return await enqueue_delivery(runtime, channel, key, payload)

        contexts = {impl.plugin_name: EventContext(settings=self.settings_of(impl.plugin_name, settings),
                                                   workspace=settings.name, base_url=settings.base_url, send=send)
                    for _, wanting in handed for impl in wanting}
        for index, wanting in handed:
            kind, before, after, source = change.events[index]
            event = Event(kind=kind, order=view, before=before, after=after, source=source,
                          key=f"{order.id}:{order.version}:{index}")
            for impl in wanting:
                await self._call(impl, "routecard_event", {"event": event, "context": contexts[impl.plugin_name]})


async def enqueue_delivery(runtime: Runtime, channel: str, key: str, payload: Mapping[str, Any]) -> bool:
    """Queue one delivery of ``channel`` in the outbox (in the caller's transaction); False if already queued."""
    from .runtime.state import now

    key = f"{channel}:{key}"[:100]
    if await runtime.db.fetch("SELECT id FROM rc_outbox WHERE idempotency_key = {}", key):
        return False
    moment = now()
    await runtime.db.execute(
        "INSERT INTO rc_outbox (kind, idempotency_key, payload, state, attempts, next_attempt_at, created_at) "
        "VALUES ({}, {}, {}, 'pending', 0, {}, {})", channel[:20], key, json.dumps(dict(payload)), moment, moment)
    return True


async def run_plugin_action(runtime: Runtime, name: str, order: Mapping[str, Any],
                            parameters: Mapping[str, Any]) -> ActionResult:
    """Run the plugin action ``name`` on ``order`` (the API's view) and return its result.

    Never raises: no provider gives ``ran=False`` (the action is then done by hand); an
    exception, a timeout or a wrong return value gives ``ok=False`` with the error, and
    is recorded as a failure of the plugin.
    """
    plugins: Plugins = runtime.plugins
    action = plugins.actions.get(name)
    if action is None:
        return ActionResult(ok=False, ran=False, message=f"no plugin provides {name}; processed by hand")
    plugin = plugins.action_plugin.get(name, name.split(".")[0])
    settings = runtime.workspace.settings
    context = ActionContext(action=name, order=order, parameters=dict(parameters),
                            settings=plugins.settings_of(plugin, settings),
                            workspace=settings.name, base_url=settings.base_url)
    try:
        result = await asyncio.wait_for(action.run(context), timeout=action.timeout)
    except TimeoutError:
        error = f"{name} did not finish within {action.timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - a failing action is a result, not a crash
        error = f"{name} failed: {_explain(exc)}"
    else:
        if isinstance(result, ActionResult):
            return result
        error = f"{name} returned {type(result).__name__}, not ActionResult"
    plugins.fail(plugin, "routecard_actions", error)
    return ActionResult(ok=False, error=error)


def _explain(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def _field_problem(item: FieldType) -> str | None:
    if item.name in FIELD_TYPES:
        return f"field type {item.name} clashes with a core field type"
    return item.problem()


def _action_problem(item: OrderAction) -> str | None:
    if not PLUGIN_ACTION.match(item.name):
        return f"action name {item.name!r} is not of the form plugin.action"
    return None


@cache
def default_plugins() -> Plugins:
    """The plugins installed in this environment, loaded once per process."""
    return Plugins()


def describe(plugins: Plugins) -> Sequence[PluginInfo]:
    """Every plugin, loaded or disabled, sorted by name."""
    return [plugins.info[name] for name in sorted(plugins.info)]
