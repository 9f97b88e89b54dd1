"""``step``, confirmation, reactions that survive failure, and passed statuses."""

from __future__ import annotations

import io
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cardflow
from cardflow import (
    CardState,
    Change,
    ChangeKind,
    Observation,
    ReactionError,
    ReconcileReason,
    Tracker,
    decode_lenient,
    encode_state,
    fold,
    needs_reconcile,
    step,
)
from cardflow.cli import run
from cardflow.cli._console import Console
from cardflow.testing import Traffic, traffic

D1 = cardflow.D1_LIFECYCLE
AT = datetime(2025, 2, 1, tzinfo=UTC)
many_traffic = traffic(max_cards=3, lose=True, unknown_statuses=True, other_operations=True)


def produce_ops(t: Traffic) -> list[cardflow.Operation]:
    return [
        op
        for body in t.bodies
        for op in decode_lenient(body).operations
        if op.operation == cardflow.PRODUCE
    ]


# -- step ------------------------------------------------------------------------------


@given(many_traffic)
def test_step_agrees_with_fold(t: Traffic) -> None:
    states: dict[str, CardState] = {}
    for op in produce_ops(t):
        old = states.get(op.card_id)
        new, found = step(old, op)
        assert (found == []) == (new == old)
        assert all(change.state is new for change in found)
        states[op.card_id] = new
    whole = fold(produce_ops(t))
    assert {c: encode_state(s) for c, s in states.items()} == {
        c: encode_state(s) for c, s in whole.items()
    }


@settings(max_examples=50)
@given(many_traffic, st.booleans(), st.booleans())
def test_step_is_apply_and_changes(t: Traffic, passed: bool, reading: bool) -> None:
    """``step`` takes a shorter way than its definition (a summary says whether anything
    changed): it gives what ``apply`` and ``changes`` give, with and without a reading."""
    states: dict[str, CardState] = {}
    at = AT if reading else None
    for op in produce_ops(t):
        old = states.get(op.card_id)
        new, found = step(old, op, at=at, passed=passed)
        defined = cardflow.apply(old, op, at=at)
        assert encode_state(new) == encode_state(defined)
        assert found == cardflow.changes(old, defined, passed=passed, operation_id=op.operation_id)
        states[op.card_id] = new


@given(many_traffic)
def test_the_tracker_reports_what_step_reports(t: Traffic) -> None:
    tracker = Tracker()
    states: dict[str, CardState] = {}
    for op in produce_ops(t):
        new, found = step(states.get(op.card_id), op)
        states[op.card_id] = new
        assert tracker.apply(op) == found


@given(many_traffic, st.lists(st.sampled_from([None, 0, 1, 2]), min_size=1))
def test_the_tracker_reports_what_step_reports_with_readings(
    t: Traffic, readings: list[int | None]
) -> None:
    """Some events read on demand (at one of three times, in any order, repeated):
    the tracker's changes are step's, and none exactly when the state stays equal."""
    tracker = Tracker()
    states: dict[str, CardState] = {}
    for i, op in enumerate(produce_ops(t)):
        day = readings[i % len(readings)]
        at = None if day is None else AT + timedelta(days=day)
        old = states.get(op.card_id)
        new, found = step(old, op, at=at)
        states[op.card_id] = new
        body = cardflow.encode([op])
        got = tracker.ingest(body) if at is None else tracker.reconcile(body, at=at)
        assert got.changes == found
        assert (found == []) == (new == old)
        assert tracker[op.card_id] == new


def test_an_event_of_an_older_operation_is_an_older_change_about_that_operation() -> None:
    """The operation that started last stays current; an event of an older one, its
    first or a later one, changes nothing the card reports: one OLDER change, naming
    that operation and its status (found by mutation testing)."""
    state = fold(cardflow.decode(_body("CARD_PROD_DONE", "op-3", "2025-03-01T00:00:00Z")))
    current = state["c-1"]
    events = [
        ("op-1", "CARD_PROD_READY", "2025-01-01T00:00:00Z"),
        ("op-2", "CARD_PROD_ONGOING", "2025-02-01T00:00:00Z"),
        ("op-1", "CARD_PROD_DONE", "2025-01-01T00:00:00Z"),
    ]
    for op_id, status, start in events:
        new, found = step(current, cardflow.decode(_body(status, op_id, start))[0])
        assert [(c.kind, c.operation_id, c.status, c.previous_status) for c in found] == [
            (ChangeKind.OLDER, op_id, status, None)
        ]
        assert (new.operation_id, new.status) == ("op-3", "CARD_PROD_DONE")
        current = new
    assert set(current.operation_ids) == {"op-1", "op-2", "op-3"}


