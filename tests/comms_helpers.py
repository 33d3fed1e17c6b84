"""Helpers for the mail tests: a real SMTP server (aiosmtpd) and a workspace that sends to it."""

from __future__ import annotations

import email
import shutil
import socket
from collections import Counter
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from engine.comms import OutboxWorker

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Sink:
    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 OK"


class SmtpServer:
    """An SMTP server on 127.0.0.1 that keeps what it receives; stop and start it at will (same port)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.sink = _Sink()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def received(self) -> list[tuple[list[str], EmailMessage]]:
        return self.sink.received

    def to(self, address: str) -> list[EmailMessage]:
        """The messages delivered to ``address``."""
        return [m for rcpts, m in self.received if address in rcpts]

    def ids(self) -> Counter[str]:
        """How often each Message-ID arrived."""
        return Counter(str(m["Message-ID"]) for _, m in self.received)


def mail_workspace(tmp_path: Path, port: int | None, example: str = "ecommerce-workorders") -> Path:
    """A copy of ``example`` whose mail goes to 127.0.0.1:``port`` without TLS (``None``: no SMTP at all)."""
    root = tmp_path / example
    shutil.copytree(EXAMPLES / example, root)
    settings = root / "routecard.yaml"
    text = settings.read_text(encoding="utf-8")
    head, _, _ = text.partition("mail:\n")
    mail = "mail:\n  from_address: service@lindner-versand.example\n  from_name: Lindner Versand\n"
    if port is not None:
        mail += f"  smtp:\n    host: 127.0.0.1\n    port: {port}\n    security: none\n"
    settings.write_text(head + mail, encoding="utf-8")
    return root


def worker(env: Any, **options: Any) -> OutboxWorker:
    """An outbox worker on a test environment's database and settings."""
    return OutboxWorker(env.db, lambda: env.rt.workspace.settings, timeout=5.0, **options)
