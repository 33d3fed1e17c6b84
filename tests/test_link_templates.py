"""Mail and comment templates of rules, macros and SLAs are checked at `routecard check` (SECURITY E22)."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from engine.comms.mail import compile_text

from tests.helpers_workspace import diagnostics_of

BASE = """\
    kind: Group
    name: desk
    members: [sue]
    ---
    kind: Template
    name: ticket
    label: Ticket
    ---
    kind: Queue
    name: tickets
    templates: [ticket]
    steps:
      - name: work
        group: desk
        actions: [{name: done}]
    ---
    kind: Rule
    name: note
    on: [created]
    do:
      - comment:
          text: "TEXT"
    """


@pytest.mark.parametrize(("text", "message"), [
    ("{{ ''.__class__.__mro__ }}", "`.__mro__`: a template shows values by name"),
    ("{{ '{0.__class__}'.format(number) }}", "calls are not allowed in a template"),
    ("{{ number|attr('format') }}", "the filter `attr` is not allowed"),
    ("{% for x in range(9) %}{{ x }}{% endfor %}", "calls are not allowed in a template"),
    ("{% for x in title %}{{ x }}{% endfor %}", "loops are not allowed in a template"),
    ("{{ 9**9**9 }}", "`**` is not allowed in a template"),
    ("{{ fields['secret'] }}", "it cannot index into them"),
    ("{% include 'other' %}", "a template cannot include another"),
    ("{{ number }", "the template cannot be read (its line 1): unexpected '}'"),
])
def test_unsafe_or_broken_templates_are_located_errors(tmp_path: Path, text: str, message: str) -> None:
    found = diagnostics_of(tmp_path, {"defs.yaml": BASE.replace("TEXT", text.replace('"', '\\"'))})
    assert len(found) == 1, found
    assert found[0].startswith("defs.yaml:22:13: error: ") and message in found[0], found


def test_plain_placeholders_and_simple_filters_pass(tmp_path: Path) -> None:
    text = "Order {{ number|upper }} for {{ customer|default('nobody') }}: {{ title|truncate(40) }}"
    assert diagnostics_of(tmp_path, {"defs.yaml": BASE.replace("TEXT", text)}) == []


def test_the_sandbox_still_refuses_what_check_would() -> None:
    """A second wall: were such a template to reach the runtime, the sandbox refuses to run it."""
    with pytest.raises(SecurityError):
        compile_text("{{ ''.__class__.__mro__[1].__subclasses__() }}").render({})
    with pytest.raises(SecurityError):
        compile_text("{{ number|attr('__class__') }}").render({"number": "T-1"})
