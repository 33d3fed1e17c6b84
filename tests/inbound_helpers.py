"""Helpers for the inbound mail tests: a small workspace that receives mail, and raw mails as mail programs send them."""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

OURS = "desk@ours.example"
TOKEN = "inbound-secret-token-123"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40

WORKSPACE = {
    "routecard.yaml": f"""\
        name: desk
        mail:
          from_address: {OURS}
          from_name: The Desk
          inbound:
            template: request
            token_env: TEST_INBOUND_TOKEN
            max_bytes: 200000
            max_attachments: 3
            rate_limit: {{mails: 5, per: 1h}}
        """,
    "defs.yaml": """\
        kind: Group
        name: desk
        supervisor: sue
        members: [sue, max]
        ---
        kind: Role
        name: agent
        permissions: [order.create, order.edit, order.transition, comment.private, comment.public, email.send]
        groups: [desk]
        ---
        kind: Customer
        name: acme
        label: Acme Ltd
        email_domains: [acme.example]
        ---
        kind: Template
        name: request
        label: Request
        numbering: {prefix: RQ-, digits: 5}
        fields:
          - {name: contact, type: email, label: Contact}
          - {name: notes, type: text, label: Notes}
        ---
        kind: Queue
        name: requests
        templates: [request]
        steps:
          - name: triage
            group: desk
        """,
}


def mail(sender: str, subject: str, body: str = "Hello,\nplease help.\n", *, ident: str | None = None,
         attachments: list[tuple[str, bytes, str]] = (), html: str | None = None,  # type: ignore[assignment]
         **headers: str) -> bytes:
    """A raw message, as a mail program would send it."""
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = OURS
    message["Subject"] = subject
    if ident is not None:
        message["Message-ID"] = ident
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, data, kind in attachments:
        maintype, _, subtype = kind.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()
