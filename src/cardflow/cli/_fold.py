"""``cardflow fold``: read D1 bodies as a stream, fold them per card, report.

Bodies are decoded one at a time and their operations folded at once into a
:class:`cardflow.Folder`, so memory grows with the number of cards, never
with the number of events. Every rejected body or operation is reported on stderr
(file, line, JSON path, reason) and, with ``--rejects``, written out verbatim; the
good operations beside it are folded all the same.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import itertools
import os
from collections.abc import Iterator
from datetime import datetime
from typing import BinaryIO, Final, cast

from .. import Folder, InvalidNotification, decode
from .._decode import READING_MARK
from .._reconcile import ReconcileReason, needs_reconcile
from .._state import CardState
from .._wire import PRODUCE, Operation, fingerprint
from ._console import Console
from ._inputs import STDIN, Body, Reader, Source, one_line, readable
from ._jobs import Gathered, RejectsWriteError
from ._parallel import ClusterError, fold_in_parts
from ._progress import Progress, wanted
from ._report import (
    EventLog,
    Report,
    Seen,
    Totals,
    counted,
    write_csv,
    write_json,
    write_jsonl,
    write_summary,
    write_views,
)

__all__ = [
    "NOT_FOUND",
    "OK",
    "REJECTED",
    "UNREADABLE",
    "USAGE",
    "RejectsWriteError",
    "add_reading_options",
    "closing",
    "fold_inputs",
    "report_states",
    "run_fold",
]

OK = 0
REJECTED = 1
USAGE = 2
UNREADABLE = 3
NOT_FOUND = 4


_BOM: Final = codecs.BOM_UTF8
_READ_AS_A_READING: Final = InvalidNotification("a logged on-demand response")
"""Sends a line to the lenient path, which tells a reading from a notification."""


class _Run:
    """One fold over the inputs: the folder, the counts, and where problems are reported."""

    def __init__(
        self,
        args: argparse.Namespace,
        console: Console,
        rejects: BinaryIO | None,
        command: str = "fold",
    ) -> None:
        self.console = console
        self.prefix = f"cardflow {command}:"
        self.rejects = rejects
        self.folder = Folder()
        self.totals = Totals()
        self.watch: frozenset[str] | None = frozenset(args.card) if args.card else None
        self.histories = {card: EventLog() for card in self.watch or ()}
        self.progress: Progress | None = None
        self.added = 0  # operations handed to the folder, PRODUCE or not
        self._done = 0  # bytes of the sources read to the end
        self._bytes = 0  # bytes read of the current source (counted only for progress)
        self._lines = 0  # lines read of the current source
        self._line = 0  # the line of the body whose operations were last handed over

    def warn(self, message: str) -> None:
        if self.progress is not None:
            self.progress.clear()
        self.console.stderr.write(message + "\n")

    def _snapshot(self) -> tuple[int, int, int]:
        return self._done + self._bytes, self.totals.operations, len(self.folder)

    def read_all(self, paths: list[str], progress: bool | None) -> None:
        sources = readable(
            paths, self.console.stdin_fd, self.totals.unreadable, self.warn, self.prefix
        )
        self.totals.sources = [s.name for s in sources]
        if wanted(progress, self.console.stderr, self.console.environ):
            sizes = [s.size for s in sources]
            total = None if None in sizes else sum(s or 0 for s in sizes)
            self.progress = Progress(self.console.stderr, self._snapshot, total)
        try:
            for source in sources:
                self._read(source)
        finally:
            if self.progress is not None:
                self.progress.clear()

    def _read(self, source: Source) -> None:
        fd = self.console.stdin_fd
        if source.path == STDIN and fd is not None and os.isatty(fd):
            self.warn(f"{self.prefix} reading D1 bodies from the terminal; end with Ctrl-D")
        try:
            stream = (
                self.console.stdin
                if source.path == STDIN
                else open(source.path, "rb", buffering=1 << 20)  # noqa: SIM115 (closed below)
            )
        except OSError as exc:
            self.totals.unreadable.append(source.name)
            self.warn(f"{self.prefix} cannot read {source.name}: {exc.strerror or exc}")
            return
        self._lines = 0
        try:
            if self.watch is None:
                self.folder.update(itertools.chain.from_iterable(self._bodies(source, stream)))
            else:
                self._fold_watched(source, stream)
        except OSError as exc:
            self.totals.unreadable.append(source.name)
            self.warn(
                f"{self.prefix} cannot read {source.name} after line {self._lines}:"
                f" {exc.strerror or exc}"
            )
        finally:
            if stream is not self.console.stdin:
                stream.close()
            self.totals.lines += self._lines
            self._done += self._bytes
            self._bytes = 0

    def finish(self) -> Totals:
        """The totals, completed with what the folder knows."""
        return self.totals.complete(len(self.folder), self.folder.passed_over, self.added)

    def _bodies(self, source: Source, stream: BinaryIO) -> Iterator[list[Operation]]:
        """The operations of each body of ``stream``, one list a body, as they are read.

        The fast path first: a line that decodes as a whole (the usual case) costs one
        strict ``decode``. A line that does not (a blank line, a bad line, the first line
        of a pretty-printed document) goes to a :class:`Reader`, the lenient path that
        reports every reject with its file and line; the Reader is left as soon as it
        has read no further than the body it gave, so that one bad line never slows
        the lines after it.
        """
        totals = self.totals
        poll = self.progress.poll if self.progress is not None else None
        watching = self.watch is not None
        lines: Iterator[bytes] = iter(stream)
        first = next(lines, None)  # taken apart: only line 1 may start with a BOM
        if first is not None:
            if first.startswith(_BOM):
                if poll is not None:
                    self._bytes += len(_BOM)
                first = first[len(_BOM) :]
            lines = itertools.chain((first,), lines)
        count = bodies = operations = 0
        try:
            for line in lines:
                count += 1
                if poll is not None:
                    self._bytes += len(line)
                    poll()
                try:
                    if READING_MARK in line:
                        raise _READ_AS_A_READING  # rare: the Reader says when it was read
                    ops = decode(line)
                except InvalidNotification:
                    if not line.strip():
                        continue
                    # The Reader's line 1 is a blank line that it skips; the line that
                    # failed is its line 2, our line ``count``.
                    offset = count - 2
                    before = self._bytes - 1 - len(line)
                    reader = Reader(cast("BinaryIO", _resume(line, lines)))
                    for body in reader:
                        bodies += 1
                        ops = body.decoded.operations
                        operations += len(ops)
                        self._line = body.line + offset
                        if body.at is not None:
                            self._fold_reading(source.name, ops, body.at)
                        elif ops:
                            yield ops
                        if body.decoded.rejects:
                            self._reject(source.name, body, offset)
                        if poll is not None:
                            self._bytes = before + reader.bytes_read
                            poll()
                        if _last_line(body) == reader.lines:
                            break  # the Reader holds nothing more: back to the fast path
                    count = reader.lines + offset
                    if poll is not None:
                        self._bytes = before + reader.bytes_read
                    continue
                bodies += 1
                operations += len(ops)
                if watching:
                    self._line = count
                yield ops
        finally:
            self._lines = count
            totals.bodies += bodies
            totals.operations += operations
            if self.watch is None:
                self.added += operations

    def _fold_reading(self, name: str, ops: list[Operation], at: datetime) -> None:
        """Fold the events of a logged on-demand response, read at ``at``."""
        watch = self.watch
        add = self.folder.add
        for op in ops:
            if watch is None:
                add(op, at=at)
            elif op.card_id in watch:
                self.added += 1
                add(op, at=at)
                self._remember(op, name, self._line)

    def _fold_watched(self, source: Source, stream: BinaryIO) -> None:
        """Fold only the watched cards' operations, remembering where each was read."""
        watch = self.watch
        assert watch is not None
        add = self.folder.add
        for ops in self._bodies(source, stream):
            for op in ops:
                if op.card_id in watch:
                    self.added += 1
                    add(op)
                    self._remember(op, source.name, self._line)

    def _remember(self, op: Operation, name: str, line: int) -> None:
        events = self.histories[op.card_id].events
        key = fingerprint(op)
        seen = events.get(key)
        if seen is None:
            events[key] = Seen(op, f"{name}:{line}")
        else:
            seen.deliveries += 1

    def _reject(self, name: str, body: Body, offset: int) -> None:
        """Report a body's rejects; ``offset`` turns the Reader's line numbers into ours."""
        for reject in body.decoded.rejects:
            if reject.index is None:
                self.totals.rejected_bodies += 1
            else:
                self.totals.rejected_operations += 1
            self.warn(str(reject.error().located(name, body.line_of(reject) + offset)))
            if self.rejects is not None:
                try:
                    self.rejects.write(one_line(reject.raw) + b"\n")
                except OSError as exc:
                    raise RejectsWriteError(exc) from exc


