"""The customer portal end to end: a three-page order form, the summary's ticks and crosses, submitting,
the mails (a real SMTP server), chat both ways, the order archived after completion; drafts, resume links
and the spam guards."""

from __future__ import annotations

import datetime as dt
import shutil
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api_helpers import served
from comms_helpers import SmtpServer, mail_workspace
from engine.comms import OutboxWorker
from engine.runtime import Runtime, create_token
from engine.runtime.actors import token_hash
from portal_helpers import PASSWORD, add_customer_user, complete, page_states, redirected
from web_helpers import Browser

STAFF = {login: {"password": PASSWORD, "email": f"{login}@harbourprint.example"}
         for login in ("olivia.hughes", "noah.patel", "harry.collins")}
DRAFT_URL = re.compile(r"^/portal/drafts/([^/]+)/pages/([a-z_]+)$")


@pytest.fixture
async def portal(database_url: str, tmp_path: Path, smtp: SmtpServer) -> AsyncIterator[Browser]:
    root = mail_workspace(tmp_path, smtp.port, "order-portal")
    async with served(root, database_url, STAFF) as api:
        for login, customer, email in (("ella", "seaside_theatre", "ella@seasidetheatre.example"),
                                       ("ben", "bramley_estates", "ben@bramley-estates.example")):
            user = await add_customer_user(api.db, api.runtime, login, customer, email)
            api.tokens[login] = await create_token(api.db, user, "tests")
        browser = Browser(api)
        await browser.sign_in("ella")
        await browser.sign_in("ben")
        await browser.sign_in("olivia.hughes")
        yield browser


async def _send_mail(web: Browser) -> None:
    report = await OutboxWorker(web.api.db, lambda: web.api.runtime.workspace.settings, timeout=5.0).run_once()
    assert report.failed == 0


CONTACT = {"fields.contact_name": "Ella Marsh", "fields.contact_email": "ella@seasidetheatre.example",
           "fields.contact_phone": "01234 567890"}
DETAILS = {"fields.product_kind": "brochures", "fields.copies": "250", "fields.paper_stock": "matt_250",
           "fields.artwork_ready": "false", "fields.design_brief": "A4, twelve pages, our new season."}
DELIVERY = {"fields.delivery_method": "pickup", "fields.needed_by": "2031-03-01"}


async def _start(web: Browser, login: str) -> tuple[str, str]:
    target = redirected(await web.post(login, "/portal/forms/print_order_form"))
    match = DRAFT_URL.match(target)
    assert match, target
    return match.group(1), match.group(2)


async def _version(web: Browser, login: str, url: str) -> str:
    page = await web.get(login, url)
    assert page.status_code == 200, page.text[:300]
    found = re.search(r'name="version" value="(\d+)"', page.text)
    assert found
    return found.group(1)


async def _save(web: Browser, login: str, key: str, page: str, values: dict[str, str], go: str = "next") -> Any:
    url = f"/portal/drafts/{key}/pages/{page}"
    version = await _version(web, login, url)
    return await web.post(login, url, {**values, "version": version, "go": go})


