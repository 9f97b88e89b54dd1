"""How cardflow's long-running services log: through the standard ``logging`` module,
to stderr, as text for people or as JSON lines with stable keys for log shippers.

The store's dispatcher, the receiver and the reconcile sweep all work over a store, so
the configuration lives here: one ``logging.config.dictConfig`` dictionary
(:func:`logging_config`) configures the ``cardflow`` loggers and uvicorn's, and can be
handed to uvicorn, which applies it again in each worker process (they are spawned,
and inherit no logging configuration). :func:`public_url` shows a store URL without
its password, for a log line or a message.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit

from .._text import printable

__all__ = [
    "ECHOED",
    "JSON_KEYS",
    "LEVELS",
    "JsonFormatter",
    "StderrHandler",
    "logging_config",
    "printable",
    "public_url",
]

LEVELS: Final = ("debug", "info", "warning", "error", "critical")

JSON_KEYS: Final = (
    "event",
    "address",
    "store",
    "workers",
    "auth",
    "pid",
    "status",
    "outcome",
    "reason",
    "request_id",
    "seconds",
    "port",
    "key",
    "row",
    "client",
    "method",
    "path",
)
"""The fields a JSON line may carry beside ``time``, ``level``, ``logger`` and
``message`` (always there), in this order; docs/d1.md lists what each means."""

ECHOED: Final = "cardflow_echoed"
"""A record carrying this attribute (True) was already written to stderr in a form of
its own (``cardflow dispatch``'s failure lines): :class:`StderrHandler` skips it."""

_TEXT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET_PARAMETERS: Final = frozenset({"password", "sslpassword"})


def public_url(url: str) -> str:
    """``url`` with its password (in the authority or a ``password=`` parameter) hidden,
    for a log line or a message."""
    try:
        parts = urlsplit(url)
        netloc, query = parts.netloc, parts.query
        if parts.password is not None:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}:***@{host}"
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key in _SECRET_PARAMETERS for key, _ in pairs):
            hidden = [(k, "***" if k in _SECRET_PARAMETERS else v) for k, v in pairs]
            query = urlencode(hidden, safe="*/")
    except ValueError:  # not a URL at all: show nothing of it that could be a secret
        return "(an unreadable URL)"
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, then those of :data:`JSON_KEYS` the record carries, and ``error``
    (the traceback) when it has one. uvicorn's access lines give ``client``,
    ``method``, ``path`` and ``status``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        access = record.args if record.name == "uvicorn.access" else None
        if isinstance(access, tuple) and len(access) == 5:
            client, method, path, _, status = access
            fields = {**fields, "client": client, "method": method, "path": path}
            fields["status"] = status
        for key in JSON_KEYS:
            if key in fields:
                line[key] = fields[key]
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (as logging's last
    resort does), not to the stream it was when logging was configured."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(record, ECHOED, False):
            super().emit(record)


def logging_config(level: str, form: str, access: bool = False) -> dict[str, Any]:
    """The ``dictConfig`` dictionary: the ``cardflow`` and uvicorn loggers at ``level``
    (one of :data:`LEVELS`), to stderr, as ``form`` (``text`` or ``json``); uvicorn's
    access log only with ``access``."""
    formatter: dict[str, Any] = (
        {"()": f"{__name__}.JsonFormatter"} if form == "json" else {"format": _TEXT}
    )
    named = level.upper()
    handler = {"()": f"{__name__}.StderrHandler", "formatter": "cardflow", "level": named}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cardflow": formatter},
        "handlers": {"stderr": handler},
        "loggers": {
            "cardflow": {"handlers": ["stderr"], "level": named, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": named, "propagate": False},
            "uvicorn.error": {"level": named},
            "uvicorn.access": {
                "handlers": ["stderr"] if access else [],
                "level": named if access else "CRITICAL",
                "propagate": False,
            },
        },
    }
