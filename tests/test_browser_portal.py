"""The customer portal in a real browser: a customer fills the three-page order form (fields appearing as
answers change), sends it from the summary, and chats with the print desk, who answers from the order page.

Chromium driven by Playwright against `routecard demo examples/order-portal` over HTTP, on each database;
screenshots land in tests/artifacts/<database>/portal-*.png.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import ROOT, browser, example_site, sign_in  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def site(database_url: str, dialect: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with example_site(ROOT / "examples" / "order-portal", database_url, dialect, tmp_path) as site:
        yield site


def _user(browser: Any, base: str, login: str, target: str) -> Any:
    page = browser.new_context(locale="en-GB").new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, login, target)
    return page


def test_a_customer_orders_through_three_pages_and_chats_with_staff(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    ella = _user(browser, base, "ella", "/portal")
    assert ella.url.endswith("/portal")
    ella.get_by_role("button", name="Order printing").click()
    ella.wait_for_url("**/pages/contact_page")

    ella.fill("#page-contact_name", "Ella Marsh")
    ella.fill("#page-contact_email", "ella@seasidetheatre.example")
    ella.get_by_role("button", name="Next").click()
    ella.wait_for_url("**/pages/details_page")

    # the page count is asked only for brochures: it appears when they are chosen
    assert ella.locator("#page-page_count").count() == 0
    ella.select_option("#page-product_kind", "brochures")
    ella.wait_for_selector("#page-page_count")
    ella.fill("#page-copies", "300")
    ella.fill("#page-page_count", "16")
    # no print-ready artwork: the upload gives way to the design brief
    assert ella.locator("#page-artwork_files").count() == 1
    ella.uncheck("#page-artwork_ready")
    ella.wait_for_selector("#page-design_brief")
    assert ella.locator("#page-artwork_files").count() == 0
    ella.fill("#page-design_brief", "A5 programme for the spring season, our logo on the cover.")
    ella.screenshot(path=str(shots / "portal-form-page.png"), full_page=True)
    ella.get_by_role("button", name="Next").click()
    ella.wait_for_url("**/pages/delivery_page")

    ella.select_option("#page-delivery_method", "courier")
    ella.wait_for_selector("#page-delivery_address")
    ella.fill("#page-delivery_address", "Seaside Theatre, 1 Pier Road")
    ella.fill("#page-needed_by", "2031-04-01")
    ella.locator("#page-needed_by").dispatch_event("change")
    ella.wait_for_selector("#page-rush_job")  # asked once a date is given
    ella.get_by_role("button", name="To the summary").click()
    ella.wait_for_url("**/summary")
    assert ella.locator("li.page-state.complete").count() == 3
    assert ella.locator("li.page-state.incomplete").count() == 0
    ella.screenshot(path=str(shots / "portal-summary.png"), full_page=True)
    ella.fill("#summary-remark", "Please call before delivery.")
    ella.get_by_role("button", name="Send order").click()
    ella.wait_for_url("**/portal/orders/PO-*?sent=1")
    number = ella.url.split("/portal/orders/")[1].split("?")[0]
    assert "Ella Marsh" in ella.locator("section.portal-order").inner_text()

    ella.fill("#chat-body", "Could the cover be matt?")
    ella.get_by_role("button", name="Send").click()
    ella.wait_for_selector("li.message-chat:has-text('Could the cover be matt?')")

    staff = _user(browser, base, "olivia.hughes", f"/orders/{number}")
    staff.wait_for_selector("#order-chat li.message-chat:has-text('Could the cover be matt?')")
    staff.fill("#staff-chat-body", "Yes, matt it is. Proof tomorrow.")
    staff.locator("#order-chat").get_by_role("button", name="Send").click()
    staff.wait_for_selector("#order-chat li.message-chat:has-text('Proof tomorrow.')")
    staff.screenshot(path=str(shots / "portal-staff-chat.png"), full_page=True)

    # the customer's page polls its conversation: the answer arrives without a reload
    ella.wait_for_selector("li.message-chat:has-text('Proof tomorrow.')", timeout=20_000)
    ella.screenshot(path=str(shots / "portal-order.png"), full_page=True)
