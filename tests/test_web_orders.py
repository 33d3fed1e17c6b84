"""The work-order page: every part shown, actions to completion, edits in place, errors, conflicts, cancel."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api_helpers import HOSTING_USERS, SERVER_FIELDS
from engine.compile.spec import extension_table
from web_helpers import Browser, browsing

AGENT = "tom.berger"
XSS = "<script>alert(1)</script>"


@pytest.fixture
async def web(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as browser:
        await browser.sign_in(AGENT)
        yield browser


async def _server(web: Browser, **extra: Any) -> str:
    """A dedicated-server order created through the create form; its number."""
    data = {"title": "Server for ACME", "priority": "normal",
            **{f"fields.{k}": v for k, v in {**SERVER_FIELDS, "ram_gb": "32", **extra}.items()}}
    response = await web.post(AGENT, "/new/dedicated_server_order", data)
    assert response.status_code == 204, response.text
    return str(response.headers["hx-redirect"]).removeprefix("/orders/")


async def _current(web: Browser, number: str) -> str:
    return str((await web.api.order(AGENT, number))["version"])


def _version(html: str) -> str:
    match = re.search(r'name="version" value="(\d+)"', html)
    assert match, "no version in the fragment"
    return match.group(1)


async def _snapshot(web: Browser) -> list[Any]:
    db = web.api.db
    return [await db.fetch("SELECT * FROM rc_work_order ORDER BY id"), await db.fetch("SELECT * FROM rc_event ORDER BY id"),
            await db.fetch("SELECT * FROM rc_step_action ORDER BY id"),
            await db.fetch(f"SELECT * FROM {extension_table('dedicated_server_order')} ORDER BY work_order_id")]


async def test_order_page_shows_every_part(web: Browser) -> None:
    number = await _server(web)
    other = await _server(web)
    await web.api.db.execute("INSERT INTO rc_customer (name, label) VALUES ({}, {})", "acme", "ACME Hosting AG")
    customer = await web.post(AGENT, f"/orders/{number}/header/customer_id", {"version": "1", "customer_id": "acme"})
    assert customer.status_code == 200, customer.text
    linked = await web.post(AGENT, f"/orders/{number}/links", {"number": other})
    assert linked.status_code == 200 and f'<a href="/orders/{other}">{other}</a>' in linked.text
    await web.sign_in("jana.kowalski")  # the owner: offered every control
    page = await web.get("jana.kowalski", f"/orders/{number}")
    text = page.text
    assert page.status_code == 200
    assert f'<span class="number">{number}</span>' in text
    assert "Dedicated server order · Dedicated servers" in text
    assert "<strong>Review and fraud check</strong>" in text and "status-open" in text
    assert re.search(r"<dt>Owner</dt>\s*<dd>\s*jana\.kowalski", text)  # least_open in sales
    assert "priority-normal" in text and "ACME Hosting AG" in text
    assert 'hx-get="/orders/{0}/header/planned_at"'.format(number) in text
    # the actions of the current step, skip only where skippable
    assert re.search(r'data-action="verify_identity">.*?class="process".*?</form>', text, re.S)
    verify = re.search(r'data-action="verify_identity">(.*?)</li>', text, re.S)
    score = re.search(r'data-action="score_payment">(.*?)</li>', text, re.S)
    assert verify and score and 'name="skip"' not in verify.group(1) and 'name="skip"' in score.group(1)
    assert "Verify the customer&#39;s identity" in text
    # sections: the default one first, then as defined
    headings = re.findall(r'<h2 id="section-\d+-heading">([^<]+)</h2>', text)
    assert headings == ["Details", "Hardware", "Software", "Network", "Billing"]
    assert re.search(r'data-field="server_line">\s*<dt>Server line</dt>\s*<dd>\s*Performance \(16 cores\)', text)
    assert re.search(r'data-field="managed_service">\s*<dt>Managed service</dt>\s*<dd>\s*No', text)
    # history of steps, links, audit trail in words, newest first
    assert '<li class="current" aria-current="step">Review and fraud check</li>' in text
    assert f'<a href="/orders/{other}">{other}</a>' in text
    trail = text[text.index('id="order-trail"'):]
    assert trail.index(f"linked work order {other}") < trail.index("Customer: — → ACME Hosting AG") \
        < trail.index("created the work order in step Review and fraud check")
    assert 'hx-get="/orders/{0}/cancel"'.format(number) in text


async def test_process_and_skip_through_to_complete(web: Browser) -> None:
    number = await _server(web)
    await web.sign_in("jana.kowalski")
    flow = await web.post("jana.kowalski", f"/orders/{number}/actions/verify_identity", {"version": "1"})
    assert flow.status_code == 200
    assert re.search(r'data-action="verify_identity">.*?class="badge state-processed">✓ Processed<', flow.text, re.S)
    assert 'id="order-trail" aria-labelledby="trail-heading" hx-swap-oob="true"' in flow.text
    assert "processed action Verify the customer&#39;s identity" in flow.text
    flow = await web.post("jana.kowalski", f"/orders/{number}/actions/score_payment",
                          {"version": _version(flow.text), "skip": "true"})
    assert re.search(r'data-action="score_payment">.*?state-skipped">Skipped<', flow.text, re.S)
    flow = await web.post("jana.kowalski", f"/orders/{number}/actions/confirm_order", {"version": _version(flow.text)})
    # the step is done: the next step's actions are shown, the path has grown
    assert "Actions of step Provision server" in flow.text and 'data-action="provision_account"' in flow.text
    assert '<li class="done">Review and fraud check</li>' in flow.text
    assert "moved to step Provision server" in flow.text
    supervisors = {"provision_server": "piotr.nowak", "configure_network": "piotr.nowak", "invoicing": "clara.weiss",
                   "handover": "jana.kowalski"}
    await web.sign_in("piotr.nowak")
    await web.sign_in("clara.weiss")
    for _ in range(20):
        order = await web.api.order(AGENT, number)
        if order["status"] != "open":
            break
        login = supervisors[order["step"]]
        pending = next(a for a in order["actions"] if a["state"] == "pending")
        response = await web.post(login, f"/orders/{number}/actions/{pending['name']}", {"version": str(order["version"])})
        assert response.status_code == 200, response.text
    assert order["status"] == "completed"
    # the last answer replaced the whole body: no controls left
    assert response.headers["hx-retarget"] == "#order"
    assert "This work order was completed" in response.text
    assert 'class="process"' not in response.text and "Cancel work order" not in response.text
    assert 'class="link edit"' not in response.text
    assert '<li class="done end">Complete</li>' in response.text and "completed the work order" in response.text


async def test_several_next_steps_offer_advance_buttons_and_returns(database_url: str) -> None:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as web:
        await web.sign_in("jana.kowalski")
        created = await web.post("jana.kowalski", "/new/hosting_order", {
            "fields.domain_name": "example.org", "fields.contact_email": "a@example.org", "fields.monthly_price": "9.90"})
        number = created.headers["hx-redirect"].removeprefix("/orders/")
        flow = await web.post("jana.kowalski", f"/orders/{number}/actions/check_domain", {"version": "1"})
        assert 'hx-post="/orders/{0}/advance"'.format(number) in flow.text
        assert re.search(r'name="to" value="domain_transfer" class="advance">Domain transfer', flow.text)
        flow = await web.post("jana.kowalski", f"/orders/{number}/advance",
                              {"version": _version(flow.text), "to": "domain_transfer"})
        assert "Actions of step Domain transfer" in flow.text
        await web.sign_in("piotr.nowak")  # the transfer is provisioning's step
        flow = await web.get("piotr.nowak", f"/orders/{number}/flow", htmx=True)
        assert re.search(r'name="to" value="previous" class="return">← Back to the previous step \(Review\)', flow.text)
        flow = await web.post("piotr.nowak", f"/orders/{number}/return", {"version": _version(flow.text), "to": "previous"})
        assert "Actions of step Review" in flow.text and "sent the work order back to step Review" in flow.text


async def test_header_edit_in_place(web: Browser) -> None:
    number = await _server(web)
    form = await web.get(AGENT, f"/orders/{number}/header/priority", htmx=True)
    assert f'hx-post="/orders/{number}/header/priority"' in form.text
    assert '<option value="normal" selected>Normal</option>' in form.text
    assert "keyup[key=='Escape']" in form.text and f'hx-get="/orders/{number}/flow"' in form.text
    saved = await web.post(AGENT, f"/orders/{number}/header/priority", {"version": _version(form.text), "priority": "high"})
    assert saved.status_code == 200
    assert '<span class="priority priority-high">High</span>' in saved.text
    assert "Priority: Normal → High" in saved.text
    assert f'hx-post="/orders/{number}/header/priority"' not in saved.text  # back to reading
    planned = await web.post(AGENT, f"/orders/{number}/header/planned_at",
                             {"version": await _current(web, number), "planned_at": "2026-12-03T16:30"})
    assert "2026-12-03 16:30" in planned.text
    assert (await web.api.order(AGENT, number))["planned_at"] == "2026-12-03T15:30:00+00:00"
    bad = await web.post(AGENT, f"/orders/{number}/header/planned_at",
                         {"version": await _current(web, number), "planned_at": "someday"})
    assert bad.status_code == 422 and 'value="someday"' in bad.text and "is not a date and time" in bad.text
    empty = await web.post(AGENT, f"/orders/{number}/header/title", {"version": await _current(web, number), "title": "  "})
    assert empty.status_code == 422 and "a work order needs a title" in empty.text
    owner = await web.post(AGENT, f"/orders/{number}/header/owner", {"version": await _current(web, number), "owner": "lea.schmitt"})
    assert owner.status_code == 200 and re.search(r"<dt>Owner</dt>\s*<dd>\s*lea\.schmitt", owner.text)
    assert "gave the work order to lea.schmitt" in owner.text
    restored = await web.get(AGENT, f"/orders/{number}/flow", htmx=True)
    assert 'class="inline-edit"' not in restored.text


async def test_section_edit_with_a_validation_error_then_a_valid_value(web: Browser) -> None:
    number = await _server(web)
    form = await web.get(AGENT, f"/orders/{number}/sections/1?edit=1", htmx=True)
    assert 'hx-post="/orders/{0}/sections/1"'.format(number) in form.text
    assert '<input type="number" id="s1-ram_gb" name="fields.ram_gb" value="32"' in form.text
    before = await _snapshot(web)
    bad = await web.post(AGENT, f"/orders/{number}/sections/1", {
        "version": _version(form.text), "fields.server_line": "gpu", "fields.ram_gb": "4", "fields.disk_layout": "no_raid"})
    assert bad.status_code == 422
    assert re.search(r'id="s1-ram_gb"[^>]*aria-invalid="true"', bad.text)
    assert re.search(r'<p class="field-error" id="s1-ram_gb-error">[^<]*16[^<]*</p>', bad.text)
    assert 'value="4"' in bad.text and '<option value="gpu" selected>' in bad.text  # the entry is kept
    assert await _snapshot(web) == before
    good = await web.post(AGENT, f"/orders/{number}/sections/1", {
        "version": _version(bad.text), "fields.server_line": "gpu", "fields.ram_gb": "64", "fields.disk_layout": "no_raid"})
    assert good.status_code == 200
    assert re.search(r'data-field="ram_gb">\s*<dt>Memory \(GB\)</dt>\s*<dd>\s*64', good.text)
    assert 'id="order-flow"' in good.text and 'hx-swap-oob="true"' in good.text
    assert "Memory (GB): 32 → 64" in good.text and "Server line: Performance (16 cores) → GPU (32 cores, 2 GPUs)" in good.text
    order = await web.api.order(AGENT, number)
    assert order["fields"]["ram_gb"] == 64 and order["fields"]["server_line"] == "gpu"


async def test_a_stale_version_is_a_conflict_with_a_reload_link_and_the_input_kept(web: Browser) -> None:
    number = await _server(web)
    form = await web.get(AGENT, f"/orders/{number}/sections/1?edit=1", htmx=True)
    api = await web.api.patch(AGENT, f"/api/orders/{number}", {"version": 1, "priority": "urgent"})
    assert api.status_code == 200
    before = await _snapshot(web)
    stale = await web.post(AGENT, f"/orders/{number}/sections/1", {
        "version": _version(form.text), "fields.server_line": "gpu", "fields.ram_gb": "128", "fields.disk_layout": "no_raid"})
    assert stale.status_code == 409
    assert "Not saved: the work order was changed meanwhile." in stale.text and "(Priority)" in stale.text
    assert f'<a href="/orders/{number}">Reload the work order</a>' in stale.text
    assert 'value="128"' in stale.text
    assert await _snapshot(web) == before
    action = await web.post(AGENT, f"/orders/{number}/actions/verify_identity", {"version": "1"})
    assert action.status_code == 409 and "Reload the work order" in action.text
    assert await _snapshot(web) == before


async def test_cancel_asks_first_then_refuses_every_change(web: Browser) -> None:
    number = await _server(web)  # owned by jana.kowalski: tom may not cancel it, and is not offered to
    page = await web.get(AGENT, f"/orders/{number}")
    assert "Cancel work order" not in page.text
    assert "Only the owner (jana.kowalski) or a supervisor of sales can process these actions." in page.text
    await web.sign_in("jana.kowalski")
    confirm = await web.get("jana.kowalski", f"/orders/{number}/cancel", htmx=True)
    assert 'role="alertdialog"' in confirm.text and "cannot be undone" in confirm.text
    assert 'name="reason"' in confirm.text
    done = await web.post("jana.kowalski", f"/orders/{number}/cancel", {"version": _version(confirm.text), "reason": "Fraud <b>suspected</b>"})
    assert done.status_code == 200 and done.headers["hx-retarget"] == "#order"
    assert "This work order was cancelled" in done.text and "status-cancelled" in done.text
    assert "Reason: Fraud &lt;b&gt;suspected&lt;/b&gt;" in done.text
    page = await web.get(AGENT, f"/orders/{number}")
    for control in ('class="process"', 'class="link edit"', "Cancel work order", 'hx-post="/orders/{0}/links"'.format(number)):
        assert control not in page.text
    before = await _snapshot(web)
    version = str((await web.api.order(AGENT, number))["version"])
    refused = [
        await web.post(AGENT, f"/orders/{number}/actions/verify_identity", {"version": version}),
        await web.post(AGENT, f"/orders/{number}/header/priority", {"version": version, "priority": "high"}),
        await web.post(AGENT, f"/orders/{number}/sections/1", {"version": version, "fields.ram_gb": "64"}),
        await web.post(AGENT, f"/orders/{number}/cancel", {"version": version}),
    ]
    assert [r.status_code for r in refused] == [409, 409, 409, 409]
    assert all("cancelled" in r.text for r in refused)
    assert await _snapshot(web) == before


async def test_user_text_is_escaped_everywhere(web: Browser) -> None:
    number = await _server(web, order_notes=XSS, server_hostname=XSS[:40])
    await web.post(AGENT, f"/orders/{number}/header/title", {"version": "1", "title": XSS})
    page = await web.get(AGENT, f"/orders/{number}")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    edit = await web.get(AGENT, f"/orders/{number}/header/title", htmx=True)
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in edit.text and "<script>" not in edit.text
    link = await web.post(AGENT, f"/orders/{number}/links", {"number": XSS})
    assert link.status_code == 422 and "<script>" not in link.text and "no work order &lt;script&gt;" in link.text


async def test_changes_without_the_csrf_header_are_refused(web: Browser) -> None:
    number = await _server(web)
    before = await _snapshot(web)
    for url, data in ((f"/orders/{number}/actions/verify_identity", {"version": "1"}),
                      (f"/orders/{number}/header/priority", {"version": "1", "priority": "high"}),
                      (f"/orders/{number}/cancel", {"version": "1"})):
        response = await web.post(AGENT, url, data, csrf=False)
        assert response.status_code == 403 and "CSRF" in response.text
    assert await _snapshot(web) == before


async def test_an_order_outside_the_users_groups_is_not_found(web: Browser) -> None:
    number = await _server(web)
    await web.api.db.execute("UPDATE rc_user SET password_hash = (SELECT password_hash FROM rc_user WHERE login = {}) "
                             "WHERE login = {}", AGENT, "outsider")
    await web.sign_in("outsider")
    for url in (f"/orders/{number}", f"/orders/{number}/flow", f"/orders/{number}/sections/1?edit=1"):
        assert (await web.get("outsider", url)).status_code == 404
    missing = await web.get("outsider", "/orders/DS-999999")
    hidden = await web.get("outsider", f"/orders/{number}")
    assert missing.status_code == hidden.status_code == 404
    before = await _snapshot(web)
    post = await web.post("outsider", f"/orders/{number}/actions/verify_identity", {"version": "1"})
    assert post.status_code == 404 and number in post.text  # the toast names what was asked for, nothing more
    assert "Server for ACME" not in post.text
    assert await _snapshot(web) == before
