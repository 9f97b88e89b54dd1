"""``cardflow fold``: read D1 bodies as a stream, fold them per card, report.

Bodies are decoded one at a time and their operations folded at once into a
:class:`cardflow.Folder`, so memory grows with the number of cards, never
with the number of events. Every rejected body or operation is reported on stderr
(file, line, JSON path, reason) and, with ``--rejects``, written out verbatim; the
good operations beside it are folded all the same.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from typing import BinaryIO

from .. import Folder
from .._decode import MAX_BODY, Reject
from .._reconcile import ReconcileReason, needs_reconcile
from .._state import CardState
from .._wire import PRODUCE, Operation, fingerprint
from ._args import positive
from ._console import Console
from ._exchange import write_in_ranges
from ._formats import write_csv, write_json, write_jsonl
from ._inputs import STDIN, Source, one_line, readable
from ._jobs import RejectsWriteError, gather
from ._parallel import ClusterError, workers_for
from ._progress import Progress, wanted
from ._readable import counted, write_summary, write_views
from ._reading import Reading
from ._report import EventLog, Report, Seen, Totals, filters_of, judged_at

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


class _Run(Reading):
    """One fold over the inputs in this process: the counts, and where problems are reported."""

    def __init__(
        self,
        args: argparse.Namespace,
        console: Console,
        rejects: BinaryIO | None,
        command: str = "fold",
    ) -> None:
        super().__init__(frozenset(args.card) if args.card else None, args.max_line_bytes)
        self.console = console
        self.prefix = f"cardflow {command}:"
        self.rejects = rejects
        self.totals = Totals()
        self.histories = {card: EventLog() for card in self.watch or ()}
        self.progress: Progress | None = None
        self._done = 0  # bytes of the sources read to the end

    def warn(self, message: str) -> None:
        if self.progress is not None:
            self.progress.clear()
        self.console.stderr.write(message + "\n")

    def _snapshot(self) -> tuple[int, int, int]:
        return self._done + self.bytes, self.operations, len(self.folder)

    def read_all(self, paths: list[str], progress: bool | None) -> None:
        sources = readable(
            paths, self.console.stdin_fd, self.totals.unreadable, self.warn, self.prefix
        )
        self.totals.sources = [s.name for s in sources]
        if wanted(progress, self.console.stderr, self.console.environ):
            sizes = [s.size for s in sources]
            total = None if None in sizes else sum(s or 0 for s in sizes)
            self.progress = Progress(self.console.stderr, self._snapshot, total)
            self.poll = self.progress.poll
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
        try:
            self.fold(source.name, stream)
        except OSError as exc:
            self.totals.unreadable.append(source.name)
            self.warn(
                f"{self.prefix} cannot read {source.name} after line {self.lines}:"
                f" {exc.strerror or exc}"
            )
        finally:
            if stream is not self.console.stdin:
                stream.close()
            self.totals.lines += self.lines
            self._done += self.bytes
            self.bytes = 0

    def finish(self) -> Totals:
        """The totals, completed with what the folder knows."""
        totals = self.totals
        totals.bodies = self.bodies
        totals.operations = self.operations
        return totals.complete(len(self.folder), self.folder.passed_over, self.added)

    def seen(self, op: Operation, name: str, line: int) -> None:
        events = self.histories[op.card_id].events
        key = fingerprint(op)
        seen = events.get(key)
        if seen is None:
            events[key] = Seen(op, f"{name}:{line}")
        else:
            seen.deliveries += 1

    def rejected(self, name: str, line: int, reject: Reject) -> None:
        """Report a reject on stderr and write it to ``--rejects``."""
        if reject.index is None:
            self.totals.rejected_bodies += 1
        else:
            self.totals.rejected_operations += 1
        self.warn(str(reject.error().located(name, line)))
        if self.rejects is not None:
            try:
                self.rejects.write(one_line(reject.raw) + b"\n")
            except OSError as exc:
                raise RejectsWriteError(exc) from exc


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
    try:
        with (
            rejects_file if rejects_file is not None else contextlib.nullcontext(),
            workers_for(args, console) as workers,  # --jobs, --dask
        ):
            if workers is None:
                run.read_all(list(args.paths), args.progress)
                return _report(args, console, run)
            gathered = gather(
                list(args.paths),
                console,
                rejects_file,
                watch=run.watch,
                progress=args.progress,
                workers=workers,
                part_size=args.part_size,
                max_line=args.max_line_bytes,
            )
            totals, missing = write_in_ranges(args, console, gathered, workers)
    except RejectsWriteError as exc:
        console.stderr.write(
            f"cardflow fold: cannot write --rejects {args.rejects}: {exc}; stopped\n"
        )
        return UNREADABLE
    except ClusterError as exc:
        console.stderr.write(f"cardflow fold: {exc}\n")
        return USAGE
    return _closing_fold(args, console, totals, missing)


def add_reading_options(parser: argparse.ArgumentParser) -> None:
    """The options of a command that reads and folds inputs: ``--allow-rejects``,
    ``--progress``, ``--max-line-bytes``."""
    parser.add_argument(
        "--max-line-bytes",
        type=positive,
        default=MAX_BODY,
        metavar="BYTES",
        help="reject a longer line, or multi-line document, with its line number, and"
        f" go on (default: {MAX_BODY:,}, 16 MiB, the receiver's body limit)",
    )
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
    paths: list[str],
    console: Console,
    progress: bool | None,
    command: str,
    max_line: int = MAX_BODY,
) -> tuple[Folder, Totals]:
    """Read and fold ``paths`` exactly as ``cardflow fold`` does, for another command.

    Every rejected item and unreadable input is reported on ``console.stderr``, its
    messages naming ``cardflow COMMAND``; the totals say what was read and lost.
    """
    run = _Run(argparse.Namespace(card=None, max_line_bytes=max_line), console, None, command)
    run.read_all(paths, progress)
    return run.folder, run.finish()


def _report(args: argparse.Namespace, console: Console, run: _Run) -> int:
    totals = run.finish()
    folded = run.folder.finish()  # each summary released as its state is made
    missing: list[str] = []
    if run.watch is not None:
        ids = sorted(card for card in run.watch if card in folded)
        missing = sorted(card for card in run.watch if card not in folded)
    else:
        ids = sorted(folded)
    states: list[CardState] = [folded[card] for card in ids]
    del folded
    if args.status:
        wanted_statuses = set(args.status)
        states = [s for s in states if s.status in wanted_statuses]
    report_states(args, console, states, totals, run.histories, watching=run.watch is not None)
    return _closing_fold(args, console, totals, missing)


def _closing_fold(
    args: argparse.Namespace, console: Console, totals: Totals, missing: list[str]
) -> int:
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
    now = judged_at(args, console.clock)
    reasons: dict[str, tuple[ReconcileReason, ...]] | None = None
    if now is not None:
        reasons = {s.card_id: needs_reconcile(s, now, lifecycle=args.lifecycle) for s in states}
        if args.needs_reconcile:
            states = [s for s in states if reasons[s.card_id]]
    report = Report(
        totals=totals,
        cards=states,
        reasons=reasons,
        now=now,
        filters=filters_of(args),
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
