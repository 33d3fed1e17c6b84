"""Plugins: the example third-party plugin (routecard-iban) found through its entry point, its field
type in check, database, API and forms, its action run from a queue step, and broken plugins isolated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine import hookimpl
from engine.cli import main
from engine.compile import compile_schema
from engine.compile.spec import extension_table
from engine.identifiers import quote
from engine.db import connect
from engine.errors import DefinitionError
from engine.plugin_api import ActionResult, FieldType, OrderAction, OrderPanel
from engine.plugins import Plugins, default_plugins
from engine.workspace import open_workspace
from tests.api_helpers import Api, served
from tests.migration_helpers import write_workspace
from tests.web_helpers import DESK_GROUPS, Browser

ROOT = Path(__file__).resolve().parent.parent
USERS = {"sam": {"password": "correct horse"}, "kim": {"password": "correct horse"}}
GOOD_IBAN = "DE89 3704 0044 0532 0130 00"

ORDERS = """
    kind: Template
    name: server_order
    label: Server order
    team: desk
    range: [desk]
    fields:
      - name: billing_iban
        type: iban
        label: IBAN for direct debit
        required: true
      - name: hostname
        type: input
    ---
    # a condition function of the plugin: orders paid from a German or Austrian account
    kind: Rule
    name: domestic_debit
    on: [created]
    when: {field: billing_iban, function: iban_country, in: [DE, AT]}
    do:
      - comment: {text: Domestic direct debit.}
    ---
    kind: Queue
    name: servers
    templates: [server_order]
    steps:
      - name: setup
        group: desk
        actions:
          - {name: provision, label: Provision the server, plugin: provision.server, with: {plan: large}}
          - {name: invoice, label: Draft the invoice, plugin: invoice.generate, with: {copies: 2}}
          - {name: handover, label: Hand over}
      - name: done
        group: desk
        actions:
          - {name: close, label: Close}
