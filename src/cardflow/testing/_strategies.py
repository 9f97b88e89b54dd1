"""Hypothesis strategies for true D1 histories: walks, plans, histories, the wire types.

Their atoms (ids, start times, argument checks) are in ``_draws``; how a history is
delivered, and the traffic that pairs it with the oracle's states, in ``_delivery``.
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

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import msgspec
from hypothesis import strategies as st

from .._lifecycle import D1_LIFECYCLE, Edge, Lifecycle
from .._model import (
    CARRIERS,
    SITES,
    CardHistory,
    History,
    Plan,
    TrueOperation,
    planned_shipment,
    render,
)
from .._wire import Checkpoint, Details, Operation, Shipment
from ._draws import (
    UUID_BITS,
    Increasing,
    card_id_of,
    card_ids,
    check,
    check_count,
    check_lifecycle,
    next_start,
    operation_ids,
    start_time,
    uuid_of,
)

__all__ = [
    "checkpoints",
    "details",
    "histories",
    "operations",
    "plans",
    "shipments",
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

_FILE_NAMES: Final = ("cards-20240101.csv", "batch_0042.json", "ISSUER-7.txt")
_MAX_OTHERS: Final = 3
"""The most operations of other types a history sends beside its cards'."""
_TIME_DIGITS: Final = (None, 3, 6)
"""Fractional digits an operation's timestamps are written with, at least: None is
D1's own spelling (as few as the instant needs), where shrinking goes."""
_FLAVOURS: Final = (
    30 * 24 * 14 * len(SITES) * len(CARRIERS) * (1 + 0xFFF) * (1 + len(_FILE_NAMES)) * 10**9
)
"""How many looks a plan can take (durations, due dates, sites, carriers, ids...)."""
_SHIPPING: Final = tuple(
    s for s in D1_LIFECYCLE.statuses if "shipment" in D1_LIFECYCLE.carries(s)
) or (D1_LIFECYCLE.initial,)


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
    # The ways to the aimed edge's source are drawn whether used or not, so that
    # shrinking to a free walk keeps the choices after them in place.
    ways_taken = iter([draw(st.integers(0, 7)) for _ in range(max(0, max_length - 2))])
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
            path.append(ways[next(ways_taken) % len(ways)])
        path.append(edge.dest)
    # 0 stops, so walks shrink short. A walk goes on seven times in eight, but past a
    # success (a shipped card) it mostly stops, as most real cards do. Drawn at an end
    # too: then stopping early is never a more complex choice than running to an end,
    # and shrinking prefers it. Every step is drawn, even after the walk stopped: the
    # choices after the walk then stay in place when shrinking stops it earlier.
    going = True
    for _ in range(max_length - 1):
        at_success = going and tables.success[path[-1]]
        goes_on = draw(st.integers(0, 7))
        # The main successor twice as likely as each other one (0 and 1 pick it).
        pick = draw(st.integers(0, 7))
        if not going or len(path) >= max_length:
            continue
        going = (goes_on >= 6) if at_success else goes_on != 0
        successors = tables.next[path[-1]]
        if not going or not successors:
            going = False
            continue
        path.append(successors[max(0, pick % (len(successors) + 1) - 1)])
    return tuple(path)


def walks(
    lifecycle: Lifecycle = D1_LIFECYCLE, *, max_length: int | None = None
) -> st.SearchStrategy[tuple[str, ...]]:
    """Paths on the lifecycle from its initial state, stopping anywhere or at an end.

    Spread over every edge of the lifecycle (see :func:`edge_coverage`), and shrinks
    towards short walks along the main path: successors that go on come before those
    that end in failure.
    """
    lifecycle = check_lifecycle(lifecycle)
    limit = len(lifecycle.statuses) if max_length is None else max_length
    check_count("max_length", limit, 1)
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
        time_digits=draw(st.sampled_from(_TIME_DIGITS)),
    )


@st.composite
def _one_plan(
    draw: st.DrawFn, lifecycle: Lifecycle, card_id: str | None, unknown_statuses: bool
) -> Plan:
    card = draw(card_ids()) if card_id is None else card_id
    return draw(_plan(lifecycle, card, draw(operation_ids()), draw(start_time()), unknown_statuses))


