"""Comment templates: checked at `routecard check` with located errors, filled in the sandbox, used by staff only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.errors import Forbidden, Invalid
from tests.helpers_workspace import diagnostics_of, linked
from tests.runtime_helpers import ORDER, Env, make_env

from comms_helpers import mail_workspace

BASE = """\
    kind: Group
    name: desk
    members: [sue]
    ---
    kind: Template
    name: ticket
    label: Ticket
    fields:
      - {name: device, type: input, label: Device}
      - {name: serial, type: input, label: Serial}
    ---
    kind: Template
    name: order
    numbering: {prefix: O-}
    fields:
      - {name: device, type: input, label: Device}
    ---
    kind: Queue
    name: tickets
    templates: [ticket, order]
    steps:
      - name: work
        group: desk
    ---
    kind: CommentTemplate
    name: note
    templates: TEMPLATES
    text: "TEXT"
    """


def _defs(text: str, templates: str = "[]") -> dict[str, str]:
    return {"defs.yaml": BASE.replace("TEXT", text.replace('"', '\\"')).replace("TEMPLATES", templates)}


@pytest.mark.parametrize(("text", "templates", "message"), [
    ("Hi {{ serial }}", "[]", "unknown placeholder `serial`; known here: device, group, link, number"),
    ("Hi {{ serial }} {{ colour }}", "[ticket]", "unknown placeholder `colour`; known here: device, group,"),
    ("{{ ''.__class__.__mro__ }}", "[ticket]", "`.__mro__`: a template shows values by name"),
    ("{{ number|attr('format') }}", "[]", "the filter `attr` is not allowed"),
    ("{% for x in title %}{{ x }}{% endfor %}", "[]", "loops are not allowed in a template"),
    ("{{ number }", "[]", "the template cannot be read (its line 1): unexpected '}'"),
])
def test_bad_texts_are_located_errors(tmp_path: Path, text: str, templates: str, message: str) -> None:
    found = diagnostics_of(tmp_path, _defs(text, templates))
    assert len(found) == 1, found
    assert found[0].startswith("defs.yaml:28:7: error: ") and message in found[0], found


def test_unknown_templates_and_keys_are_located(tmp_path: Path) -> None:
    found = diagnostics_of(tmp_path, _defs("{{ number }}", "[tiket]"))
    assert found == ["defs.yaml:27:13: error: unknown template `tiket`; did you mean `ticket`?"], found
    files = _defs("{{ number }}")
    files["defs.yaml"] = files["defs.yaml"].rstrip(" ") + "    use: [chat]\n"
    assert any("defs.yaml:29:" in d and "chat" in d for d in diagnostics_of(tmp_path / "b", files))


def test_a_field_every_template_has_may_be_used(tmp_path: Path) -> None:
    workspace = linked(tmp_path, _defs("{{ device|upper }} on {{ number }} ({{ title|truncate(20) }}): {{ link }}"))
    assert list(workspace.comment_templates) == ["note"]
    assert diagnostics_of(tmp_path / "b", _defs("{{ serial }}", "[ticket]")) == []


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    made = await make_env(mail_workspace(tmp_path, None), database_url)
    try:
        yield made
    finally:
        await made.db.close()


async def test_a_template_fills_the_body_and_gives_the_default_visibility(env: Env) -> None:
    lukas = await env.actor("lukas.maier")
    order = await env.rt.create(lukas, "customer_order", {"title": "{{ 7*7 }} pots", "fields": {
        **ORDER, "invoice_email": "kunde@example.org", "carrier": "{{ 6*6 }} Post"}})
    number = str(order["number"])
    messages = env.rt.messages
    shipped = await messages.comment(lukas, number, "", template="parcel_shipped")
    assert shipped["client_viewable"] is True
    assert f"your order K0048213 ({number}) has left our warehouse today with {{{{ 6*6 }}}} Post." in shipped["body"]
    assert "Tracking code: follows by mail" in shipped["body"]  # an empty field: the template's default
    private = await messages.comment(lukas, number, "", template="parcel_shipped", client_viewable=False)
    assert private["client_viewable"] is False  # the agent's choice wins
    own = await messages.comment(lukas, number, "my own words", template="awaiting_payment")
    assert own["body"] == "my own words" and own["client_viewable"] is False
    filled = await messages.fill_template(lukas, number, "awaiting_payment", "follow_up")
    assert filled["body"] == f"Waiting for the payment of 99.90 EUR (invoice) before {number} moves on."
    event = [e for e in await env.rt.events(lukas, number) if e["kind"] == "comment_added"][0]
    assert event["after"]["template"] == "parcel_shipped"
    for name, kind in (("awaiting_payment", "reply"), ("nope", "comment"), ("parcel_shipped", "follow_up")):
        with pytest.raises(Invalid) as refused:
            await messages.fill_template(lukas, number, name, kind)
        assert refused.value.errors[0]["field"] == "template"
    customer = await env.customer("acme")
    await env.db.execute("UPDATE rc_work_order SET customer_id = {}", customer)
    kunde = await env.user("kunde", is_staff=False, customer_id=customer)
    before = await env.db.fetch("SELECT * FROM rc_message ORDER BY id")
    with pytest.raises(Forbidden):
        await messages.comment(kunde, number, "", template="parcel_shipped", client_viewable=True)
    with pytest.raises(Forbidden):
        await messages.fill_template(kunde, number, "parcel_shipped", "comment")
    assert await env.db.fetch("SELECT * FROM rc_message ORDER BY id") == before
