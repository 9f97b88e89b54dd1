"""needs_reconcile: reasons from the state and a given `now`, never from a clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cardflow
from cardflow import (
    Checkpoint,
    Operation,
    ReconcileReason,
    fold,
    last_heard,
    needs_reconcile,
    state_of,
)

START = datetime(2025, 1, 17, 6, 28, 2, tzinfo=UTC)


def event(code: str, op_status: str = "PENDING", **details: object) -> Operation:
    return Operation(
        operation_id="op-1",
        operation=cardflow.PRODUCE,
        status=op_status,
        start_time=START,
        card_id="c-1",
        end_time=START + timedelta(days=4) if op_status != "PENDING" else None,
        details=cardflow.Details(status=code, **details),  # type: ignore[arg-type]
    )


REQUESTED = event("CARD_PROD_REQUESTED")
PREPARED = event("DATA_PREPARED", due_date=date(2025, 1, 21), production_site="Gemenos")


def test_a_complete_recent_history_needs_nothing() -> None:
    state = fold([REQUESTED, PREPARED])["c-1"]
    assert needs_reconcile(state, START + timedelta(days=1)) == ()


def test_gaps_anomalies_and_unknown_statuses_are_reasons() -> None:
    now = START + timedelta(days=1)
    assert needs_reconcile(state_of(PREPARED), now) == (ReconcileReason.GAPS,)
    both = fold([event("CARD_SHIPPED", "FAILED"), REQUESTED])["c-1"]
    assert ReconcileReason.ANOMALIES in needs_reconcile(both, now)
    odd = fold([REQUESTED, event("FUTURE_STATUS")])["c-1"]
    assert needs_reconcile(odd, now) == (ReconcileReason.UNKNOWN_STATUS,)


def test_overdue_after_the_margin_only() -> None:
    state = fold([REQUESTED, PREPARED])["c-1"]
    on_margin = datetime(2025, 1, 23, 23, 59, tzinfo=UTC)
    assert ReconcileReason.OVERDUE not in needs_reconcile(state, on_margin)
    past = datetime(2025, 1, 24, 0, 1, tzinfo=UTC)
    assert ReconcileReason.OVERDUE in needs_reconcile(state, past)
    assert ReconcileReason.OVERDUE not in needs_reconcile(
        state, past, overdue_margin=timedelta(days=5)
    )


def test_silent_after_the_allowed_silence() -> None:
    state = fold([REQUESTED, PREPARED])["c-1"]
    assert ReconcileReason.SILENT not in needs_reconcile(state, START + timedelta(days=13))
    assert ReconcileReason.SILENT in needs_reconcile(state, START + timedelta(days=15))
    assert ReconcileReason.SILENT in needs_reconcile(
        state, START + timedelta(hours=3), silence=timedelta(hours=2)
    )


@pytest.mark.parametrize(
    "settled",
    [
        event("CARD_SHIPPED", "SUCCESSFUL"),
        event("DATA_EXCEPTION", "FAILED"),
        event("CARD_PROD_EXCEPTION", "FAILED"),
        event("CARD_PROD_CANCELED", "FAILED"),
    ],
)
def test_settled_cards_are_never_overdue_or_silent(settled: Operation) -> None:
    state = fold([REQUESTED, PREPARED, settled])["c-1"]
    far = START + timedelta(days=400)
    reasons = needs_reconcile(state, far)
    assert ReconcileReason.OVERDUE not in reasons
    assert ReconcileReason.SILENT not in reasons


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match=r"^needs_reconcile: `now` must be timezone-aware$"):
        needs_reconcile(state_of(REQUESTED), datetime(2025, 1, 20))

    class Vague(tzinfo):
        """A time zone that does not know its offset: the time is naive all the same."""

        def utcoffset(self, dt: datetime | None) -> timedelta | None:
            return None

        def dst(self, dt: datetime | None) -> timedelta | None:
            return None

        def tzname(self, dt: datetime | None) -> str | None:
            return None

    with pytest.raises(ValueError, match="timezone-aware"):
        needs_reconcile(state_of(REQUESTED), datetime(2025, 1, 20, tzinfo=Vague()))


# Found by mutation testing (docs/proof.md): each case a reason given or withheld.


def test_a_final_status_settles_the_card_whatever_its_operation_says() -> None:
    """CARD_PROD_CANCELED is final even when its event still says PENDING."""
    state = fold([REQUESTED, PREPARED, event("CARD_PROD_CANCELED")])["c-1"]
    reasons = needs_reconcile(state, START + timedelta(days=400))
    assert ReconcileReason.OVERDUE not in reasons
    assert ReconcileReason.SILENT not in reasons


def test_settled_is_asked_of_the_lifecycle_given() -> None:
    mine = cardflow.Lifecycle(
        name="mine",
        states=("A", {"name": "B", "final": True}),
        transitions=[["go", "A", "B"]],
        initial="A",
    )
    state = fold([event("A"), event("B")], lifecycle=mine)["c-1"]
    far = START + timedelta(days=400)
    assert needs_reconcile(state, far, lifecycle=mine) == ()
    assert ReconcileReason.SILENT in needs_reconcile(state, far)  # D1 does not know B


def test_silence_is_counted_from_the_latest_time_a_shipment_speaks_of() -> None:
    updated = START + timedelta(days=20)
    scanned = START + timedelta(days=30)
    for shipment, last in [
        (cardflow.Shipment(carrier="dhl", last_updated_at=updated), updated),
        (cardflow.Shipment(carrier="dhl", last_checkpoint=Checkpoint(scanned)), scanned),
        (
            cardflow.Shipment(last_updated_at=updated, last_checkpoint=Checkpoint(scanned)),
            scanned,
        ),
        (
            cardflow.Shipment(last_updated_at=scanned, last_checkpoint=Checkpoint(updated)),
            scanned,
        ),
        (cardflow.Shipment(carrier="dhl", last_checkpoint=Checkpoint(None)), START),
    ]:
        state = fold([REQUESTED, event("CARD_PROD_DONE", shipment=shipment)])["c-1"]
        assert last_heard(state) == last
        assert ReconcileReason.SILENT not in needs_reconcile(state, last + timedelta(days=14))
        silent = needs_reconcile(state, last + timedelta(days=14, microseconds=1))
        assert ReconcileReason.SILENT in silent


def test_a_confirmed_status_this_lifecycle_does_not_know_fills_no_gap() -> None:
    tracker = cardflow.Tracker()
    tracker.ingest(cardflow.encode([event("CARD_PROD_READY")]))
    at = START + timedelta(days=1)
    tracker.reconcile(cardflow.encode([event("A_NEW_CODE")]), at=at)
    state = tracker["c-1"]
    assert state.confirmed_status == "A_NEW_CODE"
    assert ReconcileReason.GAPS in needs_reconcile(state, at)


@given(st.integers(0, 60), st.integers(0, 60))
def test_time_only_adds_reasons(a: int, b: int) -> None:
    """For an unsettled card, a later `now` never removes OVERDUE or SILENT."""
    state = fold([REQUESTED, PREPARED])["c-1"]
    early, late = sorted((a, b))
    before = set(needs_reconcile(state, START + timedelta(days=early)))
    after = set(needs_reconcile(state, START + timedelta(days=late)))
    assert before <= after
