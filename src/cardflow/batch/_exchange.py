"""A parallel fold's phase two: the ranges of the report or of the states, and the
parent's part.

On a Dask cluster, every group's states were spilled: each range is merged from the
spills by any worker (``_ranges.report_range``). On this machine's workers (a
``LocalPool``), each worker still holds the groups it folded:

- for JSON Lines, where each card is one line, a card that one worker alone folded
  (nearly all of them: a card's events lie close together in a log) is final there:
  that worker writes its line, range after range, and this process merges each
  range's lines by card id. Only the states of cards folded by several workers (or
  read by this process) travel, in the state format, to be merged here.
- for the other formats, range ``k`` is reported by worker ``k % jobs``, and every
  state of it that another worker holds travels to it in the state format.

This process writes the head, then the ranges' text in order, then the tail: a report
sorted by card id, byte for byte what one process writes. For the states themselves
(``fold_files(...).states()``), each worker spills its states of a range, joined across
its groups, and this process merges the range's spills and hands its states out.
"""

from __future__ import annotations

import array
import bisect
import collections
import contextlib
import io
import itertools
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .._codec import encode_state
from .._lifecycle import Lifecycle
from .._state import CardState
from ._cards import CHUNK, encoded_cards
from ._formats import write_csv_rows
from ._jobs import Gathered, Spilled
from ._pool import LocalPool, worker_index
from ._ranges import (
    RANGES_PER_JOB,
    Asked,
    Piece,
    RangeWritten,
    cuts,
    joined,
    merged,
    pieces_between,
    ranges,
    report_cards,
    report_range,
    selected,
    slices,
)
from ._report import Tally
from ._workers import Workers, held

__all__ = [
    "STATES_PER_RANGE",
    "Lines",
    "copy_text",
    "exchange",
    "held_states",
    "holdings",
    "lines_of",
    "report_held",
    "report_ranges",
    "state_ranges",
    "states_of",
]

STATES_PER_RANGE: Final = 50_000
"""Card ids per range, about, when the states are handed out: the parent holds one
range's states at a time."""


@dataclass(frozen=True, slots=True)
class Lines:
    """What one worker gives a range of a JSON Lines report: ``size`` bytes at ``start``
    of the file ``path``, the JSON lines of the cards it alone holds (their ids in
    order, the tally of them, how many there were before the filters), then the
    states of the cards it shares with others, in the state format (``pieces``)."""

    ids: list[str]
    path: str
    ends: bytes
    """Where each line ends (after its newline), an ``array("Q")`` as bytes."""
    tally: Tally
    cards: int
    pieces: list[Piece] = field(default_factory=list)


def _lines(
    cards: list[CardState], asked: Asked, out: BinaryIO
) -> tuple[list[str], array.array[int], Tally]:
    """Write the cards the filters select as JSON lines to ``out``: their ids, where
    each line ends (from where ``out`` was), their count (as a tally)."""
    chosen, reasons = selected(cards, asked)
    ends = array.array("Q")
    end = 0
    for chunk in encoded_cards(chosen, reasons, lines=True):
        out.write(chunk)
        lines = chunk.split(b"\n")
        lines.pop()  # after the last newline (compact JSON holds no raw newline)
        for line in lines:
            end += len(line) + 1
            ends.append(end)
    if len(ends) != len(chosen):  # pragma: no cover (a guard on the JSON Lines layout)
        raise AssertionError(f"{len(chosen)} cards gave {len(ends)} JSON lines")
    # A JSON Lines report has no summary: of its tally, only the count is read.
    return [s.card_id for s in chosen], ends, Tally(len(chosen))


def held_states(groups: list[int], low: str | None, high: str | None) -> Iterator[CardState]:
    """The states of the range from ``low`` (included) to ``high`` (excluded) in the
    groups this worker holds, a group after another."""
    for folder, ids in held(groups):
        lo = 0 if low is None else bisect.bisect_left(ids, low)
        hi = len(ids) if high is None else bisect.bisect_left(ids, high)
        for card in ids[lo:hi]:
            yield folder[card]


def lines_of(
    groups: list[int],
    low: str | None,
    high: str | None,
    shared: frozenset[str],
    asked: Asked,
    directory: str,
) -> Lines:
    """This worker's part of a range of a JSON Lines report: the cards it alone holds,
    final, as lines; the states of the ``shared`` ones, to be merged with the other
    workers'. In a ``LocalPool`` worker."""
    mine: list[CardState] = []
    others: list[CardState] = []
    for state in held_states(groups, low, high):
        (others if state.card_id in shared else mine).append(state)
    alone = joined(mine, {}, asked.lifecycle)  # a card of several groups of this worker: one state
    total = len(alone)
    fd, path = tempfile.mkstemp(suffix=".lines", dir=directory)
    with open(fd, "wb", buffering=1 << 20) as file:
        ids, ends, tally = _lines([alone[card] for card in sorted(alone)], asked, file)
        start = end = ends[-1] if ends else 0
        states = array.array("Q")
        for state in others:
            end += file.write(encode_state(state))
            states.append(end - start)
    pieces = [Piece(path, start, states.tobytes())] if others else []
    return Lines(ids, path, ends.tobytes(), tally, total, pieces)


