"""The definitions browser: overview with places, a queue with its diagram, a template; admins only."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from typing import Any

import pytest

from api_helpers import HOSTING_USERS
from conftest import EXAMPLES
from engine.workspace import open_workspace
from web_helpers import Browser, browsing

SVG = "{http://www.w3.org/2000/svg}"
SHOP_USERS: dict[str, dict[str, Any]] = {
    "admin": {"password": "correct horse", "roles": ("administrator",)},  # the role with `admin` (groups.yaml)
    "anna.gruber": {"password": "correct horse"},  # supervisor of sales, no admin permission
}


@pytest.fixture
async def shop(database_url: str) -> AsyncIterator[Browser]:
    async with browsing("ecommerce-workorders", database_url, SHOP_USERS) as browser:
        await browser.sign_in("admin")
        await browser.sign_in("anna.gruber")
        yield browser


async def test_admin_sees_every_kind_with_its_place_and_the_version(shop: Browser) -> None:
    workspace = open_workspace(EXAMPLES / "ecommerce-workorders")
    response = await shop.get("admin", "/admin")
    assert response.status_code == 200, response.text
    page = response.text
    assert "queues.yaml:8" in page  # where call_centre_orders is defined
    assert "templates/customer_order.yaml:15" in page
    field = workspace.templates["customer_order"].fields[0]
    assert f"{field.location.path}:{field.location.line}" in page
    assert workspace.fingerprint[:12] in page
    for heading in ("Queues", "Templates", "Fields", "Groups", "Roles", "Rules", "SLAs", "Forms", "Macros"):
        assert f">{heading}</h2>" in page
    assert 'href="/admin/queues/call_centre_orders"' in page
    assert 'href="/admin/templates/customer_order"' in page
    assert 'data-name="administrator"' in page and 'data-name="finance"' in page
    for kind, name in (("Group", "finance"), ("Role", "administrator")):  # every kind shows its place
        place = workspace.locations[kind][name]
        row = page.split(f'data-name="{name}"')[1].split("</tr>")[0]
        assert f"{place.path}:{place.line}" in row, row
    assert 'href="/admin" aria-current="page"' in page  # the nav link is shown to admins


async def test_queue_page_lists_steps_and_shows_the_diagram(shop: Browser) -> None:
    response = await shop.get("admin", "/admin/queues/call_centre_orders")
    assert response.status_code == 200, response.text
    page = response.text
    for step in ("order_intake", "payment_check", "picking", "shipping", "closing_call"):
        assert f'data-step="{step}"' in page
    assert "Take the order" in page and "erp.check_stock" in page and "queues.yaml:8" in page
    assert '<img src="/admin/queues/call_centre_orders/diagram.svg?v=' in page
    assert "<svg" not in page  # the picture is its own response, not inlined


async def test_diagram_route_serves_svg_in_the_users_language(shop: Browser) -> None:
    response = await shop.get("admin", "/admin/queues/call_centre_orders/diagram.svg")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.headers["x-content-type-options"] == "nosniff"
    root = ET.fromstring(response.text)
    texts = "".join(root.itertext())
    assert "Take the order" in texts and "Complete" in texts
    assert len(root.findall(f".//{SVG}path[@class='edge next']")) == 5
    german = await shop.get("admin", "/admin/queues/call_centre_orders/diagram.svg", **{"accept-language": "de"})
    assert "Auftrag aufnehmen" in german.text


async def test_template_page_shows_settings_and_fields(shop: Browser) -> None:
    workspace = open_workspace(EXAMPLES / "ecommerce-workorders")
    template = workspace.templates["customer_order"]
    response = await shop.get("admin", "/admin/templates/customer_order")
    assert response.status_code == 200, response.text
    page = response.text
    for field in template.fields:
        assert f'data-field="{field.name}"' in page
    assert f"<code>{template.initial_owner}</code>" in page and f"<code>{template.edit_limit}</code>" in page
    assert "templates/customer_order.yaml:15" in page


async def test_others_are_refused_and_unknown_names_are_not_found(shop: Browser) -> None:
    for url in ("/admin", "/admin/queues/call_centre_orders", "/admin/queues/call_centre_orders/diagram.svg",
                "/admin/templates/customer_order"):
        refused = await shop.get("anna.gruber", url)
        assert refused.status_code == 403, url
    manager = await shop.get("anna.gruber", "/manager")
    assert 'href="/admin"' not in manager.text
    for url in ("/admin/queues/nope", "/admin/queues/nope/diagram.svg", "/admin/templates/nope"):
        missing = await shop.get("admin", url)
        assert missing.status_code == 404, url


async def test_agents_of_the_hosting_example_are_refused(database_url: str) -> None:
    async with browsing("hosting-orders", database_url, HOSTING_USERS) as web:
        await web.sign_in("jana.kowalski")
        response = await web.get("jana.kowalski", "/admin")
        assert response.status_code == 403
        assert "Not allowed" in response.text
