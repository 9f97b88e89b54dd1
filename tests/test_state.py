"""The fold's documented results: the seed examples, each rule, each anomaly."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import pytest

import cardflow
from cardflow import Anomaly, CardState, Operation, fold, state_of

DATA = Path(__file__).parent / "data" / "track_production"
CARD = "271b-6e47-8ec3-7f3f"
OP = "01c5a05e-e197-11ec-8fea-0242ac120002"
START = datetime(2025, 1, 17, 6, 28, 2, 492000, tzinfo=UTC)
END = datetime(2025, 1, 21, 9, 28, 12, 492000, tzinfo=UTC)
EXAMPLES = (
    "card_requested",
    "data_prepared",
    "data_exception",
    "shipped_first",
    "shipped_subsequent",
)


def seed_ops(name: str) -> list[Operation]:
    return cardflow.decode((DATA / f"{name}.json").read_bytes())


def only(states: dict[str, CardState]) -> CardState:
    assert list(states) == [CARD]
    return states[CARD]


def produce(code: str | None, *, op_status: str = "PENDING", **fields: Any) -> Operation:
    """A PRODUCE event of the seed card, with ``details.status`` and other fields."""
    details = fields.pop("details", {})
    top = {
        "operation_id": OP,
        "operation": cardflow.PRODUCE,
        "status": op_status,
        "start_time": START,
        "card_id": CARD,
        **fields,
    }
    return Operation(**top, details=cardflow.Details(status=code, **details))


# -- the seed examples, alone --------------------------------------------------------

ALONE = {
    "card_requested": ("CARD_PROD_REQUESTED", "PENDING", (), None, None),
    "data_prepared": (
        "DATA_PREPARED",
        "PENDING",
        ("CARD_PROD_REQUESTED",),
        date(2025, 1, 21),
        "Gemenos",
    ),
    "data_exception": ("DATA_EXCEPTION", "FAILED", ("CARD_PROD_REQUESTED",), None, None),
    "shipped_first": (
        "CARD_SHIPPED",
        "SUCCESSFUL",
        (
            "CARD_PROD_REQUESTED",
            "DATA_PREPARED",
            "CARD_PROD_READY",
            "CARD_PROD_ONGOING",
            "CARD_PROD_DONE",
        ),
        date(2025, 1, 21),
        "Gemenos",
    ),
}


@pytest.mark.parametrize("name", sorted(ALONE))
def test_each_seed_example_alone(name: str) -> None:
    status, op_status, gaps, due, site = ALONE[name]
    state = only(fold(seed_ops(name)))
    assert state.status == status
    assert state.operation_status == op_status
    assert state.gaps == gaps
    assert (state.due_date, state.production_site) == (due, site)
    assert state.anomalies == ()
    assert state.operation_ids == (OP,)


def test_the_data_exception_example_reports_its_error() -> None:
    state = only(fold(seed_ops("data_exception")))
    assert (state.error_code, state.error, state.end_time) == ("FIELD_INVALID_FORMAT", "pan", END)


def test_the_bulk_example_in_every_order() -> None:
    ops = seed_ops("bulk")
    for order in itertools.permutations(ops):
        state = only(fold(order))
        assert state.status == "DATA_EXCEPTION"
        assert state.observed == ("CARD_PROD_REQUESTED", "DATA_PREPARED", "DATA_EXCEPTION")
        assert state.gaps == ()
        assert (state.due_date, state.production_site) == (date(2025, 1, 21), "Gemenos")
        assert (state.operation_status, state.error_code, state.error) == (
            "FAILED",
            "FIELD_INVALID_FORMAT",
            "pan",
        )


def test_the_shipment_examples_in_every_order_keep_the_newer_shipment() -> None:
    """The page's two CARD_SHIPPED notifications: an update, not a conflict."""
    ops = seed_ops("shipped_first") + seed_ops("shipped_subsequent")
    for order in itertools.permutations(ops * 2):
        state = only(fold(order))
        assert state.status == "CARD_SHIPPED"
        assert state.shipment is not None
        assert state.shipment.tracking_number == "1234567890"
        assert state.shipment.last_updated_at == datetime(2026, 5, 22, 13, 55, tzinfo=UTC)
        assert state.anomalies == ()