async def test_three_pages_a_red_cross_then_submit_mail_chat_and_archive(portal: Browser, smtp: SmtpServer) -> None:
    web = portal
    home = await web.get("ella", "/portal")
    assert "Order printing" in home.text
    key, first = await _start(web, "ella")
    assert first == "contact_page"
    assert redirected(await _save(web, "ella", key, "contact_page", CONTACT)) == \
        f"/portal/drafts/{key}/pages/details_page"

    # brochures without the page count the condition requires: saved, but the page is not complete
    page = await web.get("ella", f"/portal/drafts/{key}/pages/details_page")
    assert 'data-field="page_count"' not in page.text  # shown only for brochures, not chosen yet
    details = {k: v for k, v in DETAILS.items()}
    assert redirected(await _save(web, "ella", key, "details_page", details)) == \
        f"/portal/drafts/{key}/pages/delivery_page"
    again = await web.get("ella", f"/portal/drafts/{key}/pages/details_page")
    assert 'data-field="page_count"' in again.text  # brochures chosen: the conditional field is asked
    assert 'data-field="design_brief"' in again.text and 'data-field="artwork_files"' not in again.text
    assert redirected(await _save(web, "ella", key, "delivery_page", DELIVERY, go="summary")) == \
        f"/portal/drafts/{key}/summary"

    summary = await web.get("ella", f"/portal/drafts/{key}/summary")
    assert page_states(summary.text) == {"contact_page": "complete", "details_page": "incomplete",
                                         "delivery_page": "complete"}
    version = re.search(r'name="version" value="(\d+)"', summary.text).group(1)  # type: ignore[union-attr]
    refused = await web.post("ella", f"/portal/drafts/{key}/submit", {"version": version, "remark": "Thanks!"})
    assert refused.status_code == 422
    assert 'data-field="pages.details_page.fields.page_count"' in refused.text
    assert await web.api.db.fetch_value("SELECT COUNT(*) FROM rc_work_order") == 0

    # complete the page (the link back from the summary), then every page has its tick
    assert redirected(await _save(web, "ella", key, "details_page", {**details, "fields.page_count": "12"},
                                  go="summary")) == f"/portal/drafts/{key}/summary"
    summary = await web.get("ella", f"/portal/drafts/{key}/summary")
    assert set(page_states(summary.text).values()) == {"complete"}
    version = re.search(r'name="version" value="(\d+)"', summary.text).group(1)  # type: ignore[union-attr]
    sent = redirected(await web.post("ella", f"/portal/drafts/{key}/submit",
                                     {"version": version, "remark": "Matt lamination if possible."}))
    number = sent.removeprefix("/portal/orders/").split("?")[0]
    order = await _runtime(web).get(await _actor(web, "olivia.hughes"), number)
    assert order["template"] == "print_order" and order["queue"] == "print_jobs"
    assert order["fields"]["page_count"] == 12 and order["fields"]["design_brief"].startswith("A4")
    assert order["fields"]["artwork_files"] is None
    customer = await web.api.db.fetch_value("SELECT customer_id FROM rc_work_order WHERE number = {}", number)
    assert customer == await web.api.db.fetch_value("SELECT id FROM rc_customer WHERE name = 'seaside_theatre'")
    sent_draft = await web.clients["ella"][0].get(f"/portal/drafts/{key}/summary", follow_redirects=False)
    assert sent_draft.status_code == 303 and sent_draft.headers["location"] == "/portal?tab=running"
    submitted = await web.api.db.fetch("SELECT after FROM rc_event WHERE kind = 'form_submitted'")
    assert len(submitted) == 1 and '"message"' in str(submitted[0]["after"])  # the remark, in the audit trail

    # the mails: a receipt to the customer, "a new order has arrived" to the print desk
    await _send_mail(web)
    receipt = [m for m in smtp.to("ella@seasidetheatre.example") if "received" in str(m["Subject"])]
    assert len(receipt) == 1 and number in str(receipt[0]["Subject"])
    assert f"/portal/orders/{number}" in receipt[0].get_content()
    for login in ("olivia.hughes", "noah.patel"):
        arrived = smtp.to(f"{login}@harbourprint.example")
        assert len(arrived) == 1 and "New order" in str(arrived[0]["Subject"])
        assert "Matt lamination" in arrived[0].get_content()
    assert smtp.to("harry.collins@harbourprint.example") == []  # prepress is not told
    await _send_mail(web)
    assert max(smtp.ids().values()) == 1  # nothing twice

    # chat both ways
    said = await web.post("ella", f"/portal/orders/{number}/chat", {"body": "Can you do it by Friday?"})
    assert said.status_code == 200 and "Can you do it by Friday?" in said.text
    staff_view = await web.get("olivia.hughes", f"/orders/{number}/thread")
    assert "Can you do it by Friday?" in staff_view.text
    chat = await web.get("olivia.hughes", f"/orders/{number}/chat")
    assert "Can you do it by Friday?" in chat.text and "Answer in the chat" in chat.text
    answered = await web.post("olivia.hughes", f"/orders/{number}/chat", {"body": "Yes, Friday noon."})
    assert answered.status_code == 200 and "Yes, Friday noon." in answered.text, answered.text[:300]
    by_api = await web.api.post("olivia.hughes", f"/api/orders/{number}/chat", {"body": "Proof tomorrow."})
    assert by_api.status_code == 201 and by_api.json()["kind"] == "chat"
    await web.post("olivia.hughes", f"/orders/{number}/thread/comment",
                   {"body": "Internal: margin is thin on this one."})
    seen = await web.get("ella", f"/portal/orders/{number}/messages")
    assert "Yes, Friday noon." in seen.text and "Proof tomorrow." in seen.text and "margin is thin" not in seen.text
    assert "Matt lamination" in seen.text  # the remark, shown to the customer as theirs

    # another customer sees none of it
    assert (await web.get("ben", f"/portal/orders/{number}")).status_code == 404
    assert number not in (await web.get("ben", "/portal?tab=running")).text

    running = await web.get("ella", "/portal?tab=running")
    assert number in running.text
    await complete(_runtime(web), number)
    assert number not in (await web.get("ella", "/portal?tab=running")).text
    archived = await web.get("ella", "/portal?tab=archived")
    assert number in archived.text
    closed = await web.post("ella", f"/portal/orders/{number}/chat", {"body": "One more thing"})
    assert closed.status_code == 409 and "One more thing" not in (await web.get("ella", f"/portal/orders/{number}")).text


