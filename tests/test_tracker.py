"""The tracker's guarantees: changes once, nothing for duplicates or stale events,
reactions fired through the shared transitions machine, never for skipped statuses."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

import cardflow
from cardflow import Change, ChangeKind, Tracker, fold
from cardflow.testing import Traffic, traffic

D1 = cardflow.D1_LIFECYCLE


class Recorder:
    """Reactions that record what fired, for every status of the default lifecycle."""

    def __init__(self) -> None:
        self.fired: list[tuple[str, str, str]] = []
        self.shipments: list[Change] = []

    def __getattr__(self, name: str) -> Any:
        prefix = "on_enter_"
        if name.startswith(prefix) and name[len(prefix) :] in D1.ranks:
            status = name[len(prefix) :]

            def react(change: Change) -> None:
                assert change.status == status
                self.fired.append((change.card_id, change.operation_id, status))

            return react
        raise AttributeError(name)

    def on_shipment(self, change: Change) -> None:
        self.shipments.append(change)


many_traffic = traffic(max_cards=3, lose=True, unknown_statuses=True, other_operations=True)


@given(many_traffic)
def test_tracker_converges_to_the_fold(t: Traffic) -> None:
    tracker = Tracker()
    for body in t.bodies:
        tracker.ingest(body)
    ops = [op for body in t.bodies for op in cardflow.decode(body)]
    assert dict(tracker) == dict(fold(ops))


@given(many_traffic)
def test_each_operation_status_becomes_current_at_most_once_and_only_rises(t: Traffic) -> None:
    tracker = Tracker()
    changes = [c for body in t.bodies for c in tracker.ingest(body).changes]
    seen: set[tuple[str, str, str]] = set()
    last_rank: dict[tuple[str, str], int] = {}
    for change in changes:
        if change.kind != ChangeKind.STATUS:
            continue
        key = (change.card_id, change.operation_id, change.status)
        assert key not in seen
        seen.add(key)
        op = (change.card_id, change.operation_id)
        rank = D1.rank(change.status)
        assert rank > last_rank.get(op, -2) or (rank == -1 and op in last_rank)
        last_rank[op] = rank


@given(many_traffic, st.data())
def test_duplicates_change_nothing(t: Traffic, data: st.DataObject) -> None:
    tracker = Tracker()
    for body in t.bodies:
        tracker.ingest(body)
    before = dict(tracker)
    again = data.draw(st.lists(st.sampled_from(t.bodies), max_size=5)) if t.bodies else []
    for body in again:
        assert tracker.ingest(body).changes == []
    assert dict(tracker) == before


@given(many_traffic)
def test_changes_say_what_changed(t: Traffic) -> None:
    """Per event: no change exactly when the state stayed; each kind means what it says,
    judged against the card's state before the event."""
    tracker = Tracker()
    for body in t.bodies:
        for op in cardflow.decode_lenient(body).operations:
            if op.operation != cardflow.PRODUCE:
                continue
            before = tracker.get(op.card_id)
            found = tracker.apply(op)
            after = tracker[op.card_id]
            assert (found == []) == (before == after)
            same_op = None
            if before is not None:
                same_op = next(
                    (s for s in (before, *before._older) if s.operation_id == after.operation_id),
                    None,
                )
            for change in found:
                assert change.state == after
                if change.kind == ChangeKind.STATUS:
                    assert same_op is None or same_op.status != after.status
                if change.kind == ChangeKind.SHIPMENT:
                    assert after.shipment is not None
                    assert same_op is None or same_op.shipment != after.shipment
                if change.kind == ChangeKind.REVISED:
                    assert same_op is not None
                    assert (same_op.status, same_op.shipment) == (after.status, after.shipment)
                if change.kind == ChangeKind.OLDER:
                    assert before is not None
                    assert (before.operation_id, before.status) == (
                        after.operation_id,
                        after.status,
                    )
                    assert before._older != after._older


@settings(max_examples=150)
@given(many_traffic)
def test_reactions_fire_exactly_on_status_changes(t: Traffic) -> None:
    recorder = Recorder()
    tracker = Tracker(reactions=recorder)
    changes = [c for body in t.bodies for c in tracker.ingest(body).changes]
    expected = [
        (c.card_id, c.operation_id, c.status)
        for c in changes
        if c.kind == ChangeKind.STATUS and D1.is_known(c.status)
    ]
    assert recorder.fired == expected
    assert recorder.shipments == [c for c in changes if c.kind == ChangeKind.SHIPMENT]
    # A skipped status is never fired for that operation at the time it was skipped.
    fired_by_op: dict[tuple[str, str], list[str]] = defaultdict(list)
    for card_id, op_id, status in recorder.fired:
        fired_by_op[(card_id, op_id)].append(status)
    for c in changes:
        for status in c.skipped:
            assert (
                status
                not in fired_by_op[(c.card_id, c.operation_id)][
                    : fired_by_op[(c.card_id, c.operation_id)].index(c.status) + 1
                ]
            )


