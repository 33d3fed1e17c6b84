"""`routecard serve`, `users add` and `tokens create` as scripts use them: real processes, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from engine.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _routecard(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], input=stdin, capture_output=True, text=True, check=False,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _request(url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _raw(port: int, request: bytes) -> bytes:
    """Send ``request`` as bytes on a fresh connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "hosting"
    shutil.copytree(EXAMPLES / "hosting-orders", root)
    return root


def test_users_and_tokens_commands(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = f"sqlite:///{workspace / 'x.db'}"
    assert main(["users", "add", "tom.berger", "-w", str(workspace), "--db", db]) == 1
    assert "routecard apply" in capsys.readouterr().err
    assert main(["apply", str(workspace), "--db", db]) == 0
    capsys.readouterr()
    assert main(["users", "add", "x", "--group", "nope", "--role", "boss", "-w", str(workspace), "--db", db]) == 1
    err = capsys.readouterr().err
    assert "groups: unknown group `nope`" in err and "roles: unknown role `boss`" in err
    added = _routecard("users", "add", "tom.berger", "--group", "sales", "--role", "order_agent", "--password-stdin",
                       "--workspace", str(workspace), "--db", db, stdin="s3cret\n")
    assert added.returncode == 0, added.stderr
    token = _routecard("tokens", "create", "tom.berger", "-w", str(workspace), "--db", db)
    assert token.returncode == 0, token.stderr
    assert token.stdout.startswith("rc_") and token.stdout.count("\n") == 1
    assert main(["tokens", "create", "nobody", "-w", str(workspace), "--db", db]) == 2


def test_serve_answers_real_http(workspace: Path) -> None:
    db = f"sqlite:///{workspace / 'serve.db'}"
    port = _free_port()
    refused = _routecard("serve", str(workspace), "--db", db, "--port", str(port))
    assert refused.returncode == 1 and "routecard apply" in refused.stderr
    assert _routecard("apply", str(workspace), "--db", db).returncode == 0
    assert _routecard("users", "add", "jana.kowalski", "-w", str(workspace), "--db", db).returncode == 0
    token = _routecard("tokens", "create", "jana.kowalski", "-w", str(workspace), "--db", db).stdout.strip()
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", str(workspace), "--db", db, "--port", str(port),
         "--log-format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=Path(__file__).resolve().parent.parent)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                status, body = _request(f"{base}/health")
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                time.sleep(0.1)
        assert status == 200 and body["status"] == "ok"
        assert _request(f"{base}/api/orders")[0] == 401
        status, order = _request(f"{base}/api/templates/hosting_order/orders", token, {"fields": {
            "domain_name": "example.org", "contact_email": "web@example.org", "monthly_price": "9.90"}})
        assert status == 201, order
        status, page = _request(f"{base}/api/orders", token)
        assert status == 200 and [i["number"] for i in page["items"]] == [order["number"]]
        # host headers (SECURITY F31): none at all, or a forwarded host that is not ours -> 400
        assert _raw(port, b"GET /health HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 400")
        spoofed = _raw(port, b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Host: evil.example\r\n"
                             b"Connection: close\r\n\r\n")
        assert spoofed.startswith(b"HTTP/1.1 400") and b"evil.example" in spoofed
        proxied = _raw(port, b"GET /health HTTP/1.1\r\nHost: 10.0.0.5:8000\r\nX-Forwarded-Host: orders.nordhost.example\r\n"
                             b"Forwarded: for=10.0.0.1;host=orders.nordhost.example\r\nConnection: close\r\n\r\n")
        assert proxied.startswith(b"HTTP/1.1 200"), proxied
    finally:
        server.terminate()
        server.wait(timeout=20)
        output = server.stdout.read() if server.stdout else ""
        if server.stdout:
            server.stdout.close()
    # --log-format json: one JSON object per line, each request with its id, route and status
    logged = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    requests = [r for r in logged if r.get("logger") == "routecard.request"]
    assert any(r["route"] == "/api/orders" and r["status"] == 401 and len(r["request_id"]) == 16 for r in requests)
    assert any(r["logger"].startswith("uvicorn") for r in logged)
