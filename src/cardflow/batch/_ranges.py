"""A parallel fold's second phase: the states merged, and reported, by ranges of card ids.

The card ids are cut into ranges of about equal numbers of states. Where phase one
(``_jobs.py``) spilled every group's states sorted by card id (a Dask cluster), any
worker takes a range: it decodes that range's states from every spill, merges the
states of each card (the fold is a join: any split merges to the one state), applies
the filters, judges reconciliation, counts what the summary says (a :class:`Tally`,
which adds up across ranges) and writes its range of the report in the format asked.
Workers that hold their groups' states use the same pieces (``_exchange.py``).
"""

from __future__ import annotations

import array
import bisect
import io
import itertools
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Final

from .._codec import decode_state, encode_state
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._reconcile import ReconcileReason, needs_reconcile
from .._state import CardState, merge
from ._cards import encoded_cards
from ._formats import write_csv_rows, write_json_cards
from ._jobs import Spilled
from ._report import Tally

__all__ = [
    "RANGES_PER_JOB",
    "Asked",
    "Piece",
    "RangeWritten",
    "cuts",
    "decoded",
    "joined",
    "merged",
    "pieces_between",
    "ranges",
    "report_cards",
    "report_range",
    "selected",
    "slices",
]

RANGES_PER_JOB: Final = 2
"""Ranges of card ids per job: a little slack for ranges that take longer."""
_BLOCK: Final = 8 << 20
"""Bytes of a spill read at once."""
_SAMPLES: Final = 256
"""Card ids sampled per range and spill to place the cuts between ranges."""


@dataclass(frozen=True, slots=True)
class Piece:
    """Consecutive states of one spill: at ``start`` of the file ``data`` names (or all
    of ``data``, bytes), each ending at its entry of ``ends`` (an ``array("Q")`` as
    bytes, offsets from ``start``)."""

    data: str | bytes
    start: int
    ends: bytes


@dataclass(frozen=True, slots=True)
class Asked:
    """What the report asks of each range: the format, the filters, the time to judge
    reconciliation at (None: not judged), whether to send the selected states back (a
    ``--card`` view), where to write the range's text (None: send it back), and the
    lifecycle (None: D1's) that merges states and judges them."""

    format: str
    now: datetime | None
    statuses: frozenset[str] | None
    needs_reconcile: bool
    keep: bool
    directory: str | None
    lifecycle: Lifecycle | None = None


@dataclass(slots=True)
class RangeWritten:
    """One range's report: its cards before the filters, the tally of those selected,
    its text (or the path of the file holding it), and the kept states, encoded."""

    cards: int
    tally: Tally
    text: str | bytes
    kept: list[bytes] = field(default_factory=list)


def ranges(spilled: Sequence[Spilled], count: int) -> list[list[Piece]]:
    """The card ids cut into at most ``count`` ranges of about equal numbers of states,
    placed on a sample of each spill's ids; each range as the pieces of the spills that
    fall in it (in spill order)."""
    out = pieces_between(spilled, cuts(spilled, count))
    return [pieces for pieces in out if pieces]