def test_all_seed_examples_in_every_order() -> None:
    """The page's five single examples together contradict (DATA_EXCEPTION then shipped).

    The fold still resolves them deterministically, whatever the order, and says so.
    """
    ops = [op for name in EXAMPLES for op in seed_ops(name)]
    first = only(fold(ops))
    assert first.status == "CARD_SHIPPED"
    assert Anomaly.CONFLICTING_STATUSES in first.anomalies
    for order in itertools.permutations(ops):
        assert only(fold(order)) == first


# -- rules -----------------------------------------------------------------------------


def test_status_compares_equal_to_the_code() -> None:
    state = state_of(produce("CARD_PROD_READY"))
    assert state.status == "CARD_PROD_READY"
    assert state.status == cardflow.ProductionStatus.CARD_PROD_READY


def test_newer_operation_wins_and_older_events_change_nothing_reported() -> None:
    older = produce("DATA_EXCEPTION", operation_id="op-1", op_status="FAILED", end_time=END)
    newer = produce("CARD_PROD_REQUESTED", operation_id="op-2", start_time=END)
    late = produce("CARD_PROD_CANCELED", operation_id="op-1", op_status="FAILED", end_time=END)
    state = only(fold([newer, late, older]))
    assert (state.operation_id, state.status) == ("op-2", "CARD_PROD_REQUESTED")
    assert state.operation_ids == ("op-1", "op-2")
    assert state.observed == ("CARD_PROD_REQUESTED",)


def test_same_start_time_is_broken_by_operation_id() -> None:
    a = produce("CARD_SHIPPED", operation_id="op-a", op_status="SUCCESSFUL", end_time=END)
    b = produce("CARD_PROD_REQUESTED", operation_id="op-b")
    assert only(fold([a, b])).operation_id == "op-b"


def test_unknown_statuses_never_move_a_known_one() -> None:
    state = only(fold([produce("ZZ_NEW"), produce("DATA_PREPARED"), produce("AA_NEW")]))
    assert state.status == "DATA_PREPARED"
    assert state.unknown_statuses == ("AA_NEW", "ZZ_NEW")


def test_only_unknown_statuses_give_the_greatest_of_them() -> None:
    assert only(fold([produce("B_NEW"), produce("A_NEW")])).status == "B_NEW"


def test_fields_come_from_the_highest_precedence_event_that_carries_them() -> None:
    low = produce("DATA_PREPARED", details={"production_site": "Gemenos", "reason": "low"})
    high = produce("CARD_PROD_ONGOING", details={"production_site": "Tczew"})
    state = only(fold([high, low]))
    assert state.production_site == "Tczew"
    assert state.reason == "low"  # carried only by the lower event


def test_offsets_do_not_matter() -> None:
    paris = timezone(timedelta(hours=1))
    a = produce("CARD_PROD_REQUESTED")
    b = produce("DATA_PREPARED", start_time=START.astimezone(paris))
    assert fold([a, b]) == fold([b, a])
    assert only(fold([b, a])).start_time.tzinfo is UTC


def test_non_produce_operations_are_passed_over_and_counted() -> None:
    other = msgspec.structs.replace(produce("CARD_RETURNED"), operation="STANDALONE_TRACKING")
    folded = fold([other, produce("CARD_PROD_REQUESTED"), other])
    assert folded.passed_over == 2
    assert only(folded).status == "CARD_PROD_REQUESTED"
    with pytest.raises(cardflow.NotProduceError, match="STANDALONE_TRACKING"):
        state_of(other)
    assert cardflow.apply(only(folded), other) == only(folded)


def test_apply_refuses_another_card() -> None:
    state = state_of(produce("CARD_PROD_REQUESTED"))
    stranger = msgspec.structs.replace(produce("DATA_PREPARED"), card_id="other")
    with pytest.raises(cardflow.CardMismatchError, match="other"):
        cardflow.apply(state, stranger)


