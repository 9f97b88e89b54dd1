"""``fold_files``: files of D1 bodies folded on every core, for a Python caller.

The fold runs in two steps. :func:`fold_files` reads and folds every input (phase one:
in this process for ``jobs=1``, else in worker processes that keep their states) and
returns a :class:`FoldedFiles`, which knows the rejects and the totals. Its
:meth:`~FoldedFiles.states` then hands the states out in card id order, a range of
card ids at a time (phase two), merging the states of a card that several workers
saw; :meth:`~FoldedFiles.write_jsonl` and :meth:`~FoldedFiles.write_csv` have the
workers write the lines instead, as ``cardflow fold --jobs`` does. The command is a
shell over :func:`open_fold`, which adds what only it needs (watched cards, Dask,
part sizes, a listener told of each reject as it is read).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import types
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, Final

from .._codec import decode_state
from .._decode import MAX_BODY
from .._errors import FoldClosedError
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._reconcile import needs_reconcile
from .._state import CardState
from ._exchange import copy_text, report_ranges, state_ranges
from ._formats import JSON_SEPARATOR, JSON_TAIL, json_head, write_csv, write_jsonl
from ._inputs import STDIN, readable
from ._jobs import Gather, Gathered
from ._parallel import workers_for
from ._ranges import Asked
from ._report import Counts, EventLog, Listener, Rejected, Report, Tally, Totals
from ._single import InProcess
from ._workers import Workers

__all__ = ["INTERVAL", "FoldedFiles", "Polling", "fold_files", "open_fold", "write_ranges"]

INTERVAL: Final = 0.1
"""Seconds between two calls of ``fold_files``'s ``progress``, at least."""

Polling = Callable[[Callable[[], Counts], int | None], Callable[[], None]]
"""Makes the function a fold calls as it reads (often: it must be cheap), given how to
take the fold's counts and the bytes to read (None: unknown, stdin or a pipe)."""


class FoldedFiles:
    """Files folded: the rejects and totals now, the states in card id order on demand.

    A context manager: leaving it (or :meth:`close`) stops the worker processes and
    removes their files; so does handing out the last state of :meth:`states` or
    writing with :meth:`write_jsonl` or :meth:`write_csv`. The states are handed out
    once: asked for again, or after the close, they raise :class:`~cardflow.FoldClosedError`.
    """

    def __init__(
        self,
        *,
        rejects: list[Rejected],
        single: InProcess | None = None,
        gathered: Gathered | None = None,
        workers: Workers | None = None,
        stack: contextlib.ExitStack | None = None,
    ) -> None:
        self.rejects = rejects
        """Every rejected body and operation, in input order, with its file and line."""
        self.problems: list[str] = []
        """What went wrong with an input, in order (``cannot read PATH: REASON``)."""
        self.single = single
        """The fold in this process, when it ran here (None: in workers)."""
        self.gathered = gathered
        """Phase one in workers: what phase two starts from (None: in this process)."""
        self.workers = workers
        self._stack = stack or contextlib.ExitStack()
        self._used = False
        self._totals: Totals | None = None

    @property
    def totals(self) -> Totals:
        """What was read: inputs, lines, bodies, operations, rejects, folded, cards."""
        if self._totals is None:
            if self.single is not None:
                self._totals = self.single.finish()
            else:
                assert self.gathered is not None
                gathered = self.gathered
                cards = len({card for s in gathered.spilled for card in s.ids})
                self._totals = gathered.totals.complete(cards, gathered.passed_over, gathered.added)
        return self._totals

    @property
    def histories(self) -> dict[str, EventLog]:
        """The watched cards' events (``cardflow fold --card``)."""
        if self.single is not None:
            return self.single.histories
        assert self.gathered is not None
        return self.gathered.histories

    def missing(self) -> list[str]:
        """The watched cards that the input does not hold, sorted."""
        if self.single is not None:
            watch, held = self.single.watch, set(self.single.folder)
        else:
            assert self.gathered is not None
            watch = self.gathered.watch
            held = {card for s in self.gathered.spilled for card in s.ids}
        return sorted(card for card in watch or () if card not in held)

    def _once(self) -> None:
        if self._used:
            raise FoldClosedError(
                "the states of this fold_files were handed out already, or it was closed:"
                " fold the files again"
            )
        self._used = True

    def states(self) -> Iterator[tuple[str, CardState]]:
        """Every card's state, as ``(card_id, state)``, sorted by card id: a range of
        card ids at a time, each range merged from the workers as it is reached."""
        self._once()
        return self._states()

    def _states(self) -> Iterator[tuple[str, CardState]]:
        try:
            if self.single is not None:
                folded = self.single.folder.finish()  # each summary released as it is made
                for card in sorted(folded):
                    yield card, folded[card]
                return
            assert self.gathered is not None
            assert self.workers is not None
            for states in state_ranges(self.gathered, self.workers):
                for state in states:
                    yield state.card_id, state
        finally:
            self.close()

    def write_jsonl(self, out: BinaryIO) -> None:
        """Write every card as a JSON line (:func:`~cardflow.batch.write_jsonl`), sorted
        by card id, to ``out``: each worker writes the lines of the cards it alone
        holds, and this process merges them."""
        self._write("jsonl", out)

    def write_csv(self, out: BinaryIO) -> None:
        """Write every card as a CSV row (:func:`~cardflow.batch.write_csv`), sorted by
        card id, to ``out``: each worker writes a range of the rows."""
        self._write("csv", out)

    def _write(self, format: str, out: BinaryIO) -> None:
        self._once()
        if self.single is not None:
            states = (state for _, state in self._states())
            (write_jsonl if format == "jsonl" else write_csv)(states, out)
            return
        assert self.gathered is not None
        assert self.workers is not None
        try:
            asked = Asked(format, None, None, False, False, self.workers.directory)
            report_ranges(self.gathered, self.workers, asked, out)
        finally:
            self.close()

    def close(self) -> None:
        """Stop the workers, remove their files (the states are gone then)."""
        self._used = True
        self._stack.close()

    def __enter__(self) -> FoldedFiles:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: types.TracebackType | None,
    ) -> None:
        self._used = True
        self._stack.__exit__(kind, error, traceback)