def test_reactions_share_one_machine_and_skip_gaps() -> None:
    recorder = Recorder()
    tracker = Tracker(reactions=recorder)
    body = (
        b'{"operations":[{"operationId":"op-1","operation":"PRODUCE","status":"SUCCESSFUL",'
        b'"startTime":"2025-01-17T06:28:02.492Z","endTime":"2025-01-21T09:28:12.492Z",'
        b'"cardId":"c-1","details":{"status":"CARD_SHIPPED"}}]}'
    )
    result = tracker.ingest(body)
    assert [c.kind for c in result.changes] == [ChangeKind.STATUS]
    change = result.changes[0]
    assert change.skipped == (
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "CARD_PROD_READY",
        "CARD_PROD_ONGOING",
        "CARD_PROD_DONE",
    )
    assert recorder.fired == [("c-1", "op-1", "CARD_SHIPPED")]
    assert tracker.ingest(body).changes == []
    assert recorder.fired == [("c-1", "op-1", "CARD_SHIPPED")]


def test_ingest_keeps_good_operations_beside_bad_ones() -> None:
    tracker = Tracker()
    body = (
        b'{"operations":[{"operationId":"op-1","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02","cardId":"c-1","details":{"status":"DATA_PREPARED"}},'
        b'{"operationId":"op-2","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-2","details":{"status":"DATA_PREPARED"}},'
        b'{"operationId":"op-3","operation":"ACTIVATE","status":"SUCCESSFUL",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-2","details":{"status":7}}]}'
    )
    result = tracker.ingest(body)
    assert [r.path for r in result.rejects] == ["$.operations[0].startTime"]
    assert result.passed_over == 1
    assert list(tracker) == ["c-2"]


def test_tracker_restores_from_saved_states() -> None:
    first = Tracker()
    body = (
        b'{"operations":[{"operationId":"op-1","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-1","details":{"status":"DATA_PREPARED"}}]}'
    )
    first.ingest(body)
    saved = msgspec.msgpack.decode(
        msgspec.msgpack.encode(dict(first)), type=dict[str, cardflow.CardState]
    )
    second = Tracker(states=saved)
    assert second.ingest(body).changes == []


def test_the_tracker_follows_the_fold_past_the_bound_on_operations() -> None:
    """More operations of one card than a state keeps (``MAX_OPERATIONS``): after each
    body the tracker's state is the fold's (found by mutation testing: the bound must
    not hide a change)."""
    start = datetime(2025, 1, 17, tzinfo=UTC)
    ops = [
        cardflow.Operation(
            operation_id=f"op-{i:02d}",
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=start + timedelta(hours=i),
            card_id="c-1",
            details=cardflow.Details(status="CARD_PROD_REQUESTED"),
        )
        for i in range(cardflow.MAX_OPERATIONS + 4)
    ]
    # Newer and newer, one left out; then it, in the middle of those kept; then the oldest.
    order = [*ops[:10], *ops[11:], ops[10], ops[0]]
    tracker = Tracker()
    for n, op in enumerate(order, 1):
        found = tracker.ingest(cardflow.encode([op])).changes
        assert tracker["c-1"] == fold(order[:n])["c-1"]
        assert bool(found) == (fold(order[: n - 1]).get("c-1") != tracker["c-1"])


def _shipped(carrier: str) -> cardflow.Operation:
    """A CARD_SHIPPED event of c-1's op-1 whose shipment's clock is one fixed time."""
    clock = datetime(2025, 1, 20, 10, tzinfo=UTC)
    return cardflow.Operation(
        operation_id="op-1",
        operation=cardflow.PRODUCE,
        status="SUCCESSFUL",
        start_time=datetime(2025, 1, 17, tzinfo=UTC),
        card_id="c-1",
        end_time=clock,
        details=cardflow.Details(
            status="CARD_SHIPPED",
            shipment=cardflow.Shipment(carrier=carrier, last_updated_at=clock),
        ),
    )


def test_the_tracker_takes_a_shipment_that_wins_a_tie_of_clocks() -> None:
    """Two shipments with one clock on events of one status: one of them wins (the
    canonical order), whichever came first, and the tracker's state follows the fold."""
    ops = [_shipped(carrier) for carrier in ("dhl", "ups")]
    for order in (ops, ops[::-1]):
        tracker = Tracker()
        for op in order:
            tracker.ingest(cardflow.encode([op]))
        assert tracker["c-1"] == fold(ops)["c-1"]


def test_a_shipment_that_loses_a_tie_of_clocks_changes_nothing() -> None:
    """At one clock and one status, the greater canonical shipment wins: the lesser one,
    after it, changes nothing and reports nothing; before it, it is replaced (a SHIPMENT
    change). Found by mutation testing."""
    ups, dhl = _shipped("ups"), _shipped("dhl")
    tracker = Tracker()
    tracker.apply(ups)
    kept = tracker["c-1"]
    assert tracker.apply(dhl) == []
    assert tracker["c-1"] == kept
    tracker = Tracker()
    tracker.apply(dhl)
    assert [(c.kind, c.state.shipment) for c in tracker.apply(ups)] == [
        (ChangeKind.SHIPMENT, kept.shipment)
    ]