def _runtime(web: Browser) -> Runtime:
    """The services on the test's own connection (the app's live in the test client's event loop)."""
    return Runtime(web.api.runtime.workspace, web.api.db)


async def _actor(web: Browser, login: str) -> Any:
    from engine.runtime import load_actor
    return await load_actor(web.api.db, web.api.runtime.workspace, login=login)


async def test_pages_come_in_order_and_take_only_their_own_fields(portal: Browser) -> None:
    web = portal
    key, _ = await _start(web, "ella")
    ahead = await _save(web, "ella", key, "delivery_page", DELIVERY)
    assert ahead.status_code == 422 and "fill in page `contact_page` first" in ahead.text
    other = await _save(web, "ella", key, "contact_page", {**CONTACT, "fields.quoted_price": "1.00"})
    assert other.status_code == 303 or other.status_code == 204  # not on the page: never read from the post
    api = web.api
    draft = await api.get("ella", f"/api/drafts/{key}")
    assert draft.status_code == 200 and "quoted_price" not in draft.json()["answers"]
    sneaky = await api.client.put(f"/api/drafts/{key}/pages/details_page", headers=api.auth("ella"), json={
        "version": draft.json()["version"], "fields": {"quoted_price": "1.00", "copies": 5}})
    assert sneaky.status_code == 422
    assert {"field": "fields.quoted_price", "message": "page `details_page` does not ask for `quoted_price`"} in \
        sneaky.json()["errors"]
    typo = await api.client.put(f"/api/drafts/{key}/pages/details_page", headers=api.auth("ella"), json={
        "version": draft.json()["version"], "fields": {"copies": "many"}})
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "fields.copies"
    stale = await api.client.put(f"/api/drafts/{key}/pages/details_page", headers=api.auth("ella"), json={
        "version": 1, "fields": {"copies": 5}})
    assert stale.status_code == 422 and stale.json()["errors"][0]["field"] == "version"
    assert (await api.get("ben", f"/api/drafts/{key}")).status_code == 404
    assert (await web.get("ben", f"/portal/drafts/{key}/summary")).status_code == 404


