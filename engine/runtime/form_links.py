"""Send order link: staff mail a person a single-use link that resumes their unsent draft.

The link carries a random token; only its hash is stored, with an expiry, and using
it once spends it. It opens the draft only for the person it was sent to.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from ..comms.mail import compile_text
from ..errors import Invalid, NotFound, Refused
from .actors import Actor, token_hash
from .fields import as_utc
from .forms import Forms, loaded, text_of
from .state import now

LINK_HOURS = 72
"""How long a "send order link" token stays valid."""
RESUME = compile_text("""\
You started the form "{{ form }}" but have not sent it yet.

Continue where you left off (the link works once, until {{ until }}):
{{ link }}
""")


class FormLinks:
    """The "send order link" services of the order forms (``Forms``)."""

    def __init__(self, forms: Forms) -> None:
        self.forms = forms

    async def unsent(self, actor: Actor) -> list[dict[str, Any]]:
        """Drafts started but not sent, for staff who may send their links (newest first)."""
        self._require_linker(actor)
        rows = await self.forms.runtime.db.fetch(
            "SELECT d.key, d.form, d.updated_at, d.visited, u.login, u.email, c.label AS customer "
            "FROM rc_form_draft d LEFT JOIN rc_user u ON u.id = d.user_id LEFT JOIN rc_customer c "
            "ON c.id = d.customer_id WHERE d.submitted_at IS NULL AND d.user_id IS NOT NULL "
            "ORDER BY d.updated_at DESC, d.id DESC LIMIT 200")
        return [{"key": r["key"], "form": r["form"], "updated_at": r["updated_at"], "login": r["login"],
                 "email": r["email"], "customer": r["customer"], "pages_saved": len(loaded(r["visited"], []))}
                for r in rows if r["form"] in self.forms.runtime.workspace.forms]

    @staticmethod
    def _require_linker(actor: Actor) -> None:
        if not actor.is_staff:
            raise NotFound("no such page")
        actor.require("email.send")

    async def send_link(self, actor: Actor, key: Any) -> dict[str, Any]:
        """Mail the draft's person a single-use link resuming it; what was sent to whom and until when."""
        self._require_linker(actor)
        runtime = self.forms.runtime
        db = runtime.db
        async with db.transaction():
            rows = await db.fetch(
                "SELECT d.id, d.form, d.submitted_at, u.email FROM rc_form_draft d LEFT JOIN rc_user u "
                "ON u.id = d.user_id WHERE d.key = {} AND d.user_id IS NOT NULL", key if isinstance(key, str) else "")
            if not rows or rows[0]["form"] not in runtime.workspace.forms:
                raise NotFound("no such draft")
            row = rows[0]
            if row["submitted_at"] is not None:
                raise Refused("this form was already sent")
            if not row["email"]:
                raise Invalid("the person has no e-mail address", [{"field": "email", "message": "unknown"}])
            token = secrets.token_urlsafe(32)
            moment = now()
            until = moment + dt.timedelta(hours=LINK_HOURS)
            await db.execute(
                "INSERT INTO rc_resume_token (token_hash, draft_id, email, created_by, created_at, expires_at) "
                "VALUES ({}, {}, {}, {}, {}, {})", token_hash(token), row["id"], row["email"], actor.id, moment, until)
            form = runtime.workspace.forms[row["form"]]
            label = text_of(form.label, form.name, self.forms.language)
            link = f"{runtime.workspace.settings.base_url.rstrip('/')}/portal/resume/{token}"
            await self.forms.enqueue(f"resume:{token_hash(token)[:40]}", str(row["email"]), f"Continue your order: {label}",
                               RESUME.render(form=label, link=link, until=until.strftime("%Y-%m-%d %H:%M UTC")), None)
        return {"to": row["email"], "expires_at": until.isoformat()}

    async def resume(self, actor: Actor | None, token: Any) -> dict[str, Any]:
        """Spend a resume token: the draft it opens (``NotFound`` for unknown, used or expired tokens).

        The draft opens only for its own user: a link forwarded to somebody else, who
        signs in as themselves, opens nothing.
        """
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise NotFound("this link is not valid")
        db = self.forms.runtime.db
        async with db.transaction():
            rows = await db.fetch(
                "SELECT t.id, t.expires_at, t.used_at, d.key, d.user_id, d.submitted_at FROM rc_resume_token t "
                "JOIN rc_form_draft d ON d.id = t.draft_id WHERE t.token_hash = {}", token_hash(token))
            if not rows:
                raise NotFound("this link is not valid")
            row = rows[0]
            expires = as_utc(row["expires_at"])
            if row["used_at"] is not None or expires <= now() or row["submitted_at"] is not None:
                raise NotFound("this link was used already or has expired")
            if actor is None or row["user_id"] != actor.id:  # forwarded to somebody else: it opens nothing
                raise NotFound("this link is not valid")
            await db.execute("UPDATE rc_resume_token SET used_at = {} WHERE id = {} AND used_at IS NULL",
                             now(), row["id"])
        return await self.forms.get(actor, row["key"])
