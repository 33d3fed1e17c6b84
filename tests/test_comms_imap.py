"""The IMAP poller against a real IMAP server (Debian's dovecot, started per test on loopback), SQLite and PostgreSQL.

The server runs from a configuration of its own in a temporary folder (``make test``
installs the package, like Chromium). Without it the tests are skipped with a message,
except in CI, where they fail. Mail is put into the mailbox with IMAP APPEND, over
STARTTLS or SSL with a certificate made for the test (trusted through ``SSL_CERT_FILE``).
"""

from __future__ import annotations

import imaplib
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from engine.comms.imap import ImapError, ImapPoller
from engine.comms.inbound import Inbound
from engine.runtime.attachments import Attachments
from engine.storage import DiskStorage
from tests.migration_helpers import write_workspace
from tests.runtime_helpers import Env, make_env
from tests.inbound_helpers import WORKSPACE, mail

DOVECOT = "/usr/sbin/dovecot"
REQUIRED = os.environ.get("CI") == "true" or os.environ.get("ROUTECARD_REQUIRE_POSTGRES") == "1"
PASSWORD = "imap-test-password"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """A dovecot serving one user (``desk``) on 127.0.0.1, STARTTLS on ``port`` and SSL on ``ssl_port``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port, self.ssl_port = _free_port(), _free_port()
        self.cert = folder / "cert.pem"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        folder = self.folder
        for name in ("run", "state", "home"):
            (folder / name).mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(folder / "key.pem"),
                        "-out", str(self.cert), "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True, capture_output=True)
        (folder / "passwd").write_text(f"desk:{{PLAIN}}{PASSWORD}\n", encoding="utf-8")
        shutil.chown(folder / "home", "dovecot", "dovecot")
        (folder / "dovecot.conf").write_text(f"""\
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
first_valid_uid = 1
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{folder}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
shutdown_clients = yes
passdb {{
  driver = passwd-file
  args = {folder}/passwd
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={folder}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.ssl_port}
  }}
}}
""", encoding="utf-8")
        self.process = subprocess.Popen([DOVECOT, "-F", "-c", str(folder / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("dovecot did not start: " + (folder / "dovecot.log").read_text(errors="replace")[-500:])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def client(self) -> imaplib.IMAP4:
        client = imaplib.IMAP4("127.0.0.1", self.port)
        client.starttls(ssl_context=ssl.create_default_context(cafile=str(self.cert)))
        client.login("desk", PASSWORD)
        return client

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        client = self.client()
        try:
            assert client.append(folder, None, None, raw)[0] == "OK"
        finally:
            client.logout()

    def flags(self, folder: str = "INBOX") -> list[bytes]:
        """The flags of every message in ``folder``, by UID order."""
        client = self.client()
        try:
            client.select(folder)
            status, data = client.uid("FETCH", "1:*", "(FLAGS)")
            return [d for d in data if isinstance(d, bytes)] if status == "OK" and data != [None] else []
        finally:
            client.logout()

    def create(self, folder: str) -> None:
        client = self.client()
        try:
            client.create(folder)
        finally:
            client.logout()


@pytest.fixture
def dovecot(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dovecot]:
    missing = [tool for tool in (DOVECOT, shutil.which("openssl")) if not tool or not os.path.exists(tool)]
    if missing or os.geteuid() != 0:
        message = "dovecot (Debian package dovecot-imapd, `make test` installs it) and root are needed"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)
    # dovecot's own users must reach the folder: not under pytest's private (0700) tmp_path
    folder = Path(tempfile.mkdtemp(prefix="routecard-dovecot-"))
    folder.chmod(0o755)
    server = Dovecot(folder)
    try:
        server.start()
        monkeypatch.setenv("SSL_CERT_FILE", str(server.cert))  # the poller trusts the test's certificate
        monkeypatch.setenv("TEST_IMAP_PASSWORD", PASSWORD)
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _workspace(server: Dovecot, *, security: str = "starttls", after: str = "seen") -> dict[str, str]:
    port = server.ssl_port if security == "ssl" else server.port
    imap = (f"    imap:\n      host: localhost\n      port: {port}\n      security: {security}\n"
            f"      username: desk\n      password_env: TEST_IMAP_PASSWORD\n      after: {after}\n")
    if after == "move":
        imap += "      move_to: Done\n"
    return {**WORKSPACE, "routecard.yaml": WORKSPACE["routecard.yaml"].rstrip() + "\n" + _indent(imap)}


def _indent(text: str) -> str:
    """The block under ``mail.inbound`` of the dedented routecard.yaml (two spaces deeper than ``inbound``)."""
    return "\n".join("        " + line if line else line for line in text.splitlines()) + "\n"


@pytest.fixture
async def make(database_url: str, tmp_path: Path) -> AsyncIterator[object]:
    made: list[Env] = []

    async def factory(files: dict[str, str]) -> tuple[Env, ImapPoller]:
        root = write_workspace(tmp_path / f"ws{len(made)}", files)
        env = await make_env(root, database_url)
        made.append(env)
        attachments = Attachments(env.rt, DiskStorage(root / "files"))
        return env, ImapPoller(lambda: Inbound(env.rt, attachments), timeout=10)

    try:
        yield factory
    finally:
        for env in made:
            await env.db.close()


async def _count(env: Env, table: str) -> int:
    return int(await env.db.fetch_value(f"SELECT COUNT(*) AS n FROM {table}"))


async def test_poller_takes_new_mail_once_and_flags_it_seen(make, dovecot: Dovecot) -> None:  # type: ignore[no-untyped-def]
    env, poller = await make(_workspace(dovecot))
    dovecot.append(mail("anna@acme.example", "Checkout broken", ident="<i1@acme.example>"))
    dovecot.append(mail("bob@acme.example", "Logo", ident="<i2@acme.example>"))
    first = await poller.run_once()
    assert first == {"created": 2}
    assert all(b"\\Seen" in f for f in dovecot.flags())
    rows = await env.db.fetch("SELECT number, sender FROM rc_work_order ORDER BY id")
    assert [r["sender"] for r in rows] == ["anna@acme.example", "bob@acme.example"]
    # a reply arrives; the next round takes only it
    number = rows[0]["number"]
    dovecot.append(mail("anna@acme.example", f"Re: [{number}] Checkout broken", "Still broken"))
    assert await poller.run_once() == {"threaded": 1}
    assert await poller.run_once() == {}
    assert await _count(env, "rc_work_order") == 2 and await _count(env, "rc_message") == 3


async def test_a_worker_that_died_before_flagging_does_not_take_a_mail_twice(make, dovecot: Dovecot) -> None:  # type: ignore[no-untyped-def]
    env, poller = await make(_workspace(dovecot))
    raw = mail("anna@acme.example", "Once only", ident="<once@acme.example>")
    dovecot.append(raw)
    # the first worker received the message and died before it could flag it
    assert (await poller.inbound().receive(raw, source="imap:earlier")).outcome == "created"
    assert not any(b"\\Seen" in f for f in dovecot.flags())
    assert await poller.run_once() == {"duplicate": 1}
    assert await _count(env, "rc_work_order") == 1
    assert all(b"\\Seen" in f for f in dovecot.flags())


async def test_too_large_and_unreadable_messages_are_noted_once(make, dovecot: Dovecot) -> None:  # type: ignore[no-untyped-def]
    env, poller = await make(_workspace(dovecot))
    dovecot.append(mail("anna@acme.example", "Huge", "x" * 250_000))
    dovecot.append(b"Subject: no sender at all\r\n\r\nhello\r\n")
    assert await poller.run_once() == {"too_large": 1, "unreadable": 1}
    assert await _count(env, "rc_work_order") == 0
    outcomes = sorted(r["outcome"] for r in await env.db.fetch("SELECT outcome FROM rc_inbound_mail"))
    assert outcomes == ["too_large", "unreadable"]
    assert await poller.run_once() == {}


async def test_ssl_and_moving_taken_mail_to_a_folder(make, dovecot: Dovecot) -> None:  # type: ignore[no-untyped-def]
    env, poller = await make(_workspace(dovecot, security="ssl", after="move"))
    dovecot.create("Done")
    dovecot.append(mail("anna@acme.example", "Moved along", ident="<mv@acme.example>"))
    assert await poller.run_once() == {"created": 1}
    assert dovecot.flags("INBOX") == [] and len(dovecot.flags("Done")) == 1
    assert await poller.run_once() == {}


async def test_a_wrong_password_fails_the_round_and_takes_nothing(make, dovecot: Dovecot,  # type: ignore[no-untyped-def]
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    env, poller = await make(_workspace(dovecot))
    dovecot.append(mail("anna@acme.example", "Waiting"))
    monkeypatch.setenv("TEST_IMAP_PASSWORD", "wrong")
    with pytest.raises(ImapError, match="cannot log in"):
        await poller.run_once()
    monkeypatch.delenv("TEST_IMAP_PASSWORD")
    with pytest.raises(ImapError, match="TEST_IMAP_PASSWORD"):
        await poller.run_once()
    assert await _count(env, "rc_work_order") == 0 and not any(b"\\Seen" in f for f in dovecot.flags())


def test_routecard_worker_imap_once(database_url: str, dovecot: Dovecot, tmp_path: Path) -> None:
    """The command an admin runs: `routecard worker --imap --once` takes the mailbox's new mail."""
    root = write_workspace(tmp_path / "ws", _workspace(dovecot))
    command = [str(Path(sys.executable).parent / "routecard")]
    applied = subprocess.run([*command, "apply", str(root), "--db", database_url], capture_output=True, text=True,
                             timeout=120)
    assert applied.returncode == 0, applied.stderr
    dovecot.append(mail("anna@acme.example", "From the command", ident="<cli@acme.example>"))
    ran = subprocess.run([*command, "worker", str(root), "--db", database_url, "--imap", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "IMAP: created 1" in ran.stdout
    again = subprocess.run([*command, "worker", str(root), "--db", database_url, "--imap", "--once"],
                           capture_output=True, text=True, timeout=120)
    assert "IMAP: no new mail" in again.stdout


def test_routecard_worker_imap_without_a_mailbox_says_so(database_url: str, tmp_path: Path) -> None:
    root = write_workspace(tmp_path / "ws", WORKSPACE)
    command = [str(Path(sys.executable).parent / "routecard")]
    assert subprocess.run([*command, "apply", str(root), "--db", database_url], capture_output=True,
                          timeout=120).returncode == 0
    ran = subprocess.run([*command, "worker", str(root), "--db", database_url, "--imap", "--once"],
                         capture_output=True, text=True, timeout=120)
    assert ran.returncode == 1
    assert "IMAP: no IMAP mailbox is configured (mail.inbound.imap in routecard.yaml)" in ran.stdout