def plans(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    card_id: str | None = None,
    unknown_statuses: bool = False,
) -> st.SearchStrategy[Plan]:
    """What really happened to one operation of one card (see :class:`Plan`)."""
    lifecycle = check_lifecycle(lifecycle)
    check(
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
    # D1 never reuses an operationId, across cards too, and gives each one startTime.
    # A card's later operation (a re-order) starts at the same instant or later:
    # (startTime, operationId) orders a card's operations.
    card_ids = Increasing(draw, 2**64 // max_cards)
    op_ids = Increasing(draw, 2**UUID_BITS // (max_cards * max_operations + _MAX_OTHERS))
    # The walks of one history take turns at the aims (see _walk), from a drawn
    # first one: a history of several cards takes several edges, and the edges are
    # reached far more evenly than with an aim drawn per walk. A first aim of 0
    # (where shrinking goes) leaves every walk free.
    first = draw(st.integers(0, len(lifecycle.edges)))
    turn = 0
    cards: list[CardHistory] = []
    # Card after card, each drawn whole (like st.lists): shrinking drops a card by
    # deleting its choices, without shifting those of the cards after it. Two in
    # three histories go on to one more card.
    while len(cards) < min_cards or (len(cards) < max_cards and draw(st.integers(0, 2)) != 0):
        card_id = card_id_of(card_ids.next())
        start = draw(start_time())
        operations: list[TrueOperation] = []
        # Operation after operation, each drawn whole (one in two cards goes on to
        # one more, up to max_operations), for the same reason as the cards.
        while not operations or (len(operations) < max_operations and draw(st.integers(0, 1)) != 0):
            if operations:
                start = draw(next_start(start))
            aim = first and first + turn
            turn += 1
            plan = draw(
                _plan(lifecycle, card_id, uuid_of(op_ids.next()), start, unknown_statuses, aim)
            )
            operations.append(TrueOperation(plan, render(plan, lifecycle)))
        # The operationIds rise with the operations, or (drawn) fall: when two start at
        # the same instant, the greater operationId is current, and it must not always
        # be the one rendered, and so delivered unshuffled, last.
        if len(operations) > 1 and draw(st.booleans()):
            falling = [o.plan.operation_id for o in reversed(operations)]
            plans = [
                replace(o.plan, operation_id=i) for o, i in zip(operations, falling, strict=True)
            ]
            operations = [TrueOperation(p, render(p, lifecycle)) for p in plans]
        cards.append(CardHistory(card_id, tuple(operations)))
    ids = [c.card_id for c in cards]
    extra = draw(st.integers(0, _MAX_OTHERS)) if other_operations else 0
    others = [
        _other_operation(
            draw(st.sampled_from(ids)),
            draw(st.sampled_from(OTHER_OPERATIONS)),
            uuid_of(op_ids.next()),
            draw(start_time()),
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
    starting at the same instant as the one before or later: then the greater
    operationId is current); operationIds are unique across the history. Start times
    come in several offsets and precisions, so that their text orders unlike them.
    With ``unknown_statuses`` some notifications carry statuses the lifecycle does not
    know; with ``other_operations`` non-PRODUCE operations for the same cards travel in
    the same bodies.
    """
    lifecycle = check_lifecycle(lifecycle)
    check_count("min_cards", min_cards, 1)
    check_count("max_cards", max_cards, min_cards)
    check_count("max_operations", max_operations, 1)
    return _history(
        lifecycle,
        min_cards,
        max_cards,
        max_operations,
        bool(unknown_statuses),
        bool(other_operations),
    )


# -- the wire types, realistic: what from_type(Operation) and friends draw ------------


@st.composite
def _operation(draw: st.DrawFn, lifecycle: Lifecycle, unknown_statuses: bool) -> Operation:
    plan = draw(_one_plan(lifecycle, None, unknown_statuses))
    return draw(st.sampled_from(render(plan, lifecycle)))


def operations(
    lifecycle: Lifecycle = D1_LIFECYCLE, *, unknown_statuses: bool = False
) -> st.SearchStrategy[Operation]:
    """One PRODUCE notification from a true history: any status, consistent fields."""
    return _operation(check_lifecycle(lifecycle), bool(unknown_statuses))


def details(lifecycle: Lifecycle = D1_LIFECYCLE) -> st.SearchStrategy[Details]:
    """The ``details`` of a PRODUCE notification from a true history."""
    return operations(lifecycle).map(lambda op: op.details or Details())


@st.composite
def _shipment_of(draw: st.DrawFn, first_update: int) -> Shipment:
    plan = draw(_one_plan(D1_LIFECYCLE, None, False))
    return planned_shipment(
        plan, draw(st.integers(first_update, 4)), draw(st.sampled_from(_SHIPPING))
    )


def shipments() -> st.SearchStrategy[Shipment]:
    """Shipment data as D1 relays it: a first estimate only, or a carrier's update."""
    return _shipment_of(0)


def checkpoints() -> st.SearchStrategy[Checkpoint]:
    """A carrier's last scan of a parcel, as a shipment update carries it."""
    return _shipment_of(1).map(lambda s: s.last_checkpoint or Checkpoint())