def _joined_lines(
    parts: list[Lines], pieces: list[Piece], asked: Asked, out: BinaryIO
) -> RangeWritten:
    """Write a range of a JSON Lines report to ``out`` from what each worker gave it
    and ``pieces`` of the parent's spills: the shared cards merged and written here,
    every line in card id order. What it held (its text: none, written already)."""
    states = merged(itertools.chain(pieces, *(one.pieces for one in parts)), None, asked.lifecycle)
    here = io.BytesIO()
    ids, ends, tally = _lines(states, asked, here)
    count = len(states)
    with contextlib.ExitStack() as stack:
        lines = _views(here.getbuffer(), ends)
        for one in parts:
            ends = array.array("Q")
            ends.frombytes(one.ends)
            if ends:
                with open(one.path, "rb") as file:
                    mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
                stack.enter_context(mapped)
                lines += _views(stack.enter_context(memoryview(mapped)), ends)
                ids += one.ids
            tally += one.tally
            count += one.cards
        # Sorted runs, one per worker: merged by card id.
        order = sorted(range(len(ids)), key=ids.__getitem__)
        for at in range(0, len(order), CHUNK):
            out.write(b"".join([lines[i] for i in order[at : at + CHUNK]]))
        del lines  # the views, before their files are unmapped
    for one in parts:
        os.unlink(one.path)
    return RangeWritten(count, tally, b"")


def _views(data: memoryview, ends: array.array[int]) -> list[memoryview]:
    """Each line of ``data`` (with its newline), ending at ``ends``: views, no copies."""
    return list(map(data.__getitem__, map(slice, [0, *ends[:-1]], ends)))


def _shared(spilled: list[Spilled], jobs: int) -> frozenset[str]:
    """Cards whose states lie with more than one worker, or in a spill of the parent."""
    seen: set[str] = set()
    shared: set[str] = set()
    for holder in [*range(jobs), None]:
        ids = set().union(*(s.ids for s in spilled if s.worker == holder))
        shared |= seen & ids
        seen |= ids
    return frozenset(shared)


def holdings(spilled: list[Spilled], jobs: int) -> list[list[int]]:
    """For each worker, the numbers of the groups whose states it holds."""
    return [[i for i, s in enumerate(spilled) if s.worker == w] for w in range(jobs)]


def _line_ranges(
    spilled: list[Spilled], pool: LocalPool, asked: Asked, count: int, out: BinaryIO
) -> Iterator[RangeWritten]:
    """Phase two of a JSON Lines report on workers that hold their groups' states: each
    worker writes the lines of the cards it alone holds, a range at a time; this
    process merges each range's lines by card id (and the few shared cards' states)."""
    cut = cuts(spilled, count)
    jobs = pool.jobs
    mine = holdings(spilled, jobs)
    directory = asked.directory
    assert directory is not None
    shared = _shared(spilled, jobs)
    bounds: list[str | None] = [None, *cut, None]
    futures = [
        [
            pool.submit_to(w, lines_of, mine[w], low, high, shared, asked, directory)
            for w in range(jobs)
        ]
        for low, high in itertools.pairwise(bounds)
    ]
    for parts, pieces in zip(futures, pieces_between(spilled, cut), strict=True):
        yield _joined_lines([f.result() for f in parts], pieces, asked, out)


