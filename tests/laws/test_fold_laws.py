"""The laws of the fold, proven with Hypothesis over realistic and adversarial events.

Realistic: walks on the lifecycle rendered as D1 notifications (``cardflow.testing``).
Adversarial: events of one card drawn from small pools of values, so that ties,
contradictions, unknown statuses and re-used operation ids are common.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from functools import reduce

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cardflow
from cardflow import CardState, Operation, apply, encode_state, fold, merge, state_of
from cardflow.testing import expected_state, histories

D1 = cardflow.D1_LIFECYCLE
T0 = datetime(2025, 1, 17, 6, 28, 2, 492000, tzinfo=UTC)
CARD = "271b-6e47-8ec3-7f3f"


def _one(ops: Sequence[Operation]) -> CardState:
    states = fold(ops)
    assert list(states) == [CARD] or len(states) == 1
    return next(iter(states.values()))


def canonical(states: Mapping[str, CardState]) -> dict[str, bytes]:
    """The states as the bytes of the state format: equal states, equal bytes."""
    return {card_id: encode_state(state) for card_id, state in states.items()}


def same(a: Mapping[str, CardState], b: Mapping[str, CardState]) -> bool:
    """Equal as lattice elements and byte for byte."""
    return dict(a) == dict(b) and canonical(a) == canonical(b)


# -- adversarial events: one card, small pools, many collisions -----------------------

PLUS_2 = timezone(timedelta(hours=2))
MINUS_5_30 = timezone(-timedelta(hours=5, minutes=30))
MINUS_1 = timezone(-timedelta(hours=1))
PLUS_1 = timezone(timedelta(hours=1))
END_OF_TIME = datetime(9999, 12, 31, 23, 30, tzinfo=MINUS_1)
"""Past the last instant UTC can spell."""
START_OF_TIME = datetime(1, 1, 1, 0, 30, tzinfo=PLUS_1)
"""Before the first instant UTC can spell."""


def respelled(value: datetime) -> st.SearchStrategy[datetime]:
    """The same instant in another offset."""
    return st.sampled_from([value, value.astimezone(PLUS_2), value.astimezone(MINUS_5_30)])


def _times(*values: datetime) -> st.SearchStrategy[datetime]:
    return st.sampled_from(values).flatmap(respelled)


def _shipments() -> st.SearchStrategy[cardflow.Shipment | None]:
    times = st.none() | _times(T0 + timedelta(days=3), T0 + timedelta(days=4))
    checkpoints = st.none() | st.builds(
        cardflow.Checkpoint, checkpoint_time=times, city=st.sampled_from([None, "Paris"])
    )
    return st.none() | st.builds(
        cardflow.Shipment,
        carrier=st.sampled_from(["fedex", "dhl"]),
        status=st.sampled_from([None, "IN_TRANSIT", "DELIVERED"]),
        last_updated_at=times,
        estimated_delivery_date=st.none() | _times(T0 + timedelta(days=5)),
        last_checkpoint=checkpoints,
        unparsed=st.sampled_from([(), (("estimatedDeliveryDate", '"2026-05-24"'),)]),
    )


def adversarial_events(card_id: str = CARD) -> st.SearchStrategy[Operation]:
    statuses = st.sampled_from([*D1.statuses, "FUTURE_STATUS_A", "FUTURE_STATUS_B"])
    details = st.none() | st.builds(
        cardflow.Details,
        status=st.none() | statuses,
        reason=st.sampled_from([None, "r1", "r2"]),
        due_date=st.sampled_from([None, date(2025, 1, 21), date(2025, 1, 22), date.max]),
        production_site=st.sampled_from([None, "Gemenos", "Tczew"]),
        shipment=_shipments(),
        input_file_name=st.sampled_from([None, "f1.csv"]),
    )
    # Starts: one instant in several spellings, the same instant cut to whole seconds (a
    # second start for one operationId), an hour later, and the ends of time.
    starts = _times(T0, T0.replace(microsecond=0), T0 + timedelta(hours=1)) | st.sampled_from(
        [END_OF_TIME, START_OF_TIME]
    )
    ends = (
        st.none() | _times(T0 + timedelta(days=2), T0 + timedelta(days=3)) | st.just(START_OF_TIME)
    )
    return st.builds(
        Operation,
        operation_id=st.sampled_from(["op-a", "op-b", "op-c"]),
        operation=st.just(cardflow.PRODUCE),
        status=st.sampled_from(["PENDING", "SUCCESSFUL", "FAILED", "NEW_OUTCOME"]),
        start_time=starts,
        card_id=st.just(card_id),
        end_time=ends,
        details=details,
        error_code=st.sampled_from([None, "FIELD_INVALID_FORMAT"]),
        error=st.sampled_from([None, "pan", ""]),
        issuer_request_id=st.sampled_from([None, "req-1", "req-2"]),
    )


events = st.lists(adversarial_events(), min_size=1, max_size=12)


def _respell(op: Operation, offset: timezone) -> Operation:
    """The same event with every time written in another offset (and so other text)."""
    end = None if op.end_time is None else op.end_time.astimezone(offset)
    return msgspec.structs.replace(op, start_time=op.start_time.astimezone(offset), end_time=end)


@st.composite
def realistic_events(draw: st.DrawFn) -> list[Operation]:
    """True histories, each notification's times spelled in an offset drawn for it."""
    ops = draw(histories(max_cards=3, max_operations=2, unknown_statuses=True)).notifications()
    offsets = st.sampled_from([UTC, PLUS_2, MINUS_5_30])
    return [_respell(op, draw(offsets)) for op in ops]