def test_changes_report_the_status_that_became_current_unless_asked_for_each_passed() -> None:
    """By default one STATUS change for the new current status, the gaps it skipped
    listed; ``passed=True`` one per status passed (found by mutation testing)."""
    old = fold(cardflow.decode(_body("CARD_PROD_REQUESTED")))["c-1"]
    new = cardflow.apply(old, cardflow.decode(_body("CARD_PROD_READY"))[0])
    found = cardflow.changes(old, new)
    assert [(c.kind, c.status, c.previous_status, c.skipped, c.observation) for c in found] == [
        (
            ChangeKind.STATUS,
            "CARD_PROD_READY",
            "CARD_PROD_REQUESTED",
            ("DATA_PREPARED",),
            "IN_ORDER",
        )
    ]
    passed = cardflow.changes(old, new, passed=True)
    assert [(c.status, c.observation) for c in passed] == [
        ("DATA_PREPARED", Observation.INFERRED),
        ("CARD_PROD_READY", Observation.IN_ORDER),
    ]


def test_step_refuses_another_card_and_a_first_event_of_another_type() -> None:
    body = b"""{"operations": [{"operationId": "a", "operation": "PRODUCE", "status": "PENDING",
      "startTime": "2025-01-17T06:28:02Z", "cardId": "c-1",
      "details": {"status": "DATA_PREPARED"}}]}"""
    (op,) = cardflow.decode(body)
    state, _ = step(None, op)
    with pytest.raises(cardflow.CardMismatchError):
        step(state, cardflow.Operation(**{**_fields(op), "card_id": "c-2"}))
    with pytest.raises(cardflow.NotProduceError):
        step(None, cardflow.Operation(**{**_fields(op), "operation": "ACTIVATE"}))
    same, found = step(state, cardflow.Operation(**{**_fields(op), "operation": "ACTIVATE"}))
    assert (same, found) == (state, [])


def _fields(op: cardflow.Operation) -> dict[str, Any]:
    return {name: getattr(op, name) for name in op.__struct_fields__}


# -- confirmation ----------------------------------------------------------------------


def _body(status: str, op_id: str = "op-1", start: str = "2025-01-17T06:28:02Z") -> bytes:
    return (
        b'{"operations":[{"operationId":"%s","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"%s","cardId":"c-1","details":{"status":"%s"}}]}'
        % (op_id.encode(), start.encode(), status.encode())
    )


def test_a_confirmation_clears_gaps_below_it_and_silence() -> None:
    tracker = Tracker()
    tracker.ingest(_body("CARD_PROD_READY"))
    later = AT + timedelta(days=30)
    reasons = needs_reconcile(tracker["c-1"], later)
    assert reasons == (ReconcileReason.GAPS, ReconcileReason.SILENT)
    tracker.reconcile(_body("CARD_PROD_READY"), at=later)
    state = tracker["c-1"]
    assert (state.confirmed_at, state.confirmed_status) == (later, "CARD_PROD_READY")
    assert state.gaps == ("CARD_PROD_REQUESTED", "DATA_PREPARED")  # still listed
    assert needs_reconcile(state, later + timedelta(days=1)) == ()
    # Silence counts from the confirmation again.
    assert needs_reconcile(state, later + timedelta(days=15)) == (ReconcileReason.SILENT,)


def test_a_confirmation_of_a_lower_status_leaves_higher_gaps_open() -> None:
    tracker = Tracker()
    tracker.ingest(_body("CARD_PROD_ONGOING"))
    tracker.reconcile(_body("DATA_PREPARED"), at=AT)
    assert ReconcileReason.GAPS in needs_reconcile(tracker["c-1"], AT)
    tracker.reconcile(_body("CARD_PROD_ONGOING"), at=AT - timedelta(days=1))
    state = tracker["c-1"]
    assert (state.confirmed_at, state.confirmed_status) == (AT, "CARD_PROD_ONGOING")
    assert ReconcileReason.GAPS not in needs_reconcile(state, AT)


