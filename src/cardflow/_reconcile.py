"""When to ask D1 for a card's status on demand: ``needs_reconcile``.

D1 delivers at least once, but a notification can still be lost. The on-demand
``GET .../physicalcards/{cardId}/productionstatus`` repairs that; this module says
which cards are worth the call, and why. Time is a parameter: nothing here reads a
clock.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Final

from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._state import CardState
from ._wire import OperationStatus

__all__ = ["ReconcileReason", "is_settled", "last_heard", "needs_reconcile"]


class ReconcileReason(enum.StrEnum):
    """Why a card's state deserves a look at D1's on-demand status."""

    GAPS = "GAPS"
    """Statuses that must have happened were never notified: notifications were lost."""
    ANOMALIES = "ANOMALIES"
    """The notifications contradict each other."""
    UNKNOWN_STATUS = "UNKNOWN_STATUS"
    """A status this lifecycle does not know arrived."""
    OVERDUE = "OVERDUE"
    """Not settled, and past its due date by more than the allowed margin."""
    SILENT = "SILENT"
    """Not settled, and nothing new for longer than the allowed silence."""


DEFAULT_OVERDUE_MARGIN: Final = timedelta(days=2)
DEFAULT_SILENCE: Final = timedelta(days=14)


def is_settled(state: CardState, lifecycle: Lifecycle = D1_LIFECYCLE) -> bool:
    """A card whose production is over: a final status, a success, or a failed operation.

    A settled card is never OVERDUE or SILENT (``needs_reconcile``).
    """
    return (
        lifecycle.is_final(state.status)
        or lifecycle.is_success(state.status)
        or state.operation_status == OperationStatus.FAILED
    )


def _open_gaps(state: CardState, lifecycle: Lifecycle) -> bool:
    """Gaps that a call could still fill: above the highest status D1 confirmed. Those
    at or below it were lost for good (the on-demand status reports the latest event
    only); the state still lists them."""
    if not state.gaps:
        return False
    confirmed = state.confirmed_status
    if confirmed is None or not lifecycle.is_known(confirmed):
        return True
    floor = lifecycle.rank(confirmed)
    return any(lifecycle.rank(gap) > floor for gap in state.gaps)


def last_heard(state: CardState) -> datetime:
    """The latest time the state's events speak of (events carry no arrival time), or
    that D1's on-demand status confirmed the card at, whichever is later."""
    latest = state.start_time
    if state.confirmed_at is not None and state.confirmed_at > latest:
        latest = state.confirmed_at
    if state.end_time is not None and state.end_time > latest:
        latest = state.end_time
    shipment = state.shipment
    if shipment is not None:
        if shipment.last_updated_at is not None and shipment.last_updated_at > latest:
            latest = shipment.last_updated_at
        checkpoint = shipment.last_checkpoint
        if (
            checkpoint is not None
            and checkpoint.checkpoint_time is not None
            and checkpoint.checkpoint_time > latest
        ):
            latest = checkpoint.checkpoint_time
    return latest


def needs_reconcile(
    state: CardState,
    now: datetime,
    *,
    overdue_margin: timedelta = DEFAULT_OVERDUE_MARGIN,
    silence: timedelta = DEFAULT_SILENCE,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> tuple[ReconcileReason, ...]:
    """The reasons to reconcile this card now; empty (falsy) when there are none.

    GAPS counts only gaps above the highest status D1's on-demand status confirmed
    (``confirmed_status``): a confirmation cannot fill the others. ``now`` must be
    timezone-aware. A card that is not settled (no final status, no
    success, no failed operation) is OVERDUE once ``now`` is past its due date by more
    than ``overdue_margin``, and SILENT once the latest time its events mention is
    older than ``silence``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("needs_reconcile: `now` must be timezone-aware")
    reasons: list[ReconcileReason] = []
    if _open_gaps(state, lifecycle):
        reasons.append(ReconcileReason.GAPS)
    if state.anomalies:
        reasons.append(ReconcileReason.ANOMALIES)
    if state.unknown_statuses:
        reasons.append(ReconcileReason.UNKNOWN_STATUS)
    if not is_settled(state, lifecycle):
        # Differences, never sums: a due date or a time at the end of the calendar
        # cannot overflow a difference.
        if state.due_date is not None and now.date() - state.due_date > overdue_margin:
            reasons.append(ReconcileReason.OVERDUE)
        if now - last_heard(state) > silence:
            reasons.append(ReconcileReason.SILENT)
    return tuple(reasons)
