"""Replying with a file in a real browser: Chromium via Playwright against `routecard demo` over HTTP.

An agent opens an order, picks a comment template (htmx fills the text), attaches a
file, sends the reply; the thread lists the file, and downloading it gives the same
bytes, served as an attachment.
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
