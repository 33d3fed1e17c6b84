"""API fuzzing with schemathesis: a real ``routecard serve`` and every operation of its own OpenAPI document.

``serving`` applies an example workspace to a database, adds users with API tokens,
starts ``routecard serve`` in its own process and creates a few work orders of each
template; ``fuzz`` then loads ``/schema/openapi.json`` from that server, so whatever
operations it documents at run time are fuzzed, and sends schemathesis' generated
requests (valid ones, and invalid ones) over real HTTP with a user's Bearer token.
Every answer must pass ``CHECKS``: no 5xx, a documented status code and content type,
and a body matching the documented schema. Failures are collected, not raised, so one
run reports all of them (tests/test_fuzz_api.py asserts there are none; bench/fuzz_api.py
runs longer and counts them by class).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import requests
import schemathesis
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import checks
from schemathesis.errors import FailureGroup
from schemathesis.hooks import HookDispatcher, HookScope

from engine.db import connect
from engine.migrate import apply_workspace
from engine.runtime import add_user, create_token
from engine.workspace import open_workspace
from tests.api_helpers import SERVER_FIELDS
from tests.runtime_helpers import HOSTING, ORDER

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance, checks.negative_data_rejection]
"""What every answer is held to. ``negative_data_rejection``: a request that breaks the documented
schema must get a 4xx, never a 2xx (the server checks at least what it documents). Left out on
purpose: ``positive_data_acceptance`` (a request of the documented shape is refused with 404, 409 or
422 whenever it names nothing real or breaks the definitions: that is the API working) and the
stateful and auth checks (the document declares no security scheme; tests/test_api_access.py and
the web access tests cover authentication)."""

MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)

FUZZ_USERS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "contract-agency": {"admin": ("rachel.morgan", ()), "agent": ("lucy.palmer", ())},
    "hosting-orders": {"admin": ("jana.kowalski", ()), "agent": ("ahmed.yilmaz", ())},
    "ecommerce-workorders": {"admin": ("anna.gruber", ("administrator",)), "agent": ("ali.demir", ())},
    "order-portal": {"admin": ("olivia.hughes", ()), "agent": ("leo.walker", ())},
}
"""Per example workspace, two users as (login, extra roles): a supervisor holding the broadest roles
("admin") and a plain member of one group ("agent"); their groups come from the workspace."""


@dataclass
class Target:
    """A running server and what the fuzzer may use on it."""

    base_url: str
    log: Path
    """The server's output."""
    tokens: dict[str, str]
    """Login -> API token."""
    token_ids: dict[str, int]
    """Login -> the id of that token (the fuzzer must not revoke the token it runs with)."""
    numbers: list[str] = field(default_factory=list)
    """Work orders that exist, so that paths like ``/api/orders/{number}`` also reach real ones."""
    actions: list[str] = field(default_factory=list)
    """The queues' action names, for ``/api/orders/{number}/actions/{action}``."""


@dataclass
class Found:
    """One failure class seen on one operation: how often, and the first example of it."""

    operation: str
    title: str
    count: int
    example: str


