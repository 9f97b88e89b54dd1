"""The HTTP status policy of the D1 edge, in one place: what each outcome answers, and
what each answer means to whoever sent the request.

Two directions, one table each:

- the **receiver** (D1 posts notifications to us): :func:`notification_status` maps
  what happened to a body to the status D1 gets. D1 retries a delivery that did not
  get a 2xx; so a status says, above all, whether D1 should send the body again.
- the **client** (we ask D1's on-demand status): :func:`answer_class` sorts D1's
  status codes into "read the body", "the card is unknown", "try again later" and
  "do not try again".
"""

from __future__ import annotations

import enum
from typing import Final

__all__ = [
    "Answer",
    "Outcome",
    "answer_class",
    "notification_headers",
    "notification_status",
]


class Outcome(enum.StrEnum):
    """What became of one notification body at the receiver."""

    COMMITTED = "COMMITTED"
    """The store committed the body (its good operations; its bad ones recorded)."""
    NOT_AN_ENVELOPE = "NOT_AN_ENVELOPE"
    """Not JSON, or JSON that is not ``{"operations": [...]}``: no delivery can fix it."""
    TOO_LARGE = "TOO_LARGE"
    """Over the size limit (by Content-Length, or counted while reading)."""
    TOO_SLOW = "TOO_SLOW"
    """The body did not arrive whole within the time allowed."""
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    """The database failed: nothing was committed, a later delivery will succeed."""
    UNAUTHORIZED = "UNAUTHORIZED"
    """The bearer token was missing or wrong."""
    UNKNOWN_ISSUER = "UNKNOWN_ISSUER"
    """An issuerId in the path that this receiver does not serve."""


_NOTIFICATION_STATUS: Final = {
    # 204 only once the store committed: D1 may forget the body from then on.
    Outcome.COMMITTED: 204,
    # 400: D1 must not retry; the same bytes would fail again forever.
    Outcome.NOT_AN_ENVELOPE: 400,
    # 413: D1 must not retry either; the body is kept by D1, not half-stored by us.
    Outcome.TOO_LARGE: 413,
    # 408: the connection was too slow or broke off; a retry may well get through.
    Outcome.TOO_SLOW: 408,
    # 503: our fault and temporary; D1's retry delivers the body once we are back.
    Outcome.STORE_UNAVAILABLE: 503,
    Outcome.UNAUTHORIZED: 401,
    # 404: a wrong URL, as for any other path; fixing it is a configuration change.
    Outcome.UNKNOWN_ISSUER: 404,
}

_NOTIFICATION_HEADERS: Final[dict[Outcome, dict[str, str]]] = {
    # The body was not read to its end: the connection cannot carry another request.
    Outcome.TOO_LARGE: {"Connection": "close"},
    Outcome.TOO_SLOW: {"Connection": "close"},
    # A hint to D1's retry: a database restart or failover takes seconds.
    Outcome.STORE_UNAVAILABLE: {"Retry-After": "5"},
    Outcome.UNAUTHORIZED: {"WWW-Authenticate": "Bearer"},
}


def notification_status(outcome: Outcome) -> int:
    """The HTTP status the receiver answers D1 with for ``outcome``."""
    return _NOTIFICATION_STATUS[outcome]


def notification_headers(outcome: Outcome) -> dict[str, str]:
    """The headers that go with that status (a fresh dict)."""
    return dict(_NOTIFICATION_HEADERS.get(outcome, {}))


class Answer(enum.StrEnum):
    """How the reconcile client treats a status code from D1's on-demand status."""

    READ = "READ"
    """2xx: the body is the card's latest event."""
    NOT_FOUND = "NOT_FOUND"
    """404: D1 does not know the card; asking again will not change that."""
    RETRY = "RETRY"
    """408, 425, 429 and 5xx: D1 is busy or failing; try again after a while."""
    GIVE_UP = "GIVE_UP"
    """Any other status (400, 401, 403, ...): the request itself is wrong; retrying
    the same request gets the same answer."""


_RETRIED: Final = frozenset({408, 425, 429})


def answer_class(status: int) -> Answer:
    """How the client treats ``status`` (unknown codes are read by their class)."""
    if 200 <= status < 300:
        return Answer.READ
    if status == 404:
        return Answer.NOT_FOUND
    if status in _RETRIED or 500 <= status < 600:
        return Answer.RETRY
    return Answer.GIVE_UP
