"""Webhooks: signed deliveries through the outbox to a real receiver on 127.0.0.1 (allowed explicitly),
retried while it fails, the webhook.post action, and the SSRF guard (addresses, forms, redirects)."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from engine.comms import OutboxWorker
from engine.comms.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, Refused, post_json, resolve, verify
from engine.errors import DefinitionError
from engine.workspace import open_workspace
from tests.migration_helpers import write_workspace
from tests.runtime_helpers import Env, make_env

SECRET = "s3cret-for-tests"
SECRET_ENV = "ROUTECARD_TEST_WEBHOOK_SECRET"

TEAM = """
    kind: Group
    name: desk
    supervisor: sam
    members: [sam]
    ---
    kind: Role
    name: agent
    permissions: [order.create, order.edit, order.transition]
    groups: [desk]
    ---
    kind: Template
    name: ticket
    team: desk
    range: [desk]
    fields:
      - {name: summary, type: input}
    ---
    kind: Queue
    name: tickets
    templates: [ticket]
    steps:
      - name: work
        group: desk
        actions:
          - {name: notify, label: Tell the ERP, plugin: webhook.post, with: {endpoint: erp}}
          - {name: done, label: Done}
"""


class Receiver(BaseHTTPRequestHandler):
    """Keeps every request; answers ``status`` (a 302 goes to ``location``) ``fail`` times, then 200."""

    def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server.hits.append((self.path, dict(self.headers), body))
        if server.fail > 0:
            server.fail -= 1
            self.send_response(server.status)
            if server.location:
                self.send_header("Location", server.location)
            answer = b"<html>internal error page with details</html>"
        else:
            self.send_response(200)
            answer = b'{"received": true}'
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: Any) -> None:
        pass


class Server(ThreadingHTTPServer):
    hits: list[tuple[str, dict[str, str], bytes]]
    fail = 0
    status = 500
    location = ""


def _start() -> Server:
    server = Server(("127.0.0.1", 0), Receiver)
    server.hits = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def receiver() -> Iterator[Server]:
    server = _start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _settings(port: int, allow: str = "[127.0.0.1]", events: str = "[created]") -> str:
    return f"""
        name: hooks
        plugins:
          webhook:
            secret_env: {SECRET_ENV}
            allow_hosts: {allow}
            endpoints:
              - {{name: erp, url: "http://127.0.0.1:{port}/hook", events: {events}}}
    """


@pytest.fixture
async def env(database_url: str, tmp_path: Path, receiver: Server,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Env]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    root = write_workspace(tmp_path / "hooks", {"routecard.yaml": _settings(receiver.server_address[1]),
                                                "team.yaml": TEAM})
    made = await make_env(root, database_url)
    try:
        yield made
    finally:
        await made.db.close()


def _worker(env: Env) -> OutboxWorker:
    return OutboxWorker(env.db, lambda: env.rt.workspace.settings, timeout=5.0, backoff=0.0,
                        channels=env.rt.plugins.channels)


async def _rows(env: Env) -> list[dict[str, Any]]:
    return await env.db.fetch("SELECT kind, state, attempts, last_error FROM rc_outbox WHERE kind = 'webhook'")


async def test_an_event_is_delivered_once_signed_with_the_secret(env: Env, receiver: Server) -> None:
    sam = await env.actor("sam")
    view = await env.rt.create(sam, "ticket", {"title": "Printer", "fields": {"summary": "jammed"}})
    await env.rt.update(sam, view["number"], view["version"], {"title": "Printer on floor 2"})  # not subscribed
    assert [(r["kind"], r["state"]) for r in await _rows(env)] == [("webhook", "pending")]
    report = await _worker(env).run_once()
    assert report.sent == 1
    assert await _worker(env).run_once() == type(report)()  # nothing left: it fires once
    [(path, headers, body)] = receiver.hits
    assert path == "/hook" and headers["X-Routecard-Event"] == "created"
    assert verify(SECRET, body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    assert not verify("another secret", body, headers[TIMESTAMP_HEADER], headers[SIGNATURE_HEADER])
    payload = json.loads(body)
    assert payload["order"]["number"] == view["number"] and payload["order"]["fields"] == {"summary": "jammed"}
    assert payload["event"] == "created" and payload["workspace"] == "hooks"
    assert [r["state"] for r in await _rows(env)] == ["sent"]


async def test_a_failing_receiver_is_retried_through_the_outbox_until_it_succeeds(env: Env, receiver: Server) -> None:
    receiver.fail = 2
    sam = await env.actor("sam")
    await env.rt.create(sam, "ticket", {"title": "Printer"})
    worker = _worker(env)
    first = await worker.run_once()
    assert first.retrying == 1
    [row] = await _rows(env)
    assert (row["state"], row["attempts"], row["last_error"]) == ("pending", 1, "the receiver answered 500")
    assert "internal error page" not in row["last_error"]  # never the upstream body
    assert (await worker.run_once()).retrying == 1
    assert (await worker.run_once()).sent == 1
    assert [(r["state"], r["attempts"]) for r in await _rows(env)] == [("sent", 3)]
    deliveries = {h["X-Routecard-Delivery"] for _, h, _ in receiver.hits}
    assert len(receiver.hits) == 3 and len(deliveries) == 1  # the same delivery, three attempts


async def test_the_webhook_action_records_the_answer_on_the_action(env: Env, receiver: Server) -> None:
    sam = await env.actor("sam")
    view = await env.rt.create(sam, "ticket", {"title": "Printer"})
    view = await env.rt.process(sam, view["number"], view["version"], "notify")
    notify = next(a for a in view["actions"] if a["name"] == "notify")
    assert notify["state"] == "processed"
    assert notify["result"] == {"plugin": "webhook.post", "ran": True, "ok": True,
                                "message": "the receiver answered 200",
                                "data": {"status": 200, "excerpt": '{"received": true}'}}
    path, headers, body = receiver.hits[-1]
    assert json.loads(body)["order"]["number"] == view["number"] and headers["X-Routecard-Event"] == "action"
    receiver.fail = 1
    view = await env.rt.create(sam, "ticket", {"title": "Scanner"})
    view = await env.rt.process(sam, view["number"], view["version"], "notify")
    notify = next(a for a in view["actions"] if a["name"] == "notify")
    assert notify["state"] == "pending" and notify["result"]["error"] == "the receiver answered 500"
    assert notify["result"]["data"]["status"] == 500


async def test_a_host_no_longer_allowed_is_refused_when_sent(env: Env, receiver: Server, tmp_path: Path) -> None:
    sam = await env.actor("sam")
    await env.rt.create(sam, "ticket", {"title": "Printer"})
    root = write_workspace(tmp_path / "narrowed", {"routecard.yaml": _settings(receiver.server_address[1], "[]"),
                                                   "team.yaml": TEAM})
    with pytest.raises(DefinitionError) as raised:  # refused when saved ...
        open_workspace(root)
    assert any("routecard.yaml:8:26: error: plugin `webhook`: the webhook URL is refused: 127.0.0.1 is a loopback"
               in str(d) for d in raised.value.diagnostics), raised.value.diagnostics
    settings = env.rt.workspace.settings
    narrowed = type(settings)(**{**{f: getattr(settings, f) for f in settings.__struct_fields__},
                                 "plugins": {"webhook": {**settings.plugins["webhook"], "allow_hosts": []}}})
    worker = OutboxWorker(env.db, lambda: narrowed, timeout=5.0, backoff=0.0, channels=env.rt.plugins.channels)
    assert (await worker.run_once()).failed == 1  # ... and again when sent
    [row] = await _rows(env)
    assert row["state"] == "failed" and row["last_error"].startswith("refused: 127.0.0.1 is a loopback address")
    assert receiver.hits == []


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1:{port}/hook", "127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://10.0.0.1/hook", "10.0.0.1 is a private address"),
    ("http://[::ffff:127.0.0.1]:{port}/hook", "127.0.0.1 is a loopback address (inside the IPv6 address"),
    ("http://2130706433:{port}/hook", "the host 2130706433 is a number in a non-standard form"),
    ("http://0177.0.0.1:{port}/hook", "is a number in a non-standard form"),
    ("http://100.64.0.1/hook", "100.64.0.1 is not a public address"),
    ("http://localhost:{port}/hook", "localhost resolves to 127.0.0.1: 127.0.0.1 is a loopback address"),
    ("file:///etc/passwd", "only http and https URLs may be called, not file"),
    ("gopher://127.0.0.1:70/", "only http and https URLs may be called, not gopher"),
    ("http://user:pw@example.com/", "may not carry a user name or password"),
])
async def test_internal_targets_are_refused_unless_allowed(receiver: Server, url: str, why: str) -> None:
    url = url.format(port=receiver.server_address[1])
    with pytest.raises(Refused) as refused:
        await post_json(url, b"{}")
    assert why in str(refused.value)
    assert receiver.hits == []


async def test_an_allowed_host_is_called_at_the_resolved_address(receiver: Server) -> None:
    port = receiver.server_address[1]
    target = await resolve(f"http://127.0.0.1:{port}/hook", ["127.0.0.1"])
    assert (target.address, target.port, target.host) == ("127.0.0.1", port, "127.0.0.1")
    answer = await post_json(f"http://localhost:{port}/hook?x=1", b'{"a": 1}', allow_hosts=["localhost"])
    assert answer.status == 200 and answer.excerpt == '{"received": true}'
    path, headers, _ = receiver.hits[-1]
    assert path == "/hook?x=1" and headers["Host"] == f"localhost:{port}"  # pinned address, original Host
    with pytest.raises(Refused):  # allowing one host lets no other through
        await post_json(f"http://127.0.0.2:{port}/hook", b"{}", allow_hosts=["127.0.0.1"])


async def test_a_redirect_to_an_internal_address_is_not_followed(receiver: Server) -> None:
    internal = _start()
    try:
        receiver.fail, receiver.status = 1, 302
        receiver.location = f"http://127.0.0.1:{internal.server_address[1]}/admin"
        answer = await post_json(f"http://127.0.0.1:{receiver.server_address[1]}/hook", b"{}",
                                 allow_hosts=["127.0.0.1"])
        assert answer.status == 302
        assert internal.hits == [] and len(receiver.hits) == 1
    finally:
        internal.shutdown()
        internal.server_close()


async def test_a_redirecting_endpoint_fails_for_good_without_following(env: Env, receiver: Server) -> None:
    receiver.fail, receiver.status = 5, 302
    receiver.location = "http://169.254.169.254/latest/meta-data/"
    await env.rt.create(await env.actor("sam"), "ticket", {"title": "Printer"})
    assert (await _worker(env).run_once()).failed == 1
    [row] = await _rows(env)
    assert row["last_error"] == "the receiver answered 302 (a redirect, not followed)"
    assert len(receiver.hits) == 1
