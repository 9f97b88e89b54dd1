"""Handlers that the harness's own tests point ``check_handler`` at.

``TrackerHandler`` wraps cardflow's Tracker: the dogfood, which must pass. The naive
handlers are the mistakes people make with D1 notifications; each is right on easy
traffic (shown here, so that catching them elsewhere means something) and wrong on
D1's real delivery.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import cardflow
from cardflow import Shipment, Tracker
from cardflow.testing import HandlerMismatchError, check_handler

D1 = cardflow.D1_LIFECYCLE


class TrackerHandler:
    """cardflow's own Tracker, as a handler with every optional answer."""

    def __init__(self, lifecycle: cardflow.Lifecycle = D1) -> None:
        self.tracker = Tracker(lifecycle=lifecycle)

    def handle(self, body: bytes) -> None:
        self.tracker.ingest(body)

    def status(self, card_id: str) -> str | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.status

    def operation_id(self, card_id: str) -> str | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.operation_id

    def shipment(self, card_id: str) -> Shipment | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.shipment


def _produce(body: bytes) -> list[cardflow.Operation]:
    return [op for op in cardflow.decode_lenient(body).operations if op.operation == "PRODUCE"]


def _status_of(op: cardflow.Operation) -> str | None:
    return op.details.status if op.details is not None else None


class LastReceivedWins:
    """The status of the last PRODUCE event received: wrong as soon as events overtake."""

    def __init__(self) -> None:
        self.statuses: dict[str, str | None] = {}

    def handle(self, body: bytes) -> None:
        for op in _produce(body):
            self.statuses[op.card_id] = _status_of(op)

    def status(self, card_id: str) -> str | None:
        return self.statuses.get(card_id)


class DeduplicateByOperationId:
    """Drops every event whose operationId it has seen, as webhook guides advise.

    D1 sends one operationId for a card's whole production, so this keeps the first
    event of each operation and loses all the later ones.
    """

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.current: dict[str, tuple[datetime, str | None]] = {}

    def handle(self, body: bytes) -> None:
        for op in _produce(body):
            if op.operation_id in self.seen:
                continue
            self.seen.add(op.operation_id)
            known = self.current.get(op.card_id)
            if known is None or op.start_time > known[0]:
                self.current[op.card_id] = (op.start_time, _status_of(op))

    def status(self, card_id: str) -> str | None:
        known = self.current.get(card_id)
        return None if known is None else known[1]


class HighestPrecedenceEver:
    """The highest-ranking status ever seen for a card, whatever the operation.

    Right within one operation; wrong once a card is re-ordered, since the new
    operation starts again from the bottom.
    """

    def __init__(self) -> None:
        self.statuses: dict[str, str | None] = {}

    def handle(self, body: bytes) -> None:
        for op in _produce(body):
            status = _status_of(op)
            known = self.statuses.get(op.card_id)
            if known is None or D1.rank(status or "") > D1.rank(known):
                self.statuses[op.card_id] = status

    def status(self, card_id: str) -> str | None:
        return self.statuses.get(card_id)


class EveryOperationIsProduce:
    """Reads ``details.status`` of every operation in the body, whatever its type.

    Otherwise careful (newest operation, then highest precedence), so it is right
    until an ACTIVATE or STANDALONE_TRACKING operation shares the endpoint.
    """

    def __init__(self) -> None:
        self.current: dict[str, tuple[datetime, str, int, Any]] = {}

    def handle(self, body: bytes) -> None:
        for op in json.loads(body)["operations"]:
            status = op["details"]["status"]
            key = (
                datetime.fromisoformat(op["startTime"]),
                op["operationId"],
                D1.rank(status) if isinstance(status, str) else -1,
            )
            known = self.current.get(op["cardId"])
            if known is None or key > known[:3]:
                self.current[op["cardId"]] = (*key, status)

    def status(self, card_id: str) -> str | None:
        known = self.current.get(card_id)
        return None if known is None else known[3]