"""


class Provisioning(BaseHTTPRequestHandler):
    """A fake provisioning service: 201 with a server id, or 503 while ``failing``."""

    received: list[dict[str, Any]] = []
    failing = False

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Provisioning.received.append(body)
        status, answer = (503, {"error": "busy"}) if Provisioning.failing else (201, {"server": "srv-42"})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provisioning() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Provisioning)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Provisioning.received, Provisioning.failing = [], False
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def servers_workspace(root: Path, port: int = 9) -> Path:
    settings = f"""
        name: servers
        plugins:
          iban:
            provisioning_url: http://127.0.0.1:{port}/servers
            allow_hosts: [127.0.0.1]
          invoice:
            prefix: R-
    """
    return write_workspace(root, {"routecard.yaml": settings, "team.yaml": DESK_GROUPS, "orders.yaml": ORDERS})


@pytest.fixture
async def api(database_url: str, tmp_path: Path, provisioning: int) -> AsyncIterator[Api]:
    async with served(servers_workspace(tmp_path / "servers", provisioning), database_url, USERS) as api:
        yield api


# -- discovery, check, compile ----------------------------------------------------------------


def test_the_example_plugin_is_found_through_its_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    plugins = Plugins()
    info = plugins.info["iban"]
    assert (info.status, info.source) == ("loaded", "routecard-iban")
    assert set(info.hooks) == {"routecard_field_types", "routecard_actions", "routecard_settings_schema",
                               "routecard_conditions"}
    assert set(plugins.condition_functions) == {"iban_country"}
    assert {"email", "webhook", "invoice"} <= {n for n, i in plugins.info.items() if i.source == "built-in"}
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "iban (routecard-iban) loaded\n  hooks: actions, conditions, field_types, settings_schema" in out
    assert "webhook (built-in) loaded" in out and "email (built-in) loaded\n  hooks: channels" in out


def test_check_accepts_the_plugin_field_type_and_locates_it_without_the_plugin(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = servers_workspace(tmp_path / "servers")
    assert main(["check", str(root)]) == 0, capsys.readouterr().err
    with pytest.raises(DefinitionError) as raised:
        open_workspace(root, plugins=Plugins(exclude={"iban"}))
    messages = [str(d) for d in raised.value.diagnostics]
    line = textwrap.dedent(ORDERS).splitlines().index("    type: iban") + 1
    assert f"orders.yaml:{line}:11: error: `fields[0].type` must be one of: boolean, customer, date, datetime, " \
           "decimal, email, input, multiselect, number, reference, select, text, upload, url, user; " \
           'found "iban"' in messages
    # the rule calling its condition function: located at the function's name
    lines = textwrap.dedent(ORDERS).splitlines()
    rule = next(i for i, text in enumerate(lines) if "function: iban_country" in text)
    column = lines[rule].index("iban_country") + 1
    assert (f"orders.yaml:{rule + 1}:{column}: error: unknown condition function `iban_country`; "
            "no installed plugin provides condition functions") in messages
    # its settings are not checked, only noted, while the plugin is missing
    assert any("warning: no plugin named `iban` is loaded" in m for m in messages)


def test_plugin_settings_are_checked_against_the_plugins_schema(tmp_path: Path) -> None:
    root = servers_workspace(tmp_path / "servers")
    text = (root / "routecard.yaml").read_text().replace("prefix: R-", "prefix: R-\n    colour: red")
    (root / "routecard.yaml").write_text(text)
    with pytest.raises(DefinitionError) as raised:
        open_workspace(root)
    assert any(str(d).startswith("routecard.yaml:9:13: error: plugin `invoice` settings: Additional properties")
               for d in raised.value.diagnostics), raised.value.diagnostics


def test_the_plugin_field_type_compiles_to_its_column_type(tmp_path: Path) -> None:
    schema = compile_schema(open_workspace(servers_workspace(tmp_path / "servers")))
    table = next(t for t in schema.tables if t.template == "server_order")
    columns = {c.name: c.type for c in table.columns}
    assert columns["billing_iban"] == "varchar(34)" and columns["hostname"] == "varchar(255)"


async def test_the_database_column_has_the_plugins_type(api: Api) -> None:
    table = extension_table("server_order")
    if api.db.dialect == "postgresql":
        rows = await api.db.fetch(
            "SELECT data_type, character_maximum_length AS length FROM information_schema.columns "
            "WHERE table_name = {} AND column_name = {}", table, "billing_iban")
        assert [(r["data_type"], r["length"]) for r in rows] == [("character varying", 34)]
    else:
        rows = await api.db.fetch("SELECT type FROM pragma_table_info({}) WHERE name = {}", table, "billing_iban")
        assert [r["type"].lower() for r in rows] == ["varchar(34)"]


# -- API and forms -------------------------------------------------------------------------------


async def test_the_api_validates_and_normalizes_the_plugin_field(api: Api) -> None:
    bad = await api.post("sam", "/api/templates/server_order/orders",
                         {"title": "x", "fields": {"billing_iban": "DE89 3704 0044 0532 0130 01"}})
    assert bad.status_code == 422, bad.text
    assert {"field": "fields.billing_iban", "message": "the IBAN's check digits do not match (a typing error?)"} \
        in bad.json()["errors"]
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0
    good = await api.post("sam", "/api/templates/server_order/orders",
                          {"title": "x", "fields": {"billing_iban": GOOD_IBAN.lower()}})
    assert good.status_code == 201, good.text
    assert good.json()["fields"]["billing_iban"] == "DE89370400440532013000"
    stored = await api.db.fetch_value(f"SELECT billing_iban FROM {quote(extension_table('server_order'))}")
    assert stored == "DE89370400440532013000"


async def test_the_catalog_names_the_plugin_field_type(api: Api) -> None:
    listed = await api.get("sam", "/api/templates")
    assert listed.status_code == 200, listed.text
    (template,) = [t for t in listed.json() if t["name"] == "server_order"]
    iban = next(f for f in template["fields"] if f["name"] == "billing_iban")
    assert (iban["type"], iban["base"]) == ("iban", "input")
    assert "base" not in next(f for f in template["fields"] if f["name"] == "hostname")


async def test_a_rule_calls_the_plugins_condition_function(api: Api) -> None:
    """`function: iban_country, in: [DE, AT]`: the rule fires for a German account, not for a British one."""
    fired: dict[str, list[str]] = {}
    for iban in (GOOD_IBAN, "GB82 WEST 1234 5698 7654 32"):
        made = await api.post("sam", "/api/templates/server_order/orders", {"title": "x", "fields": {"billing_iban": iban}})
        assert made.status_code == 201, made.text
        rows = await api.db.fetch(
            "SELECT e.kind, e.source FROM rc_event e JOIN rc_work_order w ON w.id = e.work_order_id "
            "WHERE w.number = {} AND e.kind = 'rule_fired'", made.json()["number"])
        fired[iban[:2]] = [str(r["source"]).split(" (")[0] for r in rows]
    assert fired == {"DE": ["rule domestic_debit"], "GB": []}


async def test_the_form_shows_and_checks_the_plugin_field(api: Api) -> None:
    browser = Browser(api)
    await browser.sign_in("sam")
    page = await browser.get("sam", "/new/server_order")
    assert page.status_code == 200
    assert 'data-type="iban" placeholder="DE89 3704 0044 0532 0130 00"' in page.text and 'maxlength="34"' in page.text
    sent = await browser.post("sam", "/new/server_order", {"title": "Form order", "fields.billing_iban": "GB00 0000"})
    assert "has 22 characters" in sent.text or "not an IBAN" in sent.text
    assert await api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0
    sent = await browser.post("sam", "/new/server_order", {"title": "Form order", "fields.billing_iban": GOOD_IBAN})
    assert sent.status_code == 204 and sent.headers["hx-redirect"].startswith("/orders/"), sent.text
    assert await api.db.fetch_value(f"SELECT billing_iban FROM {quote(extension_table('server_order'))}") == "DE89370400440532013000"


# -- the action, run from a queue step -------------------------------------------------------------


async def _new_order(api: Api) -> dict[str, Any]:
    created = await api.post("sam", "/api/templates/server_order/orders",
                             {"title": "Web server", "fields": {"billing_iban": GOOD_IBAN, "hostname": "web1"}})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_the_plugin_action_runs_from_the_step_and_its_result_shows(api: Api) -> None:
    order = await _new_order(api)
    number = order["number"]
    done = await api.post("sam", f"/api/orders/{number}/actions/provision", {"version": order["version"]})
    assert done.status_code == 200, done.text
    provision = next(a for a in done.json()["actions"] if a["name"] == "provision")
    assert provision["state"] == "processed"
    assert provision["result"] == {"plugin": "provision.server", "ran": True, "ok": True,
                                   "message": "server srv-42 provisioned", "data": {"server": "srv-42", "status": 201}}
    assert Provisioning.received == [{"order": number, "plan": "large",
                                      "fields": {"billing_iban": "DE89370400440532013000", "hostname": "web1"}}]
    invoiced = await api.post("sam", f"/api/orders/{number}/actions/invoice", {"version": done.json()["version"]})
    result = next(a for a in invoiced.json()["actions"] if a["name"] == "invoice")["result"]
    assert result["ran"] and result["data"] == {"invoice": f"R-{number}", "copies": 2}
    events = (await api.get("sam", f"/api/orders/{number}/events")).json()
    processed = [e for e in events if e["kind"] == "action_processed"]
    assert processed[0]["after"]["action_result"]["data"]["server"] == "srv-42"
    browser = Browser(api)
    await browser.sign_in("sam")
    page = (await browser.get("sam", f"/orders/{number}")).text
    assert "server srv-42 provisioned" in page
    assert 'class="card plugin-panel" aria-label="Invoice"' in page and f"<dd>R-{number}</dd>" in page


async def test_a_failing_plugin_action_stays_pending_with_its_error(api: Api) -> None:
    order = await _new_order(api)
    number = order["number"]
    Provisioning.failing = True
    failed = await api.post("sam", f"/api/orders/{number}/actions/provision", {"version": order["version"]})
    assert failed.status_code == 200, failed.text
    view = failed.json()
    provision = next(a for a in view["actions"] if a["name"] == "provision")
    assert provision["state"] == "pending" and provision["result"]["ok"] is False
    assert provision["result"]["error"] == "the provisioning service answered 503"
    assert view["step"] == "setup" and view["version"] == order["version"] + 1
    events = (await api.get("sam", f"/api/orders/{number}/events")).json()
    assert events[-1]["kind"] == "action_failed" and events[-1]["after"]["actions"] == {"provision": "pending"}
    browser = Browser(api)
    await browser.sign_in("sam")
    assert 'action-result failed" role="status">the provisioning service answered 503' in \
        (await browser.get("sam", f"/orders/{number}")).text
    Provisioning.failing = False  # processed again once the service is back
    again = await api.post("sam", f"/api/orders/{number}/actions/provision", {"version": view["version"]})
    assert next(a for a in again.json()["actions"] if a["name"] == "provision")["state"] == "processed"


# -- broken plugins ----------------------------------------------------------------------------


def _raises_on_load() -> object:
    raise RuntimeError("cannot import my_dependency")


class _Misspelt:
    @hookimpl
    def routecard_feild_types(self) -> list[FieldType]:
        return []


class _Raising:
    """Loads fine, but every hook it implements raises (or returns nonsense)."""

    @hookimpl
    def routecard_field_types(self) -> list[FieldType]:
        raise ValueError("field types exploded")

    @hookimpl
    def routecard_actions(self) -> list[Any]:
        async def explode(context: Any) -> ActionResult:
            raise ZeroDivisionError("division by zero in the plugin")
        return [OrderAction(name="provision.server", run=explode), "not an action"]

    @hookimpl
    async def routecard_event(self, event: Any) -> None:
        raise RuntimeError("subscriber exploded")

    @hookimpl
    def routecard_order_panels(self, order: Any) -> list[OrderPanel]:
        raise RuntimeError("panel exploded")


def broken_plugins() -> Plugins:
    return Plugins(extra=[("on_load", _raises_on_load), ("misspelt", _Misspelt), ("raising", _Raising)],
                   exclude={"iban"})


def test_broken_plugins_are_disabled_or_recorded_by_name() -> None:
    plugins = broken_plugins()
    assert plugins.info["on_load"].status == "disabled"
    assert plugins.info["on_load"].reason == "failed to load: RuntimeError: cannot import my_dependency"
    assert plugins.info["misspelt"].status == "disabled" and "routecard_feild_types" in plugins.info["misspelt"].reason
    raising = plugins.info["raising"]
    assert raising.status == "loaded"
    assert "routecard_field_types: ValueError: field types exploded" in raising.failures
    assert "routecard_actions: returned str, not OrderAction" in raising.failures
    assert set(plugins.actions) == {"provision.server", "invoice.generate", "webhook.post"}
    assert {"email", "webhook", "invoice"} <= {n for n, i in plugins.info.items() if i.status == "loaded"}


async def test_hooks_that_raise_do_not_stop_the_app(database_url: str, tmp_path: Path) -> None:
    root = servers_workspace(tmp_path / "servers")
    text = (root / "orders.yaml").read_text().replace("type: iban", "type: input")
    text = text.replace("function: iban_country, in: [DE, AT]", "contains: DE")  # without the iban plugin
    (root / "orders.yaml").write_text(text)
    (root / "routecard.yaml").write_text("name: servers\n")
    plugins = broken_plugins()
    async with served(root, database_url, USERS, plugins=plugins) as api:
        created = await api.post("sam", "/api/templates/server_order/orders",
                                 {"title": "x", "fields": {"billing_iban": "anything"}})
        assert created.status_code == 201, created.text  # the event subscriber raised; the order is saved
        order = created.json()
        done = await api.post("sam", f"/api/orders/{order['number']}/actions/provision", {"version": order["version"]})
        provision = next(a for a in done.json()["actions"] if a["name"] == "provision")
        assert provision["state"] == "pending"
        assert provision["result"]["error"] == "provision.server failed: ZeroDivisionError: division by zero in the plugin"
        browser = Browser(api)
        await browser.sign_in("sam")
        page = await browser.get("sam", f"/orders/{order['number']}")
        assert page.status_code == 200 and "plugin-panel" not in page.text
        assert (await api.client.get("/health")).status_code == 200
    failures = plugins.info["raising"].failures
    assert "routecard_event: RuntimeError: subscriber exploded" in failures
    assert "routecard_order_panels: RuntimeError: panel exploded" in failures
    assert any(f.startswith("routecard_actions: provision.server failed: ZeroDivisionError") for f in failures)


class _Recording:
    """An event subscriber that records the kinds of the events it was handed."""

    def __init__(self) -> None:
        self.handed: list[str] = []

    @hookimpl
    async def routecard_event(self, event: Any) -> None:
        self.handed.append(event.kind)


class _Picky(_Recording):
    """Wants the event kinds its settings list; counts how often it was asked."""

    asked = 0

    @hookimpl
    def routecard_event_wanted(self, kind: str, settings: Any) -> bool:
        self.asked += 1
        return kind in settings.get("kinds", ())


class _Unsure(_Recording):
    """Its answer is no answer: it raises for one kind and says "yes" for the others."""

    @hookimpl
    def routecard_event_wanted(self, kind: str) -> Any:
        if kind == "created":
            raise RuntimeError("cannot tell")
        return "yes"


async def test_subscribers_get_only_the_events_they_want() -> None:
    from types import SimpleNamespace

    picky, unsure = _Picky(), _Unsure()
    plugins = Plugins(discover=False, extra=[("picky", lambda: picky), ("unsure", lambda: unsure)])
    settings = SimpleNamespace(name="desk", base_url="http://desk.example", plugins={"picky": {"kinds": ["completed"]}})
    assert not plugins._wanted("picky", "created", "ticket", settings)
    assert plugins._wanted("picky", "completed", "ticket", settings)
    assert plugins.wants_event("created", "ticket", settings)  # the unsure one could not say no
    order = SimpleNamespace(id=1, number="T-1", version=2, template=SimpleNamespace(name="ticket"),
                            state={"template": "ticket", "fields": {}})
    change = SimpleNamespace(order=order, events=[("created", {}, {}, None), ("completed", {}, {}, None),
                                                  ("step_entered", {}, {}, None)])
    await plugins.dispatch(SimpleNamespace(workspace=SimpleNamespace(settings=settings)), change)  # type: ignore[arg-type]
    assert picky.handed == ["completed"]
    assert unsure.handed == ["created", "completed", "step_entered"]
    failures = plugins.info["unsure"].failures
    assert "routecard_event_wanted: RuntimeError: cannot tell" in failures
    assert "routecard_event_wanted: returned str, not bool" in failures
    # asked once per kind and template for the settings in force, again for new settings
    asked = picky.asked
    assert plugins.wants_event("completed", "ticket", settings) and picky.asked == asked
    assert plugins._wanted("picky", "completed", "other", settings) and picky.asked == asked + 1
    reloaded = SimpleNamespace(name="desk", base_url="http://desk.example", plugins={"picky": {"kinds": ["created"]}})
    assert plugins._wanted("picky", "created", "ticket", reloaded) and picky.asked == asked + 2
    reloaded.plugins = {}
    assert not Plugins(discover=False, extra=[("picky", _Picky)]).wants_event("created", "ticket", reloaded)


BROKEN_MODULE = """
from engine import hookimpl