def test_a_confirmed_known_status_outranks_a_confirmed_unknown_one_every_way() -> None:
    """The highest status read is kept, an unknown status below every known one; the
    same through a tracker, ``apply`` to a saved state and ``merge`` (mutation testing)."""
    unknown = cardflow.decode(_body("A_NEW_CODE"))[0]
    requested = cardflow.decode(_body("CARD_PROD_REQUESTED"))[0]
    tracker = Tracker()
    tracker.reconcile(_body("A_NEW_CODE"), at=AT)
    tracker.reconcile(_body("CARD_PROD_REQUESTED"), at=AT - timedelta(days=1))
    first = cardflow.apply(None, unknown, at=AT)
    second = cardflow.apply(None, requested, at=AT - timedelta(days=1))
    for state in (
        tracker["c-1"],
        cardflow.apply(first, requested, at=AT - timedelta(days=1)),
        cardflow.apply(second, unknown, at=AT),
        cardflow.merge(first, second),
        cardflow.merge(second, first),
    ):
        assert (state.confirmed_status, state.confirmed_at) == ("CARD_PROD_REQUESTED", AT)


def test_of_two_confirmed_unknown_statuses_the_greater_is_kept_every_way() -> None:
    a = cardflow.decode(_body("A_NEW_CODE"))[0]
    b = cardflow.decode(_body("B_NEW_CODE"))[0]
    first = cardflow.apply(None, a, at=AT)
    second = cardflow.apply(None, b, at=AT)
    for state in (
        cardflow.apply(first, b, at=AT),
        cardflow.apply(second, a, at=AT),
        cardflow.merge(first, second),
    ):
        assert state.confirmed_status == "B_NEW_CODE"


def test_a_confirmation_belongs_to_its_operation() -> None:
    tracker = Tracker()
    tracker.reconcile(_body("CARD_PROD_READY"), at=AT)
    tracker.ingest(_body("CARD_PROD_DONE", op_id="op-2", start="2025-01-20T00:00:00Z"))
    state = tracker["c-1"]
    assert (state.operation_id, state.confirmed_at, state.confirmed_status) == ("op-2", None, None)
    assert ReconcileReason.GAPS in needs_reconcile(state, AT)


@given(many_traffic, st.data())
def test_confirmations_keep_the_laws(t: Traffic, data: st.DataObject) -> None:
    """Events and on-demand readings in any order, split anywhere: the same bytes."""
    ops = produce_ops(t)
    readings = [
        (
            op,
            AT + timedelta(hours=data.draw(st.integers(0, 3)))
            if data.draw(st.booleans())
            else None,
        )
        for op in ops
    ]
    order = data.draw(st.permutations(readings))
    cut = data.draw(st.integers(0, len(order)))
    parts = []
    for chunk in (order[:cut], order[cut:]):
        folder = cardflow.Folder()
        for op, at in chunk:
            folder.add(op, at=at)
        parts.append(folder.states())
    whole = cardflow.Folder()
    for op, at in readings:
        whole.add(op, at=at)
    merged = dict(parts[0])
    for card, state in parts[1].items():
        merged[card] = cardflow.merge(merged[card], state) if card in merged else state
    assert {c: encode_state(s) for c, s in merged.items()} == {
        c: encode_state(s) for c, s in whole.states().items()
    }


# -- reactions that fail ---------------------------------------------------------------


class Flaky:
    """Reactions for every known status that raise at random, recording successes."""

    def __init__(self, seed: int, failure_rate: float) -> None:
        self.random = random.Random(seed)
        self.failure_rate = failure_rate
        self.succeeded: list[str] = []
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        prefix = "on_enter_"
        if name.startswith(prefix) and D1.is_known(name[len(prefix) :]):
            return self.react
        raise AttributeError(name)

    def react(self, change: Change) -> None:
        self.calls += 1
        if self.random.random() < self.failure_rate:
            raise RuntimeError(f"flaky reaction to {change.key}")
        self.succeeded.append(change.key)


def deliver_until_accepted(tracker: Tracker, t: Traffic) -> None:
    """Each body is delivered again while the tracker raises, as D1 does on a 5xx."""
    for body in t.bodies:
        for _ in range(200):
            try:
                tracker.ingest(body)
                break
            except ReactionError as error:
                failed = error
            assert len(failed.exceptions) == len(failed.changes) >= 1
            assert isinstance(failed.ingested, cardflow.Ingested)
        else:
            raise AssertionError("a body was never accepted")