def exchange(groups: list[int], cut: list[str], jobs: int, directory: str) -> list[list[Piece]]:
    """Spill, for each range between ``cut`` that another worker reports (range ``k`` is
    worker ``k % jobs``'s), this worker's states of it from the groups it holds; the
    pieces of each range (none for its own). In a ``LocalPool`` worker."""
    me = worker_index()
    out: list[list[Piece]] = [[] for _ in range(len(cut) + 1)]
    fd, path = tempfile.mkstemp(suffix=".states", dir=directory)
    offset = 0
    with open(fd, "wb", buffering=1 << 20) as file:
        write = file.write
        for folder, ids in held(groups):
            for k, (lo, hi) in enumerate(slices(ids, cut)):
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
    workers' and the parent's). In a ``LocalPool`` worker."""
    states = joined(held_states(groups, low, high), {}, asked.lifecycle)
    return report_cards(merged(pieces, states, asked.lifecycle), asked)


def _held_ranges(
    spilled: list[Spilled], pool: LocalPool, asked: Asked, count: int
) -> tuple[list[Future[RangeWritten]], set[str]]:
    """Phase two on workers that hold their groups' states: each range is reported by
    one worker, which is sent only the states of it that others hold; the ranges'
    futures, and the files that carry those states."""
    cut = cuts(spilled, count)
    jobs = pool.jobs
    mine = holdings(spilled, jobs)
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


def copy_text(text: str | bytes, out: BinaryIO) -> None:
    """Write a range's text to ``out``; a file of it is removed then (disk is the limit
    of a large fold)."""
    if isinstance(text, bytes):
        out.write(text)
        return
    with open(text, "rb") as file:
        shutil.copyfileobj(file, out, 1 << 20)
    os.unlink(text)


def report_ranges(
    gathered: Gathered, workers: Workers, asked: Asked, out: BinaryIO
) -> list[RangeWritten]:
    """Phase two: the report of what ``gathered`` holds, by ranges on ``workers``, in
    order. JSON Lines and CSV (a header first) are written to ``out`` as each range and
    those before it are done; the other formats' text is left in each range's
    ``text`` (see :func:`copy_text`)."""
    count = workers.jobs * RANGES_PER_JOB
    pool = workers.local
    files: set[str] = {s.data for s in gathered.spilled if isinstance(s.data, str)}
    done: Iterator[RangeWritten]
    if pool is not None and asked.format == "jsonl":
        done = _line_ranges(gathered.spilled, pool, asked, count, out)
    else:
        if pool is not None:
            futures, sent = _held_ranges(gathered.spilled, pool, asked, count)
            files |= sent
        else:
            submit = workers.executor.submit
            futures = [submit(report_range, p, asked) for p in ranges(gathered.spilled, count)]
        done = (future.result() for future in futures)
    # JSON Lines and CSV have no head that counts the cards: each range's text is
    # written as soon as it and the ranges before it are done.
    streamed = asked.format in ("jsonl", "csv")
    if asked.format == "csv":
        write_csv_rows(None, None, out, header=asked.now is not None)
    written = []
    for one in done:
        written.append(one)
        if streamed and one.tally.cards:
            copy_text(one.text, out)
    for path in files:
        os.unlink(path)  # read by every range: no longer needed
    return written


def states_of(
    groups: list[int],
    low: str | None,
    high: str | None,
    directory: str,
    lifecycle: Lifecycle | None,
) -> Piece | None:
    """This worker's states of the range from ``low`` to ``high``, joined across the
    groups it holds, sorted by card id, spilled to a file of ``directory`` (None: it
    holds none). In a ``LocalPool`` worker."""
    states = joined(held_states(groups, low, high), {}, lifecycle)
    if not states:
        return None
    fd, path = tempfile.mkstemp(suffix=".states", dir=directory)
    ends = array.array("Q")
    end = 0
    with open(fd, "wb", buffering=1 << 20) as file:
        for card in sorted(states):
            end += file.write(encode_state(states[card]))
            ends.append(end)
    return Piece(path, 0, ends.tobytes())


def state_ranges(gathered: Gathered, workers: Workers) -> Iterator[list[CardState]]:
    """Phase two for the states themselves: each range's states, merged, sorted by card
    id, in order; the workers spill a range or two ahead of the one handed out."""
    spilled = gathered.spilled
    lifecycle = gathered.lifecycle
    total = len({card for s in spilled for card in s.ids})
    count = max(workers.jobs * RANGES_PER_JOB, -(-total // STATES_PER_RANGE))
    files = {s.data for s in spilled if isinstance(s.data, str)}
    pool = workers.local
    try:
        if pool is None:  # a cluster's executor: every group was spilled here
            for pieces in ranges(spilled, count):
                yield merged(pieces, None, lifecycle)
            return
        yield from _handed_out(spilled, pool, count, workers.directory, lifecycle)
    finally:
        for path in files:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _handed_out(
    spilled: list[Spilled],
    pool: LocalPool,
    count: int,
    directory: str | None,
    lifecycle: Lifecycle | None,
) -> Iterator[list[CardState]]:
    assert directory is not None
    cut = cuts(spilled, count)
    jobs = pool.jobs
    mine = holdings(spilled, jobs)
    own = pieces_between(spilled, cut)  # the parent's spills
    bounds: list[tuple[str | None, str | None]] = list(itertools.pairwise([None, *cut, None]))
    asked: collections.deque[list[Future[Piece | None]]] = collections.deque()

    def ask(k: int) -> None:
        low, high = bounds[k]
        asked.append(
            [
                pool.submit_to(w, states_of, mine[w], low, high, directory, lifecycle)
                for w in range(jobs)
            ]
        )

    for k in range(min(2, len(bounds))):
        ask(k)
    try:
        for k in range(len(bounds)):
            pieces = [p for p in (f.result() for f in asked.popleft()) if p is not None]
            if k + 2 < len(bounds):
                ask(k + 2)
            states = merged([*own[k], *pieces], None, lifecycle)
            for piece in pieces:
                assert isinstance(piece.data, str)  # a worker's file
                os.unlink(piece.data)
            yield states
    finally:
        for futures in asked:
            for future in futures:
                future.cancel()
