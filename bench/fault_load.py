"""The load side of bench/fault_harness.py: many concurrent clients, a mixed workload, and a ledger.

Each client loops until the deadline and picks an operation by weight: create (with an
``Idempotency-Key``, retried with the same key after a failure), edit (with the version the
client last saw, so concurrent clients meet 409 conflicts), process or skip an action,
comment or reply (mail through the outbox), inbound mail (new mail, replies to an order, and
now and then the same mail to both servers at once), and a list read. Clients prefer one
server and turn to the other while theirs does not answer, as a load balancer would.

Every answer is written to the ``Ledger``: what was acknowledged (2xx) with the values sent,
and what has an unknown outcome (no answer, or 5xx), so the checks afterwards can tell a lost
write from one that was never promised.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import random
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from bench.loadgen import Pool

WEIGHTS = {"create": 20, "edit": 25, "process": 20, "comment": 15, "inbound": 10, "read": 10}
INBOUND_TOKEN = "fault-harness-inbound-" + secrets.token_hex(8)
CREATE_TRIES = 40
HOT = 400
"""Orders the clients work on (the most recently created open ones): small enough for conflicts."""


@dataclass
class Answer:
    """One request: which kind, to which server, when, and its status (0: no answer)."""

    kind: str
    server: int
    started: float
    ended: float
    status: int


@dataclass
class Ledger:
    """What the clients were told: every answer, and the writes acknowledged or of unknown outcome."""

    answers: list[Answer] = field(default_factory=list)
    creates: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Idempotency key -> {"number", "fields", "title", "numbers" (every number an attempt returned)}."""
    create_unknown: set[str] = field(default_factory=set)
    edits: list[tuple[str, int, str, str]] = field(default_factory=list)
    """(number, version, note, amount) of each acknowledged edit."""
    edits_unknown: list[tuple[str, str, str]] = field(default_factory=list)
    processed: list[tuple[str, int, str, str]] = field(default_factory=list)
    """(number, version, action, "processed" | "skipped")."""
    messages: list[tuple[str, int, str]] = field(default_factory=list)
    """(number, message id, body)."""
    inbound: dict[str, str] = field(default_factory=dict)
    """Message-ID -> outcome of each acknowledged inbound mail."""
    inbound_twice: set[str] = field(default_factory=set)
    """Message-IDs sent to both servers at once."""
    conflicts: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    samples: dict[str, str] = field(default_factory=dict)
    """The first answer of each kind and status other than 2xx, for the report."""


class Orders:
    """What the clients know of the orders: the last view seen of each hot order (shared, so often stale)."""

    def __init__(self) -> None:
        self.views: dict[str, dict[str, Any]] = {}
        self.hot: deque[str] = deque(maxlen=HOT)

    def seen(self, view: dict[str, Any]) -> None:
        number = str(view.get("number") or "")
        if not number:
            return
        known = self.views.get(number)
        if known is not None and int(known.get("version", 0)) > int(view.get("version", 0)):
            return
        self.views[number] = view
        if view.get("status") in ("completed", "cancelled"):
            self.views.pop(number, None)
        elif number not in self.hot:
            if len(self.hot) == self.hot.maxlen:
                self.views.pop(self.hot[0], None)
            self.hot.append(number)

    def pick(self, rng: random.Random) -> dict[str, Any] | None:
        while self.hot:
            number = self.hot[rng.randrange(len(self.hot))]
            view = self.views.get(number)
            if view is not None:
                return view
            self.hot.remove(number)
        return None