raise ImportError("this plugin needs a library that is not installed")
"""
NOISY_MODULE = """
from engine import hookimpl
from engine.plugin_api import CliCommand

def greet(args):
    print(f"hello {args.who} from a plugin")
    return 3

@hookimpl
def routecard_cli_commands():
    return [CliCommand(name="hello", help="greet", run=greet,
                       configure=lambda parser: parser.add_argument("who")),
            CliCommand(name="check", help="clashes with a built-in command", run=greet)]

@hookimpl
def routecard_event(event):
    raise RuntimeError("subscriber exploded")

@hookimpl
def routecard_field_types():
    raise RuntimeError("field types exploded")
"""


def _fake_distribution(folder: Path) -> None:
    """Two plugins declared through real entry points, the way pip installs them (a .dist-info folder)."""
    (folder / "broken_plugin.py").write_text(BROKEN_MODULE)
    (folder / "noisy_plugin.py").write_text(NOISY_MODULE)
    info = folder / "broken_plugins-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugins\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[routecard]\nbroken = broken_plugin\nnoisy = noisy_plugin\n")


def test_the_real_server_starts_and_serves_with_broken_plugins_installed(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    folder.mkdir()
    _fake_distribution(folder)
    root = servers_workspace(tmp_path / "servers")
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(ROOT)]), "PYTHONUNBUFFERED": "1"}

    def routecard(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "engine.cli", *args], capture_output=True, text=True,
                              timeout=120, env=env, cwd=ROOT, check=False)

    listed = routecard("plugins")
    assert listed.returncode == 0, listed.stderr
    assert "broken (broken-plugins) disabled: failed to load: ImportError: this plugin needs a library" in listed.stdout
    assert "noisy (broken-plugins) loaded\n  hooks: cli_commands, event, field_types\n" \
           "  failed: routecard_field_types: " \
           "RuntimeError: field types exploded" in listed.stdout
    hello = routecard("hello", "world")
    assert (hello.returncode, hello.stdout) == (3, "hello world from a plugin\n")
    assert "hello" in routecard("--help").stdout
    assert routecard("check", str(root)).returncode == 0  # the built-in command, not the plugin's
    assert routecard("apply", str(root), "--db", db).returncode == 0
    assert routecard("users", "add", "sam", "-w", str(root), "--db", db).returncode == 0
    token = routecard("tokens", "create", "sam", "-w", str(root), "--db", db).stdout.strip()
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "engine.cli", "serve", str(root), "--db", db, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        status = _wait(base, server)
        assert status == 200
        request = urllib.request.Request(
            f"{base}/api/templates/server_order/orders", method="POST",
            data=json.dumps({"title": "x", "fields": {"billing_iban": GOOD_IBAN}}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 201 and json.loads(answer.read())["number"]
    finally:
        server.terminate()
        output = server.communicate(timeout=20)[0]
    assert "plugin broken disabled: failed to load: ImportError" in output
    assert "plugin noisy: routecard_event failed: RuntimeError: subscriber exploded" in output


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(base: str, server: subprocess.Popen[str]) -> int:
    for _ in range(150):
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=5) as answer:
                return int(answer.status)
        except (urllib.error.URLError, ConnectionError):
            assert server.poll() is None, server.stdout.read() if server.stdout else ""
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def test_default_plugins_are_loaded_once() -> None:
    assert default_plugins() is default_plugins()
