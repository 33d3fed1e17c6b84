"""Log output of servers and workers: plain text for people, or one JSON object per line for machines.

``routecard serve`` and ``routecard worker`` take ``--log-format text|json`` (or
``ROUTECARD_LOG_FORMAT``). In JSON every record carries ``time``, ``level``,
``logger`` and ``message``, plus the fields a caller attached with ``extra=``
(a request's ``request_id``, ``method``, ``route``, ``status``, ``ms`` ...), so a
log collector can index them without parsing text.
"""

from __future__ import annotations

import datetime as dt
import logging
import logging.config
import os
from typing import Any

import msgspec

FORMATS = ("text", "json")
STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message"}
"""Attributes every log record has; anything else was attached by the caller and goes into the JSON."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return msgspec.json.encode(data, enc_hook=str).decode()


def log_format(given: str | None) -> str:
    """The format asked for by the option, else by ``ROUTECARD_LOG_FORMAT``, else text."""
    chosen = (given or os.environ.get("ROUTECARD_LOG_FORMAT") or "text").lower()
    if chosen not in FORMATS:
        raise ValueError(f"unknown log format {chosen!r}; use one of: {', '.join(FORMATS)}")
    return chosen


def configure_logging(fmt: str, level: int = logging.INFO) -> dict[str, Any]:
    """Send Routecard's and the server's logs to standard error in ``fmt``; the dictConfig used (for uvicorn)."""
    formatter: dict[str, Any] = ({"()": JsonFormatter} if fmt == "json"
                                 else {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"})
    config: dict[str, Any] = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"routecard": formatter},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "routecard",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "routecard": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": logging.WARNING, "propagate": False},
            "piccolo": {"handlers": ["stderr"], "level": logging.WARNING, "propagate": False},
        },
    }
    logging.config.dictConfig(config)
    # A record per request: skip what no format here shows (the caller's source line, thread
    # and process), which Python's logging otherwise looks up for every record.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    return config

