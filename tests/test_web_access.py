"""Signing in and out of the screens, sessions that end, CSRF, the language setting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from api_helpers import HOSTING_USERS
from ui.sessions import SESSION_COOKIE
from web_helpers import Browser, browsing


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as browser:
        yield browser


def _client(web: Browser) -> AsyncTestClient[Any]:
    return web.api.client


async def test_pages_need_a_session_and_come_back_after_login(web: Browser) -> None:
    client = _client(web)
    response = await client.get("/manager?queue=virtual_hosting", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmanager%3Fqueue%3Dvirtual_hosting"
    htmx = await client.get("/manager", headers={"hx-request": "true"}, follow_redirects=False)
    assert htmx.status_code == 204 and htmx.headers["hx-redirect"].startswith("/login?next=")
    login = await client.get("/login?next=%2Fmanager%3Fqueue%3Dvirtual_hosting")
    assert 'name="next" value="/manager?queue=virtual_hosting"' in login.text
    done = await client.post("/login", data={"login": "tom.berger", "password": "correct horse",
                                             "next": "/manager?queue=virtual_hosting"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/manager?queue=virtual_hosting"
    assert SESSION_COOKIE in done.cookies
    assert "HttpOnly" in done.headers["set-cookie"] and "SameSite=lax" in done.headers["set-cookie"]


async def test_wrong_password_is_refused_with_a_message_and_the_login_kept(web: Browser) -> None:
    response = await _client(web).post("/login", data={"login": "tom.berger", "password": "nope", "next": "/my"})
    assert response.status_code == 401
    assert "Wrong login or password." in response.text
    assert 'value="tom.berger"' in response.text and 'value="/my"' in response.text
    assert SESSION_COOKIE not in response.cookies


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
async def test_login_never_redirects_off_site(web: Browser, target: str) -> None:
    response = await _client(web).post("/login", data={"login": "tom.berger", "password": "correct horse",
                                                       "next": target}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/manager"


async def test_login_from_another_site_is_refused(web: Browser) -> None:
    response = await _client(web).post("/login", data={"login": "tom.berger", "password": "correct horse"},
                                       headers={"origin": "https://evil.example"}, follow_redirects=False)
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.cookies


async def test_an_ended_session_sends_back_to_login_and_then_to_the_page(web: Browser) -> None:
    client = await web.sign_in("lea.schmitt")
    await web.api.db.execute("DELETE FROM rc_session")
    response = await client.get("/my", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fmy&expired=1"
    page = await client.get(response.headers["location"])
    assert "Your session has ended" in page.text
    again = await client.post("/login", data={"login": "lea.schmitt", "password": "correct horse", "next": "/my"},
                              follow_redirects=False)
    assert again.headers["location"] == "/my"


async def test_changes_need_the_csrf_token(web: Browser) -> None:
    await web.sign_in("tom.berger")
    refused = await web.post("tom.berger", "/logout", csrf=False)
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    wrong = await web.post("tom.berger", "/logout", csrf=False, **{"x-csrftoken": "forged"})
    assert wrong.status_code == 403
    still = await web.get("tom.berger", "/my")
    assert still.status_code == 200 and "tom.berger" in still.text
    done = await web.post("tom.berger", "/logout")
    assert done.status_code == 204 and done.headers["hx-redirect"] == "/login"
    after = await web.get("tom.berger", "/my")
    assert after.status_code == 200 and 'action="/login"' in after.text  # followed to the login page


async def test_language_setting_is_remembered_per_user(web: Browser) -> None:
    await web.sign_in("tom.berger")
    bad = await web.post("tom.berger", "/settings/language", {"language": "xx"})
    assert bad.status_code == 422 and "one of: en, de, ru, zh" in bad.text
    done = await web.post("tom.berger", "/settings/language", {"language": "de"})
    assert done.status_code == 204 and done.headers["hx-refresh"] == "true"
    stored = await web.api.db.fetch_value("SELECT language FROM rc_user WHERE login = {}", "tom.berger")
    assert stored == "de"
    page = await web.get("tom.berger", "/manager")
    assert '<html lang="de">' in page.text


async def test_accept_language_chooses_when_the_user_has_not(web: Browser) -> None:
    await web.sign_in("lea.schmitt")
    page = await web.get("lea.schmitt", "/manager", **{"accept-language": "fr-CH, ru;q=0.8, en;q=0.5"})
    assert '<html lang="ru">' in page.text


async def test_static_files_are_served_without_a_session(web: Browser) -> None:
    response = await _client(web).get("/static/vendor/htmx.min.js")
    assert response.status_code == 200 and b"htmx" in response.content
    css = await _client(web).get("/static/routecard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")


async def test_password_guessing_is_limited_per_login_and_client(web: Browser) -> None:
    client = _client(web)
    for _ in range(10):
        wrong = await client.post("/login", data={"login": "lea.schmitt", "password": "guess"})
        assert wrong.status_code == 401
    limited = await client.post("/login", data={"login": "lea.schmitt", "password": "correct horse"},
                                follow_redirects=False)
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert SESSION_COOKIE not in limited.cookies  # not even the right password gets in now
    api = await client.post("/api/session", json={"login": "LEA.SCHMITT", "password": "correct horse"})
    assert api.status_code == 429 and api.json()["error"] == "too_many_requests"
    assert 0 < int(api.headers["retry-after"]) <= 15 * 60
    other = await client.post("/login", data={"login": "tom.berger", "password": "correct horse"},
                              follow_redirects=False)
    assert other.status_code == 303  # other users are not affected


def test_the_limiter_forgets_old_failures_and_clears_on_success() -> None:
    from ui.limits import SignInLimiter, TooManyAttempts

    limiter = SignInLimiter(per_client=2, per_login=3, window=0.2)
    limiter.failed("ann", "10.0.0.1")
    limiter.failed("ann", "10.0.0.1")
    with pytest.raises(TooManyAttempts):
        limiter.check("ann", "10.0.0.1")
    limiter.check("ann", "10.0.0.2")  # another address may still try
    limiter.failed("Ann", "10.0.0.2")
    with pytest.raises(TooManyAttempts):
        limiter.check("ann", "10.0.0.3")  # the login's own limit, from anywhere
    import time

    time.sleep(0.25)
    limiter.check("ann", "10.0.0.1")
    limiter.failed("bob", "10.0.0.1")
    limiter.succeeded("bob", "10.0.0.1")
    assert limiter.failures.count(("client", "bob", "10.0.0.1")) == 0
    assert limiter.failures.count(("login", "bob")) == 1  # the login's own count stays