def cuts(spilled: Sequence[Spilled], count: int) -> list[str]:
    """Where to cut the card ids into at most ``count`` ranges of about equal numbers of
    states, placed on a sample of each spill's ids: range ``k`` is from cut ``k - 1``
    (included) to cut ``k`` (excluded)."""
    total = sum(len(s.ids) for s in spilled)
    if total == 0:
        return []
    step = max(1, total // (count * _SAMPLES * max(1, len(spilled))))
    sample = sorted(card for s in spilled for card in s.ids[::step])
    return sorted({sample[k * len(sample) // count] for k in range(1, count)})


def slices(ids: list[str], cut: list[str]) -> Iterator[tuple[int, int]]:
    """For each range between ``cut``, the slice of the sorted ``ids`` it holds."""
    bounds = [0, *(bisect.bisect_left(ids, c) for c in cut), len(ids)]
    return itertools.pairwise(bounds)


def pieces_between(spilled: Sequence[Spilled], cut: list[str]) -> list[list[Piece]]:
    """Each range between ``cut`` as the pieces of the spills in it (in spill order);
    states that a worker holds are left out."""
    out: list[list[Piece]] = [[] for _ in range(len(cut) + 1)]
    for s in spilled:
        if s.worker is not None:
            continue
        ends = array.array("Q")
        ends.frombytes(s.ends)
        for k, (lo, hi) in enumerate(slices(s.ids, cut)):
            if lo == hi:
                continue
            start = ends[lo - 1] if lo else 0
            stop = ends[hi - 1]
            relative = array.array("Q", (end - start for end in ends[lo:hi])).tobytes()
            if isinstance(s.data, bytes):
                out[k].append(Piece(s.data[start:stop], 0, relative))
            else:
                out[k].append(Piece(s.data, start, relative))
    return out


def decoded(piece: Piece, size: int = _BLOCK) -> Iterator[CardState]:
    """The states of ``piece``, in order, read from its file ``size`` bytes at a time
    (more when one state is longer)."""
    ends = array.array("Q")
    ends.frombytes(piece.ends)
    if isinstance(piece.data, bytes):
        data = piece.data
        begin = 0
        for end in ends:
            yield decode_state(data[begin:end])
            begin = end
        return
    with open(piece.data, "rb") as file:
        file.seek(piece.start)
        block = b""
        base = begin = 0  # where ``block`` and the next state start, from ``start``
        for end in ends:
            if end - base > len(block):
                block = block[begin - base :] + file.read(max(size, end - begin))
                base = begin
            yield decode_state(block[begin - base : end - base])
            begin = end


def joined(
    states: Iterable[CardState],
    into: dict[str, CardState],
    lifecycle: Lifecycle | None = None,
) -> dict[str, CardState]:
    """``into`` with ``states`` merged in, card by card (under ``lifecycle``; None: D1's)."""
    get = into.get
    life = D1_LIFECYCLE if lifecycle is None else lifecycle
    for state in states:
        old = get(state.card_id)
        into[state.card_id] = state if old is None else merge(old, state, lifecycle=life)
    return into


def merged(
    pieces: Iterable[Piece],
    states: dict[str, CardState] | None = None,
    lifecycle: Lifecycle | None = None,
) -> list[CardState]:
    """Every card's state in ``pieces`` and ``states``, merged, sorted by card id."""
    states = {} if states is None else states
    for piece in pieces:
        joined(decoded(piece), states, lifecycle)
    return [states[card] for card in sorted(states)]


def report_range(pieces: list[Piece], asked: Asked) -> RangeWritten:
    """Merge one range's states and write its part of the report (in a worker: a
    module-level function, so it pickles)."""
    return report_cards(merged(pieces, None, asked.lifecycle), asked)


def selected(
    cards: list[CardState], asked: Asked
) -> tuple[list[CardState], dict[str, tuple[ReconcileReason, ...]] | None]:
    """The cards the filters select, and their reasons to reconcile when judged."""
    if asked.statuses is not None:
        cards = [s for s in cards if s.status in asked.statuses]
    reasons = None
    if asked.now is not None:
        now = asked.now
        life = D1_LIFECYCLE if asked.lifecycle is None else asked.lifecycle
        reasons = {s.card_id: needs_reconcile(s, now, lifecycle=life) for s in cards}
        if asked.needs_reconcile:
            cards = [s for s in cards if reasons[s.card_id]]
    return cards, reasons


def report_cards(cards: list[CardState], asked: Asked) -> RangeWritten:
    """One range's part of the report, of its cards' states (sorted by card id)."""
    total = len(cards)
    cards, reasons = selected(cards, asked)
    text: str | bytes
    if asked.directory is None:
        buffer = io.BytesIO()
        _write(asked.format, cards, reasons, buffer)
        text = buffer.getvalue()
    else:
        fd, text = tempfile.mkstemp(suffix=".report", dir=asked.directory)
        with os.fdopen(fd, "wb") as file:
            _write(asked.format, cards, reasons, file)
    kept = [encode_state(s) for s in cards] if asked.keep else []
    return RangeWritten(total, Tally.of(cards, reasons), text, kept)


def _write(
    format: str,
    cards: list[CardState],
    reasons: dict[str, tuple[ReconcileReason, ...]] | None,
    out: BinaryIO,
) -> None:
    """A range's cards as ``format`` lays them out (a summary writes none)."""
    if format == "jsonl":
        out.writelines(encoded_cards(cards, reasons, lines=True))
    elif format == "json":
        write_json_cards(cards, reasons, out)
    elif format == "csv":
        write_csv_rows(cards, reasons, out)
