"""Signing in: sessions with CSRF protection, API tokens, and the OpenAPI document."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest

from tests.api_helpers import HOSTING_USERS, Api, served
from tests.migration_helpers import dump

HOSTING = {"fields": {"domain_name": "example.org", "contact_email": "web@example.org", "monthly_price": "9.90"}}
CREATE = "/api/templates/hosting_order/orders"


@pytest.fixture
async def api(database_url: str) -> AsyncIterator[Api]:
    async with served("hosting-orders", database_url, HOSTING_USERS) as api:
        yield api


async def test_session_login_and_csrf(api: Api) -> None:
    client = api.client
    wrong = await client.post("/api/session", json={"login": "tom.berger", "password": "nope"})
    assert wrong.status_code == 401 and "routecard_session" not in client.cookies
    unknown = await client.post("/api/session", json={"login": "nobody", "password": "nope"})
    assert unknown.status_code == 401 and unknown.json() == wrong.json()
    login = await client.post("/api/session", json={"login": "tom.berger", "password": "correct horse"})
    assert login.status_code == 201, login.text
    csrf = login.json()["csrf_token"]
    assert "routecard_session" in client.cookies
    assert "httponly" in login.headers["set-cookie"].lower()
    me = await client.get("/api/session")
    assert me.status_code == 200 and me.json()["login"] == "tom.berger" and me.json()["csrf_token"] == csrf
    assert (await client.get("/api/orders")).status_code == 200

    before = await dump(api.db)
    for headers in ({}, {"x-csrftoken": "forged"}, {"x-csrftoken": ""}):
        denied = await client.post(CREATE, json=HOSTING, headers=headers)
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"] == "forbidden"
    assert await dump(api.db) == before

    cross_site = await client.post(CREATE, json=HOSTING,
                                   headers={"x-csrftoken": csrf, "origin": "https://evil.example"})
    assert cross_site.status_code == 403 and "cross-site" in cross_site.json()["detail"]
    assert await dump(api.db) == before

    own = str(client.base_url).rstrip("/")
    made = await client.post(CREATE, json=HOSTING, headers={"x-csrftoken": csrf, "origin": own})
    assert made.status_code == 201, made.text
    # a token request carries no ambient credentials: no CSRF token needed, even with a cookie present
    by_token = await client.post(CREATE, json=HOSTING, headers=api.auth("tom.berger"))
    assert by_token.status_code == 201

    assert (await client.delete("/api/session")).status_code == 403
    assert (await client.delete("/api/session", headers={"x-csrftoken": csrf})).status_code == 204
    client.cookies.clear()
    assert (await client.get("/api/orders")).status_code == 401


async def test_a_stolen_session_key_stops_working_after_logout(api: Api) -> None:
    login = await api.client.post("/api/session", json={"login": "jana.kowalski", "password": "correct horse"})
    key = api.client.cookies["routecard_session"]
    csrf = login.json()["csrf_token"]
    await api.client.delete("/api/session", headers={"x-csrftoken": csrf})
    api.client.cookies.set("routecard_session", key)
    assert (await api.client.get("/api/orders")).status_code == 401
    stored = await api.db.fetch("SELECT key FROM rc_session")
    assert all(row["key"] != key for row in stored)


async def test_tokens_are_shown_once_listed_without_secrets_and_revoked_by_their_owner(api: Api) -> None:
    made = await api.post("tom.berger", "/api/tokens", {"name": "ci"})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    listed = await api.get("tom.berger", "/api/tokens")
    assert [t["name"] for t in listed.json()] == ["tests", "ci"]
    assert token not in listed.text and "hash" not in listed.text
    assert (await api.client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 200

    stranger = await api.client.delete(f"/api/tokens/{token_id}", headers=api.auth("jana.kowalski"))
    assert stranger.status_code == 404
    assert (await api.client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    revoked = await api.client.delete(f"/api/tokens/{token_id}", headers=api.auth("tom.berger"))
    assert revoked.status_code == 204
    assert (await api.client.get("/api/orders", headers={"Authorization": f"Bearer {token}"})).status_code == 401
    assert (await api.post("tom.berger", "/api/tokens", {"name": ""})).status_code == 422


async def test_a_tokens_last_use_is_recorded_to_the_minute(api: Api) -> None:
    made = (await api.post("tom.berger", "/api/tokens", {"name": "nightly"})).json()
    bearer = {"Authorization": f"Bearer {made['token']}"}

    async def last_used() -> str | None:
        listed = (await api.get("tom.berger", "/api/tokens")).json()
        return next(t["last_used_at"] for t in listed if t["id"] == made["id"])

    assert await last_used() is None
    assert (await api.client.get("/api/orders", headers=bearer)).status_code == 200
    first = await last_used()
    assert first is not None
    assert (await api.client.get("/api/orders", headers=bearer)).status_code == 200
    assert await last_used() == first  # not written again within the minute
    await api.db.execute("UPDATE rc_api_token SET last_used_at = {} WHERE id = {}",
                         dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc), made["id"])
    assert (await api.client.get("/api/orders", headers=bearer)).status_code == 200
    later = await last_used()
    assert later is not None and later > first
    await api.db.execute("UPDATE rc_api_token SET last_used_at = {}, expires_at = {} WHERE id = {}",
                         dt.datetime(2026, 1, 5, 8, 0, tzinfo=dt.timezone.utc),
                         dt.datetime(2026, 1, 6, 8, 0, tzinfo=dt.timezone.utc), made["id"])
    assert (await api.client.get("/api/orders", headers=bearer)).status_code == 401
    assert (await last_used() or "").startswith("2026-01-05T08:00")  # an expired token's use is not recorded


@pytest.mark.parametrize("example", ["hosting-orders", "ecommerce-workorders", "order-portal", "contract-agency"])
async def test_openapi_shows_every_templates_fields(example: str, database_url: str) -> None:
    async with served(example, database_url, {}) as api:
        response = await api.client.get("/schema/openapi.json")
        assert response.status_code == 200
        document = response.json()
        schemas = document["components"]["schemas"]
        for name, template in api.runtime.workspace.templates.items():
            path = document["paths"][f"/api/templates/{name}/orders"]["post"]
            ref = path["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            create = schemas[ref.rsplit("/", 1)[1]]
            fields_ref = next(o["$ref"] for o in create["properties"]["fields"]["oneOf"] if "$ref" in o)
            fields = schemas[fields_ref.rsplit("/", 1)[1]]
            assert set(fields["properties"]) == {f.name for f in template.fields}, name
        health = await api.client.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"
