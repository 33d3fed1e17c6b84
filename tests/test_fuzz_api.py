"""API fuzzing: schemathesis sends generated requests, valid and invalid, to every operation of the
OpenAPI document a real ``routecard serve`` publishes, as a supervisor and as a plain agent, on
SQLite and PostgreSQL. No answer may be a 5xx, and every answer must match the document (status,
content type, headers, body). A bounded, derandomized run (the same requests every time); the
longer one is bench/fuzz_api.py. Below it, regression tests for what fuzzing found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from ui.sessions import SESSION_COOKIE
from tests.api_helpers import HOSTING_USERS, SERVER_FIELDS, Api, served
from tests.fuzz_helpers import FUZZ_USERS, MODES, fuzz, serving

EXAMPLE = "contract-agency"
"""The example with the most API surface: customers and projects, time tracking, macros, a portal."""
RUNS = {"admin": (6, MODES), "agent": (3, MODES[:1])}
"""Per user: generated requests per operation and mode, and the modes (valid requests, invalid ones).
Bounded for CI; the agent's run is about what a plain member may do, so valid requests only."""


@pytest.mark.slow
def test_fuzz_every_operation(database_url: str, tmp_path: Path) -> None:
    with serving(EXAMPLE, database_url, tmp_path) as target:
        for who, (examples, modes) in RUNS.items():
            report = fuzz(target, FUZZ_USERS[EXAMPLE][who][0], max_examples=examples, modes=modes)
            assert not report.found, f"fuzzing as {who} found:\n\n{report.describe()}"
            # it did fuzz: every documented operation, the core ones among them
            assert {"GET /api/orders/{number}", "PATCH /api/orders/{number}", "POST /api/time-entries",
                    "POST /api/templates/client_request/orders"} <= set(report.operations)
            assert all(report.examples[op] >= 1 for op in report.operations), report.examples
            assert report.examples["PATCH /api/orders/{number}"] >= examples


# -- regressions ------------------------------------------------------------------------------


@pytest.fixture
async def api(database_url: str) -> Any:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        yield api


def _document(schema: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """``ref``'s schema, with the document's components reachable for ``$ref``."""
    return {**ref, "components": schema["components"]}


async def test_error_answers_are_documented_with_their_shape(api: Api) -> None:
    """Every operation documented its errors as Litestar's ``{status_code, detail, extra}`` (not what
    the API sends) and left out 401/404/409/422: now each status it can answer with, with ErrorBody."""
    schema = (await api.client.get("/schema/openapi.json")).json()
    assert set(schema["components"]["schemas"]["ErrorBody"]["required"]) == {"error", "detail", "errors"}
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            public = path in ("/health", "/healthz", "/readyz", "/api/session") and method == "get" \
                or (path, method) in (("/api/session", "post"), ("/api/inbound/email", "post"))
            if not public:
                assert {"401", "403"} <= set(responses), (method, path)
            for status, answer in responses.items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"}, (method, path, status)
    orders = schema["paths"]["/api/orders/{number}"]
    assert {"400", "401", "403", "404", "409", "413", "422"} <= set(orders["patch"]["responses"])
    assert {"401", "429"} <= set(schema["paths"]["/api/session"]["post"]["responses"])
    # and what the API sends matches: a 404, a 422 and a 409
    bodies = [await api.get("jana.kowalski", "/api/orders/NOPE-1"),
              await api.post("jana.kowalski", "/api/templates/hosting_order/orders", {"fields": {"nope": 1}})]
    created = await api.post("jana.kowalski", "/api/templates/dedicated_server_order/orders", {"fields": SERVER_FIELDS})
    number = created.json()["number"]
    bodies.append(await api.patch("jana.kowalski", f"/api/orders/{number}", {"version": 7, "title": "x"}))
    assert [b.status_code for b in bodies] == [404, 422, 409]
    for body in bodies:
        jsonschema.validate(body.json(), _document(schema, {"$ref": "#/components/schemas/ErrorBody"}))


async def test_ids_beyond_64_bits_are_refused_not_a_server_error(api: Api) -> None:
    """``DELETE /api/time-entries/{2**90}`` was a 500 (the id overflowed the database driver)."""
    huge = 2**90
    for method, url in (("GET", f"/api/time-entries/{huge}"), ("DELETE", f"/api/time-entries/{huge}?version=1"),
                        ("PATCH", f"/api/time-entries/{huge}"), ("DELETE", f"/api/tokens/{huge}")):
        answer = await api.client.request(method, url, json={"version": 1}, headers=api.auth("jana.kowalski"))
        assert answer.status_code == 422, (method, url, answer.text)
        assert answer.json()["error"] == "invalid"
    created = await api.post("jana.kowalski", "/api/templates/dedicated_server_order/orders", {"fields": SERVER_FIELDS})
    number = created.json()["number"]
    for body in ({"version": 2**40}, {"version": 1, "customer_id": huge}, {"version": 1, "customer_id": 0}):
        answer = await api.patch("jana.kowalski", f"/api/orders/{number}", body)
        assert answer.status_code == 422, (body, answer.text)
    assert (await api.order("jana.kowalski", number))["version"] == 1


async def test_create_needs_a_body(api: Api) -> None:
    """The body is documented as required; an empty one was taken as ``{}`` (an order with defaults)."""
    url = "/api/templates/hosting_order/orders"
    for content in (b"", b"\n"):
        answer = await api.client.post(url, content=content, headers={
            **api.auth("jana.kowalski"), "Content-Type": "application/json"})
        assert answer.status_code == 400 and answer.json()["errors"][0]["field"] == "body", answer.text
    assert (await api.get("jana.kowalski", "/api/orders")).json()["items"] == []


async def test_sign_out_is_documented_as_an_empty_answer(api: Api) -> None:
    """``DELETE /api/session`` answered 204 with no body but was documented as JSON (``null``)."""
    schema = (await api.client.get("/schema/openapi.json")).json()
    answer = schema["paths"]["/api/session"]["delete"]["responses"]["204"]
    assert "content" not in answer
    signed_in = await api.client.post("/api/session", json={"login": "tom.berger", "password": "correct horse"})
    csrf = signed_in.json()["csrf_token"]
    out = await api.client.delete("/api/session", headers={"x-csrftoken": csrf})
    assert out.status_code == 204 and out.content == b"" and "content-type" not in out.headers
    assert out.headers["set-cookie"].startswith(f"{SESSION_COOKIE}=") and "Max-Age=0" in out.headers["set-cookie"]
    assert (await api.client.get("/api/session")).status_code == 401


async def test_text_with_nul_is_refused_not_a_server_error(api: Api) -> None:
    """PostgreSQL cannot store U+0000: a lookup or sign-in with it was a 500 there. The database layer now
    refuses such text on both databases alike (SQLite would have taken it)."""
    sent = [await api.get("jana.kowalski", "/api/time-entries?order=DS-1%00"),
            await api.post("jana.kowalski", "/api/timers/start", {"order": "DS-1\x00"}),
            await api.client.post("/api/session", json={"login": "tom.berger\x00", "password": "x"})]
    assert [a.status_code for a in sent] == [422, 422, 422]
    assert all(a.json()["errors"][0]["message"] == "text may not contain the NUL character (U+0000)"
               for a in sent)
