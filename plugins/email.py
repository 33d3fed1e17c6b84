"""The email channel: outbox rows of kind ``email`` go out through the workspace's SMTP server."""

from __future__ import annotations

from collections.abc import Sequence

from engine import hookimpl
from engine.comms.outbox import EMAIL_CHANNEL
from engine.plugin_api import Channel


@hookimpl
def routecard_channels() -> Sequence[Channel]:
    """Mail (notifications, replies) is delivered by the engine's SMTP sender."""
    return [EMAIL_CHANNEL]
