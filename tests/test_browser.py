"""The screens in a real browser: Chromium driven by Playwright against `routecard demo` over HTTP.

One walk through an agent's day per database: sign in, the Order Manager, an order
processed and skipped to Complete, a section edited (refused, then accepted), another
order cancelled, the language switched to German. Screenshots of the main screens are
saved under tests/artifacts/<database>/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser_helpers import ROOT, browser, example_site, sign_in  # noqa: F401 - browser: a fixture

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "examples" / "ecommerce-workorders"


@pytest.fixture
def site(database_url: str, dialect: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    with example_site(EXAMPLE, database_url, dialect, tmp_path) as site:
        yield site


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


def process(page: Any, action: str, *, skip: bool = False) -> None:
    """Press Process (or Skip) on an action and wait until it is no longer pending."""
    item = page.locator(f"li.action[data-action={action}]")
    item.locator("button.skip" if skip else "button.process").click()
    page.wait_for_function(
        f"!document.querySelector('li.action[data-action={action}] button')"
        f" || document.querySelector('li.action[data-action={action}]') === null")


def as_user(browser: Any, base: str, login: str, target: str) -> Any:
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, login, target)
    return page


def test_an_order_travels_through_every_group_to_complete(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    order = "/orders/WO-00001"
    page = as_user(browser, base, "anna.gruber", order)
    assert page.locator("h1 .number").inner_text() == "WO-00001"
    page.screenshot(path=str(shots / "order-page.png"), full_page=True)

    # A section of custom fields: a value the definitions refuse, shown at the field, then a good one.
    page.get_by_role("button", name="Edit the section Customer").click()
    field = page.locator("form.section-form input[name=\"fields.customer_ref\"]")
    field.fill("X-1")
    page.locator("form.section-form button.primary").click()
    error = page.locator("form.section-form .field-error")
    error.wait_for()
    assert "does not have the form this field asks for" in error.inner_text()
    assert field.get_attribute("aria-invalid") == "true" and field.input_value() == "X-1"
    page.screenshot(path=str(shots / "section-error.png"), full_page=True)
    field.fill("K0048299")
    page.locator("form.section-form button.primary").click()
    page.wait_for_selector("[data-field=customer_ref] >> text=K0048299")

    # Sales: process, skip, process; the order moves to Finance.
    process(page, "confirm_items")
    assert page.locator("li.action[data-action=confirm_items] .badge").inner_text().endswith("Processed")
    process(page, "check_stock", skip=True)
    process(page, "send_confirmation")
    page.wait_for_selector("li.action[data-action=check_credit]")
    assert "Check payment" in page.locator("#order-flow").inner_text()

    for login, actions in (("martin.pichler", ["check_credit", "confirm_payment"]),
                           ("stefan.moser", ["pick_items", "wrap_gifts", "pack_parcels"]),
                           ("eva.leitner", ["book_carrier", "print_labels"])):
        agent = as_user(browser, base, login, order)
        for action in actions:
            process(agent, action, skip=action == "wrap_gifts")
        agent.context.close()

    page.reload()  # back in Sales for the closing call
    process(page, "confirm_delivery")
    process(page, "satisfaction_call")
    page.wait_for_selector(".final-note.done")
    assert page.locator("h1 .status").inner_text() == "Completed"
    assert not page.locator("button.process").count()
    page.screenshot(path=str(shots / "order-completed.png"), full_page=True)
    trail = page.locator("#order-trail").inner_text() if page.locator("#order-trail").count() else page.inner_text("body")
    assert "martin.pichler" in trail and "eva.leitner" in trail


def test_cancel_is_confirmed_and_final(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    page = as_user(browser, base, "anna.gruber", "/orders/WO-00006")
    page.get_by_role("button", name="Cancel work order…").click()
    dialog = page.get_by_role("alertdialog")
    assert "cannot be undone" in dialog.inner_text()
    page.screenshot(path=str(shots / "cancel-confirmation.png"), full_page=True)
    dialog.locator("textarea[name=reason]").fill("The customer called it off.")
    dialog.locator("button[type=submit]").click()
    page.wait_for_selector(".final-note")
    assert page.locator("h1 .status").inner_text() == "Cancelled"
    assert not page.locator("button.process").count() and not page.locator("button.edit").count()


def test_the_order_page_in_german(site: tuple[str, Path], browser: Any) -> None:
    base, shots = site
    context = browser.new_context(locale="de-DE", extra_http_headers={"Accept-Language": "de-DE,de;q=0.9"})
    page = context.new_page()
    page.set_default_timeout(15_000)
    sign_in(page, base, "anna.gruber", "/orders/WO-00002")
    assert page.locator("html").get_attribute("lang") == "de"
    text = page.inner_text("body")
    assert "Kundennummer" in text  # a field's label from the definitions
    assert "Abmelden" in text and "Auftragsmanager" in text  # the UI's own words
    page.screenshot(path=str(shots / "order-page-de.png"), full_page=True)
