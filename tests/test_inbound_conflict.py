"""A mail threaded onto an order that somebody changes at the same moment is taken again, not lost.

PostgreSQL only: another connection holds the order's row changed (and locked) while the mail is
delivered, so the delivery's own version check meets the newer version when the other commits.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.comms.inbound import Inbound
from engine.db import connect
from engine.runtime.attachments import Attachments
from engine.storage import DiskStorage
from tests.inbound_helpers import WORKSPACE, mail
from tests.migration_helpers import write_workspace
from tests.runtime_helpers import make_env


async def test_a_reply_racing_an_edit_is_threaded_after_it(database_url: str, dialect: str, tmp_path: Path) -> None:
    if dialect != "postgresql":
        pytest.skip("needs row locks held by a second connection (PostgreSQL)")
    env = await make_env(write_workspace(tmp_path / "desk", WORKSPACE), database_url)
    other = await connect(database_url)
    try:
        inbound = Inbound(env.rt, Attachments(env.rt, DiskStorage(tmp_path / "files")))
        first = await inbound.receive(mail("anna@acme.example", "Checkout is broken", ident="<a1@acme.example>"))
        number = str(first.number)
        version = await env.db.fetch_value("SELECT version FROM rc_work_order WHERE number = {}", number)
        engine = other.engine
        async with engine.transaction():
            # an edit of the order, not yet committed: its row is locked at a newer version
            await other.execute("UPDATE rc_work_order SET version = version + 1, title = {} WHERE number = {}",
                                "Checkout is broken (edited)", number)
            reply = asyncio.create_task(inbound.receive(mail(
                "anna@acme.example", f"Re: [{number}] Checkout is broken", "Still broken.", ident="<a2@acme.example>")))
            await asyncio.sleep(1.0)  # the delivery reads the old version and waits on the row lock
            assert not reply.done()
        delivered = await reply
        assert delivered.outcome == "threaded" and delivered.number == number
        row = (await env.db.fetch("SELECT version, title FROM rc_work_order WHERE number = {}", number))[0]
        assert row["title"] == "Checkout is broken (edited)"  # the edit stays
        assert row["version"] == version + 2  # the edit, then the mail on top of it
        bodies = [r["body"] for r in await env.db.fetch(
            "SELECT m.body FROM rc_message m JOIN rc_work_order w ON w.id = m.work_order_id WHERE w.number = {} "
            "ORDER BY m.id", number)]
        assert bodies[-1] == "Still broken."
    finally:
        await other.close()
        await env.db.close()
