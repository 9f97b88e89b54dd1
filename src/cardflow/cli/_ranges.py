"""``cardflow fold --jobs N``, its second phase: the report written by ranges of card ids.

Phase one (``_jobs.py``) left each group's states sorted by card id and spilled.
Here the card ids are cut into ranges of about equal numbers of states, and each
worker takes one range: it decodes that range's states from every spill, merges the
states of each card (the fold is a join: any split merges to the one state), applies
the filters, judges reconciliation, counts what the summary says (a :class:`Tally`,
which adds up across ranges) and writes its range of the report in ``--format``.
The parent writes the head, then the ranges' text in order, then the tail: a report
sorted by card id, byte for byte what one process writes.
"""

from __future__ import annotations

import argparse
import array
import bisect
import io
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Final

from .._codec import decode_state, encode_state
from .._reconcile import ReconcileReason, needs_reconcile
from .._state import CardState, merge
from ._cards import encoded_cards
from ._console import Console
from ._formats import JSON_SEPARATOR, JSON_TAIL, json_head, write_csv_rows, write_json_cards
from ._jobs import Gathered, Spilled, Workers, held
from ._pool import LocalPool, worker_index
from ._readable import write_summary, write_views
from ._report import Report, Tally, Totals, filters_of, judged_at

__all__ = [
    "Asked",
    "Piece",
    "RangeWritten",
    "cuts",
    "decoded",
    "exchange",
    "pieces_between",
    "ranges",
    "report_held",
    "report_range",
    "write_in_ranges",
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
    ``--card`` view), and where to write the range's text (None: send it back)."""

    format: str
    now: datetime | None
    statuses: frozenset[str] | None
    needs_reconcile: bool
    keep: bool
    directory: str | None


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


def _bounds(ids: list[str], cut: list[str]) -> Iterator[tuple[int, int]]:
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
        for k, (lo, hi) in enumerate(_bounds(s.ids, cut)):
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


def _states(pieces: Sequence[Piece], states: dict[str, CardState] | None = None) -> list[CardState]:
    """Every card's state in ``pieces`` and ``states``, merged, sorted by card id."""
    states = {} if states is None else states
    get = states.get
    for piece in pieces:
        for state in decoded(piece):
            old = get(state.card_id)
            states[state.card_id] = state if old is None else merge(old, state)
    return [states[card] for card in sorted(states)]


def report_range(pieces: list[Piece], asked: Asked) -> RangeWritten:
    """Merge one range's states and write its part of the report (in a worker: a
    module-level function, so it pickles)."""
    return _report_cards(_states(pieces), asked)


def exchange(groups: list[int], cut: list[str], jobs: int, directory: str) -> list[list[Piece]]:
    """Spill, for each range between ``cut`` that another worker reports (range ``k`` is
    worker ``k % jobs``'s), this worker's states of it from the groups it holds; the
    pieces of each range (none for its own). In a worker of a ``LocalPool``."""
    me = worker_index()
    out: list[list[Piece]] = [[] for _ in range(len(cut) + 1)]
    fd, path = tempfile.mkstemp(suffix=".states", dir=directory)
    offset = 0
    with open(fd, "wb", buffering=1 << 20) as file:
        write = file.write
        for folder, ids in held(groups):
            for k, (lo, hi) in enumerate(_bounds(ids, cut)):
                if k % jobs == me or lo == hi:
                    continue
                ends = array.array("Q")
                end = 0
                for card in ids[lo:hi]:
                    end += write(encode_state(folder[card]))
                    ends.append(end)
                out[k].append(Piece(path, offset, ends.tobytes()))
                offset += end
    if not offset:
        os.unlink(path)
    return out


def report_held(
    groups: list[int], low: str | None, high: str | None, pieces: list[Piece], asked: Asked
) -> RangeWritten:
    """Report the range of card ids from ``low`` (included) to ``high`` (excluded): the
    states of the groups this worker holds, merged with those of ``pieces`` (the other
    workers' and the parent's). In a worker of a ``LocalPool``."""
    states: dict[str, CardState] = {}
    get = states.get
    for folder, ids in held(groups):
        lo = 0 if low is None else bisect.bisect_left(ids, low)
        hi = len(ids) if high is None else bisect.bisect_left(ids, high)
        for card in ids[lo:hi]:
            state = folder[card]
            old = get(card)
            states[card] = state if old is None else merge(old, state)
    return _report_cards(_states(pieces, states), asked)