@pytest.mark.parametrize("passed", [False, True])
@given(
    t=traffic(max_cards=3, lose=True),
    seed=st.integers(0, 2**32),
    rate=st.sampled_from([0.0, 0.3, 0.6]),
)
def test_every_reaction_fires_once_it_succeeds_and_never_again(
    passed: bool, t: Traffic, seed: int, rate: float
) -> None:
    reactions = Flaky(seed, rate)
    tracker = Tracker(reactions=reactions, passed=passed)
    deliver_until_accepted(tracker, t)
    # Never twice after success.
    assert [k for k, n in Counter(reactions.succeeded).items() if n > 1] == []
    # Every reaction the oracle expects for each card's current operation succeeded:
    # its status (when current), or every status it is known to have passed.
    assert tracker.pending == []
    for card_id, want in t.expected.items():
        if not D1.is_known(want.status):
            continue
        expected = set(want.observed | want.gaps) if passed else {want.status}
        keys = {f"{card_id}/{want.operation_id}/{s}" for s in expected}
        assert keys <= set(reactions.succeeded)


def test_after_only_unknown_statuses_the_first_known_one_is_passed_in_order() -> None:
    """An unknown status ranks below every known one: nothing known was passed before it,
    so the first known status is passed in order, not late (found by mutation testing)."""
    before = fold(cardflow.decode(_body("A_NEW_CODE")))["c-1"]
    for event in ("CARD_PROD_REQUESTED", "DATA_PREPARED"):
        op = cardflow.decode(_body(event))[0]
        new, found = step(before, op, passed=True)
        passed = [(c.status, c.observation) for c in found if c.kind == ChangeKind.STATUS]
        want = [("CARD_PROD_REQUESTED", Observation.INFERRED)] if event == "DATA_PREPARED" else []
        assert passed == [*want, (event, Observation.IN_ORDER)]
        assert new.status == event


def test_statuses_passed_below_a_higher_one_are_late_or_inferred_each_after_the_last() -> None:
    """A cancel heard first, then CARD_PROD_ONGOING: ONGOING came late, the statuses every
    path to it passes are inferred, and each change names the one before it."""
    before = fold(cardflow.decode(_body("CARD_PROD_CANCELED")))["c-1"]
    _, found = step(before, cardflow.decode(_body("CARD_PROD_ONGOING"))[0], passed=True)
    assert [(c.kind, c.status, c.observation, c.previous_status) for c in found] == [
        (ChangeKind.STATUS, "DATA_PREPARED", Observation.INFERRED, "CARD_PROD_CANCELED"),
        (ChangeKind.STATUS, "CARD_PROD_READY", Observation.INFERRED, "DATA_PREPARED"),
        (ChangeKind.STATUS, "CARD_PROD_ONGOING", Observation.LATE, "CARD_PROD_READY"),
    ]
    # Each passed status is reported on its own: none skips another.
    assert [c.skipped for c in found] == [(), (), ()]


def test_a_first_event_is_passed_in_order() -> None:
    first = cardflow.decode(_body("CARD_PROD_REQUESTED"))[0]
    _, found = step(None, first, passed=True)
    assert [(c.status, c.observation, c.previous_status, c.skipped) for c in found] == [
        ("CARD_PROD_REQUESTED", Observation.IN_ORDER, None, ())
    ]


def test_step_with_a_reading_time_confirms() -> None:
    new, _ = step(None, cardflow.decode(_body("CARD_PROD_READY"))[0], at=AT)
    assert (new.confirmed_at, new.confirmed_status) == (AT, "CARD_PROD_READY")


@given(traffic(max_cards=3, lose=True))
def test_passed_statuses_fire_in_lifecycle_order_along_the_true_path(t: Traffic) -> None:
    fired: list[Change] = []

    class Record:
        def __getattr__(self, name: str) -> Any:
            if name.startswith("on_enter_") and D1.is_known(name[9:]):
                return fired.append
            raise AttributeError(name)

    tracker = Tracker(reactions=Record(), passed=True)
    for body in t.bodies:
        tracker.ingest(body)
    for card in t.history.cards:
        want = t.expected.get(card.card_id)
        if want is None:
            continue
        mine = [
            c for c in fired if (c.card_id, c.operation_id) == (card.card_id, want.operation_id)
        ]
        statuses = [c.status for c in mine]
        assert set(statuses) == set(want.observed | want.gaps)
        assert len(statuses) == len(set(statuses))
        truth = next(o for o in card.operations if o.plan.operation_id == want.operation_id)
        assert set(statuses) <= set(truth.plan.walk)
        for change in mine:
            # Inferred exactly when not notified yet at the time it fired.
            inferred = change.observation == Observation.INFERRED
            assert inferred == (change.status not in change.state.observed)
            assert change.status in change.state.observed or change.status in change.state.gaps