any_events = events | realistic_events()


# -- order and multiplicity ------------------------------------------------------------


@given(any_events, st.data())
def test_permutation_invariance(ops: list[Operation], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(ops))
    assert same(fold(shuffled), fold(ops))


@given(any_events, st.data())
def test_duplicate_invariance(ops: list[Operation], data: st.DataObject) -> None:
    copies = data.draw(st.lists(st.integers(1, 3), min_size=len(ops), max_size=len(ops)))
    multiset = [op for op, n in zip(ops, copies, strict=True) for _ in range(n)]
    assert same(fold(data.draw(st.permutations(multiset))), fold(ops))


@given(any_events, st.data())
def test_partition_invariance(ops: list[Operation], data: st.DataObject) -> None:
    """fold of the whole equals the merge of the folds of any split, merged in any order."""
    parts = data.draw(st.integers(1, 4))
    labels = data.draw(st.lists(st.integers(0, parts - 1), min_size=len(ops), max_size=len(ops)))
    pieces = [
        fold([op for op, lab in zip(ops, labels, strict=True) if lab == i]) for i in range(parts)
    ]
    order = data.draw(st.permutations(range(parts)))
    merged: dict[str, CardState] = {}
    for i in order:
        for card_id, state in pieces[i].items():
            merged[card_id] = merge(merged[card_id], state) if card_id in merged else state
    assert same(merged, fold(ops))


@st.composite
def many_operations(draw: st.DrawFn) -> list[Operation]:
    """Events of more operations than a state keeps, each operationId with one start (as
    D1 sends them): the bound forgets the oldest operations in every order alike."""
    codes = st.sampled_from(D1.statuses)
    drawn = draw(
        st.lists(st.tuples(st.integers(0, 3 * cardflow.MAX_OPERATIONS), codes), max_size=80)
    )
    return [
        Operation(
            operation_id=f"op-{n:03d}",
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=(T0 + timedelta(minutes=37 * n % 101)).astimezone(PLUS_2),
            card_id=CARD,
            details=cardflow.Details(status=code),
        )
        for n, code in drawn
    ]


@given(many_operations(), st.data())
def test_laws_hold_past_the_bound_on_operations(ops: list[Operation], data: st.DataObject) -> None:
    whole = fold(ops)
    assert same(fold(data.draw(st.permutations(ops))), whole)
    cut = data.draw(st.integers(0, len(ops)))
    left, right = fold(ops[:cut]), fold(ops[cut:])
    merged = {
        c: merge(left[c], right[c]) if c in left and c in right else left.get(c) or right[c]
        for c in {*left, *right}
    }
    assert same(merged, whole)
    if whole:
        kept = sorted({(o.start_time, o.operation_id) for o in ops})[-cardflow.MAX_OPERATIONS :]
        assert whole[CARD].operation_ids == tuple(sorted(i for _, i in kept))


# -- the join ------------------------------------------------------------------------


states = events.map(_one)


