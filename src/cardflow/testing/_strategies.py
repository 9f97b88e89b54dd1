"""Hypothesis strategies for realistic D1 traffic: true histories, deliveries, the oracle.

Every strategy checks its arguments when it is called (not when it is drawn from),
draws only through Hypothesis (no ``random``), and shrinks towards small, plain
cases: fewer cards, shorter walks that keep to the main path, fewer copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from hypothesis import strategies as st

from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._model import (
    CARRIERS,
    SITES,
    CardHistory,
    Expected,
    History,
    Plan,
    TrueOperation,
    expected_state,
    render,
)
from .._wire import Operation, encode

__all__ = [
    "Delivery",
    "Traffic",
    "card_ids",
    "deliveries",
    "histories",
    "operation_ids",
    "plans",
    "traffic",
    "walks",
]

UNKNOWN_STATUSES: Final = ("FUTURE_STATUS_A", "FUTURE_STATUS_B", "FUTURE_STATUS_C")
"""Codes no lifecycle of ours knows, standing for statuses D1 may add one day."""

OTHER_OPERATIONS: Final = (
    "ACTIVATE",
    "STANDALONE_TRACKING",
    "SUSPEND",
    "RESUME",
    "DIGITIZE",
    "RENEW",
    "CLICK_TO_PAY_ENROLMENT",
)
"""Operation types that share D1's notification endpoint with PRODUCE."""

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_HEX: Final = "0123456789abcdef"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_lifecycle(lifecycle: object) -> Lifecycle:
    _check(isinstance(lifecycle, Lifecycle), f"lifecycle must be a Lifecycle, got {lifecycle!r}")
    assert isinstance(lifecycle, Lifecycle)
    return lifecycle


def card_ids() -> st.SearchStrategy[str]:
    """Card identifiers shaped like D1's (``271b-6e47-8ec3-7f3f``)."""
    group = st.text(_HEX, min_size=4, max_size=4)
    return st.lists(group, min_size=4, max_size=4).map("-".join)


def operation_ids() -> st.SearchStrategy[str]:
    """Operation identifiers as D1 sends them (UUIDs: ``[A-Za-z0-9_-]``, 36 characters)."""
    return st.uuids().map(str)


def _times() -> st.SearchStrategy[datetime]:
    """Operation start times at millisecond precision, in UTC, 2024 to 2027."""
    return st.integers(0, 4 * 365 * 24 * 3600 * 1000).map(
        lambda ms: _EPOCH + timedelta(milliseconds=ms)
    )


@st.composite
def _walk(draw: st.DrawFn, lifecycle: Lifecycle, max_length: int) -> tuple[str, ...]:
    path = [lifecycle.initial]
    while len(path) < max_length:
        successors = lifecycle.successors(path[-1])
        # 0 stops (shrinks towards short walks); otherwise the walk goes on, most often.
        if not successors or draw(st.integers(0, 7)) == 0:
            break
        path.append(draw(st.sampled_from(successors)))
    return tuple(path)


def walks(
    lifecycle: Lifecycle = D1_LIFECYCLE, *, max_length: int | None = None
) -> st.SearchStrategy[tuple[str, ...]]:
    """Paths on the lifecycle from its initial state, stopping anywhere or at an end.

    Shrinks towards shorter walks along the lowest-precedence successors (for the
    default lifecycle, the main path).
    """
    lifecycle = _check_lifecycle(lifecycle)
    limit = len(lifecycle.statuses) if max_length is None else max_length
    _check(limit >= 1, f"max_length must be at least 1, got {max_length}")
    return _walk(lifecycle, limit)


@st.composite
def _plan(
    draw: st.DrawFn,
    lifecycle: Lifecycle,
    card_id: str,
    operation_id: str,
    unknown_statuses: bool,
) -> Plan:
    walk = draw(walks(lifecycle))
    unknown: tuple[tuple[int, str], ...] = ()
    if unknown_statuses:
        codes = [c for c in UNKNOWN_STATUSES if not lifecycle.is_known(c)]
        unknown = tuple(
            draw(
                st.lists(
                    st.tuples(st.integers(0, len(walk) - 1), st.sampled_from(codes)),
                    max_size=2,
                    unique_by=lambda t: t[1],
                )
            )
        )
    return Plan(
        card_id=card_id,
        operation_id=operation_id,
        start_time=draw(_times()),
        walk=walk,
        fail_at_end=draw(st.booleans()),
        duration=timedelta(hours=draw(st.integers(1, 30 * 24))),
        due_in_days=draw(st.integers(1, 14)),
        site=draw(st.sampled_from(SITES)),
        carrier=draw(st.sampled_from(CARRIERS)),
        tracking_number=draw(st.text("0123456789", min_size=8, max_size=12)),
        updates=tuple(draw(st.lists(st.integers(0, 3), min_size=len(walk), max_size=len(walk)))),
        unknown=unknown,
        issuer_request_id=draw(st.none() | st.text(_HEX, min_size=8, max_size=8)),
    )