def test_a_failed_reaction_fires_again_on_the_next_delivery_and_the_body_is_applied() -> None:
    calls: list[str] = []

    class Reactions:
        fail = True

        def on_enter_DATA_PREPARED(self, change: Change) -> None:  # noqa: N802
            calls.append(change.key)
            if self.fail:
                raise ValueError("mail server down")

    reactions = Reactions()
    tracker = Tracker(reactions=reactions)
    body = (
        b'{"operations":['
        b'{"operationId":"op-1","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-1","details":{"status":"DATA_PREPARED"}},'
        b'{"operationId":"op-2","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-2","details":{"status":"CARD_PROD_READY"}}]}'
    )
    with pytest.raises(ReactionError) as caught:
        tracker.ingest(body)
    assert set(tracker) == {"c-1", "c-2"}  # the whole body was applied
    assert [c.key for c in caught.value.changes] == ["c-1/op-1/DATA_PREPARED"]
    assert "c-1/op-1/DATA_PREPARED" in str(caught.value.exceptions[0].__notes__)
    assert [c.key for c in tracker.pending] == ["c-1/op-1/DATA_PREPARED"]
    reactions.fail = False
    assert tracker.ingest(body).changes == []  # a duplicate: no change...
    assert calls == ["c-1/op-1/DATA_PREPARED"] * 2  # ...but the owed reaction fired
    assert tracker.pending == []
    tracker.ingest(body)
    assert len(calls) == 2
    matched, rest = caught.value.split(ValueError)
    assert isinstance(matched, ReactionError)
    assert rest is None
    assert matched.changes == caught.value.changes


def test_change_keys() -> None:
    tracker = Tracker()
    body = (
        b'{"operations":[{"operationId":"op-1","operation":"PRODUCE","status":"SUCCESSFUL",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-1","details":{"status":"CARD_SHIPPED",'
        b'"shipment":{"carrier":"dhl","lastUpdatedAt":"2025-01-20T10:00:00+01:00"}}}]}'
    )
    found = tracker.ingest(body).changes
    assert [c.kind for c in found] == [ChangeKind.STATUS, ChangeKind.SHIPMENT]
    assert found[0].key == "c-1/op-1/CARD_SHIPPED"
    assert found[1].key.startswith("c-1/op-1/shipment@2025-01-20T09:00:00+00:00#")


def test_a_logged_reading_says_when_it_was_read() -> None:
    body = _body("CARD_PROD_READY")
    assert cardflow.reading_time(body) is None
    logged = b'{"confirmedAt": "2025-02-01T01:00:00+01:00", ' + body[1:]
    assert cardflow.reading_time(logged) == AT
    assert cardflow.reading_time(logged.decode()) == AT
    assert cardflow.decode(logged) == cardflow.decode(body)
    with pytest.raises(cardflow.InvalidNotification) as caught:
        cardflow.reading_time(b'{"confirmedAt": "yesterday", ' + body[1:])
    assert caught.value.path == "$.confirmedAt"
    assert cardflow.reading_time(b'{"confirmedAt": "2025-02-01T00:00:00Z", "operations": 3') is None


def test_a_logged_reading_is_folded_as_a_reading_everywhere(tmp_path: Path) -> None:
    notification = _body("CARD_PROD_READY")
    reading = b'{"confirmedAt": "2025-02-01T00:00:00Z", ' + _body("CARD_PROD_READY")[1:]
    folder = cardflow.Folder()
    for body in (notification, reading):
        assert folder.ingest(body).ok
    tracker = Tracker()
    for body in (notification, reading):
        tracker.ingest(body)
    expected = tracker["c-1"]
    assert (expected.confirmed_at, expected.confirmed_status) == (AT, "CARD_PROD_READY")
    assert folder["c-1"] == expected
    bad = b'{"confirmedAt": "soon", ' + _body("CARD_PROD_READY")[1:]
    (reject,) = folder.ingest(bad).rejects
    assert (reject.index, reject.path) == (None, "$.confirmedAt")
    assert [r.path for r in tracker.ingest(bad).rejects] == ["$.confirmedAt"]
    # The command line, in one process and in two.
    log = tmp_path / "log.jsonl"
    log.write_bytes(notification + b"\n" + reading + b"\n" + bad + b"\n")
    outputs = []
    for jobs in ("1", "2"):
        out = io.BytesIO()
        err = io.StringIO()
        console = Console(stdin=io.BytesIO(), stdout=out, stderr=err, environ={}, clock=lambda: AT)
        code = run(
            ["fold", str(log), "--format", "jsonl", "--jobs", jobs, "--part-size", "200"], console
        )
        assert code == 1  # the bad line was rejected...
        assert f"{log}:3: $.confirmedAt" in err.getvalue()
        outputs.append(out.getvalue())
    (card,) = [json.loads(line) for line in outputs[0].splitlines()]
    assert (card["confirmedAt"], card["confirmedStatus"]) == (
        "2025-02-01T00:00:00Z",
        "CARD_PROD_READY",
    )
    assert outputs[0] == outputs[1]