def open_fold(
    paths: Iterable[str],
    listener: Listener,
    *,
    jobs: int | None = None,
    lifecycle: Lifecycle = D1_LIFECYCLE,
    polling: Polling | None = None,
    watch: frozenset[str] | None = None,
    part_size: int | None = None,
    dask: str | None = None,
    stdin: BinaryIO | None = None,
    stdin_fd: int | None = None,
    max_line: int = MAX_BODY,
) -> FoldedFiles:
    """Phase one of a fold of ``paths`` (``-`` is ``stdin``; none is stdin too): in this
    process, on ``jobs`` workers or on the Dask cluster at ``dask``. ``listener`` hears of
    each reject and problem in input order; ``watch`` folds only those cards, keeping
    where each of their events was first seen; a line longer than ``max_line`` bytes
    is a reject. The rejects it gives are empty: the
    listener has them."""
    paths = list(paths)
    stack = contextlib.ExitStack()
    unreadable: list[str] = []
    try:
        if dask is not None:  # the cluster first: it may be unreachable
            workers = stack.enter_context(workers_for([], jobs, part_size, dask))
            sources = readable(paths, stdin_fd, unreadable, listener.warn)
        else:
            sources = readable(paths, stdin_fd, unreadable, listener.warn)
            workers = stack.enter_context(workers_for(sources, jobs, part_size))
        sizes = [s.size for s in sources]
        total = None if None in sizes else sum(s or 0 for s in sizes)
        run: InProcess | Gather
        if workers is None:
            run = InProcess(listener, watch, lifecycle, stdin, stdin_fd, max_line)
        else:
            life = None if lifecycle is D1_LIFECYCLE else lifecycle
            run = Gather(listener, watch, workers, life, stdin, stdin_fd, max_line)
        run.totals.unreadable = unreadable
        if polling is not None:
            run.poll = polling(run.snapshot, total)
        if isinstance(run, InProcess):
            run.totals.sources = [s.name for s in sources]
            run.read_all(sources)
            stack.close()
            return FoldedFiles(rejects=[], single=run)
        gathered = run.gather(sources, part_size)
    except BaseException:
        stack.__exit__(*sys.exc_info())
        raise
    return FoldedFiles(rejects=[], gathered=gathered, workers=workers, stack=stack)


