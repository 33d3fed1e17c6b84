"""The SMTP test of the admin page and the API: a real aiosmtpd server, and a closed port, on SQLite and PostgreSQL.

Only the configured server is used (a host in the body is refused), the recipient is
checked for header injection, failures are reported in Routecard's words (no 5xx, no
server text), only admins may send, and the tests are rate limited.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api_helpers import served
from comms_helpers import SmtpServer, free_port, mail_workspace
from web_helpers import Browser

USERS = {"root": {"password": "correct horse", "roles": ("administrator",)},
         "lukas.maier": {"password": "correct horse"}}
URL = "/api/admin/mail/test"


async def _outbox(web: Browser) -> list[object]:
    return [await web.api.db.fetch(f"SELECT * FROM {t} ORDER BY id") for t in ("rc_outbox", "rc_message", "rc_event")]


@pytest.fixture
async def web(tmp_path: Path, database_url: str, smtp: SmtpServer) -> AsyncIterator[Browser]:
    async with served(mail_workspace(tmp_path, smtp.port), database_url, USERS) as api:
        browser = Browser(api)
        await browser.sign_in("root")
        await browser.sign_in("lukas.maier")
        yield browser


async def test_the_api_sends_a_test_mail_through_the_configured_server(web: Browser, smtp: SmtpServer) -> None:
    before = await _outbox(web)
    sent = await web.api.post("root", URL, {"to": "admin@example.org"})
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"sent": True, "server": f"127.0.0.1:{smtp.port} (none)",
                           "detail": "the server accepted the mail to admin@example.org"}
    [(recipients, mail)] = smtp.received
    assert recipients == ["admin@example.org"] and mail["Subject"] == "Routecard test mail"
    assert mail["From"] == "Lindner Versand <service@lindner-versand.example>"
    assert "sent by root" in mail.get_content()
    assert await _outbox(web) == before  # a test, not a message: nothing is written
    # never another host, never a list or an injected header
    for body, field in (({"to": "a@example.org", "host": "10.0.0.1"}, "host"),
                        ({"to": "a@example.org\r\nBcc: b@example.org"}, "to"),
                        ({"to": "a@example.org, b@example.org"}, "to"), ({"to": ""}, "to")):
        refused = await web.api.post("root", URL, body)
        assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == field, refused.text
    assert len(smtp.received) == 1
    # admins only
    other = await web.api.post("lukas.maier", URL, {"to": "admin@example.org"})
    assert other.status_code == 403 and len(smtp.received) == 1


async def test_a_closed_port_is_a_clear_error_not_a_5xx(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    async with served(mail_workspace(tmp_path, port), database_url, USERS) as api:
        failed = await api.post("root", URL, {"to": "admin@example.org"})
        assert failed.status_code == 200, failed.text
        assert failed.json() == {"sent": False, "server": f"127.0.0.1:{port} (none)",
                                 "detail": f"cannot reach 127.0.0.1:{port}: the connection was refused"}


async def test_without_smtp_settings_the_test_is_refused(tmp_path: Path, database_url: str) -> None:
    async with served(mail_workspace(tmp_path, None), database_url, USERS) as api:
        refused = await api.post("root", URL, {"to": "admin@example.org"})
        assert refused.status_code == 409 and "no SMTP server is configured" in refused.json()["detail"]


async def test_the_admin_page_button_and_the_rate_limit(web: Browser, smtp: SmtpServer) -> None:
    page = await web.get("root", "/admin")
    assert page.status_code == 200
    assert 'hx-post="/admin/mail/test"' in page.text and f"127.0.0.1:{smtp.port} (none)" in page.text
    assert '<tr data-name="parcel_shipped">' in page.text  # the comment templates are listed too
    assert 'hx-post="/admin/mail/test"' not in (await web.get("lukas.maier", "/admin")).text
    sent = await web.post("root", "/admin/mail/test", {"to": "admin@example.org"})
    assert sent.status_code == 200 and "the server accepted the mail to admin@example.org" in sent.text
    bad = await web.post("root", "/admin/mail/test", {"to": "x@example.org\nBcc: y@example.org"})
    assert bad.status_code == 422 and "an address cannot contain a line break" in bad.text
    assert (await web.post("lukas.maier", "/admin/mail/test", {"to": "admin@example.org"})).status_code == 403
    assert (await web.post("root", "/admin/mail/test", {"to": "a@example.org"}, csrf=False)).status_code == 403
    # five tests per admin within ten minutes (the refused address counted too)
    answers = [await web.api.post("root", URL, {"to": "admin@example.org"}) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert re.search(r"too many test mails; try again in \d+ minutes", answers[-1].json()["detail"])
    limited = await web.post("root", "/admin/mail/test", {"to": "admin@example.org"})
    assert limited.status_code == 409 and "too many test mails" in limited.text
    assert len(smtp.received) == 4
