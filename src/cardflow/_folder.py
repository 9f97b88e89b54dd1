"""The streaming fold: :class:`Folder` takes events one at a time and keeps one summary per card.

``fold(ops)`` wants every event up front (an iterable); a reader that decodes a log
line by line, reports what it rejects and shows progress needs to hand the events
over as it goes, and to read a card's state before the end. ``Folder`` is that fold,
over the same per-card accumulator as :func:`cardflow.fold`, so the two always agree:
memory grows with the number of cards, never with the number of events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._state import CardState, Folded, _Summary, _tables, _utc
from ._wire import PRODUCE, Operation

__all__ = ["Folder"]


class Folder(Mapping[str, CardState]):
    """A fold in progress: ``add`` events in any order, read states by card id at any time.

    A read-only mapping from card id to :class:`CardState`; each lookup freezes the
    card's summary into a new state, so read once and keep the value. Operations of
    other types are passed over and counted in ``passed_over``, as ``fold`` does.
    ``Folder`` over some events gives the same states as ``fold`` over them.
    """

    __slots__ = ("_summaries", "_tables", "passed_over")

    def __init__(
        self, ops: Iterable[Operation] = (), *, lifecycle: Lifecycle = D1_LIFECYCLE
    ) -> None:
        self._tables = _tables(lifecycle)
        self._summaries: dict[str, _Summary] = {}
        self.passed_over = 0
        self.update(ops)

    def add(self, op: Operation) -> bool:
        """Fold one event in; False when it was passed over (not a PRODUCE operation)."""
        if op.operation != PRODUCE:
            self.passed_over += 1
            return False
        card_id = op.card_id
        summary = self._summaries.get(card_id)
        if summary is None:
            summary = self._summaries[card_id] = _Summary.empty(
                card_id, _utc(op.start_time), op.operation_id
            )
        summary.add(op, self._tables)
        return True

    def update(self, ops: Iterable[Operation]) -> None:
        """Fold several events in (a stream is consumed one event at a time)."""
        for op in ops:
            self.add(op)

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