async def test_send_order_link_resumes_once_for_its_person_only(portal: Browser, smtp: SmtpServer) -> None:
    web = portal
    key, _ = await _start(web, "ella")
    await _save(web, "ella", key, "contact_page", CONTACT)
    listed = await web.get("olivia.hughes", "/drafts")
    assert key in listed.text and "ella@seasidetheatre.example" in listed.text
    sent = await web.post("olivia.hughes", f"/drafts/{key}/link")
    assert sent.status_code == 200 and "Link sent to ella@seasidetheatre.example" in sent.text
    await _send_mail(web)
    mail = smtp.to("ella@seasidetheatre.example")[-1]
    link = re.search(r"https?://\S+/portal/resume/(\S+)", mail.get_content())
    assert link, mail.get_content()
    token = link.group(1)
    assert await web.api.db.fetch_value("SELECT COUNT(*) FROM rc_resume_token WHERE token_hash = {}",
                                        token_hash(token)) == 1

    # a tampered token, another person: nothing opens
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert (await web.get("ella", f"/portal/resume/{tampered}")).status_code == 404
    assert (await web.get("ben", f"/portal/resume/{token}")).status_code == 404
    # its person: the draft, at the first page still open
    opened = await web.clients["ella"][0].get(f"/portal/resume/{token}", follow_redirects=False)
    assert opened.status_code == 303 and opened.headers["location"] == f"/portal/drafts/{key}/pages/details_page"
    # replayed: spent
    assert (await web.get("ella", f"/portal/resume/{token}")).status_code == 404

    # expired
    await web.post("olivia.hughes", f"/drafts/{key}/link")
    await _send_mail(web)
    second = re.search(r"/portal/resume/(\S+)", smtp.to("ella@seasidetheatre.example")[-1].get_content())
    assert second
    await web.api.db.execute("UPDATE rc_resume_token SET expires_at = {} WHERE used_at IS NULL",
                             dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    assert (await web.get("ella", f"/portal/resume/{second.group(1)}")).status_code == 404
    # customers cannot send links
    assert (await web.post("ella", f"/drafts/{key}/link")).status_code in (403, 404)


async def test_honeypot_and_the_post_limit(portal: Browser) -> None:
    web = portal
    trapped = await web.post("ella", "/portal/forms/print_order_form", {"website": "http://spam.example"})
    assert trapped.status_code == 422
    assert await web.api.db.fetch_value("SELECT COUNT(*) FROM rc_form_draft") == 0
    statuses = [(await web.post("ben", "/portal/forms/print_order_form")).status_code for _ in range(100)]
    started = await web.api.db.fetch_value("SELECT COUNT(*) FROM rc_form_draft")
    assert statuses.count(429) >= 60 and started <= 30
    assert statuses[:29] == [204] * 29  # the first ones went through


def test_a_public_form_may_not_ask_for_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.cli import main

    root = tmp_path / "portal"
    shutil.copytree(Path(__file__).resolve().parent.parent / "examples" / "order-portal", root)
    forms = root / "forms.yaml"
    forms.write_text(forms.read_text(encoding="utf-8").replace("access: customer", "access: public"),
                     encoding="utf-8")
    assert main(["check", str(root)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert re.search(r"forms\.yaml:\d+:\d+: error: a public form cannot ask for the upload field `artwork_files`",
                     text), text


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def test_page_uploads_keep_the_size_limit_and_go_with_the_order(database_url: str, tmp_path: Path,
                                                                     smtp: SmtpServer) -> None:
    root = mail_workspace(tmp_path, smtp.port, "order-portal")
    with (root / "routecard.yaml").open("a", encoding="utf-8") as settings:
        settings.write("attachments:\n  max_size: 2000\n")
    async with served(root, database_url, STAFF) as api:
        for login, customer, email in (("ella", "seaside_theatre", "ella@seasidetheatre.example"),
                                       ("ben", "bramley_estates", "ben@bramley-estates.example")):
            await add_customer_user(api.db, api.runtime, login, customer, email)
        web = Browser(api)
        await web.sign_in("ella")
        await web.sign_in("ben")
        key, _ = await _start(web, "ella")
        await _save(web, "ella", key, "contact_page", CONTACT)
        url = f"/portal/drafts/{key}/pages/details_page"
        values = {**DETAILS, "fields.artwork_ready": "true", "fields.product_kind": "flyers",
                  "version": await _version(web, "ella", url), "go": "next"}
        del values["fields.design_brief"]
        big = await web.post("ella", url, values, files={"fields.artwork_files": ("art.pdf", PDF + b" " * 5000,
                                                                                   "application/pdf")})
        assert big.status_code == 422 and 'id="page-artwork_files-error"' in big.text, big.text[-3000:]
        assert await api.db.fetch_value("SELECT COUNT(*) FROM rc_attachment") == 0
        values["version"] = await _version(web, "ella", url)
        small = await web.post("ella", url, values, files={"fields.artwork_files": ("art.pdf", PDF,
                                                                                     "application/pdf")})
        assert redirected(small).endswith("/pages/delivery_page")
        attachment = await api.db.fetch_value("SELECT id FROM rc_attachment")
        assert attachment is not None
        await _save(web, "ella", key, "delivery_page", DELIVERY, go="summary")
        summary = await web.get("ella", f"/portal/drafts/{key}/summary")
        assert set(page_states(summary.text).values()) == {"complete"}, summary.text[:2000]
        version = re.search(r'name="version" value="(\d+)"', summary.text).group(1)  # type: ignore[union-attr]
        number = redirected(await web.post("ella", f"/portal/drafts/{key}/submit", {"version": version})
                            ).removeprefix("/portal/orders/").split("?")[0]
        tied = await api.db.fetch_value("SELECT w.number FROM rc_attachment a JOIN rc_work_order w "
                                        "ON w.id = a.work_order_id WHERE a.id = {}", attachment)
        assert tied == number
        page = await web.get("ella", f"/portal/orders/{number}")
        assert "art.pdf" in page.text
        download = await web.get("ella", f"/files/{attachment}/art.pdf")
        assert download.status_code == 200 and download.content == PDF
        assert (await web.get("ben", f"/files/{attachment}/art.pdf")).status_code == 404
