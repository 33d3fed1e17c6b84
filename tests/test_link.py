"""Stage 3, link: every semantic check reports the exact message at the exact place.

Each case writes a small workspace (``base.yaml`` below plus the case's ``x.yaml``),
opens it and compares the complete list of diagnostics, so a case fails when a check
disappears, its message changes, its location drifts, or a check starts firing where
it should not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers_workspace import diagnostics_of, linked

BASE = """
kind: Group
name: sales
supervisor: anna
members: [anna, ben]
---
kind: Group
name: stock
---
kind: Template
name: order
range: [sales, stock]
fields:
  - {name: amount, type: number, min: 0, max: 1000}
  - {name: kind, type: select, options: [a, b]}
  - {name: note, type: text}
  - {name: due, type: date}
  - {name: tags, type: multiselect, options: [x, y]}
  - {name: rush, type: boolean, required: true}
  - {name: contact, type: email}
numbering: {prefix: O-}
---
kind: Template
name: repair
fields:
  - {name: amount, type: decimal}
  - {name: kind, type: select, options: [a, c]}
  - {name: serial, type: input}
numbering: {prefix: R-}
---
kind: Queue
name: main
templates: [order, repair]
steps:
  - {name: intake, group: sales}
  - {name: packing, group: stock}
"""

JOB_QUEUE = """
---
kind: Queue
name: jobs
templates: [job]
steps:
  - name: work
