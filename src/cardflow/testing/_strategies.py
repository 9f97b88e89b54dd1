"""Hypothesis strategies for realistic D1 traffic: true histories, deliveries, the oracle.

Every strategy checks its arguments when it is called (not when it is drawn from),
draws only through Hypothesis (no ``random``), and shrinks towards small, plain
cases: fewer cards, shorter walks that keep to the main path, no loss, one copy of
each notification in true order, in as few bodies as the bulk size allows.

Walks aim at the lifecycle's edges in turn (see ``_walk``), so that the default
example budget exercises every edge, deep ones included (see ``edge_coverage``).
Choices are kept few (one per identifier, one for all the cosmetic fields of a
plan), since generating and shrinking whole histories is what a failing check
spends its time on.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec
from hypothesis import strategies as st

from .._lifecycle import D1_LIFECYCLE, Edge, Lifecycle
from .._model import (
    CARRIERS,
    SITES,
    CardHistory,
    Expected,
    History,
    Plan,
    TrueOperation,
    _shipment,
    expected_state,
    render,
)
from .._wire import Checkpoint, Details, Operation, Shipment, encode

__all__ = [
    "Delivery",
    "Traffic",
    "card_ids",
    "checkpoints",
    "deliveries",
    "describe_bodies",
    "details",
    "histories",
    "operation_ids",
    "operations",
    "plans",
    "shipments",
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
_FILE_NAMES: Final = ("cards-20240101.csv", "batch_0042.json", "ISSUER-7.txt")
_FLAVOURS: Final = (
    30 * 24 * 14 * len(SITES) * len(CARRIERS) * (1 + 0xFFF) * (1 + len(_FILE_NAMES)) * 10**9
)
"""How many looks a plan can take (durations, due dates, sites, carriers, ids...)."""
_SHIPPING: Final = tuple(
    s for s in D1_LIFECYCLE.statuses if "shipment" in D1_LIFECYCLE.carries(s)
) or (D1_LIFECYCLE.initial,)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _check_count(name: str, value: object, minimum: int) -> None:
    """``value`` must be an int (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    _check(value >= minimum, f"{name} must be at least {minimum}, got {value}")


def _check_lifecycle(lifecycle: object) -> Lifecycle:
    _check(isinstance(lifecycle, Lifecycle), f"lifecycle must be a Lifecycle, got {lifecycle!r}")
    assert isinstance(lifecycle, Lifecycle)
    return lifecycle


def _card_id(number: int) -> str:
    digits = f"{number:016x}"
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def card_ids() -> st.SearchStrategy[str]:
    """Card identifiers shaped like D1's (``271b-6e47-8ec3-7f3f``); shrink to all zeros.

    One choice per identifier (not one per character): generation and shrinking of
    whole histories stay fast.
    """
    return st.integers(0, 2**64 - 1).map(_card_id)


@st.composite
def _distinct(draw: st.DrawFn, count: int, bound: int) -> list[int]:
    """``count`` distinct integers below ``bound``, in no particular order.

    Distinct by construction (running sums of positive steps), so that neither
    generation nor shrinking ever rejects a draw; shrinks towards 0, 1, 2, ...
    """
    if count == 0:
        return []
    step = bound // count  # the sum of count steps stays below bound
    total = draw(st.integers(0, step - 1))
    out = [total]
    for _ in range(count - 1):
        total += 1 + draw(st.integers(0, step - 2))
        out.append(total)
    return out


def _uuid(number: int) -> str:
    return str(uuid.UUID(int=number, version=4))


def operation_ids() -> st.SearchStrategy[str]:
    """Operation identifiers as D1 sends them (UUIDs: ``[A-Za-z0-9_-]``, 36 characters).

    Version 4 UUIDs that shrink to ``00000000-0000-4000-8000-000000000000``.
    """
    return st.integers(0, 2**128 - 1).map(_uuid)


def _times() -> st.SearchStrategy[datetime]:
    """Operation start times at millisecond precision, in UTC, 2024 to 2027."""
    return st.integers(0, 4 * 365 * 24 * 3600 * 1000).map(
        lambda ms: _EPOCH + timedelta(milliseconds=ms)
    )


class _WalkTables:
    """What walk generation needs from a lifecycle, built once per lifecycle.

    ``next`` lists each status's successors main path first: successors that go on
    before those that end the production in failure, and those before the ones that
    carry an error, then by precedence. Hypothesis shrinks a choice towards the first
    option, so shrunk walks keep to the main path. ``dist[a][b]`` is the fewest edges
    from ``a`` to ``b`` (absent when ``b`` cannot follow ``a``).
    """

    def __init__(self, lifecycle: Lifecycle) -> None:
        def main_first(status: str) -> tuple[bool, bool, int]:
            ends_badly = lifecycle.is_final(status) and not lifecycle.is_success(status)
            return (ends_badly, "error" in lifecycle.carries(status), lifecycle.rank(status))

        self.next: dict[str, tuple[str, ...]] = {
            s: tuple(sorted(lifecycle.successors(s), key=main_first)) for s in lifecycle.statuses
        }
        self.dist: dict[str, dict[str, int]] = {}
        for origin in lifecycle.statuses:
            found = {origin: 0}
            frontier = [origin]
            while frontier:
                step = []
                for status in frontier:
                    for nxt in self.next[status]:
                        if nxt not in found:
                            found[nxt] = found[status] + 1
                            step.append(nxt)
                frontier = step
            self.dist[origin] = found
        self.edges: tuple[Edge, ...] = lifecycle.edges
        self.initial = lifecycle.initial
        self.success = {s: lifecycle.is_success(s) for s in lifecycle.statuses}

    def targets(self, max_length: int) -> tuple[Edge, ...]:
        """The edges a walk of at most ``max_length`` statuses can aim at and still take."""
        start = self.dist[self.initial]
        return tuple(e for e in self.edges if start[e.source] + 2 <= max_length)


def _walk_tables(lifecycle: Lifecycle) -> _WalkTables:
    return lifecycle.memo("cardflow.testing.walks", _WalkTables)


@st.composite
def _walk(
    draw: st.DrawFn, lifecycle: Lifecycle, max_length: int, aim: int | None = None
) -> tuple[str, ...]:
    """A walk from the initial status; first, it may aim at one edge it must take.

    ``aim`` is drawn unless given, and taken modulo the number of choices. Choice 0
    walks freely; choice ``i`` aims at the ``i``-th edge that fits in ``max_length``:
    the walk goes to its source (any way that fits, the shortest first), takes it,
    then walks on freely. Aiming spreads the walks over every edge, however deep, so
    that a hundred examples exercise the whole lifecycle; free walks alone reach a
    deep edge once in hundreds of walks. Shrinking goes to choice 0 (a free walk)
    and to stopping early.
    """
    tables = _walk_tables(lifecycle)
    dist = tables.dist
    path = [tables.initial]
    targets = tables.targets(max_length)
    if aim is None:
        aim = draw(st.integers(0, len(targets)))
    aim %= len(targets) + 1
    if aim:
        edge = targets[aim - 1]
        while path[-1] != edge.source:
            here = path[-1]
            room = max_length - len(path) - 2  # statuses left between here and the source
            ways = [
                s
                for s in tables.next[here]
                if edge.source in dist[s] and dist[s][edge.source] <= room
            ]
            ways.sort(key=lambda s: dist[s][edge.source])  # stable: main path among equals
            path.append(draw(st.sampled_from(ways)))
        path.append(edge.dest)
    while len(path) < max_length:
        # 0 stops, so walks shrink short. A walk goes on seven times in eight, but
        # past a success (a shipped card) it mostly stops, as most real cards do.
        # Drawn at an end too: then stopping early is never a more complex choice
        # than running to an end, and shrinking prefers it.
        if tables.success[path[-1]]:
            goes_on = draw(st.integers(0, 3)) == 3
        else:
            goes_on = draw(st.integers(0, 7)) != 0
        successors = tables.next[path[-1]]
        if not goes_on or not successors:
            break
        # The main successor twice as likely as each other one (0 and 1 pick it).
        path.append(successors[max(0, draw(st.integers(0, len(successors))) - 1)])
    return tuple(path)


def walks(
    lifecycle: Lifecycle = D1_LIFECYCLE, *, max_length: int | None = None
) -> st.SearchStrategy[tuple[str, ...]]:
    """Paths on the lifecycle from its initial state, stopping anywhere or at an end.

    Spread over every edge of the lifecycle (see :func:`edge_coverage`), and shrinks
    towards short walks along the main path: successors that go on come before those
    that end in failure.
    """
    lifecycle = _check_lifecycle(lifecycle)
    limit = len(lifecycle.statuses) if max_length is None else max_length
    _check_count("max_length", limit, 1)
    return _walk(lifecycle, limit)


@st.composite
def _plan(
    draw: st.DrawFn,
    lifecycle: Lifecycle,
    card_id: str,
    operation_id: str,
    start_time: datetime,
    unknown_statuses: bool,
    aim: int | None = None,
) -> Plan:
    walk = draw(_walk(lifecycle, len(lifecycle.statuses), aim))
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
    # The fields that only make the notifications look real come from one choice,
    # split in mixed radix: fewer choices make generating and shrinking whole
    # histories several times faster, and 0 (where shrinking goes) gives the plainest.
    rest = draw(st.integers(0, _FLAVOURS - 1))
    rest, hours = divmod(rest, 30 * 24)
    rest, due = divmod(rest, 14)
    rest, site = divmod(rest, len(SITES))
    rest, carrier = divmod(rest, len(CARRIERS))
    rest, request = divmod(rest, 1 + 0xFFF)
    tracking, file = divmod(rest, 1 + len(_FILE_NAMES))
    return Plan(
        card_id=card_id,
        operation_id=operation_id,
        start_time=start_time,
        walk=walk,
        fail_at_end=draw(st.booleans()),
        duration=timedelta(hours=1 + hours),
        due_in_days=1 + due,
        site=SITES[site],
        carrier=CARRIERS[carrier],
        tracking_number=str(10**9 + tracking),
        # Further shipment updates, drawn only where a status carries a shipment.
        updates=tuple(
            draw(st.integers(0, 3)) if "shipment" in lifecycle.carries(status) else 0
            for status in walk
        ),
        unknown=unknown,
        issuer_request_id=f"req-{request:05x}" if request else None,
        input_file_name=_FILE_NAMES[file - 1] if file else None,
    )


@st.composite
def _one_plan(
    draw: st.DrawFn, lifecycle: Lifecycle, card_id: str | None, unknown_statuses: bool
) -> Plan:
    card = draw(card_ids()) if card_id is None else card_id
    return draw(_plan(lifecycle, card, draw(operation_ids()), draw(_times()), unknown_statuses))


def plans(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    card_id: str | None = None,
    unknown_statuses: bool = False,
) -> st.SearchStrategy[Plan]:
    """What really happened to one operation of one card (see :class:`Plan`)."""
    lifecycle = _check_lifecycle(lifecycle)
    _check(
        card_id is None or (isinstance(card_id, str) and card_id != ""),
        f"card_id must be a non-empty string or None, got {card_id!r}",
    )
    return _one_plan(lifecycle, card_id, bool(unknown_statuses))


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
    ids = [_card_id(n) for n in draw(_distinct(count, 2**64))]
    per_card = [draw(st.integers(1, max_operations)) for _ in ids]
    # D1 never reuses an operationId, across cards too; a card's later operation (a
    # re-order) starts later, so startTime alone orders a card's operations.
    extra = draw(st.integers(0, 3)) if other_operations else 0
    total = sum(per_card) + extra
    # Below 2**62, no bit of an id lies where a version 4 UUID sets its version and
    # variant: distinct numbers stay distinct ids (an operation is its id).
    op_ids = iter([_uuid(n) for n in draw(_distinct(total, 2**62))])
    cards = []
    # The walks of one history take turns at the aims (see _walk), from a drawn
    # first one: a history of several cards takes several edges, and the edges are
    # reached far more evenly than with an aim drawn per walk. A first aim of 0
    # (where shrinking goes) leaves every walk free.
    first = draw(st.integers(0, len(lifecycle.edges)))
    turn = 0
    for card_id, n in zip(ids, per_card, strict=True):
        start = draw(_times())
        operations = []
        for _ in range(n):
            aim = first and first + turn
            turn += 1
            plan = draw(_plan(lifecycle, card_id, next(op_ids), start, unknown_statuses, aim))
            operations.append(TrueOperation(plan, render(plan, lifecycle)))
            start += timedelta(hours=draw(st.integers(1, 60 * 24)))
        cards.append(CardHistory(card_id, tuple(operations)))
    others = [
        _other_operation(
            draw(st.sampled_from(ids)),
            draw(st.sampled_from(OTHER_OPERATIONS)),
            next(op_ids),
            draw(_times()),
        )
        for _ in range(extra)
    ]
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

    Each card has one to ``max_operations`` PRODUCE operations (re-orders, each
    starting later than the one before); operationIds are unique across the history.
    With ``unknown_statuses`` some notifications carry statuses the lifecycle does not
    know; with ``other_operations`` non-PRODUCE operations for the same cards travel in
    the same bodies.
    """
    lifecycle = _check_lifecycle(lifecycle)
    _check_count("min_cards", min_cards, 1)
    _check_count("max_cards", max_cards, min_cards)
    _check_count("max_operations", max_operations, 1)
    return _history(
        lifecycle,
        min_cards,
        max_cards,
        max_operations,
        bool(unknown_statuses),
        bool(other_operations),
    )


@dataclass(frozen=True)
class Delivery:
    """How D1 delivered a history: the bodies in arrival order, and what they carried.

    ``contents[i]`` holds the PRODUCE notifications that body ``i`` carried (copies
    included, other operation types left out). ``delivered`` holds every PRODUCE
    notification that arrived at least once (on-demand responses included); ``lost``
    the ones that never did; ``repairs`` the on-demand responses appended after a
    loss, one per card that lost something.
    """

    bodies: tuple[bytes, ...]
    contents: tuple[tuple[Operation, ...], ...]
    delivered: frozenset[Operation]
    lost: tuple[Operation, ...]
    repairs: tuple[Operation, ...]

    def describe(self, upto: int | None = None) -> str:
        """The bodies (the first ``upto`` of them), one operation per line, for a person."""
        return describe_bodies(self.bodies[:upto])


def describe_bodies(bodies: Sequence[bytes]) -> str:
    """Bodies as text: a header per body, then each of its operations as one JSON line."""
    lines = []
    for number, body in enumerate(bodies, 1):
        try:
            items = msgspec.json.decode(body, type=dict[str, list[msgspec.Raw]])["operations"]
        except (msgspec.DecodeError, KeyError):
            lines.append(f"  body {number}: {body!r}")
            continue
        lines.append(f"  body {number} ({len(items)} operation{'s' * (len(items) != 1)}):")
        lines.extend(f"    {bytes(item).decode()}" for item in items)
    return "\n".join(lines)


def _op_json(op: Operation) -> bytes:
    body = encode([op])
    return body[len(b'{"operations":[') : -2]


def _body(items: Sequence[bytes]) -> bytes:
    return b'{"operations":[' + b",".join(items) + b"]}"


@st.composite
def _delivery(
    draw: st.DrawFn, history: History, max_bulk: int, max_copies: int, lose: bool
) -> Delivery:
    sent: list[tuple[bytes, Operation | None]] = []
    delivered: set[Operation] = set()
    lost: list[Operation] = []
    for note in history.notifications():
        # The last choice loses: shrinking goes towards delivering everything.
        if lose and draw(st.integers(0, 4)) == 4:
            lost.append(note)
            continue
        delivered.add(note)
        sent.extend([(_op_json(note), note)] * draw(st.integers(1, max_copies)))
    sent.extend((other, None) for other in history.others)
    order = draw(st.permutations(sent)) if sent else []
    bodies: list[bytes] = []
    contents: list[tuple[Operation, ...]] = []
    at = 0
    while at < len(order):
        # Shrinks towards full bodies: the fewest bodies to read in a failure.
        most = min(max_bulk, len(order) - at)
        size = most - draw(st.integers(0, most - 1))
        chunk = order[at : at + size]
        bodies.append(_body([item for item, _ in chunk]))
        contents.append(tuple(note for _, note in chunk if note is not None))
        at += size
    repairs: list[Operation] = []
    lost_cards = {n.card_id for n in lost}
    for card in history.cards:
        if card.card_id in lost_cards:
            latest = card.current.notifications[-1]
            repairs.append(latest)
            delivered.add(latest)
            bodies.append(_body([_op_json(latest)]))
            contents.append((latest,))
    return Delivery(
        bodies=tuple(bodies),
        contents=tuple(contents),
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
    Shrinks towards no loss, single copies, true order and full bodies.
    """
    _check(isinstance(history, History), f"history must be a History, got {history!r}")
    _check_count("max_bulk", max_bulk, 1)
    _check_count("max_copies", max_copies, 1)
    return _delivery(history, max_bulk, max_copies, bool(lose))


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

    def expected_after(self, count: int) -> dict[str, Expected | None]:
        """What a correct consumer reports for every card once the first ``count`` bodies
        arrived (None for a card none of whose notifications arrived yet)."""
        arrived = {n for body in self.delivery.contents[:count] for n in body}
        return {
            card.card_id: expected_state(card, arrived, self.lifecycle)
            for card in self.history.cards
        }


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
    _check_count("max_bulk", max_bulk, 1)
    _check_count("max_copies", max_copies, 1)
    return _traffic(hist, lifecycle, max_bulk, max_copies, bool(lose))


@st.composite
def _traffic(
    draw: st.DrawFn,
    hist: st.SearchStrategy[History],
    lifecycle: Lifecycle,
    max_bulk: int,
    max_copies: int,
    lose: bool,
) -> Traffic:
    history = draw(hist)
    delivery = draw(_delivery(history, max_bulk, max_copies, lose))
    return Traffic(history, delivery, _expect(history, delivery, lifecycle), lifecycle)


# -- the wire types, realistic: what from_type(Operation) and friends draw ------------


@st.composite
def _operation(draw: st.DrawFn, lifecycle: Lifecycle, unknown_statuses: bool) -> Operation:
    plan = draw(_one_plan(lifecycle, None, unknown_statuses))
    return draw(st.sampled_from(render(plan, lifecycle)))


def operations(
    lifecycle: Lifecycle = D1_LIFECYCLE, *, unknown_statuses: bool = False
) -> st.SearchStrategy[Operation]:
    """One PRODUCE notification from a true history: any status, consistent fields."""
    return _operation(_check_lifecycle(lifecycle), bool(unknown_statuses))


def details(lifecycle: Lifecycle = D1_LIFECYCLE) -> st.SearchStrategy[Details]:
    """The ``details`` of a PRODUCE notification from a true history."""
    return operations(lifecycle).map(lambda op: op.details or Details())


@st.composite
def _shipment_of(draw: st.DrawFn, first_update: int) -> Shipment:
    plan = draw(_one_plan(D1_LIFECYCLE, None, False))
    return _shipment(plan, draw(st.integers(first_update, 4)), draw(st.sampled_from(_SHIPPING)))


def shipments() -> st.SearchStrategy[Shipment]:
    """Shipment data as D1 relays it: a first estimate only, or a carrier's update."""
    return _shipment_of(0)


def checkpoints() -> st.SearchStrategy[Checkpoint]:
    """A carrier's last scan of a parcel, as a shipment update carries it."""
    return _shipment_of(1).map(lambda s: s.last_checkpoint or Checkpoint())