def _held_ranges(
    spilled: list[Spilled], pool: LocalPool, asked: Asked, count: int
) -> tuple[list[Future[RangeWritten]], set[str]]:
    """Phase two on local workers that hold their groups' states: each range is
    reported by one worker, which is sent only the states of it that others hold; the
    ranges' futures, and the files that carry those states."""
    cut = cuts(spilled, count)
    jobs = pool.jobs
    mine = [[i for i, s in enumerate(spilled) if s.worker == w] for w in range(jobs)]
    directory = asked.directory
    assert directory is not None
    sent = [pool.submit_to(w, exchange, mine[w], cut, jobs, directory) for w in range(jobs)]
    incoming = pieces_between(spilled, cut)  # the parent's own spills
    files: set[str] = set()
    for future in sent:
        for k, pieces in enumerate(future.result()):
            incoming[k] += pieces
            files.update(p.data for p in pieces if isinstance(p.data, str))
    bounds: list[str | None] = [None, *cut, None]
    futures = [
        pool.submit_to(k % jobs, report_held, mine[k % jobs], low, high, pieces, asked)
        for k, (pieces, (low, high)) in enumerate(
            zip(incoming, itertools.pairwise(bounds), strict=True)
        )
    ]
    return futures, files


def _report_cards(cards: list[CardState], asked: Asked) -> RangeWritten:
    """One range's part of the report, of its cards' states (sorted by card id)."""
    total = len(cards)
    if asked.statuses is not None:
        cards = [s for s in cards if s.status in asked.statuses]
    reasons = None
    if asked.now is not None:
        now = asked.now
        reasons = {s.card_id: needs_reconcile(s, now) for s in cards}
        if asked.needs_reconcile:
            cards = [s for s in cards if reasons[s.card_id]]
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


def _copy(text: str | bytes, out: BinaryIO) -> None:
    """Write a range's text to ``out``; a file of it is removed then (disk is the limit
    of a large fold)."""
    if isinstance(text, bytes):
        out.write(text)
        return
    with open(text, "rb") as file:
        shutil.copyfileobj(file, out, 1 << 20)
    os.unlink(text)


def write_in_ranges(
    args: argparse.Namespace, console: Console, gathered: Gathered, workers: Workers
) -> tuple[Totals, list[str]]:
    """Phase two: the report of what ``gathered`` holds, written by ranges on
    ``workers``; the completed totals, and the watched cards that were not found."""
    watching = gathered.watch is not None
    now = judged_at(args, console.clock)
    asked = Asked(
        format=args.format,
        now=now,
        statuses=frozenset(args.status) if args.status else None,
        needs_reconcile=bool(args.needs_reconcile),
        keep=watching and args.format == "summary",
        directory=workers.directory,
    )
    count = workers.jobs * RANGES_PER_JOB
    pool = workers.local
    files = {s.data for s in gathered.spilled if isinstance(s.data, str)}
    if pool is not None:
        futures, sent = _held_ranges(gathered.spilled, pool, asked, count)
        files |= sent
    else:
        submit = workers.executor.submit
        futures = [submit(report_range, p, asked) for p in ranges(gathered.spilled, count)]
    out = console.stdout
    # JSON Lines and CSV have no head that counts the cards: each range's text is
    # written as soon as it and the ranges before it are done.
    streamed = args.format in ("jsonl", "csv")
    if args.format == "csv":
        write_csv_rows(None, None, out, header=now is not None)
    written = []
    for future in futures:
        one = future.result()
        written.append(one)
        if streamed and one.tally.cards:
            _copy(one.text, out)
    for path in files:
        os.unlink(path)  # read by every range: no longer needed
    tally = Tally.of([], None if now is None else {})
    for one in written:
        tally += one.tally
    totals = gathered.totals.complete(
        sum(one.cards for one in written), gathered.passed_over, gathered.added
    )
    kept = [decode_state(data) for one in written for data in one.kept]  # --card's few
    reasons = tally.reasons
    if reasons is not None and now is not None:
        reasons = {**reasons, **{s.card_id: needs_reconcile(s, now) for s in kept}}
    report = Report(
        totals=totals,
        cards=kept,
        reasons=reasons,
        now=now,
        filters=filters_of(args),
        lifecycle=args.lifecycle,
        histories=gathered.histories,
        tally=tally,
    )
    if args.format == "json":
        texts = [one.text for one in written if one.tally.cards]
        out.write(json_head(report, empty=not texts))
        if texts:
            for i, text in enumerate(texts):
                out.write(JSON_SEPARATOR if i else b"")
                _copy(text, out)
            out.write(JSON_TAIL)
    elif not streamed:  # the summary, or --card's views of each card
        if not watching:
            write_summary(report, out)
        elif report.cards:
            write_views(report, out)
    out.flush()
    missing: list[str] = []
    if gathered.watch is not None:
        present = {card for s in gathered.spilled for card in s.ids}
        missing = sorted(card for card in gathered.watch if card not in present)
    return totals, missing
