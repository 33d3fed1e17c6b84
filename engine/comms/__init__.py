"""Communication on work orders: message threads, subscriptions and outgoing mail.

- ``thread``: ``Messages`` (``runtime.messages``): comments, replies, follow-ups, subscriptions;
- ``notices``: the mails a message or a status change puts into the outbox;
- ``mail``: addresses, sandboxed texts, threading headers, the ``EmailMessage``;
- ``outbox``: the worker that sends the outbox over SMTP, with leases and retries;
- ``files``: the files a message carries (checked, tied to it, named in its mails);
- ``texts``: comment templates, offered in the forms and filled in for an order;
- ``smtp_check``: the admin's test mail through the configured SMTP server.
"""

from .mail import Payload
from .outbox import OutboxWorker, Report
from .thread import Messages

__all__ = ["Messages", "OutboxWorker", "Payload", "Report"]