"""


def case(name: str, text: str, *expected: str) -> object:
    return pytest.param(text, list(expected), id=name)


def rule_when(condition: str, templates: str = "templates: [order]\n") -> str:
    """A rule whose condition (one flow-style line) is on line 6, column 3 (line 5 unscoped)."""
    return f"kind: Rule\nname: r\non: [created]\n{templates}when:\n  {condition}\ndo:\n  - comment: {{text: hi}}\n"


def macro(*actions: str, templates: str = "") -> str:
    """A macro whose first action is on line 4 (line 5 with ``templates``)."""
    return "kind: Macro\nname: m\n" + templates + "actions:\n" + "".join(f"  - {a}\n" for a in actions)


CONTEXT = [
    case("defined-twice", "kind: Group\nname: sales\n",
         "x.yaml:2:7: error: Group `sales` is defined twice; the first is at base.yaml:2:7"),
    case("unknown-did-you-mean", "kind: Role\nname: clerk\npermissions: [admin]\ngroups: [sale]\n",
         "x.yaml:4:10: error: unknown group `sale`; did you mean `sales`?"),
    case("unknown-lists-known", "kind: Role\nname: clerk\npermissions: [admin]\ngroups: [zzz]\n",
         "x.yaml:4:10: error: unknown group `zzz`; known: sales, stock"),
    case("unknown-none-defined", "kind: Portal\nname: web\nforms: [zzz]\n",
         "x.yaml:3:9: error: unknown form `zzz`; the workspace defines no Form"),
    case("group-member-twice", "kind: Group\nname: desk\nmembers: [ann, bob, ann]\n",
         "x.yaml:3:21: error: member `ann` appears twice (first at x.yaml:3:11)"),
    case("role-permission-twice", "kind: Role\nname: clerk\npermissions: [admin, admin]\n",
         "x.yaml:3:22: error: permission `admin` appears twice (first at x.yaml:3:15)"),
]

FIELDS = [
    case("field-core-name", "kind: Field\nname: title\ntype: input\n",
         "x.yaml:2:7: error: `title` is a built-in attribute of every work order; choose another name "
         "(e.g. `title_ref`)"),
    case("field-sql-word", "kind: Field\nname: select\ntype: input\n",
         "x.yaml:2:7: error: `select` is a reserved word in SQL; choose another name (e.g. `select_value`)"),
    case("field-renamed-from-itself", "kind: Field\nname: code\ntype: input\nrenamed_from: code\n",
         "x.yaml:4:15: error: `renamed_from` names the field itself"),
    case("field-option-for-other-type", "kind: Field\nname: code\ntype: text\nmax_length: 10\n",
         "x.yaml:4:1: error: `max_length` applies to input fields, not to text field `code`"),
    case("field-option-twice", "kind: Field\nname: size\ntype: select\noptions: [s, m, s]\n",
         "x.yaml:4:17: error: the option `s` is listed twice"),
    case("field-select-without-options", "kind: Field\nname: size\ntype: select\n",
         "x.yaml:3:7: error: select field `size` needs `options`"),
    case("field-catastrophic-pattern", "kind: Field\nname: code\ntype: input\npattern: '(a+)+$'\n",
         "x.yaml:4:10: error: the regular expression repeats a group that itself repeats (like (a+)+), "
         "which can take exponential time; simplify it"),
    case("field-invalid-pattern", "kind: Field\nname: code\ntype: input\npattern: '[a-'\n",
         "x.yaml:4:10: error: the regular expression is invalid: unterminated character set at position 0"),
    case("field-min-above-max", "kind: Field\nname: qty\ntype: number\nmin: 10\nmax: 1\n",
         "x.yaml:4:6: error: `min` (10) is larger than `max` (1)"),
    case("field-places-above-digits", "kind: Field\nname: price\ntype: decimal\ndigits: 4\nplaces: 6\n",
         "x.yaml:5:9: error: `places` (6) cannot exceed `digits` (4)"),
    case("field-reference-without-template", "kind: Field\nname: parent\ntype: reference\n",
         "x.yaml:3:7: error: reference field `parent` needs `reference: <template>`"),
    case("field-reference-unknown", "kind: Field\nname: parent\ntype: reference\nreference: ordr\n",
         "x.yaml:4:12: error: unknown template `ordr`; did you mean `order`?"),
    case("field-default-invalid", "kind: Field\nname: qty\ntype: number\nmax: 5\ndefault: 9\n",
         "x.yaml:5:10: error: the default of `qty` is not valid: 9 is more than the field's maximum 5"),
]

TEMPLATES = [
    case("template-unknown-shared-field", "kind: Template\nname: job\nfields: [colour]\n" + JOB_QUEUE,
         "x.yaml:3:10: error: unknown shared field `colour`; the workspace defines no Field"),
    case("template-field-twice",
         "kind: Template\nname: job\nfields:\n  - {name: colour, type: text}\n  - {name: colour, type: input}\n"
         + JOB_QUEUE,
         "x.yaml:5:5: error: template `job` has two fields named `colour` (first at x.yaml:4:5)"),
    case("template-renamed-field-still-exists",
         "kind: Template\nname: job\nfields:\n  - {name: colour, type: text}\n"
         "  - {name: tint, type: text, renamed_from: colour}\n" + JOB_QUEUE,
         "x.yaml:5:5: error: `tint` is renamed from `colour`, but that field still exists"),
    case("template-purge-existing-field",
         "kind: Template\nname: job\nfields:\n  - {name: colour, type: text}\npurge: [colour]\n" + JOB_QUEUE,
         "x.yaml:5:9: error: `colour` is still a field of `job`; only removed fields can be purged"),
    case("template-unknown-groups", "kind: Template\nname: job\nteam: sale\nrange: [stok]\n" + JOB_QUEUE,
         "x.yaml:3:7: error: unknown group `sale`; did you mean `sales`?",
         "x.yaml:4:9: error: unknown group `stok`; did you mean `stock`?"),
    case("template-unknown-end-template", "kind: Template\nname: job\nend_action: new_work_order\n"
         "end_template: ordr\n" + JOB_QUEUE,
         "x.yaml:4:15: error: unknown template `ordr`; did you mean `order`?"),
    case("template-end-template-unused", "kind: Template\nname: job\nend_template: order\n" + JOB_QUEUE,
         "x.yaml:3:15: warning: `end_template` is used only with end_action: new_work_order"),
    case("template-without-queue", "kind: Template\nname: job\n",
         "x.yaml:2:7: error: no queue serves template `job`; list it in a Queue's `templates`"),
    case("template-prefix-of-another", "kind: Template\nname: job\nnumbering: {prefix: R-}\n" + JOB_QUEUE,
         "x.yaml:3:21: error: template `job` numbers its work orders with the same prefix `R-` as template "
         "`repair`: their numbers would be the same; give each template a prefix of its own "
         "(`numbering: {prefix: ...}`)"),
    case("template-prefix-another-and-digits", "kind: Template\nname: job\nnumbering: {prefix: R-2}\n" + JOB_QUEUE,
         "x.yaml:3:21: error: template `job` numbers its work orders with prefix `R-2`, template `repair`'s "
         "`R-` and digits: their numbers would be the same; give each template a prefix of its own "
         "(`numbering: {prefix: ...}`)"),
    case("template-default-prefix-twice",
         "kind: Template\nname: job\n" + JOB_QUEUE + "---\nkind: Template\nname: chore\n"
         "---\nkind: Queue\nname: chores\ntemplates: [chore]\nsteps:\n  - name: work\n",
         "x.yaml:12:7: error: template `chore` numbers its work orders with no prefix, as template `job` "
         "does: their numbers would be the same; give each template a prefix of its own "
         "(`numbering: {prefix: ...}`)"),
    case("template-prefixes-apart", "kind: Template\nname: job\nnumbering: {prefix: R-A}\n" + JOB_QUEUE
         + "---\nkind: Template\nname: chore\nnumbering: {prefix: RE-}\n"
         "---\nkind: Queue\nname: chores\ntemplates: [chore]\nsteps:\n  - name: work\n"),
]


def queue(steps: str, templates: str = "[repair]") -> str:
    """A queue whose steps start on line 5."""
    return f"kind: Queue\nname: q\ntemplates: {templates}\nsteps:\n{steps}"


QUEUES = [
    case("step-reserved-name", queue("  - name: complete\n"),
         "x.yaml:5:11: error: `complete` is reserved; give the step another name"),
    case("step-unknown-group", queue("  - {name: a, group: sale}\n"),
         "x.yaml:5:22: error: unknown group `sale`; did you mean `sales`?"),
    case("step-group-outside-range",
         "kind: Group\nname: desk\n---\n" + queue("  - {name: a, group: desk}\n", "[order]"),
         "x.yaml:8:22: error: group `desk` is not in the range of template `order` (sales, stock)"),
    case("step-action-twice", queue("  - name: a\n    actions:\n      - name: check\n      - name: check\n"),
         "x.yaml:8:9: error: action `check` appears twice (first at x.yaml:7:9)"),
    case("step-empty-next", queue("  - name: a\n    next: []\n"),
         "x.yaml:6:11: error: step `a` has an empty `next`; name a step or complete"),
    case("step-next-itself", queue("  - {name: a, next: a}\n"),
         "x.yaml:5:21: error: step `a` cannot be its own next step"),
    case("step-next-unknown", queue("  - {name: a, next: [b]}\n"),
         "x.yaml:5:22: error: unknown step `b` in queue `q`; known: a, complete"),
    case("step-return-previous-from-first", queue("  - name: a\n    returns: [previous]\n"),
         "x.yaml:6:15: error: the first step has no previous step to return to"),
    case("step-return-supervisor-without-group",
         queue("  - name: a\n  - name: b\n    returns: [supervisor]\n"),
         "x.yaml:7:15: error: step `b` has no group, so it has no supervisor to return to"),
    case("step-return-supervisor-missing",
         queue("  - name: a\n  - name: b\n    group: stock\n    returns: [supervisor]\n"),
         "x.yaml:8:15: error: group `stock` has no supervisor to return to"),
    case("step-return-unknown", queue("  - name: a\n  - name: b\n    returns: [c]\n"),
         "x.yaml:7:15: error: unknown return path `c`; "
         "known: a, previous, supervisor"),
    case("step-action-with-without-plugin",
         queue("  - name: a\n    actions:\n      - name: bill\n        with: {amount: 3}\n"),
         "x.yaml:8:9: error: action `bill` has `with` parameters but no `plugin`"),
    case("step-unreachable", queue("  - {name: a, next: complete}\n  - {name: b}\n"),
         "x.yaml:6:12: error: step `b` can never be reached: no step's `next` leads to it"),
    case("step-dead-end", queue("  - {name: a}\n  - {name: b, next: [a]}\n"),
         "x.yaml:5:12: error: from step `a` a work order can never reach complete "
         "(its `next` steps only lead back: b)",
         "x.yaml:6:12: error: from step `b` a work order can never reach complete "
         "(its `next` steps only lead back: a)"),
    case("queue-templates", queue("  - name: a\n", "[ordr, repair, repair]"),
         "x.yaml:3:13: error: unknown template `ordr`; did you mean `order`?",
         "x.yaml:3:27: error: template `repair` appears twice (first at x.yaml:3:19)"),
    case("queue-step-twice", queue("  - {name: a, next: complete}\n  - {name: a}\n"),
         "x.yaml:6:12: error: queue `q` has two steps named `a`"),
    case("queue-step-twice-default-next", queue("  - name: a\n  - name: a\n"),
         "x.yaml:6:11: error: queue `q` has two steps named `a`"),
    case("queue-retired-steps", queue("  - name: a\nretired_steps:\n  a: complete\n  old: gone\n"),
         "x.yaml:7:3: error: `a` is still a step of queue `q`; only removed steps can be retired",
         "x.yaml:8:8: error: unknown step `gone` in queue `q`; known: a, complete"),
]

ACTIONS = [
    case("action-two-keys", macro("{comment: {text: hi}, set_priority: high}"),
         "x.yaml:4:5: error: each action needs exactly one of: set_field, set_priority, set_status, assign, "
         "route, comment, email, create_work_order, apply_macro, call; found set_priority, comment"),
    case("action-no-key", macro("{}"),
         "x.yaml:4:5: error: each action needs exactly one of: set_field, set_priority, set_status, assign, "
         "route, comment, email, create_work_order, apply_macro, call; found none"),
    case("assign-user-and-group", macro("assign: {user: ann, group: sales}"),
         "x.yaml:4:13: error: `assign` needs either `user` or `group`"),
    case("assign-unknown-group", macro("assign: {group: sale}"),
         "x.yaml:4:21: error: unknown group `sale`; did you mean `sales`?"),
    case("route-unknown-queue", macro("route: {queue: mian}"),
         "x.yaml:4:20: error: unknown queue `mian`; did you mean `main`?"),
    case("route-unknown-customer", macro("route: {customer: acme}"),
         "x.yaml:4:23: error: unknown customer `acme`; the workspace defines no Customer"),
    case("route-project-without-customer", macro("route: {project: web}"),
         "x.yaml:4:22: error: `project` needs `customer` beside it"),
    case("route-unknown-project",
         "kind: Customer\nname: acme\nprojects:\n  - name: web\n---\n" + macro("route: {customer: acme, project: app}"),
         "x.yaml:9:38: error: unknown project `app` of customer `acme`; known: web"),
    case("route-unknown-step-in-queue", macro("route: {queue: main, step: pack}"),
         "x.yaml:4:32: error: unknown step `pack` in queue `main`; did you mean `packing`?"),
    case("route-unknown-step", macro("route: {step: pack}"),
         "x.yaml:4:19: error: unknown step `pack` in the queues of macro `m`; did you mean `packing`?"),
    case("route-empty", macro("route: {}"),
         "x.yaml:4:12: error: `route` needs a queue, step, customer or project"),
    case("create-unknown-template", macro("create_work_order: {template: ordr}"),
         "x.yaml:4:35: error: unknown template `ordr`; did you mean `order`?"),
    case("apply-unknown-macro", macro("apply_macro: mm"),
         "x.yaml:4:18: error: unknown macro `mm`; did you mean `m`?"),
    case("macro-applies-itself", macro("apply_macro: m"),
         "x.yaml:4:18: error: macro `m` cannot apply itself"),
    case("macro-unknown-template", macro("comment: {text: hi}", templates="templates: [ordr]\n"),
         "x.yaml:3:13: error: unknown template `ordr`; did you mean `order`?"),
]

RULES = [
    case("rule-references", "kind: Rule\nname: r\non: [schedule]\ntemplates: [ordr]\nqueues: [mian]\n"
         "do:\n  - set_priority: high\n",
         "x.yaml:3:6: error: a schedule trigger needs `schedule:`, e.g. {event: schedule, schedule: every day 08:00}",
         "x.yaml:4:13: error: unknown template `ordr`; did you mean `order`?",
         "x.yaml:5:10: error: unknown queue `mian`; did you mean `main`?"),
    case("rule-triggers",
         "kind: Rule\nname: r\non:\n  - event: schedule\n  - {event: created, schedule: every 2h}\n"
         "  - {event: created, field: kind}\n  - {event: created, step: intake}\ndo:\n  - comment: {text: hi}\n",
         "x.yaml:4:5: error: a schedule trigger needs `schedule:`",
         "x.yaml:5:32: error: `schedule` is only for event: schedule",
         "x.yaml:6:29: error: `field` narrows only event: field_changed",
         "x.yaml:7:28: error: `step` narrows only step_entered and step_left"),
]

CALENDARS_AND_SLAS = [
    case("calendar-problems",
         "kind: Calendar\nname: office\ntimezone: Mars/Base\nhours:\n"
         "  mon: ['10:00-09:00', '08:00-12:00', '11:00-13:00']\n"
         "holidays:\n  - date: '2024-02-30'\n  - date: '2024-12-25'\n  - date: '2024-12-25'\n",
         "x.yaml:3:11: error: unknown timezone `Mars/Base`; use an IANA name such as Europe/Berlin or UTC",
         "x.yaml:5:9: error: `10:00-09:00` ends before it starts",
         "x.yaml:5:39: error: `11:00-13:00` overlaps `08:00-12:00`",
         "x.yaml:7:11: error: `2024-02-30` is not a real date",
         "x.yaml:9:11: error: the holiday 2024-12-25 is listed twice"),
    case("calendar-without-hours", "kind: Calendar\nname: office\ntimezone: UTC\nhours: {}\n",
         "x.yaml:4:8: error: the calendar has no working hours on any day"),
    case("sla-references", "kind: SLA\nname: s\ncalendar: ofice\ntemplates: [ordr]\ntargets: {}\n",
         "x.yaml:3:11: error: unknown calendar `ofice`; the workspace defines no Calendar",
         "x.yaml:4:13: error: unknown template `ordr`; did you mean `order`?",
         "x.yaml:5:10: error: the SLA sets no target"),
    case("sla-step-target-and-warning",
         "kind: SLA\nname: s\ntemplates: [order]\ntargets:\n  steps:\n    pack: 4h\n"
         "on_warning:\n  - comment: {text: soon}\n",
         "x.yaml:6:5: error: unknown step `pack` in the queues of the SLA's templates; did you mean `packing`?",
         "x.yaml:7:1: error: `on_warning` needs `warn_before`"),
]

FORMS_AND_PORTALS = [
    case("form-references",
         "kind: Form\nname: f\ntemplate: ordr\nqueue: mian\nnotify: [sale]\npages:\n  - name: p\n"
         "    fields: [amount]\n",
         "x.yaml:3:11: error: unknown template `ordr`; did you mean `order`?",
         "x.yaml:4:8: error: unknown queue `mian`; did you mean `main`?",
         "x.yaml:5:10: error: unknown group `sale`; did you mean `sales`?"),
    case("form-queue-not-serving-template",
         queue("  - name: a\n").replace("name: q", "name: other") + "---\n"
         "kind: Form\nname: f\ntemplate: order\nqueue: other\npages:\n  - name: p\n    fields: [amount, rush]\n",
         "x.yaml:10:8: error: queue `other` does not serve template `order`"),
    case("form-pages-and-fields",
         "kind: Form\nname: f\ntemplate: order\npages:\n  - name: p\n    fields: [amount, amont, amount]\n"
         "  - name: p\n    fields: [note]\n",
         "x.yaml:5:3: error: required field `rush` of template `order` is on no page, "
         "so the form could never be submitted",
         "x.yaml:6:22: error: unknown field `amont` in template `order`; did you mean `amount`?",
         "x.yaml:6:29: error: field `amount` is asked twice (first at x.yaml:6:14)",
         "x.yaml:7:5: error: page `p` appears twice (first at x.yaml:5:5)"),
    case("portal-problems", "kind: Portal\nname: web\ntemplates: [ordr]\nvisibility: [own, own]\n",
         "x.yaml:3:13: error: unknown template `ordr`; did you mean `order`?",
         "x.yaml:4:19: error: visibility `own` appears twice (first at x.yaml:4:14)"),
    case("customer-project-twice", "kind: Customer\nname: acme\nprojects:\n  - name: web\n  - name: web\n",
         "x.yaml:5:5: error: project `web` appears twice (first at x.yaml:4:5)"),
]

OPERATORS = "equals, not_equals, in, not_in, gt, gte, lt, lte, contains, matches, empty, changed, older_than, newer_than"

CONDITIONS = [
    case("condition-no-operator", rule_when("{field: amount}"),
         f"x.yaml:6:3: error: the test of `amount` needs exactly one operator: {OPERATORS}; found none"),
    case("condition-two-operators", rule_when("{field: amount, gt: 1, lt: 5}"),
         f"x.yaml:6:3: error: the test of `amount` needs exactly one operator: {OPERATORS}; found gt, lt"),
    case("condition-two-kinds", rule_when("{any: [{field: rush, equals: true}], field: amount}"),
         "x.yaml:6:3: error: each condition needs exactly one of: all, any, not, field; found any, field"),
    case("condition-empty", rule_when("{}"),
         "x.yaml:6:3: error: each condition needs exactly one of: all, any, not, field; found none"),
    case("condition-empty-all", rule_when("{all: []}"),
         "x.yaml:6:9: error: `all` needs at least one condition"),
    case("condition-unknown-field", rule_when("{field: amont, gt: 1}"),
         "x.yaml:6:11: error: unknown field `amont` in template `order`; did you mean `amount`?"),
    case("condition-unknown-field-any-template", rule_when("{field: amont, gt: 1}", templates=""),
         "x.yaml:5:11: error: unknown field `amont` in any template; did you mean `amount`?"),
    case("condition-field-missing-from-a-template",
         rule_when("{field: note, empty: true}", templates="templates: [order, repair]\n"),
         "x.yaml:6:11: error: `note` is not a field of template `repair`, which rule `r` applies to"),
    case("condition-field-typed-differently", rule_when("{field: amount, gt: 1}", templates=""),
         "x.yaml:5:11: error: `amount` is a number field in template `order`, but a decimal field in template "
         "`repair`; rule `r` cannot treat it as both"),
    case("condition-ordering-on-select", rule_when("{field: kind, gt: a}"),
         "x.yaml:6:21: error: `gt` compares numbers, decimals, dates and times, but `kind` is a select field"),
    case("condition-matches-on-number", rule_when("{field: amount, matches: '1'}"),
         "x.yaml:6:28: error: `matches` tests text, but `amount` is a number field"),
    case("condition-catastrophic-regex", rule_when("{field: note, matches: '(a*)*b'}"),
         "x.yaml:6:26: error: the regular expression repeats a group that itself repeats (like (a+)+), "
         "which can take exponential time; simplify it"),
    case("condition-contains-on-boolean", rule_when("{field: rush, contains: x}"),
         "x.yaml:6:27: error: `contains` tests text and multiselect fields, but `rush` is a boolean field"),
    case("condition-contains-empty-text", rule_when("{field: note, contains: ''}"),
         "x.yaml:6:27: error: `contains` on text field `note` needs a text to look for"),
    case("condition-contains-not-an-option", rule_when("{field: tags, contains: z}"),
         'x.yaml:6:27: error: the value does not suit `tags`: "z" is not an option of `tags` (options: x, y)'),
    case("condition-in-empty", rule_when("{field: kind, in: []}"),
         "x.yaml:6:21: error: `in` needs at least one value"),
    case("condition-in-item", rule_when("{field: kind, not_in: [a, z]}"),
         'x.yaml:6:29: error: the value does not suit `kind`: "z" is not an option of `kind` (options: a, b)'),
    case("condition-equals-wrong-type", rule_when("{field: amount, equals: lots}"),
         'x.yaml:6:27: error: the value does not suit `amount`: expected a whole number, found "lots"'),
    case("condition-priority-value", rule_when("{field: priority, equals: hi}"),
         'x.yaml:6:29: error: the value does not suit `priority`: "hi" is not an option of `priority` '
         "(options: low, normal, high, urgent)"),
    case("condition-unknown-queue", rule_when("{field: queue, equals: mian}"),
         "x.yaml:6:26: error: unknown queue `mian`; did you mean `main`?"),
    case("condition-unknown-step", rule_when("{field: step, in: [intake, pack]}"),
         "x.yaml:6:30: error: unknown step `pack` in the queues of rule `r`; did you mean `packing`?"),
    case("condition-unknown-project", rule_when("{field: project, equals: web}"),
         "x.yaml:6:28: error: unknown project `web` of any customer; the workspace defines no project"),
    case("condition-nested-location",
         "kind: Rule\nname: r\non: [created]\ntemplates: [order]\nwhen:\n  all:\n    - {field: rush, equals: true}\n"
         "    - not:\n        any:\n          - {field: due, gte: tomorrow}\ndo:\n  - comment: {text: hi}\n",
         'x.yaml:10:31: error: the value does not suit `due`: expected a date as YYYY-MM-DD, found "tomorrow"'),
    case("condition-changed-outside-rule",
         "kind: SLA\nname: s\nwhen: {field: rush, changed: true}\ntargets: {resolution: 1d}\n",
         "x.yaml:3:21: error: `changed` tests what an event changed, and SLA `s` is not run by an event"),
]

FIELD_ACTIONS = [
    case("set-field-core-attribute", macro("set_field: {field: priority, value: high}"),
         "x.yaml:4:24: error: `priority` is a built-in attribute, not a custom field; change it with `set_priority`"),
    case("set-field-read-only-attribute", macro("set_field: {field: title, value: x}"),
         "x.yaml:4:24: error: `title` is a built-in attribute and cannot be set"),
    case("set-field-unknown", macro("set_field: {field: amont, value: 1}", templates="templates: [order]\n"),
         "x.yaml:5:24: error: unknown field `amont` in template `order`; did you mean `amount`?"),
    case("set-field-value", macro("set_field: {field: amount, value: -1}", templates="templates: [order]\n"),
         "x.yaml:5:39: error: the value does not suit `amount`: -1 is less than the field's minimum 0"),
    case("set-field-clears-required", macro("set_field: {field: rush, value: null}"),
         "x.yaml:4:37: error: `rush` is required, so it cannot be cleared"),
    case("set-field-value-every-template", macro("set_field: {field: kind, value: c}"),
         'x.yaml:4:37: error: the value does not suit `kind`: "c" is not an option of `kind` (options: a, b)'),
    case("set-field-in-rule-and-sla",
         "kind: Rule\nname: r\non: [created]\ntemplates: [repair]\ndo:\n  - set_field: {field: note, value: x}\n"
         "---\nkind: SLA\nname: s\ntargets: {resolution: 1d}\nwarn_before: 1h\n"
         "on_warning:\n  - set_field: {field: serial, value: 7}\n",
         "x.yaml:6:24: error: unknown field `note` in template `repair`; known: amount, created_at, customer, "
         "group, kind, owner, priority, project, queue, sender, serial, status, step, template, title",
         "x.yaml:13:39: error: the value does not suit `serial`: expected text for input field `serial`, found 7"),
    case("create-work-order-fields",
         macro("create_work_order:\n      template: order\n      fields:\n        amont: 1\n        kind: z"),
         "x.yaml:7:9: error: unknown field `amont` in template `order`; did you mean `amount`?",
         'x.yaml:8:15: error: the value does not suit `kind`: "z" is not an option of `kind` (options: a, b)'),
]

FORM_CONDITIONS = [
    case("form-conditions",
         "kind: Form\nname: f\ntemplate: order\npages:\n  - name: one\n    fields:\n      - rush\n"
         "      - field: note\n        show_if: {field: amount, gt: 5}\n"
         "      - field: due\n        require_if: {field: tags, contains: x}\n"
         "      - field: kind\n        show_if: {field: kind, equals: a}\n"
         "      - field: contact\n        show_if: {field: priority, equals: high}\n"
         "  - name: two\n    fields: [amount]\n",
         "x.yaml:9:26: error: field `amount` is asked only on a later page (`two`); a condition can test "
         "answers from its own page and earlier ones",
         "x.yaml:11:29: error: field `tags` is asked on no page of form `f`, so it has no answer to test",
         "x.yaml:13:26: error: `show_if` of `kind` tests the field itself, so it could never be shown",
         "x.yaml:15:26: error: unknown field `priority` in template `order`; "
         "known: amount, contact, due, kind, note, rush, tags"),
]

CYCLES = [
    case("cycle-rule-triggers-itself",
         "kind: Rule\nname: bump\non:\n  - {event: field_changed, field: priority}\ndo:\n  - set_priority: high\n",
         "x.yaml:2:7: error: rule `bump` triggers itself: it changes `priority`, which its own trigger reacts to"),
    case("cycle-two-rules",
         "kind: Rule\nname: alpha\non: [{event: field_changed, field: note}]\ntemplates: [order]\n"
         "do:\n  - route: {queue: main, step: packing}\n---\n"
         "kind: Rule\nname: beta\non:\n  - {event: step_entered, step: packing}\ntemplates: [order]\n"
         "do:\n  - set_field: {field: note, value: packed}\n---\n"
         "kind: Rule\nname: gamma\non:\n  - {event: step_entered, step: intake}\ndo:\n  - comment: {text: hi}\n",
         "x.yaml:2:7: error: rules trigger each other in a cycle: `alpha` -> `beta` -> `alpha` "
         "(`alpha` moves the work order to step `packing`, which `beta` reacts to; "
         "`beta` changes `note`, which `alpha` reacts to)"),
    case("cycle-through-macro",
         "kind: Macro\nname: escalate\nactions:\n  - assign: {group: sales}\n---\n"
         "kind: Rule\nname: on_assign\non: [assigned]\ndo:\n  - apply_macro: escalate\n",
         "x.yaml:7:7: error: rule `on_assign` triggers itself: it applies macro `escalate`, which assigns the "
         "work order, which its own trigger reacts to"),
    case("cycle-created-work-order",
         "kind: Rule\nname: follow_up\non: [created]\ntemplates: [order]\n"
         "do:\n  - create_work_order: {template: order, fields: {rush: false}}\n",
         "x.yaml:2:7: error: rule `follow_up` triggers itself: it creates a work order of template `order`, "
         "which its own trigger reacts to"),
    case("no-cycle-between-disjoint-templates-or-disabled-rules",
         "kind: Rule\nname: a\non: [{event: field_changed, field: amount}]\ntemplates: [order]\n"
         "do:\n  - set_field: {field: kind, value: a}\n---\n"
         "kind: Rule\nname: b\non: [{event: field_changed, field: kind}]\ntemplates: [repair]\n"
         "do:\n  - set_field: {field: amount, value: 1}\n---\n"
         "kind: Rule\nname: off\nenabled: false\non: [comment_added]\ndo:\n  - comment: {text: again}\n"
         "---\nkind: Rule\nname: spawn\non: [created]\ntemplates: [order]\n"
         "do:\n  - create_work_order: {template: repair}\n"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    CONTEXT + FIELDS + TEMPLATES + QUEUES + ACTIONS + RULES + CALENDARS_AND_SLAS + FORMS_AND_PORTALS
    + CONDITIONS + FIELD_ACTIONS + FORM_CONDITIONS + CYCLES,
)
def test_diagnostics(tmp_path: Path, text: str, expected: list[str]) -> None:
    assert diagnostics_of(tmp_path, {"base.yaml": BASE, "x.yaml": text}) == expected


EVERY_KIND = {
    "people.yaml": """
        kind: Group
        name: sales
        supervisor: anna
        members: [anna, ben]
        ---
        kind: Group
        name: stock
        ---
        kind: Role
        name: clerk
        permissions: [order.create, order.edit]
        groups: [sales]
        ---
        kind: Customer
        name: acme
        projects:
          - name: web
    """,
    "order.yaml": """
        kind: Field
        name: region
        type: select
        label: Sales region
        options: [north, {value: south, label: {en: The south, de: Der Süden}}]
        ---
        kind: Template
        name: order
        range: [sales, stock]
        fields:
          - {name: customer_name, type: input, required: true}
          - region
          - {name: amount, type: number, min: 0}
          - {name: price, type: decimal}
          - {name: due, type: date}
          - {name: tags, type: multiselect, options: [gift, fragile]}
          - {name: rush, type: boolean, default: false}
          - {name: note, type: text}
        ---
        kind: Template
        name: repair
        label: Repair job
        end_action: new_work_order
        numbering: {prefix: RJ-}
        fields: [region, {name: serial, type: input, max_length: 20}]
        ---
        kind: Queue
        name: main
        templates: [order, repair]
        steps:
          - name: intake
            group: sales
            actions:
              - {name: check_stock}
              - {name: send_invoice, label: Send the invoice, plugin: invoice.generate, with: {copies: 2}}
          - {name: review, group: sales, next: [packing, intake], returns: [previous, supervisor]}
          - {name: packing, group: stock, returns: [intake]}
    """,
    "automation.yaml": """
        kind: Calendar
        name: office
        timezone: Europe/Berlin
        hours: {mon: ['08:00-12:00', '13:00-17:00'], fri: ['08:00-12:00']}
        holidays: [{date: '2024-12-25'}]
        ---
        kind: SLA
        name: standard
        calendar: office
        templates: [order]
        when: {all: [{field: amount, gte: 10}, {field: priority, in: [high, urgent]}]}
        targets: {first_response: 4h, resolution: 2d, steps: {packing: 1d}}
        warn_before: 1h
        on_warning: [{comment: {text: soon}}]
        on_breach: [{assign: {group: sales, method: least_open}}]
        ---
        kind: Macro
        name: gift
        templates: [order]
        actions:
          - set_field: {field: tags, value: [gift]}
          - set_field: {field: note, value: null}
        ---
        kind: Rule
        name: big_orders
        on: [created, {event: field_changed, field: amount}]
        templates: [order]
        when:
          any:
            - {field: amount, gt: 500}
            - {field: price, lte: 99.5}
            - {field: due, lt: 2030-01-01}
            - {field: created_at, gte: '2024-01-01T00:00'}
            - {field: tags, contains: fragile}
            - {field: note, contains: urgent}
            - {field: note, matches: '^(rush|asap)\\b'}
            - {field: region, not_in: [north]}
            - {field: rush, equals: true}
            - {field: customer_name, not_equals: test}
            - {field: owner, empty: true}
            - {field: amount, changed: true}
            - {field: step, equals: review}
            - {field: queue, equals: main}
            - {field: customer, equals: acme}
            - {field: project, equals: web}
            - {field: sender, equals: orders@acme.example}
            - not: {field: status, equals: on_hold}
        do:
          - set_priority: high
          - apply_macro: gift
          - route: {queue: main, step: review, customer: acme, project: web}
          - email: {to: [owner], subject: 'Big order {{ number }}', body: Have a look.}
        ---
        kind: Rule
        name: any_template
        on: [{event: step_entered, step: packing}]
        when: {field: region, equals: south}
        do:
          - set_field: {field: region, value: north}
          - create_work_order: {template: repair, fields: {serial: SN-1, region: south}}
          - call: {action: invoice.generate, with: {draft: true}}
        ---
        kind: Rule
        name: nightly
        on: [{event: schedule, schedule: every day 08:00}]
        queues: [main]
        when: {field: region, empty: false}
        do:
          - set_status: waiting
    """,
    "portal.yaml": """
        kind: Form
        name: order_form
        template: order
        queue: main
        notify: [sales]
        pages:
          - name: who
            fields:
              - customer_name
              - rush
              - field: note
                show_if: {field: rush, equals: true}
          - name: what
            fields:
              - amount
              - field: due
                require_if: {any: [{field: amount, gt: 100}, {field: customer_name, matches: '^VIP'}]}
        ---
        kind: Portal
        name: web
        forms: [order_form]
        templates: [order]
        visibility: [own, organisation]
    """,
}


def test_every_kind_links(tmp_path: Path) -> None:
    workspace = linked(tmp_path, EVERY_KIND)

    assert workspace.settings.name == "t"
    assert len(workspace.fingerprint) == 64
    assert set(workspace.groups) == {"sales", "stock"}
    assert set(workspace.roles) == {"clerk"}
    assert set(workspace.customers) == {"acme"}
    assert set(workspace.calendars) == {"office"}
    assert set(workspace.slas) == {"standard"}
    assert set(workspace.macros) == {"gift"}
    assert set(workspace.rules) == {"big_orders", "any_template", "nightly"}
    assert set(workspace.forms) == {"order_form"}
    assert set(workspace.portals) == {"web"}

    order = workspace.templates["order"]
    assert order.label == {"en": "Order"}
    assert order.end_template == "order"
    assert order.queues == ("main",)
    assert [f.name for f in order.fields] == [
        "customer_name", "region", "amount", "price", "due", "tags", "rush", "note"
    ]
    name = order.fields[0]
    assert (name.label, name.max_length, name.required) == ({"en": "Customer name"}, 255, True)
    assert (name.location.path, name.location.line) == ("order.yaml", 11)
    price = order.field("price")
    assert price is not None and (price.digits, price.places) == (12, 2)

    repair = workspace.templates["repair"]
    assert repair.label == {"en": "Repair job"}
    assert repair.end_action == "new_work_order" and repair.end_template == "repair"
    region = repair.field("region")
    assert region == order.field("region")  # the shared field, merged into both
    assert region is not None and region.label == {"en": "Sales region"}
    assert region.options == ("north", "south")
    assert region.option_labels == {"north": {"en": "north"}, "south": {"en": "The south", "de": "Der Süden"}}
    serial = repair.field("serial")
    assert serial is not None and serial.max_length == 20

    main = workspace.queues["main"]
    assert main.label == {"en": "Main"}
    assert main.step_names == ("intake", "review", "packing")
    intake, review, packing = main.steps
    assert intake.label == {"en": "Intake"}
    assert intake.next == ("review",)  # the following step
    assert review.next == ("packing", "intake")
    assert review.returns == ("previous", "supervisor")
    assert packing.next == ("complete",)  # after the last step
    assert packing.returns == ("intake",)
    check, invoice = intake.actions
    assert (check.label, check.plugin, check.skippable) == ({"en": "Check stock"}, None, True)
    assert (invoice.label, invoice.plugin, invoice.parameters) == (
        {"en": "Send the invoice"}, "invoice.generate", {"copies": 2}
    )


def test_warnings_do_not_stop_linking(tmp_path: Path) -> None:
    files = {"base.yaml": BASE, "x.yaml": "kind: Template\nname: job\nend_template: order\n" + JOB_QUEUE}
    assert diagnostics_of(tmp_path, files) == [
        "x.yaml:3:15: warning: `end_template` is used only with end_action: new_work_order"
    ]
