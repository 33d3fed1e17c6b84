"""The plan, apply and demo commands: output, exit codes, and no changes on bad input."""

from __future__ import annotations

import asyncio

from pathlib import Path

import pytest

from engine.cli import main
from engine.compile.core import CORE_TABLES
from engine.db import connect
from tests.migration_helpers import dump, write_workspace

DEFS = """\
kind: Template
name: order
fields:
  - {name: notes, type: text}
---
kind: Queue
name: main
templates: [order]
steps:
  - name: review
"""


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_apply_plan(tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    code, out, _ = run(capsys, "plan", str(root), "--db", database_url)
    assert code == 0
    assert "+ create table tpl_order for template `order` (1 field)" in out
    changes = len(CORE_TABLES) + 1  # grows with the engine's own tables (engine/compile/core.py)
    assert out.strip().endswith(f"Plan: {changes} changes.")
    code, out, _ = run(capsys, "apply", str(root), "--db", database_url)
    assert code == 0 and f"Applied: {changes} changes." in out
    code, out, _ = run(capsys, "plan", str(root), "--db", database_url)
    assert code == 0 and "No changes: the database is up to date." in out


def test_database_from_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    target = tmp_path / "elsewhere.db"
    monkeypatch.setenv("ROUTECARD_DATABASE_URL", f"sqlite:///{target}")
    assert run(capsys, "apply", str(root))[0] == 0
    assert target.is_file()
    assert not (root / ".routecard").exists()


def test_default_database_is_in_the_workspace(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROUTECARD_DATABASE_URL", raising=False)
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    assert run(capsys, "apply", str(root))[0] == 0
    assert (root / ".routecard" / "routecard.db").is_file()


def test_refused_plan_exits_1_and_changes_nothing(
        tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    assert run(capsys, "apply", str(root), "--db", database_url)[0] == 0

    async def seed_and_dump() -> dict[str, object]:
        db = await connect(database_url)
        try:
            await db.execute(
                "INSERT INTO rc_work_order (number, template, queue, step, status, title, created_at, updated_at) "
                "VALUES ('WO-1', 'order', 'main', 'review', 'open', 't', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
            return await dump(db)
        finally:
            await db.close()

    async def current() -> dict[str, object]:
        db = await connect(database_url)
        try:
            return await dump(db)
        finally:
            await db.close()

    before = asyncio.run(seed_and_dump())
    write_workspace(root, {"defs.yaml": DEFS.replace("name: review", "name: triage")})
    code, out, _ = run(capsys, "plan", str(root), "--db", database_url)
    assert code == 1
    assert "Refused:" in out and "step `review` was removed from queue `main`" in out
    code, _, err = run(capsys, "apply", str(root), "--db", database_url)
    assert code == 1
    assert err.startswith("routecard: error: the plan cannot be applied:")
    assert "retired_steps" in err
    assert asyncio.run(current()) == before


def test_destructive_apply_needs_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'rc.db'}"
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    assert run(capsys, "apply", str(root), "--db", url)[0] == 0
    without = DEFS.replace("fields:\n  - {name: notes, type: text}\n", "fields: []\n")
    write_workspace(root, {"defs.yaml": without})
    assert run(capsys, "apply", str(root), "--db", url)[0] == 0
    write_workspace(root, {"defs.yaml": without.replace("fields: []\n", "purge: [notes]\nfields: []\n")})
    code, out, _ = run(capsys, "plan", str(root), "--db", url)
    assert code == 0
    assert "! purge field `notes` of template `order` (tpl_order.notes): deletes 0 values [destructive]" in out
    assert "1 destructive step (apply needs --allow-destructive)" in out
    code, _, err = run(capsys, "apply", str(root), "--db", url)
    assert code == 1 and "--allow-destructive" in err
    assert run(capsys, "apply", str(root), "--db", url, "--allow-destructive")[0] == 0


def test_bad_definitions_never_touch_the_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "never.db"
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS.replace("type: text", "type: txt")})
    for command in ("plan", "apply"):
        code, _, err = run(capsys, command, str(root), "--db", f"sqlite:///{target}")
        assert code == 1
        assert "defs.yaml:4:25: error: `fields[0].type` must be one of:" in err
    assert not target.exists()


@pytest.mark.parametrize(("url", "code", "message"), [
    ("mysql://root@localhost/x", 2, "unsupported database"),
    ("sqlite://relative.db", 2, "give an SQLite file as"),
    ("postgresql://postgres@127.0.0.1:1/none", 1, "cannot reach the database postgresql://postgres@127.0.0.1:1/none"),
    ("postgresql://user:secret@127.0.0.1:1/none", 1, "postgresql://user:***@127.0.0.1:1/none"),
])
def test_bad_database_urls(tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str, code: int,
                           message: str) -> None:
    root = write_workspace(tmp_path / "ws", {"defs.yaml": DEFS})
    got, _, err = run(capsys, "plan", str(root), "--db", url)
    assert got == code
    assert message in err
    assert "secret" not in err and "Traceback" not in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "plan", str(tmp_path / "missing"))[0] == 2
    assert run(capsys, "apply", "--bogus")[0] == 2
    assert run(capsys)[0] == 2


def test_demo_applies_an_example(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = Path(__file__).resolve().parent.parent / "examples" / "hosting-orders"
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    code, out, _ = run(capsys, "demo", str(examples), "--db", url, "--no-serve")
    assert code == 0
    assert "queue `dedicated_servers`:" in out
    assert "template `dedicated_server_order` -> table tpl_dedicated_server_order:" in out
    assert "Demo users (password `demo`): " in out
    token = out.split("API token of ")[1].split(": ", 1)[1].strip()

    async def who() -> int | None:
        from engine.db import connect
        from engine.runtime import user_for_token

        db = await connect(url)
        try:
            return await user_for_token(db, token)
        finally:
            await db.close()

    assert asyncio.run(who()) is not None
    code, out, _ = run(capsys, "demo", str(examples), "--db", url, "--no-serve")
    assert code == 0 and "No changes: the database is up to date." in out