def _resume(failed: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """What a Reader reads from where the fast path left: a blank line (so that no byte
    order mark is taken off a line after the first), the line that failed, the rest."""
    yield b"\n"
    yield failed
    # Not ``yield from``: closing this generator would close ``rest``, the file itself.
    for line in rest:  # noqa: UP028
        yield line


def _last_line(body: Body) -> int:
    """The line a body ends on, in its Reader's numbering."""
    return body.line + body.text.rstrip(b"\r\n").count(b"\n")


def _describe(args: argparse.Namespace) -> dict[str, object]:
    filters: dict[str, object] = {}
    if args.card:
        filters["card"] = list(args.card)
    if args.status:
        filters["status"] = list(args.status)
    if args.needs_reconcile:
        filters["needsReconcile"] = True
    return filters


def run_fold(args: argparse.Namespace, console: Console) -> int:
    """Run ``cardflow fold`` with parsed ``args``; the exit status."""
    known = set(args.lifecycle.statuses)
    for status in args.status or ():
        if status not in known:
            console.stderr.write(
                f"cardflow fold: note: --status {status!r} is not a status of"
                f" {args.lifecycle.name} (cards with unknown statuses may still match)\n"
            )
    try:
        # Unbuffered: a rejected item is on disk, or its failure known, at once.
        rejects_file = open(args.rejects, "wb", buffering=0) if args.rejects else None  # noqa: SIM115
    except OSError as exc:
        console.stderr.write(
            f"cardflow fold: cannot write --rejects {args.rejects}: {exc.strerror or exc}\n"
        )
        return USAGE
    run = _Run(args, console, rejects_file)
    parallel: Gathered | None = None
    try:
        with rejects_file if rejects_file is not None else contextlib.nullcontext():
            parallel = fold_in_parts(args, console, rejects_file)  # --jobs, --dask
            if parallel is None:
                run.read_all(list(args.paths), args.progress)
    except RejectsWriteError as exc:
        console.stderr.write(
            f"cardflow fold: cannot write --rejects {args.rejects}: {exc}; stopped\n"
        )
        return UNREADABLE
    except ClusterError as exc:
        console.stderr.write(f"cardflow fold: {exc}\n")
        return USAGE
    return _report(args, console, run if parallel is None else parallel)


def add_reading_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that reads and folds inputs: ``--allow-rejects``,
    ``--progress``."""
    parser.add_argument(
        "--allow-rejects",
        action="store_true",
        help="exit 0 even when input was rejected (it is still reported)",
    )
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: only when stderr is a terminal, not in CI)",
    )


def fold_inputs(
    paths: list[str], console: Console, progress: bool | None, command: str
) -> tuple[Folder, Totals]:
    """Read and fold ``paths`` exactly as ``cardflow fold`` does, for another command.

    Every rejected item and unreadable input is reported on ``console.stderr``, its
    messages naming ``cardflow COMMAND``; the totals say what was read and lost.
    """
    run = _Run(argparse.Namespace(card=None), console, None, command)
    run.read_all(paths, progress)
    return run.folder, run.finish()


def _report(args: argparse.Namespace, console: Console, run: _Run | Gathered) -> int:
    totals = run.finish()
    folder = run.folder
    missing: list[str] = []
    if run.watch is not None:
        ids = sorted(card for card in run.watch if card in folder)
        missing = sorted(card for card in run.watch if card not in folder)
    else:
        ids = sorted(folder)
    states: list[CardState] = [folder[card] for card in ids]
    if args.status:
        wanted_statuses = set(args.status)
        states = [s for s in states if s.status in wanted_statuses]
    report_states(args, console, states, totals, run.histories, watching=run.watch is not None)
    kept = f"; written to {args.rejects}" if args.rejects else ""
    return closing(
        args,
        console,
        totals,
        [f"card {card}: no {PRODUCE} operation in the input" for card in missing],
        f"{kept}; everything else was folded",
    )


def report_states(
    args: argparse.Namespace,
    console: Console,
    states: list[CardState],
    totals: Totals,
    histories: dict[str, EventLog],
    *,
    watching: bool,
) -> None:
    """Write the report of ``states`` in ``--format``, judged as of ``--now`` (the clock's
    when a format needs it), with ``--needs-reconcile`` applied: whatever they came from."""
    human = args.format == "summary"
    now: datetime | None = args.now
    reasons: dict[str, tuple[ReconcileReason, ...]] | None = None
    if human or args.needs_reconcile or now is not None:
        now = now or console.clock().replace(microsecond=0)
        reasons = {s.card_id: needs_reconcile(s, now, lifecycle=args.lifecycle) for s in states}
        if args.needs_reconcile:
            states = [s for s in states if reasons[s.card_id]]
    report = Report(
        totals=totals,
        cards=states,
        reasons=reasons,
        now=now,
        filters=_describe(args),
        lifecycle=args.lifecycle,
        histories=histories,
    )
    out = console.stdout
    if args.format == "jsonl":
        write_jsonl(report, out)
    elif args.format == "json":
        write_json(report, out)
    elif args.format == "csv":
        write_csv(report, out)
    elif watching:
        if report.cards:
            write_views(report, out)
    else:
        write_summary(report, out)
    out.flush()


def closing(
    args: argparse.Namespace,
    console: Console,
    totals: Totals,
    missing: list[str],
    rest: str,
) -> int:
    """Say what was missing and rejected on stderr; the exit status (3, 1, 4, in that
    order of precedence, else 0). ``rest`` ends the line about rejects."""
    for what in missing:
        console.stderr.write(f"cardflow fold: {what}\n")
    if totals.rejected:
        bodies = counted(totals.rejected_bodies, "body", "bodies")
        operations = counted(totals.rejected_operations, "operation")
        console.stderr.write(f"cardflow fold: rejected {bodies} and {operations}{rest}\n")
    if totals.unreadable:
        return UNREADABLE
    if totals.rejected and not args.allow_rejects:
        return REJECTED
    if missing:
        return NOT_FOUND
    return OK
