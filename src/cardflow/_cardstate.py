"""A card's state: the frozen value a fold gives, its anomaly codes, the fold's result.

The value is an element of a join-semilattice (``docs/semantics.md``); how it is
computed lives in ``_summary.py``, what it needs from a lifecycle in ``tables_for.py``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Final

import msgspec

from ._wire import Shipment

__all__ = ["MAX_OPERATIONS", "Anomaly", "CardState", "Folded"]


class Anomaly(enum.StrEnum):
    """Codes for evidence that cannot all be true. Reported on the state, never raised."""

    CONFLICTING_STATUSES = "CONFLICTING_STATUSES"
    """The observed statuses of the current operation lie on no single lifecycle path."""
    OPERATION_STATUS_MISMATCH = "OPERATION_STATUS_MISMATCH"
    """A top-level status the lifecycle does not allow with its ``details.status``."""
    OPERATION_ID_REUSED = "OPERATION_ID_REUSED"
    """One operationId seen with different startTimes."""
    MISSING_STATUS = "MISSING_STATUS"
    """A PRODUCE operation without ``details.status``."""


# Bits of the per-operation anomaly flags, and of the two anomalies derived when freezing.
MISMATCH: Final = 1
MISSING: Final = 2
CONFLICT: Final = 4
REUSED: Final = 8
ALL_ANOMALY_BITS: Final = 15
ANOMALY_BITS: Final = (
    (MISMATCH, Anomaly.OPERATION_STATUS_MISMATCH),
    (MISSING, Anomaly.MISSING_STATUS),
    (CONFLICT, Anomaly.CONFLICTING_STATUSES),
    (REUSED, Anomaly.OPERATION_ID_REUSED),
)

MAX_OPERATIONS: Final = 16
"""A state keeps at most this many operations of its card: the greatest by
(startTime, operationId). Older ones are forgotten (``docs/semantics.md``, rule 7)."""
MISSING_RANK: Final = -2
"""The rank of an event without ``details.status``: below unknown statuses (-1)."""
ABSENT: Final = -3
"""The source rank recorded for an optional field that no event carried."""
NO_SUMMARY: Final = (0, 0, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT, ABSENT)
"""``CardState._summary`` of a state that nothing was joined into."""


class CardState(msgspec.Struct, frozen=True, gc=False):
    """One card's state, folded from its PRODUCE events. A frozen, comparable value.

    The public attributes report the current operation; every time is in UTC.
    ``confirmed_at`` and ``confirmed_status`` say what D1's on-demand status, an
    authoritative reading, confirmed of it (``Tracker.reconcile``). The
    attributes whose names start with ``_`` are the summaries that ``merge`` needs:
    ``_older``, the states of the card's other operations (each a state of that
    operation alone, at most ``MAX_OPERATIONS - 1``), and ``_summary``, which packs the
    observed statuses as a bit set, the anomaly flags, and the rank of the event each
    optional field came from (reason, due date, site, request, file, shipment). Two
    states are ``==`` exactly when they are the same element of the lattice, and then
    ``encode_state`` gives them the same bytes. Build one with keywords: ``freeze``
    passes positions, in field order, because that is one cheap call.
    """

    card_id: str
    operation_id: str
    start_time: datetime
    status: str
    operation_status: str
    end_time: datetime | None = None
    error_code: str | None = None
    error: str | None = None
    reason: str | None = None
    due_date: date | None = None
    production_site: str | None = None
    issuer_request_id: str | None = None
    input_file_name: str | None = None
    shipment: Shipment | None = None
    observed: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    anomalies: tuple[str, ...] = ()
    unknown_statuses: tuple[str, ...] = ()
    operation_ids: tuple[str, ...] = ()
    confirmed_at: datetime | None = None
    """When D1's on-demand status last confirmed this operation (the latest reading)."""
    confirmed_status: str | None = None
    """The highest status a confirmation of this operation reported."""
    _older: tuple[CardState, ...] = ()
    # One tuple instead of eight int fields: a shared tuple costs a state 8 bytes where
    # eight fields cost 64 (and a bit mask above 256 an int object of its own).
    _summary: tuple[int, int, int, int, int, int, int, int] = NO_SUMMARY

    @property
    def current_operation(self) -> tuple[datetime, str]:
        """The key that chose the current operation: (start_time, operation_id)."""
        return (self.start_time, self.operation_id)


class Folded(dict[str, CardState]):
    """What ``fold`` returns: the states by card id, and what it passed over.

    ``passed_over`` counts the operations that were not PRODUCE (other operation
    types share D1's notification endpoint).
    """

    passed_over: int

    def __init__(self, states: dict[str, CardState], passed_over: int = 0) -> None:
        super().__init__(states)
        self.passed_over = passed_over


def operation_key(state: CardState) -> tuple[datetime, str]:
    """The order of a card's operations: (startTime, operationId)."""
    return (state.start_time, state.operation_id)