def test_step_folds_with_the_lifecycle_given() -> None:
    mine = cardflow.Lifecycle(
        name="mine",
        states=("A", {"name": "B", "final": True}),
        transitions=[["go", "A", "B"]],
        initial="A",
    )
    new, found = step(None, cardflow.decode(_body("B"))[0], lifecycle=mine)
    assert (new.status, new.gaps, new.unknown_statuses) == ("B", ("A",), ())
    assert [(c.kind, c.status) for c in found] == [(ChangeKind.STATUS, "B")]
    # Its changes too: the statuses passed are the lifecycle's.
    _, found = step(None, cardflow.decode(_body("B"))[0], passed=True, lifecycle=mine)
    assert [(c.kind, c.status, c.observation) for c in found] == [
        (ChangeKind.STATUS, "A", Observation.INFERRED),
        (ChangeKind.STATUS, "B", Observation.IN_ORDER),
    ]


def test_decode_reading_gives_the_reading_time_or_rejects_the_whole_body() -> None:
    body = _body("CARD_PROD_READY")
    assert cardflow.decode_reading(body) == (cardflow.decode_lenient(body), None)
    logged = b'{"confirmedAt": "2025-02-01T00:00:00Z", ' + body[1:]
    assert cardflow.decode_reading(logged) == (cardflow.decode_lenient(body), AT)
    bad = b'{"confirmedAt": 7, ' + body[1:]
    decoded, at = cardflow.decode_reading(bad)
    assert (decoded.operations, at) == ([], None)
    assert [(r.index, r.path, r.raw) for r in decoded.rejects] == [(None, "$.confirmedAt", bad)]


@pytest.mark.parametrize("again", [timedelta(0), -timedelta(days=1)])
def test_a_reading_that_changes_nothing_is_no_change_in_the_tracker(again: timedelta) -> None:
    """The same reading again, or an older one of the same status, leaves the state as
    it is: the tracker reports what ``step`` reports, nothing."""
    tracker = Tracker()
    tracker.ingest(_body("CARD_PROD_READY"))
    assert [c.kind for c in tracker.reconcile(_body("CARD_PROD_READY"), at=AT).changes] == [
        ChangeKind.REVISED
    ]
    before = tracker["c-1"]
    op = cardflow.decode(_body("CARD_PROD_READY"))[0]
    after, expected = step(before, op, at=AT + again)
    assert after == before
    assert expected == []
    assert tracker.reconcile(_body("CARD_PROD_READY"), at=AT + again).changes == expected
    assert tracker["c-1"] == before


def test_passed_reports_a_status_inferred_then_notified_once() -> None:
    """CARD_PROD_READY infers DATA_PREPARED; DATA_EXCEPTION (whose paths may skip it)
    follows; then DATA_PREPARED itself arrives: fired once, as inferred."""
    fired: list[str] = []

    class Reactions:
        def on_enter_DATA_PREPARED(self, change: cardflow.Change) -> None:  # noqa: N802
            fired.append(f"{change.key} {change.observation}")

    tracker = cardflow.Tracker(passed=True, reactions=Reactions())
    for status in ("CARD_PROD_READY", "DATA_EXCEPTION", "DATA_PREPARED"):
        op = cardflow.Operation(
            operation_id="op-1",
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=datetime(2025, 1, 17, tzinfo=UTC),
            card_id="c",
            details=cardflow.Details(status=status),
        )
        tracker.apply(op)
    assert fired == ["c/op-1/DATA_PREPARED INFERRED"]
