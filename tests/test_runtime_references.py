"""Fields naming records (user, customer, reference, upload) must name records that exist and may be named."""

from __future__ import annotations

from typing import Any

import pytest

from engine.errors import Invalid
from tests.runtime_helpers import Env, dump, tmp_env  # noqa: F401 - fixtures
from tests.web_helpers import DESK_GROUPS

DEFS = {"team.yaml": DESK_GROUPS, "defs.yaml": """\
    kind: Template
    name: job
    label: Job
    numbering: {prefix: J-}
    fields:
      - {name: who, type: user}
      - {name: client, type: customer}
      - {name: parent, type: reference, reference: job}
      - {name: files, type: upload}
    ---
    kind: Template
    name: memo
    label: Memo
    numbering: {prefix: M-}
    ---
    kind: Queue
    name: jobs
    templates: [job, memo]
    steps:
      - name: work
        group: desk
        actions: [{name: done}]
    """}


async def _attachment(env: Env, *, order_id: int | None, by: int | None, key: str) -> int:
    return int(await env.db.fetch_value(
        "INSERT INTO rc_attachment (work_order_id, storage_key, filename, content_type, size, uploaded_by, created_at) "
        "VALUES ({}, {}, 'a.txt', 'text/plain', 1, {}, CURRENT_TIMESTAMP) RETURNING id", order_id, key, by))


async def _refused(env: Env, call: Any) -> list[dict[str, str]]:
    before = await dump(env.db)
    with pytest.raises(Invalid) as raised:
        await call()
    assert await dump(env.db) == before
    return raised.value.errors


async def test_record_fields_name_existing_records(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = await tmp_env(DEFS)
    kim = await env.actor("kim")
    sam_id = await env.user_id("sam")
    acme = await env.customer("acme")
    memo = await env.rt.create(kim, "memo", {"title": "a memo"})
    parent = await env.rt.create(kim, "job", {"title": "parent"})
    parent_id = int(await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", parent["number"]))

    errors = await _refused(env, lambda: env.rt.create(kim, "job", {"fields": {
        "who": 999_999, "client": 999_999, "parent": 999_999, "files": [999_999]}}))
    assert {e["field"]: e["message"] for e in errors} == {
        "fields.who": "no active user has id 999999",
        "fields.client": "no customer has id 999999",
        "fields.parent": "no work order of template `job` has id 999999",
        "fields.files": "not files of this work order: 999999",
    }
    memo_id = int(await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", memo["number"]))
    errors = await _refused(env, lambda: env.rt.create(kim, "job", {"fields": {"parent": memo_id}}))
    assert errors == [{"field": "fields.parent", "message": f"no work order of template `job` has id {memo_id}"}]

    made = await env.rt.create(kim, "job", {"fields": {"who": sam_id, "client": acme, "parent": parent_id}})
    assert made["fields"]["who"] == sam_id and made["fields"]["parent"] == parent_id
    await env.db.execute("UPDATE rc_user SET is_active = {} WHERE id = {}", False, sam_id)
    errors = await _refused(env, lambda: env.rt.update(kim, made["number"], made["version"],
                                                       {"fields": {"who": sam_id}}))
    assert errors == [{"field": "fields.who", "message": f"no active user has id {sam_id}"}]


async def test_upload_fields_hold_only_the_orders_own_files(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = await tmp_env(DEFS)
    kim, sam = await env.actor("kim"), await env.actor("sam")
    first = await env.rt.create(kim, "job", {"title": "first"})
    second = await env.rt.create(kim, "job", {"title": "second"})
    first_id, second_id = [int(await env.db.fetch_value("SELECT id FROM rc_work_order WHERE number = {}", n))
                           for n in (first["number"], second["number"])]
    own = await _attachment(env, order_id=first_id, by=sam.id, key="own")
    foreign = await _attachment(env, order_id=second_id, by=kim.id, key="foreign")
    staged_by_kim = await _attachment(env, order_id=None, by=kim.id, key="staged-kim")
    staged_by_sam = await _attachment(env, order_id=None, by=sam.id, key="staged-sam")

    errors = await _refused(env, lambda: env.rt.update(kim, first["number"], first["version"],
                                                       {"fields": {"files": [own, foreign, staged_by_sam]}}))
    assert errors == [{"field": "fields.files",
                       "message": f"not files of this work order: {', '.join(map(str, sorted([foreign, staged_by_sam])))}"}]
    view = await env.rt.update(kim, first["number"], first["version"], {"fields": {"files": [own, staged_by_kim]}})
    assert view["fields"]["files"] == [own, staged_by_kim]
    made = await env.rt.create(kim, "job", {"fields": {"files": [staged_by_kim]}})
    assert made["fields"]["files"] == [staged_by_kim]
    errors = await _refused(env, lambda: env.rt.create(kim, "job", {"fields": {"files": [own]}}))
    assert errors == [{"field": "fields.files", "message": f"not files of this work order: {own}"}]
