"""What a fold of files reports: what was read and rejected, the cards and their counts.

:class:`Totals` counts what was read; :class:`Rejected` is one rejected item with its
file and line; a :class:`Report` holds the selected card states and the counts (a
:class:`Tally`, which workers add up range by range). The renderers only format it:
``_formats.py`` for machines, ``_readable.py`` for people.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from .._decode import Reject
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._reconcile import ReconcileReason
from .._state import CardState
from .._wire import Operation, wire_time

__all__ = [
    "EXAMPLES",
    "LIST_LIMIT",
    "Counts",
    "EventLog",
    "Listener",
    "Rejected",
    "Report",
    "Seen",
    "Tally",
    "Totals",
]

LIST_LIMIT: Final = 20
"""Cards a summary lists by name, at most, before it points to the machine formats."""
EXAMPLES: Final = 5
"""Reconcile candidates an unfiltered summary names as examples."""


# -- what is reported ---------------------------------------------------------------


@dataclass
class Totals:
    """What was read, counted while folding: the inputs (and those that could not be
    read), lines, bodies and operations; operations folded and passed over (of other
    types); bodies and operations rejected; cards."""

    sources: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    lines: int = 0
    bodies: int = 0
    operations: int = 0
    folded: int = 0
    passed_over: int = 0
    rejected_bodies: int = 0
    rejected_operations: int = 0
    cards: int = 0

    @property
    def rejected(self) -> int:
        return self.rejected_bodies + self.rejected_operations

    def complete(self, cards: int, passed_over: int, added: int) -> Totals:
        """These totals with what a fold knows at its end: cards, operations passed over,
        and of ``added`` (operations handed to it) those folded."""
        self.cards = cards
        self.passed_over = passed_over
        self.folded = added - passed_over
        return self

    def as_object(self) -> dict[str, object]:
        return {
            "sources": self.sources,
            "unreadable": self.unreadable,
            "lines": self.lines,
            "bodies": self.bodies,
            "operations": self.operations,
            "folded": self.folded,
            "passedOver": self.passed_over,
            "rejectedBodies": self.rejected_bodies,
            "rejectedOperations": self.rejected_operations,
            "cards": self.cards,
        }


@dataclass(frozen=True, slots=True)
class Rejected:
    """A rejected body or operation: the input it came from (``file``; ``<stdin>`` for
    stdin), the line it starts on (from 1), and the :class:`~cardflow.Reject` (the
    reason, the JSON path, the text verbatim)."""

    file: str
    line: int
    reject: Reject

    @property
    def reason(self) -> str:
        """Why it was rejected."""
        return self.reject.reason

    @property
    def raw(self) -> bytes:
        """Its text, verbatim."""
        return self.reject.raw

    def __str__(self) -> str:
        """``FILE:LINE: JSON-PATH: REASON``, as ``cardflow fold`` reports it."""
        return str(self.reject.error().located(self.file, self.line))


@dataclass(frozen=True, slots=True)
class Listener:
    """Who hears of a fold as it goes, in input order: each rejected item, and each
    problem with an input (a message such as ``cannot read PATH: REASON``)."""

    rejected: Callable[[Rejected], None]
    warn: Callable[[str], None]


Counts = tuple[int, int, int, int]
"""How far a fold has got: bytes read, lines, operations decoded, cards (so far)."""


@dataclass
class Seen:
    """One distinct event of a card watched with ``--card``: where it was first seen."""

    op: Operation
    where: str
    deliveries: int = 1


@dataclass
class EventLog:
    """The distinct events of one watched card, by fingerprint."""

    events: dict[bytes, Seen] = field(default_factory=dict)


@dataclass
class Tally:
    """What a summary says of a list of cards, sorted by id: the counts, and the first few
    cards it names. Tallies of consecutive ranges of cards add up (``+``) to the tally
    of them all, so workers can each count a range.

    ``reasons`` is None when reconciliation was not asked for; else it holds the
    reasons of the cards named (``candidates`` and ``listed``).
    """

    cards: int = 0
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    with_gaps: int = 0
    candidates: int = 0
    """Cards with a reason to reconcile."""
    examples: list[CardState] = field(default_factory=list)
    """The first ``EXAMPLES`` of them."""
    listed: list[CardState] = field(default_factory=list)
    """The first ``LIST_LIMIT`` cards."""
    reasons: dict[str, tuple[ReconcileReason, ...]] | None = None

    @classmethod
    def of(
        cls,
        cards: Sequence[CardState],
        reasons: Mapping[str, tuple[ReconcileReason, ...]] | None,
    ) -> Tally:
        """The tally of ``cards``, with their ``reasons`` when reconciliation was asked."""
        by: dict[str, Counter[str]] = {key: Counter() for key in _COUNTED}
        status, operation_status = by["status"], by["operationStatus"]
        anomalies, gaps, unknown = by["anomalies"], by["gaps"], by["unknownStatuses"]
        with_gaps = 0
        for state in cards:
            status[state.status] += 1
            operation_status[state.operation_status] += 1
            if state.anomalies:
                anomalies.update(state.anomalies)
            if state.gaps:
                gaps.update(state.gaps)
                with_gaps += 1
            if state.unknown_statuses:
                unknown.update(state.unknown_statuses)
        listed = list(cards[:LIST_LIMIT])
        if reasons is None:
            return cls(len(cards), by, with_gaps, listed=listed)
        by["reconcile"] = Counter(r for s in cards for r in reasons.get(s.card_id, ()))
        candidates = [s for s in cards if reasons.get(s.card_id)]
        examples = candidates[:EXAMPLES]
        named = {s.card_id: reasons.get(s.card_id, ()) for s in (*examples, *listed)}
        return cls(len(cards), by, with_gaps, len(candidates), examples, listed, named)

    def __add__(self, other: Tally) -> Tally:
        """The tally of this range of cards followed by ``other``'s."""
        counts = {
            key: self.counts.get(key, Counter()) + other.counts.get(key, Counter())
            for key in {*self.counts, *other.counts}
        }
        reasons = None
        if self.reasons is not None or other.reasons is not None:
            reasons = {**(self.reasons or {}), **(other.reasons or {})}
        return Tally(
            self.cards + other.cards,
            counts,
            self.with_gaps + other.with_gaps,
            self.candidates + other.candidates,
            (self.examples + other.examples)[:EXAMPLES],
            (self.listed + other.listed)[:LIST_LIMIT],
            reasons,
        )


