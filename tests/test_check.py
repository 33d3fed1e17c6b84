"""engine.check: schema errors as located, readable messages; valid documents as typed models."""

from __future__ import annotations

import pytest

from engine.check import check_document, did_you_mean, path_text, shown
from engine.diagnostics import Diagnostics
from engine.load import Document, parse_text
from engine.model import Group, Queue, Rule, Template, Workspace


def document(text: str, path: str = "f.yaml") -> Document:
    diagnostics = Diagnostics()
    (parsed,) = parse_text(text, path, diagnostics)
    assert not diagnostics
    return parsed


def errors_of(text: str, path: str = "f.yaml") -> list[str]:
    diagnostics = Diagnostics()
    assert check_document(document(text, path), diagnostics) is None
    return [str(d) for d in diagnostics.sorted()]


def test_valid_documents_become_models() -> None:
    diagnostics = Diagnostics()
    group = check_document(document("kind: Group\nname: sales\nmembers: [a, b]\n"), diagnostics)
    assert group == Group(name="sales", members=("a", "b"))
    queue = check_document(
        document("kind: Queue\nname: q\ntemplates: [t]\nsteps:\n  - name: one\n    next: complete\n"), diagnostics
    )
    assert isinstance(queue, Queue)
    assert queue.steps[0].next == "complete"
    template = check_document(document("kind: Template\nname: t\nfields: [shared, {name: a, type: date}]\n"),
                              diagnostics)
    assert isinstance(template, Template)
    assert template.fields[0] == "shared"
    rule = check_document(document("kind: Rule\nname: r\non: [created]\ndo: [{set_priority: high}]\n"), diagnostics)
    assert isinstance(rule, Rule)
    assert not diagnostics


def test_routecard_yaml_needs_no_kind() -> None:
    diagnostics = Diagnostics()
    settings = check_document(document("name: w\ntimezone: Europe/Berlin\n", "routecard.yaml"), diagnostics)
    assert settings == Workspace(name="w", timezone="Europe/Berlin")
    assert not diagnostics


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "kind: Rule\nname: r\non: [creatd, {event: schedule, schedule: every tuesday 9:00}, 5]\ndo: []\n",
            [
                "f.yaml:3:6: error: `on[0]` must be one of: action_processed, action_skipped, assigned, "
                "comment_added, created, email_received, field_changed, schedule, sla_breach, sla_warning, "
                'step_entered, step_left; found "creatd"; did you mean `created`?',
                'f.yaml:3:42: error: `on[1].schedule`: "every tuesday 9:00" is not a schedule; write e.g. '
                "every day 08:00, every monday 09:30, every weekday 07:00 or every 2h",
                "f.yaml:3:63: error: `on[2]` should be text or a mapping (key: value), found 5",
                "f.yaml:4:5: error: `do` needs at least 1 item, found 0",
            ],
        ),
        (
            "kind: Calendar\nname: c\ntimezone: UTC\nhours:\n  mon: [08:00-25:00]\nholidays:\n  - date: 24.12.2025\n",
            [
                'f.yaml:5:9: error: `hours.mon[0]`: "08:00-25:00" is not a time range; write HH:MM-HH:MM, '
                "e.g. 08:00-17:00",
                'f.yaml:7:11: error: `holidays[0].date`: "24.12.2025" is not a date; write YYYY-MM-DD, '
                "e.g. 2025-12-24",
            ],
        ),
        (
            'kind: Group\nname: ""\nemail: not-an-email\nmembers: [""]\n',
            [
                "f.yaml:2:7: error: `name` must not be empty",
                'f.yaml:3:8: error: `email`: "not-an-email" is not an email address',
                'f.yaml:4:11: error: `members[0]`: "" does not have the expected form '
                "(A user's login name; pattern ^[A-Za-z0-9_.@+-]{1,100}$)",
            ],
        ),
        (
            "kind: Template\nname: t\nnumbering: {digits: 40}\nfields:\n  - name: a\n    type: number\n"
            "    min: ten\n  - 5\n",
            [
                "f.yaml:3:21: error: `numbering.digits` must be at most 12, found 40",
                'f.yaml:7:10: error: `fields[0].min` should be a number, found "ten"',
                "f.yaml:8:5: error: `fields[1]` should be text or a mapping (key: value), found 5",
            ],
        ),
        (
            "kind: SLA\nname: s\ntargets: {resolution: 4 hours}\non_breach:\n  - call: {action: invoice}\n",
            [
                'f.yaml:3:23: error: `targets.resolution`: "4 hours" is not a duration; write days, hours and '
                "minutes like 30m, 4h or 1d4h",
                'f.yaml:5:20: error: `on_breach[0].call.action`: "invoice" is not a plugin action; write '
                "plugin.action, e.g. invoice.generate",
            ],
        ),
        (
            "name: w\nlanguage: english\nbase_url: localhost\nmail: {from_address: a@b.example, smtp: {port: 0}}\n",
            [
                'routecard.yaml:2:11: error: `language`: "english" is not a language code; write e.g. en or de-CH',
                'routecard.yaml:3:11: error: `base_url`: "localhost" does not have the expected form '
                "(The address people reach Routecard at; links in mail start with it; "
                "pattern ^https?://[^\\s/]+(/\\S*)?$)",
                "routecard.yaml:4:41: error: missing required key `host` in `mail.smtp` (Host name of the SMTP server.)",
                "routecard.yaml:4:48: error: `mail.smtp.port` must be at least 1, found 0",
            ],
        ),
        (
            "kind: Template\nname: Order Form\nfields:\n  - {name: 1st_name, type: input}\n",
            [
                'f.yaml:2:7: error: `name`: "Order Form" is not a valid name; use lowercase letters, digits and '
                "underscores, starting with a letter (e.g. `order_form`)",
                'f.yaml:4:12: error: `fields[0].name`: "1st_name" is not a valid name; use lowercase letters, digits '
                "and underscores, starting with a letter (e.g. `n_1st_name`)",
            ],
        ),
    ],
)
def test_schema_errors_are_located_and_worded(text: str, expected: list[str]) -> None:
    path = "f.yaml" if text.startswith("kind:") else "routecard.yaml"
    assert errors_of(text, path) == expected