@given(states, states)
def test_merge_commutative(a: CardState, b: CardState) -> None:
    assert encode_state(merge(a, b)) == encode_state(merge(b, a))


@given(states, states, states)
def test_merge_associative(a: CardState, b: CardState, c: CardState) -> None:
    assert encode_state(merge(merge(a, b), c)) == encode_state(merge(a, merge(b, c)))


@given(states)
def test_merge_idempotent(a: CardState) -> None:
    assert encode_state(merge(a, a)) == encode_state(a)


@given(states, adversarial_events())
def test_apply_is_merge_with_the_event_alone(s: CardState, op: Operation) -> None:
    assert encode_state(apply(s, op)) == encode_state(merge(s, state_of(op)))


@given(events)
def test_fold_is_a_left_fold_of_apply(ops: list[Operation]) -> None:
    state = reduce(lambda s, op: apply(s, op), ops[1:], state_of(ops[0]))
    assert encode_state(fold(ops)[CARD]) == encode_state(state)


@given(states, adversarial_events())
def test_monotone_within_an_operation(s: CardState, op: Operation) -> None:
    """Applying an event never lowers the status's precedence within one operation."""
    after = apply(s, op)
    if after.current_operation == s.current_operation:
        assert D1.rank(after.status) >= D1.rank(s.status)
        assert set(s.observed) <= set(after.observed)
    else:
        assert after.current_operation > s.current_operation


@given(states, states)
def test_merge_is_an_upper_bound(a: CardState, b: CardState) -> None:
    """Both sides are below the join: joining either again changes nothing."""
    joined = merge(a, b)
    assert merge(joined, a) == joined
    assert merge(joined, b) == joined


@given(events)
def test_state_size_is_bounded(ops: list[Operation]) -> None:
    """Summaries, not event lists: a thousand more copies change nothing."""
    assert fold(ops * 50) == fold(ops)


# -- convergence to the oracle -------------------------------------------------------------


@given(histories(max_cards=3, max_operations=3, unknown_statuses=True), st.data())
def test_converges_to_the_oracle(history: cardflow.testing.History, data: st.DataObject) -> None:
    ops = history.notifications()
    got = fold(data.draw(st.permutations(ops)))
    assert set(got) == {c.card_id for c in history.cards}
    for card in history.cards:
        want = expected_state(card, ops, D1)
        assert want is not None
        state = got[card.card_id]
        assert (state.operation_id, state.status, state.operation_status) == (
            want.operation_id,
            want.status,
            want.operation_status,
        )
        assert (state.end_time, state.error_code, state.error) == (
            want.end_time,
            want.error_code,
            want.error,
        )
        assert set(state.observed) == want.observed
        assert set(state.unknown_statuses) == want.unknown_statuses
        assert state.gaps == ()
        assert state.anomalies == ()
        assert state.shipment == want.shipment
        assert (state.due_date, state.production_site, state.reason) == (
            want.due_date,
            want.production_site,
            want.reason,
        )
        assert state.issuer_request_id == want.issuer_request_id
        assert set(state.operation_ids) == want.operation_ids


@given(histories(max_cards=2, max_operations=2), st.data())
def test_lost_notifications_become_gaps(
    history: cardflow.testing.History, data: st.DataObject
) -> None:
    """With notifications lost, the oracle's brute-force gaps are what the fold reports."""
    ops = history.notifications()
    kept = [op for op in ops if data.draw(st.booleans())]
    got = fold(kept)
    for card in history.cards:
        want = expected_state(card, kept, D1)
        if want is None:
            assert card.card_id not in got
            continue
        state = got[card.card_id]
        assert state.status == want.status
        assert set(state.observed) == want.observed
        assert set(state.gaps) == want.gaps
        assert state.shipment == want.shipment


@pytest.mark.parametrize("bad", [("op", "other-card")])
def test_merge_refuses_two_cards(bad: tuple[str, str]) -> None:
    a = state_of(
        Operation(
            operation_id="op",
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=T0,
            card_id=CARD,
            details=cardflow.Details(status="CARD_PROD_REQUESTED"),
        )
    )
    b = state_of(
        Operation(
            operation_id=bad[0],
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=T0,
            card_id=bad[1],
            details=cardflow.Details(status="CARD_PROD_REQUESTED"),
        )
    )
    with pytest.raises(cardflow.CardMismatchError, match="other-card"):
        merge(a, b)