# -- anomalies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("events", "anomaly"),
    [
        (
            [
                produce("CARD_SHIPPED", op_status="SUCCESSFUL", end_time=END),
                produce("CARD_PROD_CANCELED", op_status="FAILED", end_time=END),
            ],
            Anomaly.CONFLICTING_STATUSES,
        ),
        (
            [
                produce("DATA_EXCEPTION", op_status="FAILED", end_time=END),
                produce("CARD_PROD_READY"),
            ],
            Anomaly.CONFLICTING_STATUSES,
        ),
        (
            [produce("CARD_SHIPPED", op_status="FAILED", end_time=END)],
            Anomaly.OPERATION_STATUS_MISMATCH,
        ),
        (
            [produce("CARD_PROD_REQUESTED", op_status="SUCCESSFUL")],
            Anomaly.OPERATION_STATUS_MISMATCH,
        ),
        (
            [produce("CARD_PROD_REQUESTED"), produce("DATA_PREPARED", start_time=END)],
            Anomaly.OPERATION_ID_REUSED,
        ),
        ([produce(None)], Anomaly.MISSING_STATUS),
    ],
)
def test_anomalies_are_named_and_never_raised(events: list[Operation], anomaly: Anomaly) -> None:
    for order in itertools.permutations(events):
        state = only(fold(order))
        assert anomaly in state.anomalies


def test_shipped_outranks_a_contradicting_cancel() -> None:
    shipped = produce("CARD_SHIPPED", op_status="SUCCESSFUL", end_time=END)
    canceled = produce("CARD_PROD_CANCELED", op_status="FAILED", end_time=END)
    assert only(fold([shipped, canceled])).status == "CARD_SHIPPED"


def test_new_top_level_status_values_are_not_anomalies() -> None:
    assert state_of(produce("CARD_PROD_REQUESTED", op_status="QUEUED")).anomalies == ()


def test_no_input_is_remembered_beyond_its_fold() -> None:
    """The lifecycle's tables never change: sharing lives in one fold (or tracker)."""
    from cardflow._tables import tables_for as _tables

    tables = _tables(cardflow.D1_LIFECYCLE)
    before = (dict(tables.shared), dict(tables.summaries), dict(tables.by_mask))
    site = "A site no lifecycle names"
    op = produce("DATA_PREPARED", details={"production_site": site, "reason": "r"})
    state = only(fold([op]))
    cardflow.merge(state, cardflow.apply(state, produce("CARD_PROD_READY")))
    cardflow.Tracker().ingest(cardflow.encode([op]))
    assert state.production_site == site
    assert (dict(tables.shared), dict(tables.summaries), dict(tables.by_mask)) == before


def test_a_shipment_is_canonical_alike_in_a_lifecycle_s_tables_and_a_session_s() -> None:
    """Only a session shares a shipment's strings; the lifecycle's tables (``step``,
    ``merge``) take them as they are, remember nothing, and give an equal value."""
    from cardflow._tables import tables_for as _tables

    lifecycle_tables = _tables(cardflow.D1_LIFECYCLE)
    session = lifecycle_tables.session()
    before = dict(lifecycle_tables.shared)
    at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))

    def shipment() -> cardflow.Shipment:  # fresh strings on each call, as decoding gives
        def fresh(text: str) -> str:
            return "".join(list(text))

        return cardflow.Shipment(
            carrier=fresh("Carrier"),
            status=fresh("IN_TRANSIT"),
            message=fresh("On its way"),
            last_updated_at=at,
            last_checkpoint=cardflow.Checkpoint(
                checkpoint_time=at, city=fresh("Lyon"), country_name=fresh("France")
            ),
        )

    first, second = session.shipment(shipment()), session.shipment(shipment())
    alone = lifecycle_tables.shipment(shipment())
    assert alone == first == second
    assert alone.last_updated_at is not None
    assert alone.last_updated_at.tzinfo is UTC
    assert first.carrier is second.carrier
    assert first.status is second.status
    assert first.last_checkpoint is not None
    assert second.last_checkpoint is not None
    assert first.last_checkpoint.city is second.last_checkpoint.city
    assert dict(lifecycle_tables.shared) == before


# -- ties, each way of joining ------------------------------------------------------------
# Mutation testing (docs/proof.md) found these ties untested: each test gives the expected
# value, and checks it is what every order and every way of joining gives (the fold's
# event path, ``merge`` of states and ``apply`` to a state take different code).


def every_way(events: list[Operation]) -> list[CardState]:
    """The card's state by ``fold``, ``merge`` of single states and ``apply``, in every order."""
    states = []
    for order in itertools.permutations(events):
        states.append(only(fold(order)))
        merged = state_of(order[0])
        applied = state_of(order[0])
        for op in order[1:]:
            merged = cardflow.merge(merged, state_of(op))
            applied = cardflow.apply(applied, op)
        states.extend((merged, applied))
    return states