def test_every_error_of_a_document_is_reported() -> None:
    text = "kind: Queue\nname: Q\nlabel: [x]\nsteps:\n  - {name: a, actoins: []}\n  - {label: b}\n"
    assert errors_of(text) == [
        "f.yaml:1:1: error: missing required key `templates` in Queue (The templates whose work orders enter "
        "this queue.)",
        'f.yaml:2:7: error: `name`: "Q" is not a valid name; use lowercase letters, digits and underscores, '
        "starting with a letter (e.g. `q`)",
        "f.yaml:3:8: error: `label` should be text or a mapping (key: value), found a list",
        "f.yaml:5:15: error: unknown key `actoins` in `steps[0]`; did you mean `actions`?",
        "f.yaml:6:5: error: missing required key `name` in `steps[1]` (The step's identity; complete is reserved "
        "for the final step.)",
    ]


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("- a\n", "f.yaml", "f.yaml:1:1: error: a definition document must be a mapping of keys, found a list"),
        ("plain text\n", "f.yaml", 'f.yaml:1:1: error: a definition document must be a mapping of keys, '
         'found "plain text"'),
        ("kind: 5\n", "f.yaml", "f.yaml:1:7: error: unknown kind 5; kinds are: Template, Field, Queue, Group, "
         "Role, Form, Rule, SLA, Calendar, Macro, CommentTemplate, Portal, Customer"),
        ("kind: queue\n", "f.yaml", 'f.yaml:1:7: error: unknown kind "queue"; did you mean `Queue`?'),
        ("kind: Group\nname: g\n", "routecard.yaml", 'routecard.yaml:1:7: error: routecard.yaml holds the '
         'workspace settings (kind: Workspace); put "Group" definitions in another file'),
    ],
)
def test_documents_without_a_usable_kind(text: str, path: str, expected: str) -> None:
    assert errors_of(text, path) == [expected]


def test_helpers() -> None:
    assert did_you_mean("lable", ["label", "name"]) == "; did you mean `label`?"
    assert did_you_mean("zzz", ["label", "name"]) == ""
    assert path_text(["steps", 2, "actions", 0, "name"]) == "steps[2].actions[0].name"
    assert path_text([]) == "the document"
    assert [shown(v) for v in ({}, [], True, None, "x", 3)] == ["a mapping", "a list", "true", "nothing (null)",
                                                             '"x"', "3"]
    assert shown("y" * 100) == '"' + "y" * 57 + '..."'
