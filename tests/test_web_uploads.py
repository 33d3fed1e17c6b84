"""Upload fields in the screens and the API: stored with the change, downloaded safely, refused without a trace."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from helpers_workspace import write_workspace
from test_storage import PDF, PNG
from test_web_forms import serve_root
from web_helpers import DESK_GROUPS, Browser

WORKSPACE = {
    "routecard.yaml": """
        name: t
        language: en
        timezone: UTC
        attachments: {max_size: 100000}
    """,
    "groups.yaml": DESK_GROUPS,
    "job.yaml": """
        kind: Template
        name: job
        label: Job
        team: desk
        range: [desk]
        edit_limit: everyone
        numbering: {prefix: J-, digits: 4}
        fields:
          - {name: summary, type: input, label: Summary, required: true}
          - {name: photo, type: upload, label: Photo, section: Files}
          - {name: papers, type: upload, label: Papers, multiple: true, section: Files}
    """,
    "queue.yaml": """
        kind: Queue
        name: jobs
        label: Jobs
        templates: [job]
        steps:
          - {name: intake, label: Intake, group: desk}
    """,
}
USERS: dict[str, dict[str, Any]] = {"sam": {"password": "correct horse"}, "kim": {"password": "correct horse"},
                                   "outsider": {"password": "correct horse"}}
FILES_SECTION = "/orders/J-0001/sections/1"


@pytest.fixture
async def web(database_url: str, tmp_path: Path) -> AsyncIterator[Browser]:
    async with serve_root(write_workspace(tmp_path / "ws", WORKSPACE), database_url, USERS) as browser:
        await browser.sign_in("sam")
        await browser.sign_in("outsider")
        yield browser


def stored(tmp_path: Path) -> list[Path]:
    folder = tmp_path / "ws" / ".routecard" / "files"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def count(web: Browser, table: str) -> int:
    return int(await web.api.db.fetch_value(f"SELECT COUNT(*) AS n FROM {table}"))


async def _create(web: Browser, **files: Any) -> Any:
    return await web.post("sam", "/new/job", {"fields.summary": "With files"}, files=files or None)


async def test_create_with_a_file_then_download_it_byte_identical(web: Browser, tmp_path: Path) -> None:
    form = await web.get("sam", "/new/job")
    assert 'hx-encoding="multipart/form-data"' in form.text and "Up to 97.7 KB per file." in form.text
    assert "not stored yet" not in form.text
    created = await _create(web, **{"fields.photo": ("../../evil\u202egnp.png", PNG, "text/html")})
    assert created.status_code == 204, created.text
    order = await web.api.order("sam", "J-0001")
    [attachment_id] = order["fields"]["photo"]
    row = (await web.api.db.fetch("SELECT * FROM rc_attachment WHERE id = {}", attachment_id))[0]
    assert row["filename"] == "evilgnp.png" and row["content_type"] == "image/png" and row["size"] == len(PNG)
    assert row["work_order_id"] is not None and re.fullmatch(r"[0-9a-f]{32}", row["storage_key"])
    assert [p.name for p in stored(tmp_path)] == [row["storage_key"]]
    events = [e["kind"] for e in (await web.api.get("sam", "/api/orders/J-0001/events")).json()]
    assert events == ["created", "attached"]

    page = await web.get("sam", "/orders/J-0001")
    link = f'/files/{attachment_id}/evilgnp.png'
    assert f'<a href="{link}" download>evilgnp.png</a>' in page.text and f"{len(PNG)} bytes" in page.text
    assert "attached evilgnp.png" in page.text
    download = await web.get("sam", link)
    assert download.status_code == 200 and download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["content-disposition"] == (
        "attachment; filename=\"evilgnp.png\"; filename*=UTF-8''evilgnp.png")
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-security-policy"] == "sandbox"
    assert "no-store" in download.headers["cache-control"]

    api = await web.api.get("sam", f"/api/attachments/{attachment_id}")
    assert api.status_code == 200 and api.content == PNG and api.headers["content-security-policy"] == "sandbox"
    listing = await web.api.get("sam", "/api/orders/J-0001/attachments")
    assert listing.status_code == 200
    assert listing.json() == [{"id": attachment_id, "filename": "evilgnp.png", "content_type": "image/png",
                               "size": len(PNG), "created_at": listing.json()[0]["created_at"], "uploaded_by": "sam",
                               "message_id": None, "download": f"/api/attachments/{attachment_id}"}]


async def test_outsiders_get_the_same_404_as_for_a_file_that_does_not_exist(web: Browser) -> None:
    assert (await _create(web, **{"fields.photo": ("p.pdf", PDF, "application/pdf")})).status_code == 204
    [attachment_id] = (await web.api.order("sam", "J-0001"))["fields"]["photo"]
    hidden = await web.get("outsider", f"/files/{attachment_id}/p.pdf")
    missing = await web.get("outsider", "/files/999999/p.pdf")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text.replace(f"no file {attachment_id}", "no file N") == missing.text.replace("no file 999999",
                                                                                                "no file N")
    assert PDF not in hidden.content
    api_hidden = await web.api.get("outsider", f"/api/attachments/{attachment_id}")
    api_missing = await web.api.get("outsider", "/api/attachments/999999")
    assert api_hidden.status_code == api_missing.status_code == 404
    assert api_hidden.json()["error"] == api_missing.json()["error"] == "not_found"
    assert (await web.api.get("outsider", "/api/orders/J-0001/attachments")).status_code == 404
    assert (await web.get("sam", f"/files/{attachment_id}/any-name")).content == PDF


async def test_the_section_form_adds_and_removes_files(web: Browser, tmp_path: Path) -> None:
    assert (await _create(web)).status_code == 204
    edit = await web.get("sam", f"{FILES_SECTION}?edit=1", htmx=True)
    assert 'hx-encoding="multipart/form-data"' in edit.text
    saved = await web.post("sam", FILES_SECTION, {"version": "1"}, files=[
        ("fields.papers", ("a.pdf", PDF, "application/pdf")), ("fields.papers", ("b.txt", b"plain words\n", "x/y"))])
    assert saved.status_code == 200, saved.text
    order = await web.api.order("sam", "J-0001")
    first, second = order["fields"]["papers"]
    assert order["version"] == 2 and 'download>a.pdf</a>' in saved.text and 'download>b.txt</a>' in saved.text
    assert (await web.get("sam", f"/files/{second}/b.txt")).headers["content-type"].startswith("text/plain")
    edit = await web.get("sam", f"{FILES_SECTION}?edit=1", htmx=True)
    assert f'name="fields.papers.remove" value="{first}"' in edit.text
    removed = await web.post("sam", FILES_SECTION, {"version": "2", "fields.papers.remove": str(first)})
    assert removed.status_code == 200, removed.text
    assert (await web.api.order("sam", "J-0001"))["fields"]["papers"] == [second]
    # a single-file field keeps the newest file
    for version, name in (("3", "one.png"), ("4", "two.png")):
        response = await web.post("sam", FILES_SECTION, {"version": version},
                                  files={"fields.photo": (name, PNG, "image/png")})
        assert response.status_code == 200, response.text
    photo = (await web.api.order("sam", "J-0001"))["fields"]["photo"]
    assert len(photo) == 1 and await web.api.db.fetch_value(
        "SELECT filename FROM rc_attachment WHERE id = {}", photo[0]) == "two.png"
    assert len(stored(tmp_path)) == 4  # removed from the field, kept as the order's file (audit)


async def test_oversize_and_refused_types_leave_nothing(web: Browser, tmp_path: Path) -> None:
    big = await _create(web, **{"fields.photo": ("big.png", PNG + b"\x00" * 100_000, "image/png")})
    assert big.status_code == 422
    assert re.search(r'id="new-photo-error">the file is larger than the limit of 97.7 KB<', big.text)
    assert 'value="With files"' in big.text
    html = await _create(web, **{"fields.photo": ("cat.png", b"<html><script>alert(1)</script>", "image/png")})
    assert html.status_code == 422 and "files of this type (text/html) are not accepted" in html.text
    assert await count(web, "rc_work_order") == 0 and await count(web, "rc_attachment") == 0
    assert stored(tmp_path) == []

    assert (await _create(web)).status_code == 204
    before = await count(web, "rc_event")
    refused = await web.post("sam", FILES_SECTION, {"version": "1"}, files=[
        ("fields.papers", ("ok.pdf", PDF, "application/pdf")), ("fields.papers", ("big.pdf", PDF * 2000, "x/y"))])
    assert refused.status_code == 422
    assert re.search(r'id="s1-papers-error">the file is larger than the limit', refused.text)
    assert await count(web, "rc_attachment") == 0 and await count(web, "rc_event") == before
    assert stored(tmp_path) == []
    # a stale version: the change is refused and the file written for it is deleted again
    assert (await web.post("sam", FILES_SECTION, {"version": "1"},
                           files={"fields.photo": ("a.png", PNG, "image/png")})).status_code == 200
    stale = await web.post("sam", FILES_SECTION, {"version": "1"}, files={"fields.photo": ("b.png", PNG, "image/png")})
    assert stale.status_code == 409
    assert await count(web, "rc_attachment") == 1 and len(stored(tmp_path)) == 1


async def test_a_user_who_may_not_edit_stores_nothing(web: Browser, tmp_path: Path) -> None:
    assert (await _create(web)).status_code == 204
    refused = await web.post("outsider", FILES_SECTION, {"version": "1"},
                             files={"fields.photo": ("a.png", PNG, "image/png")})
    assert refused.status_code == 404
    assert await count(web, "rc_attachment") == 0 and stored(tmp_path) == []


async def test_too_many_parts_and_too_large_bodies_are_refused(web: Browser, tmp_path: Path) -> None:
    assert (await _create(web)).status_code == 204
    many = await web.post("sam", FILES_SECTION, {"version": "1", "fields.papers.remove": [str(i) for i in range(1100)]},
                          files={"fields.photo": ("a.png", PNG, "image/png")})
    assert many.status_code in (400, 413)
    client, token = web.clients["sam"]
    huge = await client.post(FILES_SECTION, content=b"x", headers={
        "x-csrftoken": token, "hx-request": "true", "content-length": str(200 * 1024 * 1024),
        "content-type": "multipart/form-data; boundary=x"})
    assert huge.status_code == 413
    assert await count(web, "rc_attachment") == 0 and stored(tmp_path) == []
