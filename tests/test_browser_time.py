"""Time tracking in a real browser: Chromium driven by Playwright against `routecard demo` over HTTP.

An agent of the contract-agency example starts and stops the timer on a request, saves
the entry the stop opens, and finds it on the timesheets page; screenshots of the
timesheets page and the dashboards are saved under tests/artifacts/<database>/ (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import ROOT, browser, example_site, sign_in  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "contract-agency"
DEMO_ORDERS = """
orders:
  - template: client_request
    by: rachel.morgan
    title: Checkout button does nothing
    fields: {request_kind: bug}
  - template: client_request
    by: rachel.morgan
    title: New photos for the spring page
    fields: {request_kind: content_update}
"""


@pytest.fixture
def site(database_url: str, dialect: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with example_site(EXAMPLE, database_url, dialect, tmp_path, extra={"demo/orders.yaml": DEMO_ORDERS}) as site:
        yield site


def test_timer_to_timesheet_and_dashboards(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    page = browser.new_page(locale="en-GB")
    page.set_default_timeout(15_000)
    sign_in(page, base, "hannah.lee", "/orders/REQ-00001")
    assert page.url.endswith("/orders/REQ-00001")

    # The timer: start on the order, stop, and the entry form opens filled with the draft.
    page.locator("#timer-start").click()
    page.locator("#timer-stop").wait_for()
    assert "Timer running since" in page.locator("#order-time").inner_text()
    page.locator("#timer-stop").click()
    page.wait_for_url("**/timesheets/new?order=REQ-00001*")
    assert page.locator("#entry-order").input_value() == "REQ-00001"
    assert int(page.locator("#entry-minutes").input_value()) >= 1
    page.locator("#entry-minutes").fill("0")
    page.locator("#entry-form button[type=submit]").click()
    page.locator("#entry-form .field-error").first.wait_for()  # refused, the input kept, the error at it
    page.locator("#entry-minutes").fill("25")
    page.locator("#entry-note").fill("Reproduced the checkout bug")
    page.locator("#entry-form button[type=submit]").click()
    page.wait_for_url("**/orders/REQ-00001*")
    page.locator("table.time-entries >> text=Reproduced the checkout bug").wait_for()
    assert "0.42 h" in page.locator("#order-time .facts").inner_text()
    page.screenshot(path=str(shots / "order-time.png"), full_page=True)

    # The timesheets page lists it; grouped by user, the subtotal holds it.
    page.get_by_role("link", name="Timesheets").click()
    page.wait_for_url("**/timesheets")
    row = page.locator("table.timesheet tr", has_text="Reproduced the checkout bug")
    row.wait_for()
    assert "REQ-00001" in row.inner_text() and "25" in row.inner_text()
    page.select_option("select[name=group_by]", "user")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**group_by=user*")
    assert page.locator("tr.subtotal").first.get_attribute("data-minutes") == "25"
    page.screenshot(path=str(shots / "timesheets.png"), full_page=True)

    # Dashboards: SVG charts, each with its numbers one click away.
    page.get_by_role("link", name="Dashboards").click()
    page.wait_for_url("**/dashboards")
    charts = page.locator("figure.chart-card svg[role=img]")
    assert charts.count() >= 4
    page.locator("#chart-open-work summary").click()
    assert "Triage" in page.locator("#chart-open-work table").inner_text()
    page.screenshot(path=str(shots / "dashboards.png"), full_page=True)
