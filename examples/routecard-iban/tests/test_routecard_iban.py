"""The example plugin on its own: IBAN validation and the provision.server action against a fake service."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from engine.plugin_api import ActionContext
from engine.plugins import Plugins
from routecard_iban import IBAN, iban_country, iban_problem, normalize_iban, provision_server


@pytest.mark.parametrize("text", ["DE89 3704 0044 0532 0130 00", "gb82west12345698765432", "CH9300762011623852957"])
def test_valid_ibans_pass_after_normalizing(text: str) -> None:
    value, problem = IBAN.check(text)
    assert problem is None and value == normalize_iban(text) and " " not in value and value.isupper()


@pytest.mark.parametrize(("text", "words"), [
    ("DE89 3704 0044 0532 0130 01", "check digits"),
    ("DE89 3704 0044 0532 0130", "has 22 characters"),
    ("12345", "not an IBAN"),
    ("DE8937040044053201300!", "not an IBAN"),
])
def test_invalid_ibans_are_refused_with_a_reason(text: str, words: str) -> None:
    _, problem = IBAN.check(text)
    assert problem is not None and words in problem


def test_the_declaration_is_usable() -> None:
    assert IBAN.problem() is None and IBAN.max_length == 34 and iban_problem(42) is not None


def test_found_through_its_entry_point() -> None:
    plugins = Plugins()
    assert plugins.info["iban"].status == "loaded" and plugins.info["iban"].source == "routecard-iban"
    assert plugins.field_types["iban"] is IBAN and "provision.server" in plugins.actions


class FakeProvisioning(BaseHTTPRequestHandler):
    """A provisioning service: answers each POST with a new server id; /fail answers 503."""

    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeProvisioning.received.append(body)
        status, answer = (503, {"error": "busy"}) if self.path == "/fail" else (201, {"server": f"srv-{body['order']}"})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeProvisioning)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeProvisioning.received = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _context(url: str, allow: list[str]) -> ActionContext:
    return ActionContext(action="provision.server", order={"number": "VH-000007", "fields": {"os": "debian"}},
                         parameters={"plan": "large"}, settings={"provisioning_url": url, "allow_hosts": allow},
                         workspace="test", base_url="http://localhost")


async def test_provision_server_calls_the_service(service: str) -> None:
    result = await provision_server(_context(service + "/servers", ["127.0.0.1"]))
    assert result.ok and result.data["server"] == "srv-VH-000007" and result.data["status"] == 201
    assert FakeProvisioning.received == [{"order": "VH-000007", "plan": "large", "fields": {"os": "debian"}}]


async def test_provision_server_reports_a_failing_service(service: str) -> None:
    result = await provision_server(_context(service + "/fail", ["127.0.0.1"]))
    assert not result.ok and "503" in (result.error or "")


async def test_provision_server_refuses_an_internal_host_not_allowed(service: str) -> None:
    result = await provision_server(_context(service + "/servers", []))
    assert not result.ok and "loopback" in (result.error or "")
    assert FakeProvisioning.received == []


def test_iban_country_reads_the_country_code() -> None:
    assert iban_country("de89 3704 0044 0532 0130 00") == "DE"
    assert iban_country("GB82WEST12345698765432") == "GB"
    assert iban_country("") is None and iban_country(None) is None and iban_country("12345") is None
