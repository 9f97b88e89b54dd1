"""cardflow.d1: the D1 edge (``pip install 'cardflow[d1]'``).

- :class:`Client` asks D1's on-demand production status for many cards (httpx,
  mutual TLS, retries with backoff, a concurrency limit) and returns each raw answer
  with the time it was read, or the failure.
- The status policy (:func:`notification_status`, :func:`answer_class`) says, in one
  place, what each HTTP status means in either direction.

``docs/d1.md`` describes the whole edge.
"""

from __future__ import annotations

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
from ._policy import Answer, Outcome, answer_class, notification_status

__all__ = [
    "Answer",
    "Client",
    "Failed",
    "FailureKind",
    "Fetched",
    "Outcome",
    "Result",
    "Retry",
    "answer_class",
    "client_ssl_context",
    "notification_status",
    "retry_after",
]
