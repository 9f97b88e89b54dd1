"""cardflow.d1: the D1 edge (``pip install 'cardflow[d1]'``).

- :class:`Client` asks D1's on-demand production status for many cards (httpx,
  mutual TLS, retries with backoff, a concurrency limit) and returns each raw answer
  with the time it was read, or the failure.
- :func:`receiver` is the webhook receiver, an ASGI application (Starlette) over a
  cardflow store (``cardflow[serve]``); :func:`receiver_from_env` its factory for
  ``uvicorn --factory``.
- :func:`reconcile` asks D1 about every stored card that needs it and stores each
  answer as a confirmation.
- :func:`server_options` gives uvicorn's settings for serving it, TLS files checked.
- The status policy (:func:`notification_status`, :func:`answer_class`) says, in one
  place, what each HTTP status means in either direction.

``docs/d1.md`` describes the whole edge.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._client import (
    Client,
    Failed,
    FailureKind,
    Fetched,
    Result,
    Retry,
    client_ssl_context,
    retry_after,
)
from ._policy import Answer, Outcome, answer_class, notification_headers, notification_status
from ._serving import TLSFileError, server_options
from ._sweep import ReconcileStore, Sweep, reconcile

if TYPE_CHECKING:
    from ._receiver import (
        DEFAULT_BODY_TIMEOUT,
        DEFAULT_MAX_BODY,
        NOTIFICATION_PATH,
        ReceiverStore,
        check_token,
        receiver,
        receiver_from_env,
    )

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "NOTIFICATION_PATH",
    "Answer",
    "Client",
    "Failed",
    "FailureKind",
    "Fetched",
    "Outcome",
    "ReceiverStore",
    "ReconcileStore",
    "Result",
    "Retry",
    "Sweep",
    "TLSFileError",
    "answer_class",
    "check_token",
    "client_ssl_context",
    "notification_headers",
    "notification_status",
    "receiver",
    "receiver_from_env",
    "reconcile",
    "retry_after",
    "server_options",
]

_RECEIVER = frozenset(
    (
        "DEFAULT_BODY_TIMEOUT",
        "DEFAULT_MAX_BODY",
        "NOTIFICATION_PATH",
        "ReceiverStore",
        "check_token",
        "receiver",
        "receiver_from_env",
    )
)
"""The names that need Starlette (``cardflow[serve]``): imported on first use, so that
the client works with httpx alone."""


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a receiver name on first use (PEP 562), then keep it here."""
        if name not in _RECEIVER:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}._receiver"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
