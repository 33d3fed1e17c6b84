"""Backup and restore (``engine.archive``): export from SQLite, import into SQLite and PostgreSQL.

The source is the contract-agency example (customers, time tracking, mail) plus a template
with the remaining field types, filled through the runtime's own services; one of its
fields is removed and applied again, so that the archive carries an archived column.
Every restored table is compared row by row with the source, every file byte by byte,
and the restored database must then work: new ids, the next number, an action processed.
"""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from engine import archive as archive_module
from engine.archive import export as archive_export
from engine.archive import restore as archive_restore
from engine.archive import ArchiveError, Manifest, export_archive, import_archive, open_archive
from engine.comms.inbound import Inbound
from engine.comms.thread import Messages
from engine.db import connect
from engine.identifiers import quote
from engine.link.resolved import LinkedWorkspace
from engine.migrate import apply_workspace, plan_for
from engine.migrate.live import read_live
from engine.migrate.plan import latest_version
from engine.runtime.attachments import Attachments, Upload, disk_store
from engine.runtime.timesheets import Timesheets
from engine.workspace import open_workspace
from tests.inbound_helpers import PDF, PNG
from tests.runtime_helpers import EXAMPLES, Env, make_env

AUDITS = """\
kind: Template
name: site_audit
label: Site audit
team: development
range: [development]
numbering: {prefix: AUD-, digits: 4}
fields:
  - {name: findings, type: text, label: Findings}
  - {name: checks, type: multiselect, label: Checks, options: [speed, security, seo]}
  - {name: pages, type: number, label: Pages}
  - {name: audited_at, type: datetime, label: Audited at}
  - {name: report_to, type: email, label: Report to}
  - {name: client, type: customer, label: Client}
  - {name: legacy_score, type: number, label: Legacy score}
---
kind: Queue
name: audits
templates: [site_audit]
steps:
  - name: audit
    group: development
    actions:
      - {name: run_checks, label: Run the checks}
      - {name: write_report, label: Write the report}
"""
BIG = 9_007_199_254_740_993
"""Beyond a double's exact integers: survives only if bigints stay integers all the way."""


@dataclass
class Source:
    """The filled workspace on its SQLite database."""

    root: Path
    url: str
    workspace: LinkedWorkspace


def workspace_copy(folder: Path, *, audits: str = AUDITS) -> Path:
    """The contract-agency example plus the audit template, in a folder of its own (files stored inside)."""
    shutil.copytree(EXAMPLES / "contract-agency", folder, ignore=shutil.ignore_patterns(".routecard"))
    (folder / "audits.yaml").write_text(audits, encoding="utf-8")
    return folder


async def ids(env: Env, customer: str, project: str) -> tuple[int, int]:
    cid = int(await env.db.fetch_value("SELECT id FROM rc_customer WHERE name = {}", customer))
    pid = int(await env.db.fetch_value("SELECT id FROM rc_project WHERE customer_id = {} AND name = {}",
                                       cid, project))
    return cid, pid


