"""The laws of the changes: each (operation, status) reported at most once, over any
order of any multiset of events, and the store reports what the Tracker reports."""

from __future__ import annotations

import collections
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cardflow
import cardflow.store
from cardflow import Operation

from .test_fold_laws import CARD, T0, any_events

REACTIONS = {cardflow.ChangeKind.STATUS.value, cardflow.ChangeKind.SHIPMENT.value}


def _status_event(operation_id: str, status: str) -> Operation:
    return Operation(
        operation_id=operation_id,
        operation=cardflow.PRODUCE,
        status="PENDING",
        start_time=T0,
        card_id=CARD,
        details=cardflow.Details(status=status),
    )


status_events = st.lists(
    st.builds(
        _status_event,
        st.sampled_from(["op-a", "op-b"]),
        st.sampled_from([*cardflow.D1_LIFECYCLE.statuses, "FUTURE_STATUS"]),
    ),
    min_size=1,
    max_size=8,
)
"""Statuses alone, of one card's two operations: contradicting ones are common."""


@st.composite
def deliveries(draw: st.DrawFn) -> list[Operation]:
    """Some events, some of them more than once, in any order."""
    ops = draw(any_events | status_events)
    again = draw(st.lists(st.sampled_from(ops), max_size=len(ops)))
    return draw(st.permutations([*ops, *again]))


def _status_reports(changes: list[cardflow.Change]) -> collections.Counter[tuple[str, str, str]]:
    return collections.Counter(
        (c.card_id, c.operation_id, c.status) for c in changes if c.kind == "STATUS"
    )


@pytest.mark.parametrize("passed", [False, True])
@given(ops=deliveries())
def test_each_operation_status_is_reported_at_most_once(passed: bool, ops: list[Operation]) -> None:
    states: dict[str, cardflow.CardState] = {}
    found: list[cardflow.Change] = []
    for op in ops:
        states[op.card_id], changed = cardflow.step(states.get(op.card_id), op, passed=passed)
        found += changed
    reports = _status_reports(found)
    assert not reports or max(reports.values()) == 1, reports.most_common(3)


@pytest.mark.parametrize("passed", [False, True])
@settings(max_examples=30)
@given(ops=deliveries())
def test_the_store_and_the_tracker_report_the_same_changes(
    passed: bool, ops: list[Operation]
) -> None:
    bodies = [cardflow.encode([op]) for op in ops]
    tracker = cardflow.Tracker(passed=passed)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'laws.db'}?synchronous=normal"
        with cardflow.store.open(url, passed=passed) as store:
            for body in bodies:
                assert store.ingest(body).changes == tracker.ingest(body).changes
            rows = collections.Counter(key for key, _ in store.outbox_keys())
    # Every reaction the Tracker would fire is one outbox row, and nothing more: no
    # change the Tracker reports twice is hidden by the outbox's unique key.
    replay = cardflow.Tracker(passed=passed)
    fired: collections.Counter[str] = collections.Counter()
    for body in bodies:
        fired.update(c.key for c in replay.ingest(body).changes if c.kind in REACTIONS)
    assert fired == rows
