"""`field_changed` triggers narrowed by the value a field changed from and to."""

from __future__ import annotations

from pathlib import Path

from tests.helpers_workspace import diagnostics_of
from tests.runtime_helpers import Env, tmp_env  # noqa: F401 - fixture
from tests.web_helpers import DESK_GROUPS

DEFS = """\
    kind: Template
    name: job
    label: Job
    fields:
      - {name: stage, type: select, options: [draft, review, done]}
      - {name: budget, type: decimal, digits: 8, places: 2}
    ---
    kind: Queue
    name: jobs
    templates: [job]
    steps:
      - name: work
        group: desk
        actions: [{name: finish}]
    ---
    kind: Rule
    name: review_is_urgent
    on: [{event: field_changed, field: stage, from: draft, to: review}]
    do:
      - set_priority: urgent
    ---
    kind: Rule
    name: budget_cut
    on: [{event: field_changed, field: budget, from: 100}]
    do:
      - set_priority: low
    """


async def _priority_after(env: Env, start: dict[str, object], then: dict[str, object]) -> str:
    sam = await env.actor("sam")
    made = await env.rt.create(sam, "job", {"fields": start})
    view = await env.rt.update(sam, made["number"], made["version"], {"fields": then})
    return str(view["priority"])


async def test_only_the_named_change_fires(tmp_env) -> None:  # type: ignore[no-untyped-def]
    env: Env = await tmp_env({"team.yaml": DESK_GROUPS, "defs.yaml": DEFS})
    assert await _priority_after(env, {"stage": "draft"}, {"stage": "review"}) == "urgent"
    assert await _priority_after(env, {"stage": "draft"}, {"stage": "done"}) == "normal"   # not to review
    assert await _priority_after(env, {"stage": "done"}, {"stage": "review"}) == "normal"  # not from draft
    assert await _priority_after(env, {}, {"stage": "review"}) == "normal"                 # from nothing
    # values compare as the field's type: 100 is 100.00
    assert await _priority_after(env, {"budget": "100.00"}, {"budget": "80"}) == "low"
    assert await _priority_after(env, {"budget": "120"}, {"budget": "80"}) == "normal"


def test_from_and_to_are_checked(tmp_path: Path) -> None:
    bad = DEFS.replace("from: draft, to: review", "from: drafted, to: review").replace(
        "on: [{event: field_changed, field: budget, from: 100}]", "on: [{event: created, to: 100}]")
    found = diagnostics_of(tmp_path, {"team.yaml": DESK_GROUPS, "defs.yaml": bad})
    assert any(": error: " in d and "drafted" in d for d in found), found
    assert any("`to` narrows only event: field_changed with `field`" in d for d in found), found
    assert all(d.startswith("defs.yaml:") for d in found)


AGE = """\
    ---
    kind: Calendar
    name: office
    timezone: Europe/London
    hours: {mon: ["09:00-17:00"], tue: ["09:00-17:00"]}
    ---
    kind: Rule
    name: stale
    on: [{event: field_changed, field: stage}]
    when:
      all:
        - {field: created_at, older_than: 2d, calendar: office}
        - {field: stage, newer_than: 1h}
        - {field: created_at, older_than: 1h, calendar: nowhere}
        - {field: stage, equals: draft, calendar: office}
    do:
      - set_priority: high
    """


def test_age_conditions_are_checked(tmp_path: Path) -> None:
    found = diagnostics_of(tmp_path, {"team.yaml": DESK_GROUPS, "defs.yaml": DEFS.rstrip(" ") + AGE})
    messages = [d.split(": error: ", 1)[1] for d in found]
    assert messages == [
        "`newer_than` tests how long ago a date or time was, but `stage` is a select field",
        "unknown calendar `nowhere`; known: office",
        "`calendar` counts only `older_than` and `newer_than`",
    ], found