def failed(**fields: Any) -> Operation:
    return produce("DATA_EXCEPTION", op_status="FAILED", end_time=END, **fields)


def test_an_event_with_an_error_code_beats_its_twin_without() -> None:
    """Same status, end and top-level status: the error code decides, an absent one lowest."""
    for state in every_way([failed(), failed(error_code="E_FORMAT")]):
        assert state.error_code == "E_FORMAT"


def test_of_two_error_codes_the_greater_wins_whatever_the_error() -> None:
    events = [failed(error_code="E_B", error="a"), failed(error_code="E_A", error="z")]
    for state in every_way(events):
        assert (state.error_code, state.error) == ("E_B", "a")


def test_of_two_errors_under_one_code_the_greater_wins() -> None:
    events = [failed(error_code="E", error="b: late"), failed(error_code="E", error="a: early")]
    for state in every_way(events):
        assert state.error == "b: late"


def test_shipments_of_one_clock_go_to_the_higher_status() -> None:
    """The same ``lastUpdatedAt``: precedence decides, whichever shipment came first."""
    clock = END
    done = produce(
        "CARD_PROD_DONE",
        details={"shipment": cardflow.Shipment(carrier="ups", last_updated_at=clock)},
    )
    shipped = produce(
        "CARD_SHIPPED",
        op_status="SUCCESSFUL",
        end_time=END,
        details={"shipment": cardflow.Shipment(carrier="dhl", last_updated_at=clock)},
    )
    for state in every_way([done, shipped]):
        assert state.shipment is not None
        assert state.shipment.carrier == "dhl"


def test_a_shipment_repeated_by_a_higher_status_keeps_that_status_precedence() -> None:
    """One clock: the same shipment notified again by a higher status holds that status's
    precedence, so a shipment of a status between them loses, in every order (found by
    mutation testing)."""
    ups = cardflow.Shipment(carrier="ups", last_updated_at=END)
    dhl = cardflow.Shipment(carrier="dhl", last_updated_at=END)
    ongoing = produce("CARD_PROD_ONGOING", details={"shipment": ups})
    done = produce("CARD_PROD_DONE", details={"shipment": dhl})
    shipped = produce(
        "CARD_SHIPPED", op_status="SUCCESSFUL", end_time=END, details={"shipment": ups}
    )
    for state in every_way([ongoing, done, shipped]):
        assert state.shipment == ups


def test_shipment_clocks_past_what_utc_spells_tie_at_its_end() -> None:
    """Clocks are compared clamped (docs/semantics.md, "Times"): a clock an offset puts
    past the last instant UTC spells ties with that instant, and precedence decides."""
    beyond = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(-timedelta(hours=1)))
    last = datetime.max.replace(tzinfo=UTC)
    done = produce(
        "CARD_PROD_DONE",
        details={"shipment": cardflow.Shipment(carrier="ups", last_updated_at=beyond)},
    )
    shipped = produce(
        "CARD_SHIPPED",
        op_status="SUCCESSFUL",
        end_time=END,
        details={"shipment": cardflow.Shipment(carrier="dhl", last_updated_at=last)},
    )
    for state in every_way([done, shipped]):
        assert state.shipment == cardflow.Shipment(carrier="dhl", last_updated_at=last)


def test_each_public_function_folds_with_the_lifecycle_given() -> None:
    """Under a lifecycle where B follows A, B is known: a status, with A a gap."""
    mine = cardflow.Lifecycle(
        name="mine",
        states=("A", {"name": "B", "final": True}),
        transitions=[["go", "A", "B"]],
        initial="A",
    )
    a, b = produce("A"), produce("B")
    for state in (
        cardflow.merge(state_of(a, lifecycle=mine), state_of(b, lifecycle=mine), lifecycle=mine),
        cardflow.apply(state_of(a, lifecycle=mine), b, lifecycle=mine),
        cardflow.apply(None, b, lifecycle=mine),
        only(fold([b, a], lifecycle=mine)),
        cardflow.Folder([a, b], lifecycle=mine)[CARD],
    ):
        assert (state.status, state.unknown_statuses) == ("B", ())
        assert state.gaps == (() if "A" in state.observed else ("A",))
