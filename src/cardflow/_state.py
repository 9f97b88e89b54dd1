"""Per-card state as a join-semilattice: ``apply``, ``merge`` and ``fold``.

A card's state is a summary of a set of events, and every summary is a join (a
maximum in a fixed total order, or a set union), so that folding any permutation of
any multiset of the events, split into any number of partial folds merged in any
order, gives the same state. ``docs/semantics.md`` states each rule with its reason.

The order that everything ranks by is the lifecycle's precedence
(:class:`cardflow.Lifecycle`); nothing here names a status.

One mutable accumulator, :class:`Summary`, holds the join while it is being
computed; ``apply``, ``merge`` and ``fold`` are thin layers over it, so that the
rules live in one place. A :class:`CardState` is the frozen value it produces.

Speed and memory (``docs/performance.md``): a fold keeps millions of summaries and
states alive, so both are ``gc=False`` Structs (the cyclic collector never scans
them), a summary costs no container until it needs one, an event that changes
nothing costs a few comparisons, and a state shares every value that repeats
across cards (statuses, sites, dates, the summaries that ``merge`` needs) instead
of holding its own copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, cast

from ._cardstate import MAX_OPERATIONS, Anomaly, CardState, Folded
from ._decode import Body, Decoded, decode_reading, notified_operations
from ._errors import CardMismatchError, NotProduceError
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._summary import Summary
from ._tables import D1_TABLES, tables_for
from ._times import utc
from ._wire import PRODUCE, Operation

__all__ = [
    "MAX_OPERATIONS",
    "Anomaly",
    "CardState",
    "Folded",
    "Folder",
    "apply",
    "fold",
    "merge",
    "state_of",
]


def _require_produce(op: Operation) -> None:
    if op.operation != PRODUCE:
        raise NotProduceError(
            f"operation {op.operation_id!r} of card {op.card_id!r} is {op.operation!r},"
            f" not {PRODUCE}: only PRODUCE operations make a card state"
        )


def state_of(
    op: Operation, *, at: datetime | None = None, lifecycle: Lifecycle = D1_LIFECYCLE
) -> CardState:
    """The state that one PRODUCE event alone gives.

    ``at``: the event is D1's on-demand status, read at that time; it also confirms its
    operation (``confirmed_at``, ``confirmed_status``).
    """
    _require_produce(op)
    tables = tables_for(lifecycle)
    summary = Summary.empty(op.card_id, utc(op.start_time), op.operation_id)
    if at is None:
        summary.add(op, tables)
    else:
        summary.add_reading(op, at, tables)
    return summary.freeze(tables)


def apply(
    state: CardState | None,
    op: Operation,
    *,
    at: datetime | None = None,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> CardState:
    """The state after one more event: equal to ``merge(state, state_of(op, at=at))``.

    An operation of another type leaves ``state`` as it is (it raises
    ``NotProduceError`` when there is no state to leave); an event of another
    card raises ``CardMismatchError``.
    """
    if state is None:
        return state_of(op, at=at, lifecycle=lifecycle)
    if op.operation != PRODUCE:
        return state
    if op.card_id != state.card_id:
        raise CardMismatchError(
            f"cannot apply an event of card {op.card_id!r} to the state of card {state.card_id!r}"
        )
    tables = tables_for(lifecycle)
    summary = Summary.thaw(state, tables)
    if at is None:
        summary.add(op, tables)
    else:
        summary.add_reading(op, at, tables)
    return summary.freeze(tables)


def merge(a: CardState, b: CardState, *, lifecycle: Lifecycle = D1_LIFECYCLE) -> CardState:
    """The join of two states of the same card: commutative, associative, idempotent."""
    if a.card_id != b.card_id:
        raise CardMismatchError(
            f"cannot merge the states of two cards: {a.card_id!r} and {b.card_id!r}"
        )
    tables = D1_TABLES if lifecycle is D1_LIFECYCLE else tables_for(lifecycle)
    summary = Summary.thaw(a, tables)
    summary.join(Summary.thaw(b, tables), tables)
    return summary.freeze(tables)


class Folder(Mapping[str, CardState]):
    """A fold in progress: ``add`` events in any order, read states by card id at any time.

    ``fold(ops)`` is ``Folder(ops)`` read once at the end; a reader that decodes a log
    line by line, reports what it rejects and shows progress hands events over as it
    goes, and may read a card's state before the end. Memory grows with the number of
    cards, never with the number of events. A read-only mapping from card id to
    :class:`CardState`: each lookup freezes the card's summary into a new state, so
    read once and keep the value. Operations of other types are passed over and
    counted in ``passed_over``.
    """

    __slots__ = ("_summaries", "_tables", "passed_over")

    def __init__(
        self, ops: Iterable[Operation] = (), *, lifecycle: Lifecycle = D1_LIFECYCLE
    ) -> None:
        self._tables = tables_for(lifecycle).session()
        self._summaries: dict[str, Summary] = {}
        self.passed_over = 0
        self.update(ops)

    def add(self, op: Operation, *, at: datetime | None = None) -> bool:
        """Fold one event in; False when it was passed over (not a PRODUCE operation).

        ``at``: the event is D1's on-demand status read at that time (a confirmation).
        """
        if op.operation != PRODUCE:
            self.passed_over += 1
            return False
        summary = self._summaries.get(op.card_id)
        if summary is None:
            card_id = op.card_id
            summary = self._summaries[card_id] = Summary(
                card_id, utc(op.start_time), op.operation_id
            )
        if at is None:
            summary.add(op, self._tables)
        else:
            summary.add_reading(op, at, self._tables)
        return True

    def ingest(self, body: Body) -> Decoded:
        """Fold a D1 body in, leniently; what it decoded (the rejects: what it did not).

        A logged on-demand response (its envelope says ``confirmedAt``) is folded as a
        reading at that time (``reading_time``); a ``confirmedAt`` that is not a time
        rejects the body as a whole. Never raises on bad input.
        """
        operations = notified_operations(body)
        if operations is not None:  # the usual body, decoded once
            self.update(operations)
            return Decoded(operations=operations, rejects=[])
        decoded, at = decode_reading(body)
        if at is None:
            self.update(decoded.operations)
        else:
            for op in decoded.operations:
                self.add(op, at=at)
        return decoded

    def update(self, ops: Iterable[Operation]) -> None:
        """Fold several events in; a stream is consumed one event at a time.

        ``add`` in a loop, written out: this is the loop every fold runs.
        """
        tables = self._tables
        summaries = self._summaries
        get = summaries.get
        passed_over = 0
        for op in ops:
            if op.operation != PRODUCE:
                passed_over += 1
                continue
            summary = get(op.card_id)
            if summary is None:
                card_id = op.card_id
                summary = summaries[card_id] = Summary(card_id, utc(op.start_time), op.operation_id)
            summary.add(op, tables)
        self.passed_over += passed_over

    def __getitem__(self, card_id: str) -> CardState:
        return self._summaries[card_id].freeze(self._tables)

    def __contains__(self, card_id: object) -> bool:
        return card_id in self._summaries

    def __iter__(self) -> Iterator[str]:
        return iter(self._summaries)

    def __len__(self) -> int:
        return len(self._summaries)

    def states(self) -> Folded:
        """Every card's state now, as ``fold`` returns them (the folder stays usable)."""
        tables = self._tables
        return Folded(
            {card_id: s.freeze(tables) for card_id, s in self._summaries.items()},
            self.passed_over,
        )

    def finish(self) -> Folded:
        """Every card's state, as ``states()`` gives them, leaving the folder empty (as new).

        Each summary is frozen in place and released as soon as its state exists, so
        the fold never holds both for every card and the states reuse the memory: the
        way to end a fold of many cards (``fold`` ends this way).
        """
        summaries, self._summaries = self._summaries, {}
        passed_over, self.passed_over = self.passed_over, 0
        states = cast("dict[str, Any]", summaries)
        for card_id, summary in summaries.items():
            states[card_id] = summary.freeze(self._tables)
        return Folded(states, passed_over)


def fold(ops: Iterable[Operation], *, lifecycle: Lifecycle = D1_LIFECYCLE) -> Folded:
    """Fold events, in any order and with any duplicates, into one state per card.

    Operations of other types are passed over and counted (``Folded.passed_over``).
    Streams: give it an iterator and it keeps one summary per card, never the events.
    """
    return Folder(ops, lifecycle=lifecycle).finish()