async def fill(env: Env, root: Path) -> None:
    """Orders through several steps, messages, files, time, custom fields of every type."""
    rt = env.rt
    rachel, hannah, sam = [await env.actor(login) for login in ("rachel.morgan", "hannah.lee", "sam.okafor")]
    cid, pid = await ids(env, "acme_logistics", "web_shop")
    first = await rt.create(rachel, "client_request", {
        "title": "Checkout fails — «Zahlung» 💳", "customer_id": cid, "project_id": pid, "fields": {
            "request_kind": "bug", "affected_url": "https://shop.acme.example/checkout", "environment": "staging",
            "client_ticket_ref": "ACME-981", "wanted_by": "2026-04-30", "billable": False, "estimate_hours": "2.5",
            "approved_budget": "12345678.91", "account_manager": rachel.id}})
    number = first["number"]
    first_id = int(await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", number))
    second = await rt.create(rachel, "client_request", {
        "title": "Follow-up", "customer_id": cid, "project_id": pid,
        "fields": {"request_kind": "change_request", "related_request": first_id, "billable": True}})
    # through triage into implementation, one action there
    view = await rt.get(rachel, number)
    for action in ("classify", "estimate"):
        view = await rt.process(rachel, number, view["version"], action)
    if view["step"] == "triage":
        view = await rt.advance(rachel, number, view["version"], to="implementation")
    assert view["step"] == "implementation", view
    owner = await env.actor(view["owner"]) if view["owner"] else sam
    view = await rt.process(owner, number, view["version"], "implement")
    # messages: a private note, a client-viewable one, a reply by mail (to the outbox)
    thread = Messages(rt)
    await thread.comment(rachel, number, "Internal: looks like the payment provider.\nLine two.")
    await thread.comment(rachel, number, "We are on it.", client_viewable=True, subscribe=True)
    await thread.reply(rachel, number, "Dear client,\nfixed on staging.", to="it@acme.example")
    # files: an attachment, and a raw inbound mail kept in the store
    files = Attachments.on_disk(rt, root)
    await files.store(rachel, number, Upload(PDF, "spec.pdf"))
    await files.store(rachel, second["number"], Upload(PNG, "screen.png"))
    await Inbound(rt, files).note("mail-1@acme.example", "test", "failed", raw=b"From: x@acme.example\r\n\r\nhi\r\n",
                                  sender="x@acme.example")
    # time: two entries and a running timer
    ts = Timesheets(rt)
    await ts.create(hannah, {"order": number, "started_at": "2026-03-02T09:00", "minutes": 90, "billable": True,
                             "note": "debugging", "percent_complete": 40})
    await ts.create(rachel, {"order": second["number"], "started_at": "2026-03-03T14:15", "minutes": 20,
                             "billable": False})
    await ts.start(sam, second["number"])
    # the audit template: text, multiselect, number, datetime, email, customer
    audit = await rt.create(sam, "site_audit", {"title": "Quarterly audit", "fields": {
        "findings": "Slow images.\n\tTabs and \"quotes\" and \\ backslashes.", "checks": ["speed", "seo"],
        "pages": BIG, "audited_at": "2026-03-04T10:11:12.345678+01:00", "report_to": "ops@acme.example",
        "client": cid, "legacy_score": 7}})
    await rt.process(sam, audit["number"], audit["version"], "run_checks")
    await rt.create(sam, "site_audit", {"title": "Empty audit", "fields": {}})


async def build_source(folder: Path) -> Source:
    """The filled workspace on SQLite, its `legacy_score` field removed afterwards (an archived column)."""
    root = workspace_copy(folder / "source")
    url = f"sqlite:///{folder / 'source.db'}"
    env = await make_env(root, url)
    try:
        await fill(env, root)
    finally:
        await env.db.close()
    (root / "audits.yaml").write_text(AUDITS.replace("  - {name: legacy_score, type: number, label: Legacy score}\n",
                                                     ""), encoding="utf-8")
    workspace = open_workspace(root)
    await apply_workspace(workspace, url)
    return Source(root, url, workspace)


@pytest.fixture
async def source(tmp_path: Path) -> Source:
    return await build_source(tmp_path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Source, Path]:
    """One source and its archive for the tests that only read them."""
    folder = tmp_path_factory.mktemp("exported")

    async def build() -> Source:
        built = await build_source(folder)
        await export_to(built, folder / "backup.zip")
        return built

    return asyncio.run(build()), folder / "backup.zip"


async def export_to(source: Source, out: Path) -> archive_module.Summary:
    db = await connect(source.url)
    try:
        return await export_archive(db, source.workspace, source.root,
                                    disk_store(source.workspace.settings, source.root), out)
    finally:
        await db.close()


async def import_into(url: str, path: Path, root: Path, **options: Any) -> archive_module.Summary:
    workspace = open_workspace(root)
    db = await connect(url)
    try:
        with open_archive(path, **options) as opened:
            return await import_archive(db, opened, disk_store(workspace.settings, root))
    finally:
        await db.close()


# -- comparing -----------------------------------------------------------------------------------


async def contents(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every Routecard table's rows, ordered by id, values normalised (UTC, Decimal, parsed JSON, bool)."""
    db = await connect(url)
    try:
        live = await read_live(db)
        applied = await latest_version(db, live)
        assert applied is not None
        out: dict[str, list[dict[str, Any]]] = {}
        for table in applied.schema.tables:
            kinds = {c.name: c.type for c in table.columns}
            rows = await db.fetch(f"SELECT * FROM {quote(table.name)} ORDER BY id")
            out[table.name] = [{name: normal(kinds.get(name, "serial"), value) for name, value in row.items()}
                               for row in rows]
        return out
    finally:
        await db.close()


def normal(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "json":
        return json.loads(value) if isinstance(value, str) else value
    if kind == "boolean":
        return bool(value)
    if kind == "timestamptz":
        assert isinstance(value, dt.datetime) and value.tzinfo is not None
        return value.astimezone(dt.timezone.utc)
    if kind.startswith("numeric"):
        return Decimal(value)
    return value


async def schema_of(url: str) -> dict[str, dict[str, tuple[str, bool]]]:
    """Every table's columns: canonical type, and whether nullable (SQLite says so of its primary keys)."""
    db = await connect(url)
    try:
        tables = (await read_live(db)).tables
        return {table: {name: (c.type, c.nullable or name == "id") for name, c in columns.items()}
                for table, columns in tables.items()}
    finally:
        await db.close()


def stored(root: Path, workspace: LinkedWorkspace, keys: list[str]) -> dict[str, bytes]:
    storage = disk_store(workspace.settings, root)
    out = {}
    for key in keys:
        with storage.open(key) as handle:
            out[key] = handle.read()
    return out


async def file_keys(url: str) -> list[str]:
    db = await connect(url)
    try:
        rows = await db.fetch("SELECT storage_key AS k FROM rc_attachment UNION ALL "
                              "SELECT raw_key AS k FROM rc_inbound_mail WHERE raw_key IS NOT NULL")
        return sorted(r["k"] for r in rows)
    finally:
        await db.close()


# -- the round trip ------------------------------------------------------------------------------


async def test_export_import_round_trip(source: Source, database_url: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archive_export, "PAGE", 3)  # several pages per table
    monkeypatch.setattr(archive_restore, "BATCH", 2)  # several INSERTs per table
    out = tmp_path / "backup.zip"
    summary = await export_to(source, out)
    before = await contents(source.url)
    assert summary.rows == sum(len(rows) for rows in before.values()) and not summary.missing_files
    assert summary.files == 3 and summary.tables == len(before)
    # the archive holds what the manifest says, values in their portable form
    with zipfile.ZipFile(out) as zf:
        manifest = msgspec.json.decode(zf.read("manifest.json"), type=Manifest)
        audit = [json.loads(line) for line in zf.read("tables/tpl_site_audit.jsonl").splitlines()]
        customers = [json.loads(line) for line in zf.read("tables/rc_customer.jsonl").splitlines()]
        assert "definitions/audits.yaml" in zf.namelist() and "definitions/requests.yaml" in zf.namelist()
    assert manifest.fingerprint == source.workspace.fingerprint and manifest.source == "sqlite"
    assert [t.table for t in manifest.tables][:3] == ["rc_customer", "rc_project", "rc_user"]
    assert audit[0]["pages"] == BIG and audit[0]["legacy_score"] == 7  # the archived column, kept
    assert audit[0]["audited_at"] == "2026-03-04T09:11:12.345678+00:00"
    assert json.loads(audit[0]["checks"]) == ["speed", "seo"]
    rates = [c["hourly_rate"] for c in customers if c["hourly_rate"] is not None]
    assert rates and all(re.fullmatch(r"\d+\.\d\d", rate) for rate in rates), rates  # at the column's scale
    # restore into an empty database of either kind, with a workspace folder of its own
    target = workspace_copy(tmp_path / "target", audits=(source.root / "audits.yaml").read_text())
    restored = await import_into(database_url, out, target)
    assert (restored.rows, restored.files) == (summary.rows, 3)
    after = await contents(database_url)
    assert after.keys() == before.keys()
    for table in before:
        assert after[table] == before[table], table
    assert await schema_of(database_url) == await schema_of(source.url)
    keys = await file_keys(source.url)
    assert len(keys) == 3
    assert stored(target, source.workspace, keys) == stored(source.root, source.workspace, keys)
    assert (await plan_for(open_workspace(target), database_url)).up_to_date
    # exported again from the restored database (PostgreSQL too): the same rows in the same words
    again = tmp_path / "again.zip"
    restored_workspace = open_workspace(target)
    db = await connect(database_url)
    try:
        await export_archive(db, restored_workspace, target, disk_store(restored_workspace.settings, target),
                             again)
    finally:
        await db.close()
    assert archived_rows(again) == archived_rows(out)
    await works_after_restore(target, database_url, before)


def archived_rows(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every table member's rows as written, JSON columns parsed (PostgreSQL spaces and orders their keys)."""
    with zipfile.ZipFile(path) as zf:
        manifest = msgspec.json.decode(zf.read("manifest.json"), type=Manifest)
        out = {}
        for table in manifest.schema.tables:
            json_columns = {c.name for c in table.columns if c.type == "json"}
            rows = [json.loads(line) for line in zf.read(f"tables/{table.name}.jsonl").splitlines()]
            out[table.name] = [{k: json.loads(v) if k in json_columns and v is not None else v
                                for k, v in row.items()} for row in rows]
        return out


async def works_after_restore(root: Path, url: str, before: dict[str, list[dict[str, Any]]]) -> None:
    """A new order gets a fresh id and the next number; an action is processed; events go on."""
    workspace = open_workspace(root)
    db = await connect(url)
    try:
        env = Env(workspace, db)
        sam = await env.actor("sam.okafor")
        view = await env.rt.create(sam, "site_audit", {"title": "After the restore", "fields": {"pages": 3}})
        numbers = sorted(r["number"] for r in before["rc_work_order"] if r["template"] == "site_audit")
        assert view["number"] == f"AUD-{int(numbers[-1].removeprefix('AUD-')) + 1:04d}"
        new_id = int(await db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", view["number"]))
        assert new_id == max(r["id"] for r in before["rc_work_order"]) + 1
        view = await env.rt.process(sam, view["number"], view["version"], "run_checks")
        assert next(a for a in view["actions"] if a["name"] == "run_checks")["state"] == "processed"
        event = int(await db.fetch_value("SELECT MAX(id) FROM rc_event"))
        assert event > max(r["id"] for r in before["rc_event"])
        # the restored orders work too
        old = next(r["number"] for r in before["rc_work_order"] if r["template"] == "client_request")
        assert (await env.rt.get(sam, old))["fields"]["approved_budget"] == "12345678.91"
    finally:
        await db.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("routecard")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "engine.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300, check=False)


async def test_cli_export_and_import_into_a_new_folder(source: Source, database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "backup.zip"
    exported = cli("export", str(source.root), "--db", source.url, "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith(f"wrote {out}: ") and "3 stored files" in exported.stdout
    # a new folder: the archived definitions are written into it, then the data goes in
    target = tmp_path / "restored"
    imported = cli("import", str(target), "--db", database_url, str(out))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.splitlines()[0] == f"restored {len(list(source.root.glob('*.yaml')))} definition files " \
                                              f"into {target}"
    assert (target / "audits.yaml").read_text() == (source.root / "audits.yaml").read_text()
    assert open_workspace(target).fingerprint == source.workspace.fingerprint
    before, after = await contents(source.url), await contents(database_url)
    assert after == before
    keys = await file_keys(source.url)
    assert stored(target, source.workspace, keys) == stored(source.root, source.workspace, keys)
    assert (await plan_for(open_workspace(target), database_url)).up_to_date
    # a second import into the now filled database is refused, and the folder is left alone
    refused = cli("import", str(target), "--db", database_url, str(out))
    assert refused.returncode == 1 and "is not empty" in refused.stderr and "nothing was imported" in refused.stderr
    assert await contents(database_url) == before


# -- refusals ------------------------------------------------------------------------------------


def rewrite(original: Path, copy: Path, *, change: Callable[[str, bytes], bytes] | None = None,
            add: dict[str, bytes] | None = None, fix_manifest: bool = False) -> Path:
    """A copy of an archive with members changed or added; ``fix_manifest`` recomputes sizes and checksums."""
    import hashlib

    with zipfile.ZipFile(original) as source:
        members = {name: source.read(name) for name in source.namelist()}
    if change is not None:
        members = {name: change(name, data) for name, data in members.items()}
    if fix_manifest:
        manifest = json.loads(members["manifest.json"])
        for entry in [*manifest["tables"], *manifest["definitions"], manifest["files"]]:
            entry["bytes"] = len(members[entry["name"]])
            entry["sha256"] = hashlib.sha256(members[entry["name"]]).hexdigest()
        members["manifest.json"] = json.dumps(manifest).encode()
    with zipfile.ZipFile(copy, "w") as target:
        for name, data in {**members, **(add or {})}.items():
            target.writestr(zipfile.ZipInfo(name), data)
    return copy


async def nothing_written(url: str, root: Path) -> None:
    db = await connect(url)
    try:
        assert (await read_live(db)).tables == {}
    finally:
        await db.close()
    files = root / ".routecard" / "files"
    assert not files.exists() or not any(p.is_file() for p in files.rglob("*"))


async def test_a_database_that_is_not_empty_is_refused(exported: tuple[Source, Path], database_url: str,
                                                        tmp_path: Path) -> None:
    source, archive = exported
    target = workspace_copy(tmp_path / "target", audits=(source.root / "audits.yaml").read_text())
    await apply_workspace(open_workspace(target), database_url)
    before = await contents(database_url)
    with pytest.raises(ArchiveError) as refused:
        await import_into(database_url, archive, target)
    assert "is not empty" in refused.value.detail and "nothing was imported" in refused.value.detail
    assert await contents(database_url) == before
    assert not (target / ".routecard" / "files").exists()


async def test_a_changed_table_fails_its_checksum_before_anything_is_written(
        exported: tuple[Source, Path], database_url: str, tmp_path: Path) -> None:
    archive = exported[1]

    def edit(name: str, data: bytes) -> bytes:  # same size, other bytes
        return data.replace(b'"login":"aisha.khan"', b'"login":"aisha.kham"') if name.endswith("rc_user.jsonl") \
            else data

    tampered = rewrite(archive, tmp_path / "tampered.zip", change=edit)
    assert tampered.read_bytes() != archive.read_bytes()
    target = workspace_copy(tmp_path / "target")
    with pytest.raises(ArchiveError) as refused:
        await import_into(database_url, tampered, target)
    assert refused.value.detail == (f"{tampered}: tables/rc_user.jsonl: its checksum does not match the manifest "
                                    "(the archive was changed or damaged); nothing was imported")
    await nothing_written(database_url, target)
    # a cut-off archive, and a member cut short behind a mended manifest
    cut = tmp_path / "cut.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="not a Routecard archive, or a damaged one"):
        await import_into(database_url, cut, target)
    short = rewrite(archive, tmp_path / "short.zip",
                    change=lambda name, data: data[:-1] if name == "tables/rc_event.jsonl" else data)
    with pytest.raises(ArchiveError, match="tables/rc_event.jsonl: .* bytes, but the manifest gives"):
        await import_into(database_url, short, target)
    await nothing_written(database_url, target)


async def test_a_bad_row_rolls_everything_back(exported: tuple[Source, Path], database_url: str,
                                               tmp_path: Path) -> None:
    """Checksums mended by hand, a value that cannot go in: the transaction and the restored files go."""
    archive = exported[1]

    def edit(name: str, data: bytes) -> bytes:
        if name == "tables/tpl_site_audit.jsonl":
            return data.replace(b'"pages":' + str(BIG).encode(), b'"pages":"many"')
        return data

    broken = rewrite(archive, tmp_path / "broken.zip", change=edit, fix_manifest=True)
    target = workspace_copy(tmp_path / "target")
    with pytest.raises(ArchiveError) as refused:
        await import_into(database_url, broken, target)
    assert refused.value.detail == (f"{broken}: tables/tpl_site_audit.jsonl:1: pages: expected an integer, "
                                    "found 'many'; nothing was imported")
    await nothing_written(database_url, target)


@pytest.mark.parametrize("name, problem", [
    ("../escape.yaml", "its path climbs out of the archive (..)"),
    ("definitions/../../escape.yaml", "its path climbs out of the archive (..)"),
    ("/etc/escape.yaml", "it has an absolute path"),
    ("C:/escape.yaml", "it has an absolute path"),
    ("definitions/..\\escape.yaml", "its name holds a backslash or NUL"),
    ("scripts/run.sh", "a Routecard archive has no such member"),
])
async def test_members_outside_the_archive_are_refused(exported: tuple[Source, Path], tmp_path: Path, name: str,
                                                       problem: str) -> None:
    archive = exported[1]
    bad = rewrite(archive, tmp_path / "bad.zip", add={name: b"kind: Group\nname: x\n"})
    with pytest.raises(ArchiveError) as refused:
        open_archive(bad)
    assert refused.value.detail == f"{bad}: refusing the member {name!r}: {problem}; nothing was imported"
    assert not (tmp_path / "escape.yaml").exists()


async def test_unlisted_and_oversized_members_are_refused(exported: tuple[Source, Path], tmp_path: Path) -> None:
    archive = exported[1]
    extra = rewrite(archive, tmp_path / "extra.zip", add={"definitions/extra.yaml": b"kind: Group\nname: x\n"})
    with pytest.raises(ArchiveError, match="'definitions/extra.yaml': the manifest does not list it"):
        open_archive(extra)
    with zipfile.ZipFile(archive) as zf:
        largest = max(zf.infolist(), key=lambda i: i.file_size if i.filename != "manifest.json" else 0)
    with pytest.raises(ArchiveError) as refused:
        open_archive(archive, max_member=largest.file_size - 1)
    assert refused.value.detail == (f"{archive}: refusing the member {largest.filename!r}: it is too large "
                                    f"({largest.file_size} bytes); nothing was imported")
    with open_archive(archive, max_member=largest.file_size) as fine:
        assert len(fine.files) == 3


async def test_export_needs_the_applied_definitions(source: Source, tmp_path: Path) -> None:
    (source.root / "extra.yaml").write_text("kind: Group\nname: support\nmembers: [sam.okafor]\n", encoding="utf-8")
    changed = open_workspace(source.root)
    db = await connect(source.url)
    try:
        with pytest.raises(ArchiveError, match="run `routecard apply .*` first"):
            await export_archive(db, changed, source.root, disk_store(changed.settings, source.root),
                                 tmp_path / "b.zip")
    finally:
        await db.close()
    assert not list(tmp_path.glob("*b.zip*"))
    (tmp_path / "taken.zip").write_bytes(b"mine")
    db = await connect(source.url)
    try:
        with pytest.raises(ArchiveError, match="the file exists; give a new file name"):
            await export_archive(db, source.workspace, source.root,
                                 disk_store(source.workspace.settings, source.root), tmp_path / "taken.zip")
    finally:
        await db.close()
    assert (tmp_path / "taken.zip").read_bytes() == b"mine"


def test_values_keep_their_meaning() -> None:
    encode, decode = archive_module.encode_value, archive_module.decode_value
    moment = dt.datetime(2026, 3, 4, 10, 11, 12, 345678, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert encode("timestamptz", moment) == "2026-03-04T09:11:12.345678+00:00"
    assert decode("timestamptz", encode("timestamptz", moment)) == moment
    assert encode("numeric(11,2)", Decimal("99.9")) == "99.90" and encode("numeric(6,1)", 2.5) == "2.5"
    assert encode("numeric(30,4)", Decimal("12345678901234567890123456.7")) == "12345678901234567890123456.7000"
    assert encode("boolean", 1) is True and encode("bigint", BIG) == BIG and encode("json", '{"a": 1}') == '{"a": 1}'
    assert encode("date", dt.date(2026, 1, 2)) == "2026-01-02" and decode("date", "2026-01-02") == dt.date(2026, 1, 2)
    for kind, value in [("bigint", True), ("bigint", "3"), ("boolean", "yes"), ("date", dt.datetime.now()),
                        ("text", 3)]:
        with pytest.raises(ValueError):
            encode(kind, value)
    for kind, value in [("timestamptz", "2026-03-04T09:11:12"), ("numeric(6,2)", "NaN"), ("json", "{nope"),
                        ("integer", 1.5), ("boolean", 1)]:
        with pytest.raises(ValueError):
            decode(kind, value)


def test_the_archive_module_reads_nothing_but_its_own_kind(tmp_path: Path) -> None:
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ArchiveError, match="'notes.txt': a Routecard archive has no such member"):
        open_archive(plain)
    (tmp_path / "text.zip").write_text("not a zip")
    with pytest.raises(ArchiveError, match="not a Routecard archive, or a damaged one"):
        open_archive(tmp_path / "text.zip")
    with pytest.raises(ArchiveError, match="no such file"):
        open_archive(tmp_path / "missing.zip")
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w"):
        pass
    (tmp_path / "empty.zip").write_bytes(empty.getvalue())
    with pytest.raises(ArchiveError, match="no manifest.json"):
        open_archive(tmp_path / "empty.zip")