class Servers:
    """The servers' addresses, and which of them recently failed to answer."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.down_until = [0.0] * len(ports)

    def choose(self, preferred: int) -> int:
        now = time.monotonic()
        for offset in range(len(self.ports)):
            index = (preferred + offset) % len(self.ports)
            if self.down_until[index] <= now:
                return index
        return preferred

    def failed(self, index: int) -> None:
        self.down_until[index] = time.monotonic() + 1.0


class Workload:
    """The clients, their shared knowledge and the ledger."""

    def __init__(self, ports: list[int], tokens: list[str], supervisor_token: str, *, seed: int = 1) -> None:
        self.servers = Servers(ports)
        self.tokens = tokens
        self.supervisor = supervisor_token
        self.orders = Orders()
        self.ledger = Ledger()
        self.seed = seed
        self.clients = [Pool("127.0.0.1", p, timeout=15.0) for p in ports]
        self.counter = 0

    async def close(self) -> None:
        for client in self.clients:
            client.close()

    async def request(self, kind: str, preferred: int, method: str, path: str, *, token: str | None = None,
                      json: Any = None, content: bytes | None = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, Any]:
        """One request to the preferred server (or the other while it is down); (status, body) with 0 for no answer."""
        index = self.servers.choose(preferred)
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        content_type = sent.pop("Content-Type", "application/json")
        payload = content if content is not None else jsonlib.dumps(json).encode() if json is not None else b""
        started = time.monotonic()
        try:
            status, data = await self.clients[index].request(method, path, payload, sent, content_type)
            try:
                body = jsonlib.loads(data) if data else None
            except ValueError:
                body = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError):
            self.servers.failed(index)
            status, body = 0, None
        self.ledger.answers.append(Answer(kind, index, started, time.monotonic(), status))
        if not 200 <= status < 300 and status != 409 and f"{kind} {status}" not in self.ledger.samples:
            detail = body.get("detail") if isinstance(body, dict) else None
            self.ledger.samples[f"{kind} {status}"] = str(detail)[:200]
        elif status == 409 and isinstance(body, dict) and (body.get("error") != "conflict" or kind == "inbound"):
            self.ledger.samples.setdefault(f"{kind} 409 {body.get('error')}", str(body.get("detail"))[:200])
        return status, body

    async def client(self, number: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + number)
        kinds = list(WEIGHTS)
        weights = list(WEIGHTS.values())
        preferred = number % len(self.servers.ports)
        token = self.tokens[number % len(self.tokens)]
        while time.monotonic() < deadline:
            kind = rng.choices(kinds, weights)[0]
            try:
                await getattr(self, kind)(rng, preferred, token)
            except Exception as exc:  # noqa: BLE001 - a client bug must show, not stop the others silently
                print(f"client {number}: {kind}: {type(exc).__name__}: {exc}", flush=True)
                await asyncio.sleep(0.1)

    def _unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{secrets.token_hex(3)}"

    # -- the operations ------------------------------------------------------------------------

    async def create(self, rng: random.Random, preferred: int, token: str) -> None:
        key = self._unique("key")
        fields = {"summary": f"summary {key}", "contact": f"{key}@customer.example",
                  "tier": "gold" if rng.random() < 0.15 else "standard", "amount": f"{rng.randint(1, 9999)}.50"}
        body = {"title": f"order {key}", "fields": fields}
        record: dict[str, Any] = {"fields": fields, "title": body["title"], "numbers": []}
        for attempt in range(CREATE_TRIES):
            status, answer = await self.request("create", preferred + attempt, "POST", "/api/templates/ticket/orders",
                                                token=token, json=body, headers={"Idempotency-Key": key})
            if 200 <= status < 300 and isinstance(answer, dict):
                record["numbers"].append(answer["number"])
                record["number"] = answer["number"]
                self.ledger.creates[key] = record
                self.ledger.create_unknown.discard(key)
                self.orders.seen(answer)
                if rng.random() < 0.05:  # the client retries although it got the answer: still one order
                    status, again = await self.request("create", preferred + 1, "POST",
                                                       "/api/templates/ticket/orders", token=token, json=body,
                                                       headers={"Idempotency-Key": key})
                    if 200 <= status < 300 and isinstance(again, dict):
                        record["numbers"].append(again["number"])
                return
            if 400 <= status < 500:
                self.ledger.refused[f"create {status}"] += 1
                return
            self.ledger.create_unknown.add(key)
            await asyncio.sleep(0.25)

    async def edit(self, rng: random.Random, preferred: int, token: str) -> None:
        view = self.orders.pick(rng)
        if view is None:
            return
        number, version = view["number"], int(view["version"])
        for _ in range(2):  # a conflict is answered with the current version: try once more with it
            # both values new at every edit: an edit records only what it changes, so an amount drawn
            # equal to the stored one (1 in 9,999 per edit, about once a run) was missing from the
            # edit's event and counted as a lost edit
            note = self._unique("note")
            amount = f"{self.counter}.{rng.randint(10, 99)}"
            status, answer = await self.request("edit", preferred, "PATCH", f"/api/orders/{number}", token=token,
                                                json={"version": version, "fields": {"note": note, "amount": amount}})
            if 200 <= status < 300 and isinstance(answer, dict):
                self.ledger.edits.append((number, int(answer["version"]), note, amount))
                self.orders.seen(answer)
                return
            if status == 409 and isinstance(answer, dict) and answer.get("error") == "conflict":
                self.ledger.conflicts["edit"] += 1
                version = int(answer.get("current_version") or version)
                continue
            if status == 0 or status >= 500:
                self.ledger.edits_unknown.append((number, note, amount))
            elif 400 <= status < 500:
                self.ledger.refused[f"edit {status}"] += 1
            return

    async def process(self, rng: random.Random, preferred: int, token: str) -> None:
        view = self.orders.pick(rng)
        if view is None:
            return
        pending = [a["name"] for a in view.get("actions", []) if a.get("state") == "pending"]
        if not pending:
            return
        action, skip = pending[0], rng.random() < 0.3
        number = view["number"]
        status, answer = await self.request("process", preferred, "POST", f"/api/orders/{number}/actions/{action}",
                                            token=self.supervisor, json={"version": int(view["version"]), "skip": skip})
        if 200 <= status < 300 and isinstance(answer, dict):
            self.ledger.processed.append((number, int(answer["version"]), action, "skipped" if skip else "processed"))
            self.orders.seen(answer)
        elif status == 409 and isinstance(answer, dict):
            self.ledger.conflicts["process" if answer.get("error") == "conflict" else "process refused"] += 1
        elif 400 <= status < 500:
            self.ledger.refused[f"process {status}"] += 1

    async def comment(self, rng: random.Random, preferred: int, token: str) -> None:
        view = self.orders.pick(rng)
        if view is None:
            return
        number, text = view["number"], self._unique("text")
        kind = "reply" if rng.random() < 0.3 else "comment"
        body = {"kind": kind, "body": f"message {text}", "subscribe": rng.random() < 0.1,
                "client_viewable": kind == "comment" and rng.random() < 0.2}
        status, answer = await self.request("comment", preferred, "POST", f"/api/orders/{number}/messages",
                                            token=token, json=body)
        if 200 <= status < 300 and isinstance(answer, dict):
            self.ledger.messages.append((number, int(answer["id"]), str(body["body"])))
        elif 400 <= status < 500:
            self.ledger.refused[f"comment {status}"] += 1

    async def inbound(self, rng: random.Random, preferred: int, token: str) -> None:
        ident = f"<{self._unique('in')}@outside.example>"
        view = self.orders.pick(rng) if rng.random() < 0.5 else None
        if view is not None:
            sender = view["fields"]["contact"]
            subject = f"Re: [{view['number']}] {view['title']}"
        else:
            sender, subject = f"{self._unique('sender')}@outside.example", "Something is broken"
        raw = (f"From: {sender}\r\nTo: desk@faults.example\r\nSubject: {subject}\r\nMessage-ID: {ident}\r\n"
               f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
               f"Mail {ident}\r\n").encode()
        headers = {"Content-Type": "message/rfc822", "Authorization": f"Bearer {INBOUND_TOKEN}"}
        twice = rng.random() < 0.1
        sends = [self.request("inbound", preferred + i, "POST", "/api/inbound/email", content=raw, headers=headers)
                 for i in range(2 if twice else 1)]
        if twice:
            self.ledger.inbound_twice.add(ident)
        for status, answer in await asyncio.gather(*sends):
            if 200 <= status < 300 and isinstance(answer, dict):
                if answer.get("outcome") != "duplicate" or ident not in self.ledger.inbound:
                    self.ledger.inbound[ident] = str(answer.get("outcome"))
            elif 400 <= status < 500:
                self.ledger.refused[f"inbound {status}"] += 1

    async def read(self, rng: random.Random, preferred: int, token: str) -> None:
        status, _ = await self.request("read", preferred, "GET", "/api/orders?status=open&limit=20&sort=-created_at",
                                            token=token)
        if 400 <= status < 500:
            self.ledger.refused[f"read {status}"] += 1

    async def run(self, clients: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(self.client(i, deadline) for i in range(clients)))
