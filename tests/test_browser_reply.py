"""Replying with a file in a real browser: Chromium via Playwright against `routecard demo` over HTTP.

An agent opens an order, picks a comment template (htmx fills the text), attaches a
file, sends the reply; the thread lists the file, and downloading it gives the same
bytes, served as an attachment. And a form sent in the moment before htmx has loaded
keeps what was typed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import ROOT, browser, example_site, sign_in  # noqa: F401 - browser: a fixture
from test_storage import PDF

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "ecommerce-workorders"


@pytest.fixture
def site(database_url: str, dialect: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with example_site(EXAMPLE, database_url, dialect, tmp_path) as site:
        yield site


def test_reply_with_a_file_and_download_it(site: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    base, shots = site
    page = browser.new_page(locale="en-GB", accept_downloads=True)
    page.set_default_timeout(15_000)
    sign_in(page, base, "anna.gruber", "/orders/WO-00001")
    form = page.locator("form[hx-post='/orders/WO-00001/thread/reply']")
    page.locator("details.thread-form summary", has_text="Reply to the customer").click()
    # the picker fills the text from the template, placeholders filled in
    page.select_option("#reply-template", "parcel_shipped")
    page.wait_for_function("document.querySelector('#reply-body').value.includes('has left our warehouse')")
    assert "(WO-00001)" in page.input_value("#reply-body")
    if not page.input_value("#reply-to"):
        page.fill("#reply-to", "kunde@example.org")
    upload = tmp_path / "Lieferschein WO-00001.pdf"
    upload.write_bytes(PDF)
    page.set_input_files("#reply-files", str(upload))
    form.locator("button[type=submit]").click()
    link = page.locator("#order-thread li.message-reply .message-files a").first
    link.wait_for()
    assert link.inner_text() == "Lieferschein WO-00001.pdf"
    assert "has left our warehouse" in page.locator("#order-thread li.message-reply .message-body").first.inner_text()
    page.screenshot(path=str(shots / "reply-with-file.png"), full_page=True)
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "Lieferschein WO-00001.pdf"
    assert Path(download.path()).read_bytes() == PDF
    href = link.get_attribute("href")
    assert href is not None
    answer = page.request.get(base + href)
    assert answer.status == 200 and answer.body() == PDF
    assert answer.headers["content-disposition"].startswith('attachment; filename="Lieferschein WO-00001.pdf"')
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_form_sent_before_htmx_has_loaded_keeps_what_was_typed(site: tuple[str, Path], browser: Any) -> None:
    """htmx's forms name no method or action: sent by the browser before htmx has taken over the
    page, such a form asked for the page itself, with what was typed in the address, and lost
    it. The page now holds it back until htmx is there; the next click sends it through htmx."""
    base, _ = site
    page = browser.new_page(locale="en-GB")
    page.set_default_timeout(15_000)
    sign_in(page, base, "anna.gruber", "/new/customer_order")
    held: list[Any] = []
    page.route("**/vendor/htmx.min.js*", lambda route: held.append(route))  # htmx comes when let through
    page.goto(base + "/new/customer_order", wait_until="commit")
    page.wait_for_selector("#new-form button[type=submit]")
    page.fill("#new-title", "Typed before htmx")
    # the form's required fields stay empty: the browser's own check must not stop the sending here
    page.evaluate("document.getElementById('new-form').noValidate = true")
    page.click("#new-form button[type=submit]")
    page.wait_for_timeout(500)  # time for the browser to leave the page, as it did
    assert page.url == base + "/new/customer_order"
    assert page.input_value("#new-title") == "Typed before htmx"
    assert held, "the page asked for htmx"
    for route in held:
        route.continue_()
    page.wait_for_load_state("load")
    page.wait_for_function("window.htmx !== undefined")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/new/customer_order")):
        page.click("#new-form button[type=submit]")
