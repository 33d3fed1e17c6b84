"""The engine's own tables, shared by every workspace.

Work orders live in ``rc_work_order`` (indexed for the list screens and sweeps);
each template's custom fields live in its extension table, joined 1:1 by
``work_order_id``. Audit events, messages and attachments are never deleted with
their work order (foreign keys ``ON DELETE RESTRICT``).
"""

from __future__ import annotations

from .spec import ColumnSpec as C
from .spec import IndexSpec as I
from .spec import TableSpec as T


def _now(name: str, nullable: bool = False) -> C:
    return C(name=name, type="timestamptz", nullable=nullable)


CORE_TABLES: tuple[T, ...] = (
    T(name="rc_customer", columns=(
        C(name="name", type="varchar(40)", nullable=False, unique=True, default=""),
        C(name="label", type="varchar(200)", nullable=False, default=""),
        C(name="hourly_rate", type="numeric(11,2)"),
        C(name="email_domains", type="json"),
        _now("created_at", nullable=True),
    )),
    T(name="rc_project", columns=(
        C(name="customer_id", type="bigint", nullable=False, references="rc_customer", default=0),
        C(name="name", type="varchar(40)", nullable=False, default=""),
        C(name="label", type="varchar(200)", nullable=False, default=""),
        C(name="hourly_rate", type="numeric(11,2)"),
        _now("archived_at", nullable=True),
    ), indexes=(I(name="rc_project_customer_name", columns=("customer_id", "name"), unique=True),)),
    T(name="rc_user", columns=(
        C(name="login", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="name", type="varchar(200)", nullable=False, default=""),
        C(name="email", type="varchar(320)"),
        C(name="password_hash", type="varchar(255)"),
        C(name="is_active", type="boolean", nullable=False, default=True),
        C(name="is_staff", type="boolean", nullable=False, default=True),
        C(name="customer_id", type="bigint", references="rc_customer"),
        C(name="language", type="varchar(10)"),
        _now("created_at", nullable=True),
    )),
    T(name="rc_user_role", columns=(
        C(name="user_id", type="bigint", nullable=False, references="rc_user", on_delete="cascade", default=0),
        C(name="role", type="varchar(40)", nullable=False, default=""),
    ), indexes=(I(name="rc_user_role_unique", columns=("user_id", "role"), unique=True),)),
    T(name="rc_group", columns=(
        C(name="name", type="varchar(40)", nullable=False, unique=True, default=""),
        C(name="supervisor_id", type="bigint", references="rc_user"),
    )),
    T(name="rc_group_member", columns=(
        C(name="group_id", type="bigint", nullable=False, references="rc_group", on_delete="cascade", default=0),
        C(name="user_id", type="bigint", nullable=False, references="rc_user", on_delete="cascade", default=0),
    ), indexes=(I(name="rc_group_member_unique", columns=("group_id", "user_id"), unique=True),)),
    T(name="rc_work_order", columns=(
        C(name="number", type="varchar(40)", nullable=False, unique=True, default=""),
        C(name="template", type="varchar(40)", nullable=False, default=""),
        C(name="queue", type="varchar(40)", nullable=False, default=""),
        C(name="step", type="varchar(40)", nullable=False, default=""),
        C(name="status", type="varchar(20)", nullable=False, default="open"),
        C(name="priority", type="varchar(10)", nullable=False, default="normal"),
        C(name="title", type="varchar(300)", nullable=False, default=""),
        C(name="owner_id", type="bigint", references="rc_user"),
        C(name="group_name", type="varchar(40)"),
        C(name="customer_id", type="bigint", references="rc_customer"),
        C(name="project_id", type="bigint", references="rc_project"),
        C(name="created_by", type="bigint", references="rc_user"),
        _now("created_at"),
        _now("updated_at"),
        _now("requested_at", nullable=True),
        _now("planned_at", nullable=True),
        _now("completed_at", nullable=True),
        _now("cancelled_at", nullable=True),
        C(name="version", type="integer", nullable=False, default=1),
        C(name="definition_version", type="varchar(64)", nullable=False, default=""),
        C(name="path", type="json"),
        C(name="sender", type="varchar(320)"),
        # the SLA clock (engine/automation/sla.py): the nearest target and when the sweep looks next
        C(name="sla_name", type="varchar(40)"),
        C(name="sla_state", type="varchar(20)"),
        C(name="sla_target", type="varchar(60)"),
        _now("sla_due_at", nullable=True),
        _now("sla_warn_at", nullable=True),
        _now("sla_next_at", nullable=True),
        _now("sla_paused_at", nullable=True),
        C(name="sla_clock", type="json"),
    ), indexes=(
        I(name="rc_work_order_sla_sweep", columns=("sla_state", "sla_next_at")),
        I(name="rc_work_order_queue_step", columns=("queue", "step", "created_at")),
        I(name="rc_work_order_status", columns=("status", "created_at")),
        # open work per queue and step (the Order Manager's counts) and a step's list of it
        I(name="rc_work_order_status_step", columns=("status", "queue", "step", "created_at")),
        I(name="rc_work_order_owner", columns=("owner_id", "status")),
        I(name="rc_work_order_group", columns=("group_name", "status")),
        I(name="rc_work_order_template", columns=("template", "created_at")),
        I(name="rc_work_order_customer", columns=("customer_id", "created_at")),
    )),
    T(name="rc_step_action", columns=(
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="step", type="varchar(40)", nullable=False, default=""),
        C(name="action", type="varchar(40)", nullable=False, default=""),
        C(name="round", type="integer", nullable=False, default=1),
        C(name="state", type="varchar(20)", nullable=False, default="pending"),
        C(name="processed_by", type="bigint", references="rc_user"),
        _now("processed_at", nullable=True),
        C(name="result", type="json"),
    ), indexes=(I(name="rc_step_action_order", columns=("work_order_id", "step", "round", "action"), unique=True),)),
    T(name="rc_event", columns=(
        C(name="work_order_id", type="bigint", references="rc_work_order"),
        C(name="actor_id", type="bigint", references="rc_user"),
        C(name="kind", type="varchar(40)", nullable=False, default=""),
        _now("at"),
        C(name="before", type="json"),
        C(name="after", type="json"),
        C(name="source", type="varchar(300)"),
        C(name="definition_version", type="varchar(64)"),
        C(name="version", type="integer"),
    ), indexes=(I(name="rc_event_order", columns=("work_order_id", "id")),)),
    T(name="rc_message", columns=(
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="kind", type="varchar(20)", nullable=False, default="comment"),
        C(name="author_id", type="bigint", references="rc_user"),
        C(name="body", type="text", nullable=False, default=""),
        C(name="client_viewable", type="boolean", nullable=False, default=False),
        C(name="headers", type="json"),
        # "queued" when mail went out for the message, else NULL; how its mails fared is read
        # from their rc_outbox rows (engine.comms.thread), not kept here
        C(name="delivery_state", type="varchar(20)"),
        _now("created_at"),
    ), indexes=(I(name="rc_message_order", columns=("work_order_id", "created_at")),)),
    T(name="rc_attachment", columns=(
        C(name="work_order_id", type="bigint", references="rc_work_order"),
        C(name="message_id", type="bigint", references="rc_message"),
        C(name="storage_key", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="filename", type="varchar(255)", nullable=False, default=""),
        C(name="content_type", type="varchar(100)", nullable=False, default=""),
        C(name="size", type="bigint", nullable=False, default=0),
        C(name="uploaded_by", type="bigint", references="rc_user"),
        _now("created_at"),
    ), indexes=(I(name="rc_attachment_order", columns=("work_order_id",)),)),
    # every mail received (endpoint or IMAP), once per Message-ID: threading, rate limits, IMAP restarts
    T(name="rc_inbound_mail", columns=(
        C(name="mail_key", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="message_ident", type="varchar(300)"),
        C(name="sender", type="varchar(320)", nullable=False, default=""),
        C(name="outcome", type="varchar(20)", nullable=False, default=""),
        C(name="work_order_id", type="bigint", references="rc_work_order"),
        C(name="message_id", type="bigint", references="rc_message"),
        C(name="raw_key", type="varchar(100)"),
        C(name="source", type="varchar(300)"),
        _now("received_at"),
    ), indexes=(I(name="rc_inbound_mail_sender", columns=("sender", "received_at")),
                I(name="rc_inbound_mail_ident", columns=("message_ident",)))),
    T(name="rc_subscription", columns=(
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="user_id", type="bigint", nullable=False, references="rc_user", default=0),
    ), indexes=(I(name="rc_subscription_unique", columns=("work_order_id", "user_id"), unique=True),)),
    # customer users following a project see its work in the portal (Portal.visibility followed_projects)
    T(name="rc_project_follower", columns=(
        C(name="project_id", type="bigint", nullable=False, references="rc_project", on_delete="cascade", default=0),
        C(name="user_id", type="bigint", nullable=False, references="rc_user", on_delete="cascade", default=0),
    ), indexes=(I(name="rc_project_follower_unique", columns=("project_id", "user_id"), unique=True),
                I(name="rc_project_follower_user", columns=("user_id",)))),
    # a form being filled in (engine/runtime/forms.py): answers so far, page by page, until submitted
    T(name="rc_form_draft", columns=(
        C(name="key", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="form", type="varchar(40)", nullable=False, default=""),
        C(name="user_id", type="bigint", references="rc_user"),
        C(name="customer_id", type="bigint", references="rc_customer"),
        C(name="project_id", type="bigint", references="rc_project"),
        C(name="email", type="varchar(320)"),
        C(name="answers", type="json"),
        C(name="visited", type="json"),
        C(name="remark", type="text"),
        C(name="version", type="integer", nullable=False, default=1),
        _now("created_at"),
        _now("updated_at"),
        _now("submitted_at", nullable=True),
        C(name="work_order_id", type="bigint", references="rc_work_order"),
    ), indexes=(I(name="rc_form_draft_user", columns=("user_id", "submitted_at")),)),
    # "send order link": a single-use, expiring token that resumes a draft (stored hashed)
    T(name="rc_resume_token", columns=(
        C(name="token_hash", type="varchar(128)", nullable=False, unique=True, default=""),
        C(name="draft_id", type="bigint", nullable=False, references="rc_form_draft", on_delete="cascade", default=0),
        C(name="email", type="varchar(320)", nullable=False, default=""),
        C(name="created_by", type="bigint", references="rc_user"),
        _now("created_at"),
        _now("expires_at"),
        _now("used_at", nullable=True),
    )),
    T(name="rc_link", columns=(
        C(name="from_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="to_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="kind", type="varchar(20)", nullable=False, default="related"),
    ), indexes=(I(name="rc_link_from", columns=("from_id", "to_id"), unique=True),)),
    T(name="rc_timer", columns=(
        C(name="user_id", type="bigint", nullable=False, unique=True, references="rc_user", default=0),
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        _now("started_at"),
    )),
    T(name="rc_time_entry", columns=(
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        C(name="user_id", type="bigint", nullable=False, references="rc_user", default=0),
        _now("started_at"),
        C(name="minutes", type="integer", nullable=False, default=0),
        C(name="billable", type="boolean", nullable=False, default=True),
        C(name="note", type="text"),
        _now("ended_at", nullable=True),
        C(name="percent_complete", type="integer"),
        C(name="version", type="integer", nullable=False, default=1),
        _now("created_at", nullable=True),
    ), indexes=(I(name="rc_time_entry_order", columns=("work_order_id",)),
                I(name="rc_time_entry_user", columns=("user_id", "started_at")),
                I(name="rc_time_entry_started", columns=("started_at", "work_order_id", "minutes", "billable")))),
    T(name="rc_outbox", columns=(
        C(name="kind", type="varchar(20)", nullable=False, default="email"),
        C(name="idempotency_key", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="payload", type="json"),
        C(name="state", type="varchar(20)", nullable=False, default="pending"),
        C(name="attempts", type="integer", nullable=False, default=0),
        _now("next_attempt_at"),
        C(name="claimed_by", type="varchar(100)"),
        _now("claimed_until", nullable=True),
        _now("sent_at", nullable=True),
        C(name="last_error", type="text"),
        _now("created_at"),
        C(name="message_id", type="bigint", references="rc_message"),
    ), indexes=(I(name="rc_outbox_due", columns=("state", "next_attempt_at")),
                I(name="rc_outbox_message", columns=("message_id",)))),
    T(name="rc_job", columns=(
        C(name="kind", type="varchar(40)", nullable=False, default=""),
        C(name="unique_key", type="varchar(200)", nullable=False, unique=True, default=""),
        C(name="payload", type="json"),
        C(name="state", type="varchar(20)", nullable=False, default="pending"),
        _now("run_at"),
        C(name="attempts", type="integer", nullable=False, default=0),
        C(name="claimed_by", type="varchar(100)"),
        _now("claimed_until", nullable=True),
        C(name="last_error", type="text"),
    ), indexes=(I(name="rc_job_due", columns=("state", "run_at")),)),
    T(name="rc_session", columns=(
        C(name="key", type="varchar(100)", nullable=False, unique=True, default=""),
        C(name="user_id", type="bigint", references="rc_user", on_delete="cascade"),
        C(name="data", type="json"),
        _now("expires_at"),
    ), indexes=(I(name="rc_session_expiry", columns=("expires_at",)),)),
    T(name="rc_api_token", columns=(
        C(name="user_id", type="bigint", nullable=False, references="rc_user", on_delete="cascade", default=0),
        C(name="name", type="varchar(100)", nullable=False, default=""),
        C(name="token_hash", type="varchar(128)", nullable=False, unique=True, default=""),
        _now("created_at"),
        _now("last_used_at", nullable=True),
        _now("expires_at", nullable=True),
    )),
    T(name="rc_idempotency", columns=(
        C(name="key", type="varchar(200)", nullable=False, default=""),
        C(name="user_id", type="bigint", references="rc_user", on_delete="cascade"),
        C(name="work_order_id", type="bigint", nullable=False, references="rc_work_order", default=0),
        _now("created_at"),
    ), indexes=(I(name="rc_idempotency_key", columns=("user_id", "key"), unique=True),)),
    T(name="rc_counter", columns=(
        C(name="name", type="varchar(60)", nullable=False, unique=True, default=""),
        C(name="value", type="bigint", nullable=False, default=0),
    )),
    T(name="rc_definition_version", columns=(
        C(name="fingerprint", type="varchar(64)", nullable=False, default=""),
        _now("applied_at"),
        C(name="engine_version", type="varchar(20)", nullable=False, default=""),
        C(name="schema_snapshot", type="json"),
        C(name="definitions", type="json"),
        C(name="plan", type="text"),
    ), indexes=(I(name="rc_definition_version_fingerprint", columns=("fingerprint",)),)),
)
"""The engine's tables, references first."""
