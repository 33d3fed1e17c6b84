"""Forms compiled from field definitions: reading posted forms, the create form of every field type, pickers."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from api_helpers import served
from engine.link.resolved import ResolvedField
from helpers_workspace import linked, write_workspace
from ui.web.forms import Record, SentFile, decimal_pattern, parse_form
from web_helpers import DESK_GROUPS, Browser

ALL_TYPES = {
    "routecard.yaml": """
        name: t
        title: Test workshop
        language: en
        timezone: Europe/Berlin
    """,
    "groups.yaml": DESK_GROUPS,
    "job.yaml": """
        kind: Template
        name: job
        label: {en: Job, de: Auftrag}
        team: desk
        range: [desk]
        edit_limit: everyone
        numbering: {prefix: J-, digits: 4}
        fields:
          - {name: summary, type: input, label: {en: Summary, de: Zusammenfassung}, required: true, max_length: 40,
             section: Basics, help: {en: One line., de: Eine Zeile.}}
          - {name: notes, type: text, label: Notes}
          - {name: size, type: select, label: Size, section: Basics,
             options: [{value: s, label: Small}, {value: m, label: Medium}, l]}
          - {name: colour, type: select, label: Colour, options: [red, blue], can_enter: true}
          - {name: extras, type: multiselect, label: Extras, options: [gift, insurance, express]}
          - {name: quantity, type: number, label: Quantity, min: 1, max: 10, default: 1}
          - {name: price, type: decimal, label: Price, digits: 8, places: 2, min: 0}
          - {name: urgent, type: boolean, label: Urgent, default: false}
          - {name: due, type: date, label: Due}
          - {name: start_at, type: datetime, label: Start}
          - {name: photo, type: upload, label: Photo}
          - {name: contact, type: email, label: Contact}
          - {name: site, type: url, label: Site}
          - {name: reviewer, type: user, label: Reviewer}
          - {name: client, type: customer, label: Client}
          - {name: parent, type: reference, label: Parent job, reference: job}
    """,
    "queue.yaml": """
        kind: Queue
        name: jobs
        label: Jobs
        templates: [job]
        steps:
          - name: intake
            label: Intake
            group: desk
            actions:
              - {name: check, label: Check the job}
    """,
}
USERS: dict[str, dict[str, Any]] = {"sam": {"password": "correct horse", "name": "Sam Stone"},
                                   "kim": {"password": "correct horse", "name": "Kim Lee"},
                                   "k_mx": {"password": "correct horse", "name": "Percy 100%"},
                                   "outsider": {"password": "correct horse"}}
UTC = dt.timezone.utc


@contextlib.asynccontextmanager
async def serve_root(root: Path, database_url: str, users: dict[str, dict[str, Any]]) -> AsyncIterator[Browser]:
    """The workspace at ``root`` applied and served, signed in through ``Browser``."""
    async with served(root, database_url, users) as api:
        yield Browser(api)


@pytest.fixture
async def web(database_url: str, tmp_path: Path) -> AsyncIterator[Browser]:
    async with serve_root(write_workspace(tmp_path / "ws", ALL_TYPES), database_url, USERS) as browser:
        for name, label in (("acme", "ACME <b>Industries</b>"), ("acorn", "Acorn Ltd"), ("zeta", "Zeta")):
            await browser.api.db.execute("INSERT INTO rc_customer (name, label) VALUES ({}, {})", name, label)
        await browser.sign_in("sam")
        yield browser


def _fields(tmp_path: Path) -> tuple[ResolvedField, ...]:
    return linked(tmp_path / "ws", ALL_TYPES).templates["job"].fields


# -- parsing, pure ------------------------------------------------------------------------------


def test_parse_turns_strings_into_the_values_the_runtime_expects(tmp_path: Path) -> None:
    fields = _fields(tmp_path)
    zone = dt.timezone(dt.timedelta(hours=1))
    form = {
        "title": [" Fix it "], "priority": ["high"], "requested_at": ["2026-12-01T09:30"], "planned_at": [""],
        "fields.summary": ["  Replace the pump "], "fields.notes": ["line 1\nline 2  \n"], "fields.size": ["m"],
        "fields.colour": ["green"], "fields.extras": ["", "gift", "express"], "fields.quantity": [" 3 "],
        "fields.price": ["12,50"], "fields.urgent": ["false", "true"], "fields.due": ["2026-12-24"],
        "fields.start_at": ["2026-12-01T08:00"], "fields.contact": ["a@b.example"], "fields.site": [""],
        "fields.reviewer": ["kim"], "fields.client": ["acme"], "fields.parent": ["J-0001"],
    }
    parsed = parse_form(form, fields, ("title", "priority", "requested_at", "planned_at", "customer_id"), zone=zone)
    assert parsed.errors == []
    assert parsed.data["title"] == "Fix it" and parsed.data["priority"] == "high"
    assert parsed.data["requested_at"] == "2026-12-01T09:30:00+01:00"
    assert parsed.data["planned_at"] is None
    assert "customer_id" not in parsed.data  # not sent: left as it is
    assert parsed.fields == {
        "summary": "Replace the pump", "notes": "line 1\nline 2", "size": "m", "colour": "green",
        "extras": ["gift", "express"], "quantity": 3, "price": "12.50", "urgent": True, "due": "2026-12-24",
        "start_at": "2026-12-01T08:00:00+01:00", "contact": "a@b.example", "site": None,
        "reviewer": Record("user", "kim"), "client": Record("customer", "acme"),
        "parent": Record("reference", "J-0001", "job"),
    }


def test_parse_reads_unticked_boxes_and_empty_choices_as_false_and_none(tmp_path: Path) -> None:
    fields = _fields(tmp_path)
    parsed = parse_form({"fields.urgent": ["false"], "fields.extras": [""], "fields.quantity": [""]}, fields)
    assert parsed.errors == [] and parsed.fields == {"urgent": False, "extras": None, "quantity": None}


def test_unreadable_input_becomes_an_error_at_its_field_never_an_exception(tmp_path: Path) -> None:
    fields = _fields(tmp_path)
    form = {"fields.quantity": ["three"], "fields.price": ["1.2.3"], "fields.due": ["24.12.2026"],
            "fields.start_at": ["tomorrow"], "priority": ["asap"], "requested_at": ["soon"],
            "fields.summary": ["ok"], "fields.extras": ["gift"], "fields.price2": ["x"]}
    parsed = parse_form(form, fields, ("priority", "requested_at"))
    errors = {e["field"]: e["message"] for e in parsed.errors}
    assert set(errors) == {"fields.quantity", "fields.price", "fields.due", "fields.start_at", "priority", "requested_at"}
    assert "not a whole number" in errors["fields.quantity"] and "not a number" in errors["fields.price"]
    assert "YYYY-MM-DD" in errors["fields.due"] and "one of: low, normal, high, urgent" == errors["priority"]
    assert parsed.fields == {"summary": "ok", "extras": ["gift"]}  # what could be read is kept


@pytest.mark.parametrize("text", ["1_000", "1e3", "0x10", "٣", "+", "99999999999999999999999"])
def test_whole_numbers_are_plain_digits(tmp_path: Path, text: str) -> None:
    parsed = parse_form({"fields.quantity": [text]}, _fields(tmp_path))
    assert [e["field"] for e in parsed.errors] == ["fields.quantity"]


def test_sent_files_are_listed_for_storing_not_taken_as_values(tmp_path: Path) -> None:
    class Upload:
        filename = "photo.jpg"

    upload = Upload()
    parsed = parse_form({"fields.photo": [upload], "fields.photo.remove": ["7", "x"]}, _fields(tmp_path))
    assert parsed.errors == [] and parsed.files == [SentFile("photo", upload)] and parsed.removed == {"photo": {7}}
    assert "photo" not in parsed.fields
    two = parse_form({"fields.photo": [Upload(), Upload()]}, _fields(tmp_path))
    assert two.errors == [{"field": "fields.photo", "message": "choose one file for this field"}]
    empty = parse_form({"fields.photo": [""]}, _fields(tmp_path))
    assert empty.errors == [] and empty.files == [] and "photo" not in empty.fields


def test_decimal_pattern_follows_digits_and_places(tmp_path: Path) -> None:
    price = next(f for f in _fields(tmp_path) if f.name == "price")
    pattern = re.compile(decimal_pattern(price))
    assert pattern.fullmatch("123456.78") and pattern.fullmatch("12,5")
    assert not pattern.fullmatch("1234567.00") and not pattern.fullmatch("1.234") and not pattern.fullmatch("-1")


# -- the create form, served ----------------------------------------------------------------------


async def test_create_form_has_the_right_control_for_every_field_type(web: Browser) -> None:
    listing = await web.get("sam", "/new")
    assert 'href="/new/job"' in listing.text and ">Job</a>" in listing.text
    page = await web.get("sam", "/new/job")
    text = page.text
    assert page.status_code == 200
    assert '<label for="new-summary" class="required">Summary</label>' in text
    assert '<input id="new-summary" name="fields.summary" value="" maxlength="40" required' in text
    assert '<p class="help" id="new-summary-help">One line.</p>' in text
    assert '<textarea id="new-notes" name="fields.notes"' in text
    assert re.search(r'<select id="new-size" name="fields.size".*?<option value="m" >Medium</option>', text, re.S)
    assert 'list="new-colour-options"' in text and '<datalist id="new-colour-options">' in text
    assert text.count('name="fields.extras"') == 4  # a hidden marker and three boxes
    assert '<input type="number" id="new-quantity" name="fields.quantity" value="1" step="1"' in text
    assert 'min="1" max="10"' in text
    assert 'inputmode="decimal" id="new-price"' in text and 'pattern="[0-9]{0,6}([.,][0-9]{0,2})?"' in text
    assert '<input type="hidden" name="fields.urgent" value="false">' in text
    assert 'type="checkbox" id="new-urgent" name="fields.urgent" value="true"' in text
    assert '<input type="date" id="new-due"' in text and '<input type="datetime-local" id="new-start_at"' in text
    assert '<input type="file" id="new-photo" name="fields.photo"' in text and 'hx-encoding="multipart/form-data"' in text
    assert '<input type="email" id="new-contact"' in text and '<input type="url" id="new-site"' in text
    assert 'hx-get="/pick/users?field=fields.reviewer"' in text and '<datalist id="new-reviewer-list">' in text
    assert 'hx-get="/pick/customers?field=fields.client"' in text
    assert 'id="new-parent" name="fields.parent"' in text
    for core in ('name="title"', 'name="priority"', 'name="requested_at"', 'name="planned_at"', 'name="customer_id"'):
        assert core in text
    german_headers: dict[str, Any] = {"accept-language": "de"}
    german = await web.get("sam", "/new/job", **german_headers)
    assert '<label for="new-summary" class="required">Zusammenfassung</label>' in german.text


async def test_create_with_every_type_then_errors_inline_with_values_kept(web: Browser) -> None:
    bad = await web.post("sam", "/new/job", {
        "title": "<script>alert(1)</script>", "priority": "normal", "fields.summary": "",
        "fields.quantity": "11", "fields.price": "abc", "fields.reviewer": "nobody-here", "fields.extras": ["", "gift"],
        "fields.contact": "not-an-email", "fields.notes": "kept <b>text</b>",
    })
    assert bad.status_code == 422
    text = bad.text
    assert '<form id="new-form"' in text and "<html" not in text  # only the form comes back
    assert re.search(r'id="new-summary-error">a value is required<', text)
    assert re.search(r'id="new-quantity-error">[^<]*10[^<]*<', text)
    assert re.search(r'id="new-price-error">“abc” is not a number<', text)
    assert re.search(r'id="new-reviewer-error">no user with the login “nobody-here”<', text)
    assert 'id="new-contact"' in text and 'value="not-an-email"' in text and 'id="new-contact-error"' in text
    assert 'aria-invalid="true"' in text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in text and "<script>alert(1)" not in text
    assert "kept &lt;b&gt;text&lt;/b&gt;</textarea>" in text
    assert 'value="gift" checked' in text
    assert await web.api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0
    first = await web.post("sam", "/new/job", {"fields.summary": "First"})
    assert first.status_code == 204 and first.headers["hx-redirect"] == "/orders/J-0001"
    done = await web.post("sam", "/new/job", {
        "title": "Second", "priority": "high", "customer_id": "acorn", "requested_at": "2026-12-01T10:00",
        "fields.summary": "Second job", "fields.notes": "two\nlines", "fields.size": "l", "fields.colour": "green",
        "fields.extras": ["", "gift", "express"], "fields.quantity": "4", "fields.price": "19,90",
        "fields.urgent": ["false", "true"], "fields.due": "2026-12-24", "fields.start_at": "2026-12-01T08:15",
        "fields.contact": "ops@example.com", "fields.site": "https://example.com/x?a=1&b=2",
        "fields.reviewer": "kim", "fields.client": "acme", "fields.parent": "J-0001",
    })
    assert done.status_code == 204, done.text
    order = await web.api.order("sam", "J-0002")
    kim = await web.api.db.fetch_value("SELECT id FROM rc_user WHERE login = {}", "kim")
    acme = await web.api.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", "acme")
    acorn = await web.api.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", "acorn")
    parent = await web.api.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", "J-0001")
    assert order["title"] == "Second" and order["priority"] == "high" and order["customer_id"] == acorn
    assert order["requested_at"] == "2026-12-01T09:00:00+00:00"  # 10:00 in Berlin
    fields = order["fields"]
    assert fields["summary"] == "Second job" and fields["size"] == "l" and fields["colour"] == "green"
    assert fields["extras"] == ["gift", "express"] and fields["quantity"] == 4 and fields["price"] == "19.90"
    assert fields["urgent"] is True and fields["due"] == "2026-12-24"
    assert fields["start_at"] == "2026-12-01T07:15:00+00:00"
    assert fields["reviewer"] == kim and fields["client"] == acme and fields["parent"] == parent
    page = await web.get("sam", "/orders/J-0002")
    assert "ACME &lt;b&gt;Industries&lt;/b&gt;" in page.text and "Acorn Ltd" in page.text
    assert '<a href="/orders/J-0001">J-0001</a>' in page.text
    assert 'href="https://example.com/x?a=1&amp;b=2"' in page.text
    assert "gift, express" in page.text and "2026-12-01 08:15" in page.text


async def test_a_file_of_a_refused_type_comes_back_as_a_located_error(web: Browser) -> None:
    response = await web.post("sam", "/new/job", {"fields.summary": "With photo"},
                              files={"fields.photo": ("photo.jpg", b"\x00\x01 not a picture", "image/jpeg")})
    assert response.status_code == 422
    assert re.search(r'id="new-photo-error">files of this type \(application/octet-stream\) are not accepted',
                     response.text)
    assert 'value="With photo"' in response.text
    assert await web.api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0
    assert await web.api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_attachment") == 0


async def test_templates_the_user_may_not_create_are_neither_listed_nor_served(web: Browser) -> None:
    await web.sign_in("outsider")
    listing = await web.get("outsider", "/new")
    assert "/new/job" not in listing.text and "You may not create work orders" in listing.text
    assert (await web.get("outsider", "/new/job")).status_code == 404
    refused = await web.post("outsider", "/new/job", {"fields.summary": "x"})
    assert refused.status_code == 404
    assert await web.api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0


async def test_create_needs_the_csrf_header(web: Browser) -> None:
    refused = await web.post("sam", "/new/job", {"fields.summary": "x"}, csrf=False)
    assert refused.status_code == 403
    assert await web.api.db.fetch_value("SELECT COUNT(*) AS n FROM rc_work_order") == 0


# -- pickers ----------------------------------------------------------------------------------------


async def test_user_picker_lists_matching_staff_only_with_wildcards_taken_literally(web: Browser) -> None:
    found = await web.get("sam", "/pick/users?field=fields.reviewer&fields.reviewer=ki", htmx=True)
    assert found.status_code == 200
    assert '<option value="kim">Kim Lee</option>' in found.text and "sam" not in found.text
    by_name = await web.get("sam", "/pick/users?q=stone", htmx=True)
    assert '<option value="sam">Sam Stone</option>' in by_name.text and "kim" not in by_name.text
    literal = await web.get("sam", "/pick/users?q=_m", htmx=True)  # as a wildcard, "_m" would match kim and sam
    assert re.findall(r'value="([^"]+)"', literal.text) == ["k_mx"]
    percent = await web.get("sam", "/pick/users?q=%25", htmx=True)
    assert re.findall(r'value="([^"]+)"', percent.text) == ["k_mx"]
    await web.api.db.execute("UPDATE rc_user SET is_staff = {} WHERE login = {}", False, "kim")
    after = await web.get("sam", "/pick/users?q=ki", htmx=True)
    assert "kim" not in after.text


async def test_customer_picker_matches_and_escapes(web: Browser) -> None:
    found = await web.get("sam", "/pick/customers?field=customer_id&customer_id=ac", htmx=True)
    values = re.findall(r'value="([^"]+)"', found.text)
    assert values == ["acme", "acorn"]
    assert "ACME &lt;b&gt;Industries&lt;/b&gt;" in found.text and "<b>" not in found.text
    none = await web.get("sam", "/pick/customers?q=%25", htmx=True)
    assert re.findall(r'value="([^"]+)"', none.text) == []