class NewestOperation:
    """Careful: the operation of greatest (startTime, operationId), then its status of
    highest precedence. Right on D1's traffic; each subclass gets one thing wrong."""

    def __init__(self) -> None:
        # card -> (the current operation as JSON, its status of highest precedence)
        self.current: dict[str, tuple[dict[str, Any], str]] = {}

    def takes_over(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        """Whether operation ``new`` replaces ``old`` (another operation of the card)."""
        return (datetime.fromisoformat(new["startTime"]), new["operationId"]) > (
            datetime.fromisoformat(old["startTime"]),
            old["operationId"],
        )

    def handle(self, body: bytes) -> None:
        for op in json.loads(body)["operations"]:
            if op["operation"] != "PRODUCE":
                continue
            status = op["details"]["status"]
            known = self.current.get(op["cardId"])
            if known is None or (
                known[0]["operationId"] != op["operationId"] and self.takes_over(op, known[0])
            ):
                self.current[op["cardId"]] = (op, status)
            elif known[0]["operationId"] == op["operationId"] and D1.rank(status) > D1.rank(
                known[1]
            ):
                self.current[op["cardId"]] = (known[0], status)

    def status(self, card_id: str) -> str | None:
        known = self.current.get(card_id)
        return None if known is None else known[1]


class TiesByArrival(NewestOperation):
    """Of two operations started at the same instant, the one heard from last wins.

    Right whenever a card's operations start at different instants; D1 orders equal
    start times by operationId, whatever the arrival.
    """

    def takes_over(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        return datetime.fromisoformat(new["startTime"]) >= datetime.fromisoformat(old["startTime"])


class StartTimeAsText(NewestOperation):
    """Compares ``startTime`` as text, as if ISO 8601 strings sorted like instants.

    They do in one offset at one precision; not across offsets (``10:00+02:00`` is
    before ``09:00Z``) nor precisions (``10:00:00.5Z`` sorts before ``10:00:00Z``).
    """

    def takes_over(self, new: dict[str, Any], old: dict[str, Any]) -> bool:
        return (new["startTime"], new["operationId"]) > (old["startTime"], old["operationId"])


class StrictStateMachine:
    """Moves a card only along the lifecycle's edges, and drops events that do not fit.

    Right when events come in order, once each; wrong when one overtakes another
    (it is dropped for good) or when one is lost.
    """

    def __init__(self) -> None:
        self.current: dict[str, tuple[str, str]] = {}

    def handle(self, body: bytes) -> None:
        for op in _produce(body):
            status = _status_of(op) or ""
            known = self.current.get(op.card_id)
            if known is None or known[0] != op.operation_id:
                fits = status == D1.initial
            else:
                fits = status in D1.successors(known[1])
            if fits:
                self.current[op.card_id] = (op.operation_id, status)

    def status(self, card_id: str) -> str | None:
        known = self.current.get(card_id)
        return None if known is None else known[1]


NAIVE = [
    LastReceivedWins,
    TiesByArrival,
    StartTimeAsText,
    DeduplicateByOperationId,
    HighestPrecedenceEver,
    EveryOperationIsProduce,
    StrictStateMachine,
]

# -- the naive handlers are plausible: right on easy traffic ------------------------

T0 = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def _event(status: str, *, card: str = "card-1", op: str = "op-1", hours: int = 0) -> bytes:
    notification = cardflow.Operation(
        operation_id=op,
        operation="PRODUCE",
        status="PENDING",
        start_time=T0 + timedelta(hours=hours),
        card_id=card,
        details=cardflow.Details(status=status),
    )
    return cardflow.encode([notification])


@pytest.mark.parametrize("make", [TrackerHandler, *NAIVE])
def test_every_handler_is_right_on_one_event(make: type[Any]) -> None:
    handler = make()
    assert handler.status("card-1") is None
    handler.handle(_event("CARD_PROD_REQUESTED"))
    assert handler.status("card-1") == "CARD_PROD_REQUESTED"
    assert handler.status("card-2") is None


@pytest.mark.parametrize(
    "make",
    [
        TrackerHandler,
        LastReceivedWins,
        HighestPrecedenceEver,
        EveryOperationIsProduce,
        StrictStateMachine,
    ],
)
def test_handlers_but_the_deduplicator_follow_events_in_order(make: type[Any]) -> None:
    handler = make()
    for status in ("CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY"):
        handler.handle(_event(status))
    assert handler.status("card-1") == "CARD_PROD_READY"


def test_the_deduplicator_loses_the_later_events_of_an_operation() -> None:
    handler = DeduplicateByOperationId()
    handler.handle(_event("CARD_PROD_REQUESTED"))
    handler.handle(_event("DATA_PREPARED"))
    assert handler.status("card-1") == "CARD_PROD_REQUESTED"


def test_highest_precedence_ever_ignores_a_new_operation() -> None:
    handler = HighestPrecedenceEver()
    handler.handle(_event("DATA_PREPARED"))
    handler.handle(_event("CARD_PROD_REQUESTED", op="op-2", hours=1))
    assert handler.status("card-1") == "DATA_PREPARED"
    tracker = TrackerHandler()
    tracker.handle(_event("DATA_PREPARED"))
    tracker.handle(_event("CARD_PROD_REQUESTED", op="op-2", hours=1))
    assert tracker.status("card-1") == "CARD_PROD_REQUESTED"


def test_every_operation_is_produce_reads_other_operations() -> None:
    handler = EveryOperationIsProduce()
    handler.handle(_event("CARD_PROD_REQUESTED"))
    other = {
        "operationId": "op-9",
        "operation": "STANDALONE_TRACKING",
        "status": "SUCCESSFUL",
        "startTime": "2025-03-02T00:00:00Z",
        "cardId": "card-1",
        "details": {"status": "CARD_RETURNED"},
    }
    handler.handle(json.dumps({"operations": [other]}).encode())
    assert handler.status("card-1") == "CARD_RETURNED"


def test_the_strict_state_machine_drops_an_event_that_overtook_another() -> None:
    handler = StrictStateMachine()
    handler.handle(_event("CARD_PROD_REQUESTED"))
    handler.handle(_event("CARD_PROD_READY"))
    handler.handle(_event("DATA_PREPARED"))
    assert handler.status("card-1") == "DATA_PREPARED"


# -- check_handler catches them within its default budget ---------------------------


def _caught(make: type[Any]) -> HandlerMismatchError:
    """The failure of ``make`` under check_handler with the profile's example budget."""
    with pytest.raises(HandlerMismatchError) as caught:
        check_handler(make)
    assert caught.value.what == "status", str(caught.value)
    return caught.value


def _starts(error: HandlerMismatchError) -> dict[str, str]:
    """Each operationId of the failing card, with its startTime as written."""
    return {
        op["operationId"]: op["startTime"]
        for body in error.bodies
        for op in json.loads(body)["operations"]
        if op["cardId"] == error.card_id
    }


def test_the_newest_operation_handler_is_right() -> None:
    """The base of the two handlers below: what they get wrong is all that fails them."""
    check_handler(NewestOperation, max_examples=100)


def test_ties_broken_by_arrival_are_caught() -> None:
    error = _caught(TiesByArrival)
    starts = _starts(error)
    assert len(starts) == 2, str(error)
    assert len({datetime.fromisoformat(t) for t in starts.values()}) == 1, str(error)


def test_start_times_compared_as_text_are_caught() -> None:
    error = _caught(StartTimeAsText)
    (a, a_start), (b, b_start) = sorted(_starts(error).items())
    by_text = (a_start, a) < (b_start, b)
    by_instant = (datetime.fromisoformat(a_start), a) < (datetime.fromisoformat(b_start), b)
    assert by_text != by_instant, str(error)


def test_dedupe_by_operation_id_alone_is_caught() -> None:
    error = _caught(DeduplicateByOperationId)
    assert len(_starts(error)) == 1, "one operation is enough: its later events are lost"


def test_last_received_wins_is_caught() -> None:
    error = _caught(LastReceivedWins)
    received = [
        op["details"]["status"]
        for body in error.bodies
        for op in json.loads(body)["operations"]
        if op["cardId"] == error.card_id
    ]
    assert error.actual == received[-1] != error.expected, "an event overtook a later one"