@dataclass
class Report:
    """What a fuzzing run did and found."""

    operations: list[str] = field(default_factory=list)
    examples: Counter[str] = field(default_factory=Counter)
    """Operation label -> requests sent."""
    found: dict[tuple[str, str], Found] = field(default_factory=dict)
    seconds: float = 0.0

    def add(self, operation: str, failure: AssertionError, curl: str) -> None:
        title = str(getattr(failure, "title", type(failure).__name__))
        key = (operation, title)
        if key in self.found:
            self.found[key].count += 1
        else:
            self.found[key] = Found(operation, title, 1, f"{failure}\n\n  {curl}")

    def by_class(self) -> Counter[str]:
        """Failure title -> how many requests failed with it (all operations)."""
        counts: Counter[str] = Counter()
        for item in self.found.values():
            counts[item.title] += item.count
        return counts

    def describe(self) -> str:
        return "\n\n".join(f"{f.operation}: {f.title} ({f.count}x)\n{f.example}" for f in self.found.values())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _prepare(root: Path, database_url: str,
                   users: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[dict[str, str], dict[str, int]]:
    """Apply the workspace and give each login a token (what `routecard apply`, `users add` and
    `tokens create` do)."""
    workspace = open_workspace(root)
    await apply_workspace(workspace, database_url)
    db = await connect(database_url)
    try:
        tokens, ids = {}, {}
        for login, roles in users:
            user = await add_user(db, workspace, login, password="correct horse", roles=roles)
            tokens[login] = await create_token(db, user, "fuzz")
            ids[login] = int(await db.fetch_value("SELECT MAX(id) AS id FROM rc_api_token WHERE user_id = {}", user))
        return tokens, ids
    finally:
        await db.close()


SEED_FIELDS: dict[str, dict[str, Any]] = {
    "customer_order": ORDER, "hosting_order": HOSTING, "dedicated_server_order": SERVER_FIELDS}
"""Valid custom fields of templates whose required fields have patterns or bounds, by template name."""


def _field_value(item: dict[str, Any]) -> Any:
    """A plausible value for a required custom field of the template summary ``item``."""
    if item.get("default") is not None:
        return item["default"]
    if item.get("options"):
        option = item["options"][0]
        return [option] if item["type"] == "multiselect" else option
    return {"number": 1, "decimal": "1", "boolean": True, "date": "2026-03-02", "datetime": "2026-03-02T09:00:00Z",
            "email": "fuzz@example.com", "url": "https://example.com/"}.get(str(item.get("base", item["type"])), "fuzz")


def _seed(session: requests.Session, target: Target, login: str, per_template: int) -> None:
    """A few work orders of each template, created by ``login``."""
    headers = {"Authorization": f"Bearer {target.tokens[login]}"}
    for template in session.get(f"{target.base_url}/api/templates", headers=headers, timeout=30).json():
        fields = SEED_FIELDS.get(template["name"]) or {
            f["name"]: _field_value(f) for f in template["fields"] if f["required"]}
        for _ in range(per_template):
            answer = session.post(f"{target.base_url}{template['create']}", json={"fields": fields}, headers=headers,
                                  timeout=30)
            if answer.status_code != 201:
                raise RuntimeError(f"seeding {template['name']} failed: {answer.status_code} {answer.text}\n"
                                   f"{target.log.read_text()[-5000:]}")
            target.numbers.append(answer.json()["number"])
    for queue in session.get(f"{target.base_url}/api/queues", headers=headers, timeout=30).json():
        target.actions += [a["name"] for step in queue["steps"] for a in step["actions"]]


@contextlib.contextmanager
def serving(example: str, database_url: str, workdir: Path, *, per_template: int = 3) -> Iterator[Target]:
    """``routecard serve`` on a copy of ``examples/<example>`` applied to ``database_url``, with
    the example's ``FUZZ_USERS`` holding tokens and a few work orders created."""
    root = workdir / example
    shutil.copytree(EXAMPLES / example, root)
    tokens, ids = asyncio.run(_prepare(root, database_url, list(FUZZ_USERS[example].values())))
    port = _free_port()
    log_path = workdir / "serve.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "serve", str(root), "--db", database_url, "--port", str(port)],
        stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    target = Target(f"http://127.0.0.1:{port}", log_path, tokens, ids)
    try:
        with requests.Session() as session:
            for _ in range(600):
                try:
                    if session.get(f"{target.base_url}/health", timeout=5).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                if server.poll() is not None:
                    raise RuntimeError(f"routecard serve stopped:\n{log_path.read_text()}")
                time.sleep(0.1)
            else:
                raise RuntimeError(f"routecard serve did not answer within a minute:\n{log_path.read_text()}")
            _seed(session, target, FUZZ_USERS[example]["admin"][0], per_template)
        yield target
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _known_values(target: Target) -> Callable[[Any, dict[str, Any]], Any]:
    """A ``flatmap_path_parameters`` hook: half of the time, path parameters name things that exist
    (a random work-order number reaches nothing but the 404)."""
    known = {"number": target.numbers, "action": target.actions}

    def hook(context: Any, path_parameters: dict[str, Any]) -> Any:
        choices = {k: st.sampled_from(known[k]) for k in path_parameters or {} if known.get(k)}
        if not choices:
            return st.just(path_parameters)
        real = st.fixed_dictionaries({**{k: st.just(v) for k, v in path_parameters.items()}, **choices})
        return st.one_of(st.just(path_parameters), real)

    return hook


def _sender(session: requests.Session, headers: dict[str, str], label: str,
            report: Report) -> Callable[[schemathesis.Case], None]:
    """The body of one operation's test: send the case, check the answer, note what failed."""

    def send(case: schemathesis.Case) -> None:
        response = case.call(session=session, headers=headers, timeout=30)
        report.examples[label] += 1
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except FailureGroup as group:
            curl = case.as_curl_command(headers={"Authorization": "Bearer $TOKEN"})
            for failure in group.exceptions:
                report.add(label, failure, curl)

    return send


def fuzz(target: Target, login: str, *, max_examples: int, modes: Sequence[schemathesis.GenerationMode] = MODES,
         seed: int | None = None) -> Report:
    """Fuzz every operation the server documents, as ``login``, with up to ``max_examples`` requests per
    operation and mode; ``seed`` None: derandomized (the same requests every run)."""
    started = time.perf_counter()
    schema = schemathesis.openapi.from_url(f"{target.base_url}/schema/openapi.json")
    schema.config.update(base_url=target.base_url)
    own_token = target.token_ids[login]

    @schema.hook
    def filter_path_parameters(context: Any, path_parameters: dict[str, Any]) -> bool:
        # revoking the token the fuzzer runs with would turn the rest of the run into 401s
        return not (context.operation.path == "/api/tokens/{token}"
                    and str(path_parameters.get("token")) == str(own_token))

    # only for valid requests: an invalid one's path must stay as generated, or it may turn valid
    real_paths = HookDispatcher(scope=HookScope.TEST)
    real_paths.hook("flatmap_path_parameters")(_known_values(target))
    report = Report()
    headers = {"Authorization": f"Bearer {target.tokens[login]}"}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = operation.label
            report.operations.append(label)
            send = _sender(session, headers, label, report)
            for mode in modes:
                settings = hypothesis.settings(
                    max_examples=max_examples, deadline=None, derandomize=seed is None, database=None,
                    suppress_health_check=list(hypothesis.HealthCheck), phases=[hypothesis.Phase.generate],
                    verbosity=hypothesis.Verbosity.quiet)
                hooks = real_paths if mode is schemathesis.GenerationMode.POSITIVE else None
                strategy = operation.as_strategy(generation_mode=mode, hooks=hooks)
                test = settings(hypothesis.given(case=strategy)(send))
                if seed is not None:
                    test = hypothesis.seed(seed)(test)
                with contextlib.suppress(Unsatisfiable):
                    test()  # Unsatisfiable: nothing to break, e.g. no invalid request of an operation without inputs
    report.seconds = time.perf_counter() - started
    return report