_COUNTED: Final = ("status", "operationStatus", "anomalies", "gaps", "unknownStatuses")


@dataclass
class Report:
    """The selected cards (sorted by id) with their reconcile reasons, and the counts.

    ``reasons`` is None when reconciliation was not asked for (no ``now``). A report
    written in ranges by workers has no ``cards``: its ``tally`` was counted by them.
    """

    totals: Totals
    cards: list[CardState]
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None
    now: datetime | None
    filters: dict[str, object]
    lifecycle: Lifecycle = D1_LIFECYCLE
    histories: dict[str, EventLog] = field(default_factory=dict)
    tally: Tally | None = None

    def __post_init__(self) -> None:
        if self.tally is None:
            self.tally = Tally.of(self.cards, self.reasons)

    @property
    def filtered(self) -> bool:
        return bool(self.filters)

    @property
    def counted(self) -> Tally:
        assert self.tally is not None  # made in __post_init__
        return self.tally

    def summary_object(self) -> dict[str, object]:
        tally = self.counted
        counts = tally.counts
        status_order = {s: i for i, s in enumerate(self.lifecycle.statuses)}
        out: dict[str, object] = {
            "cards": tally.cards,
            "byStatus": _ordered(counts["status"], status_order),
            "byOperationStatus": dict(sorted(counts["operationStatus"].items())),
            "anomalies": dict(sorted(counts["anomalies"].items())),
            "withGaps": tally.with_gaps,
            "gaps": _ordered(counts["gaps"], status_order),
            "unknownStatuses": dict(sorted(counts["unknownStatuses"].items())),
        }
        if tally.reasons is not None and self.now is not None:
            out["reconcile"] = {
                "now": wire_time(self.now),
                "cards": tally.candidates,
                "byReason": {str(r): n for r, n in sorted(counts["reconcile"].items())},
            }
        return out

    def reasons_of(self, state: CardState) -> tuple[ReconcileReason, ...] | None:
        return None if self.reasons is None else self.reasons.get(state.card_id, ())


def _ordered(counter: Mapping[str, int], order: Mapping[str, int]) -> dict[str, int]:
    """Known statuses in lifecycle order, then the others alphabetically."""
    return dict(sorted(counter.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))