def fold_files(
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    jobs: int | None = None,
    lifecycle: Lifecycle = D1_LIFECYCLE,
    progress: Callable[[int, int, int], None] | None = None,
) -> FoldedFiles:
    """Fold the D1 bodies of ``paths`` (files, directories of ``*.json``, ``*.jsonl``
    and ``*.ndjson`` files read recursively, ``-`` for stdin) on ``jobs`` processes.

    ``jobs`` None is one per core, 1 folds in this process; inputs too small to split
    are folded here too. The files are read as ``cardflow fold`` reads them (JSON Lines
    and pretty-printed documents, in any mix; a bad line is rejected alone), and the
    states are those that :func:`cardflow.fold` gives of the same events: the fold is
    a join, so any split of the input gives them. ``progress``, when given, is called
    with the bytes and lines read and the cards folded so far, about every
    ``INTERVAL`` seconds while reading, and once at the end.

    An input that cannot be read is named in ``totals.unreadable`` and in
    ``problems``; the others are folded all the same.
    """
    if jobs is not None and jobs < 1:
        raise ValueError(f"fold_files: jobs must be at least 1, not {jobs}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    names = [os.fspath(p) for p in paths]
    rejects: list[Rejected] = []
    problems: list[str] = []
    listener = Listener(rejects.append, problems.append)
    counts: list[Callable[[], Counts]] = []
    polling: Polling | None = None
    if progress is not None:
        polling = _every(progress, counts)
    if not names:  # nothing to read (the command reads stdin then; a library, no)
        folded = FoldedFiles(rejects=rejects, single=InProcess(listener, lifecycle=lifecycle))
    else:
        stdin = sys.stdin.buffer if STDIN in names and sys.stdin is not None else None
        folded = open_fold(
            names,
            listener,
            jobs=jobs,
            lifecycle=lifecycle,
            polling=polling,
            stdin=stdin,
        )
    folded.rejects = rejects
    folded.problems = problems
    if progress is not None:  # the last call: every byte, line and card
        read = counts[0]()[0] if counts else 0
        totals = folded.totals
        progress(read, totals.lines, totals.cards)
    return folded


def _every(
    progress: Callable[[int, int, int], None], counts: list[Callable[[], Counts]]
) -> Polling:
    """Polling that calls ``progress`` at most every ``INTERVAL`` seconds; ``counts``
    gets the fold's counts, for the last call."""

    def polling(snapshot: Callable[[], Counts], total: int | None) -> Callable[[], None]:
        counts.append(snapshot)
        due = time.monotonic() + INTERVAL
        clock = time.monotonic

        def poll() -> None:
            nonlocal due
            now = clock()
            if now >= due:
                due = now + INTERVAL
                read, lines, _, cards = snapshot()
                progress(read, lines, cards)

        return poll

    return polling


def write_ranges(
    folded: FoldedFiles,
    asked: Asked,
    out: BinaryIO,
    filters: dict[str, object],
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> Report:
    """The report ``asked`` of a fold on workers, written range by range to ``out``:
    JSON Lines and CSV whole, the JSON document with its head (the summary the ranges
    counted) and tail; for a summary, nothing. The report of the counts, its cards
    the states the ranges kept (``asked.keep``), with their reasons."""
    gathered, workers = folded.gathered, folded.workers
    assert gathered is not None
    assert workers is not None
    folded._once()
    written = report_ranges(gathered, workers, asked, out)
    now = asked.now
    tally = Tally.of([], None if now is None else {})
    for one in written:
        tally += one.tally
    totals = gathered.totals.complete(
        sum(one.cards for one in written), gathered.passed_over, gathered.added
    )
    kept = [decode_state(data) for one in written for data in one.kept]  # --card's few
    reasons = tally.reasons
    if reasons is not None and now is not None:
        judged = {s.card_id: needs_reconcile(s, now, lifecycle=lifecycle) for s in kept}
        reasons = {**reasons, **judged}
    report = Report(
        totals=totals,
        cards=kept,
        reasons=reasons,
        now=now,
        filters=filters,
        lifecycle=lifecycle,
        histories=gathered.histories,
        tally=tally,
    )
    if asked.format == "json":
        texts = [one.text for one in written if one.tally.cards]
        out.write(json_head(report, empty=not texts))
        if texts:
            for i, text in enumerate(texts):
                out.write(JSON_SEPARATOR if i else b"")
                copy_text(text, out)
            out.write(JSON_TAIL)
    return report