def plans(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    card_id: str | None = None,
    unknown_statuses: bool = False,
) -> st.SearchStrategy[Plan]:
    """What really happened to one operation of one card (see :class:`Plan`)."""
    lifecycle = _check_lifecycle(lifecycle)
    cards = card_ids() if card_id is None else st.just(card_id)
    return st.tuples(cards, operation_ids()).flatmap(
        lambda ids: _plan(lifecycle, ids[0], ids[1], unknown_statuses)
    )


def _other_operation(card_id: str, operation: str, operation_id: str, start: datetime) -> Any:
    """A non-PRODUCE operation as plain JSON, its details shaped unlike PRODUCE's."""
    shapes: dict[str, Any] = {
        "STANDALONE_TRACKING": {"status": "CARD_RETURNED", "shipment": {"carrier": "dhl"}},
        "ACTIVATE": {"status": 7, "dueDate": "soon", "activationMethod": "OTP"},
        "DIGITIZE": ["wallet", "token"],
    }
    body: dict[str, Any] = {
        "operationId": operation_id,
        "operation": operation,
        "status": "SUCCESSFUL",
        "startTime": start.isoformat().replace("+00:00", "Z"),
        "endTime": (start + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
        "cardId": card_id,
    }
    if operation in shapes:
        body["details"] = shapes[operation]
    return body


@st.composite
def _history(
    draw: st.DrawFn,
    lifecycle: Lifecycle,
    min_cards: int,
    max_cards: int,
    max_operations: int,
    unknown_statuses: bool,
    other_operations: bool,
) -> History:
    count = draw(st.integers(min_cards, max_cards))
    ids = draw(st.lists(card_ids(), min_size=count, max_size=count, unique=True))
    cards = []
    for card_id in ids:
        n = draw(st.integers(1, max_operations))
        op_ids = draw(st.lists(operation_ids(), min_size=n, max_size=n, unique=True))
        operations = []
        for operation_id in op_ids:
            plan = draw(_plan(lifecycle, card_id, operation_id, unknown_statuses))
            operations.append(TrueOperation(plan, render(plan, lifecycle)))
        cards.append(CardHistory(card_id, tuple(operations)))
    others: list[Any] = []
    if other_operations and ids:
        for _ in range(draw(st.integers(0, 3))):
            others.append(
                _other_operation(
                    draw(st.sampled_from(ids)),
                    draw(st.sampled_from(OTHER_OPERATIONS)),
                    draw(operation_ids()),
                    draw(_times()),
                )
            )
    return History(cards=tuple(cards), others=tuple(msgspec.json.encode(o) for o in others))


def histories(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    min_cards: int = 1,
    max_cards: int = 4,
    max_operations: int = 2,
    unknown_statuses: bool = False,
    other_operations: bool = False,
) -> st.SearchStrategy[History]:
    """True histories of several cards: walks on ``lifecycle`` rendered as D1 notifications.

    Each card has one to ``max_operations`` PRODUCE operations (re-orders); with
    ``unknown_statuses`` some notifications carry statuses the lifecycle does not
    know; with ``other_operations`` non-PRODUCE operations for the same cards travel
    in the same bodies.
    """
    lifecycle = _check_lifecycle(lifecycle)
    _check(min_cards >= 1, f"min_cards must be at least 1, got {min_cards}")
    _check(max_cards >= min_cards, f"max_cards ({max_cards}) is below min_cards ({min_cards})")
    _check(max_operations >= 1, f"max_operations must be at least 1, got {max_operations}")
    return _history(
        lifecycle, min_cards, max_cards, max_operations, unknown_statuses, other_operations
    )


@dataclass(frozen=True)
class Delivery:
    """How D1 delivered a history: the bodies in arrival order, and what they carried.

    ``delivered`` holds every PRODUCE notification that arrived at least once (on-demand
    responses included); ``lost`` the ones that never did; ``repairs`` the on-demand
    responses appended after a loss, one per card that lost something.
    """

    bodies: tuple[bytes, ...]
    delivered: frozenset[Operation]
    lost: tuple[Operation, ...]
    repairs: tuple[Operation, ...]

    def describe(self) -> str:
        """The bodies, one per line, for a person reading a failed test."""
        return "\n".join(f"  body {i}: {b.decode()}" for i, b in enumerate(self.bodies))


def _op_json(op: Operation) -> bytes:
    body = encode([op])
    return body[len(b'{"operations":[') : -2]


def _body(items: Sequence[bytes]) -> bytes:
    return b'{"operations":[' + b",".join(items) + b"]}"


@st.composite
def _delivery(
    draw: st.DrawFn, history: History, max_bulk: int, max_copies: int, lose: bool
) -> Delivery:
    notes = history.notifications()
    sent: list[bytes] = []
    delivered: set[Operation] = set()
    lost: list[Operation] = []
    for note in notes:
        if lose and draw(st.integers(0, 4)) == 0:
            lost.append(note)
            continue
        delivered.add(note)
        sent.extend([_op_json(note)] * draw(st.integers(1, max_copies)))
    sent.extend(history.others)
    order = draw(st.permutations(sent)) if sent else []
    bodies: list[bytes] = []
    at = 0
    while at < len(order):
        size = draw(st.integers(1, min(max_bulk, len(order) - at)))
        bodies.append(_body(order[at : at + size]))
        at += size
    repairs: list[Operation] = []
    lost_cards = {n.card_id for n in lost}
    for card in history.cards:
        if card.card_id in lost_cards:
            latest = card.current.notifications[-1]
            repairs.append(latest)
            delivered.add(latest)
            bodies.append(_body([_op_json(latest)]))
    return Delivery(
        bodies=tuple(bodies),
        delivered=frozenset(delivered),
        lost=tuple(lost),
        repairs=tuple(repairs),
    )


def deliveries(
    history: History, *, max_bulk: int = 4, max_copies: int = 3, lose: bool = False
) -> st.SearchStrategy[Delivery]:
    """At-least-once delivery of ``history``: copies, any order, bulk bodies mixing cards.

    Every notification arrives one to ``max_copies`` times, in any order, in bodies of
    one to ``max_bulk`` operations. With ``lose``, some notifications never arrive;
    each card that lost one then gets an on-demand status response (its latest event).
    """
    _check(isinstance(history, History), f"history must be a History, got {history!r}")
    _check(max_bulk >= 1, f"max_bulk must be at least 1, got {max_bulk}")
    _check(max_copies >= 1, f"max_copies must be at least 1, got {max_copies}")
    return _delivery(history, max_bulk, max_copies, lose)


@dataclass(frozen=True)
class Traffic:
    """A true history, how it was delivered, and what a correct consumer must report."""

    history: History
    delivery: Delivery
    expected: dict[str, Expected]
    lifecycle: Lifecycle

    @property
    def bodies(self) -> tuple[bytes, ...]:
        """The bodies to feed a handler, in arrival order."""
        return self.delivery.bodies


def _expect(history: History, delivery: Delivery, lifecycle: Lifecycle) -> dict[str, Expected]:
    out: dict[str, Expected] = {}
    for card in history.cards:
        mine = [n for o in card.operations for n in o.notifications if n in delivery.delivered]
        found = expected_state(card, mine, lifecycle)
        if found is not None:
            out[card.card_id] = found
    return out


def traffic(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    min_cards: int = 1,
    max_cards: int = 4,
    max_operations: int = 2,
    max_bulk: int = 4,
    max_copies: int = 3,
    lose: bool = False,
    unknown_statuses: bool = False,
    other_operations: bool = False,
) -> st.SearchStrategy[Traffic]:
    """Histories, their at-least-once delivery, and the oracle's expected states."""
    lifecycle = _check_lifecycle(lifecycle)
    hist = histories(
        lifecycle,
        min_cards=min_cards,
        max_cards=max_cards,
        max_operations=max_operations,
        unknown_statuses=unknown_statuses,
        other_operations=other_operations,
    )
    _check(max_bulk >= 1, f"max_bulk must be at least 1, got {max_bulk}")
    _check(max_copies >= 1, f"max_copies must be at least 1, got {max_copies}")

    def attach(h: History) -> st.SearchStrategy[Traffic]:
        return deliveries(h, max_bulk=max_bulk, max_copies=max_copies, lose=lose).map(
            lambda d: Traffic(h, d, _expect(h, d, lifecycle), lifecycle)
        )

    return hist.flatmap(attach)
