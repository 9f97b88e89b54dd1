"""``cardflow fold``: the arguments in, :mod:`cardflow.batch` folds, the report out.

The fold itself (in this process, on ``--jobs`` workers or on ``--dask``) is
``cardflow.batch``'s; this module says what it hears as it goes (every rejected body
or operation on stderr as FILE:LINE: JSON-PATH: REASON and, with ``--rejects``,
written out verbatim; a progress bar) and writes the report in ``--format``: at once
from the states of a fold in this process, else range by range from the workers.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import BinaryIO

from .. import Folder
from .._decode import MAX_BODY
from .._lifecycle import D1_LIFECYCLE
from .._reconcile import ReconcileReason, needs_reconcile
from .._state import CardState
from .._wire import PRODUCE
from ..batch._files import FoldedFiles, Polling, open_fold, write_ranges
from ..batch._formats import (
    write_csv,
    write_json,
    write_jsonl,
)
from ..batch._inputs import one_line
from ..batch._parallel import ClusterError
from ..batch._ranges import Asked
from ..batch._readable import counted, write_summary, write_views
from ..batch._report import Counts, EventLog, Listener, Rejected, Report, Totals
from ._args import positive
from ._console import Console
from ._progress import Progress, wanted

__all__ = [
    "NOT_FOUND",
    "OK",
    "REJECTED",
    "UNREADABLE",
    "USAGE",
    "RejectsWriteError",
    "add_reading_options",
    "closing",
    "filters_of",
    "fold_inputs",
    "judged_at",
    "report_states",
    "run_fold",
]

OK = 0
REJECTED = 1
USAGE = 2
UNREADABLE = 3
NOT_FOUND = 4


class RejectsWriteError(Exception):
    """The ``--rejects`` file failed to take a rejected item: stop rather than lose more."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))


class _Shell:
    """What the command says while a fold runs: problems and rejects on stderr (the
    progress bar cleared first), rejects written to ``--rejects``."""

    def __init__(self, console: Console, rejects: BinaryIO | None, command: str) -> None:
        self.console = console
        self.rejects = rejects
        self.prefix = f"cardflow {command}:"
        self.progress: Progress | None = None
        self.listener = Listener(self.rejected, self.warn)

    def _say(self, line: str) -> None:
        if self.progress is not None:
            self.progress.clear()
        self.console.stderr.write(line + "\n")

    def warn(self, message: str) -> None:
        self._say(f"{self.prefix} {message}")

    def rejected(self, rejected: Rejected) -> None:
        self._say(str(rejected))
        if self.rejects is not None:
            try:
                self.rejects.write(one_line(rejected.raw) + b"\n")
            except OSError as exc:
                raise RejectsWriteError(exc) from exc

    def polling(self, flag: bool | None) -> Polling | None:
        """A progress bar on stderr, when ``--progress`` or a terminal wants one."""
        console = self.console
        if not wanted(flag, console.stderr, console.environ):
            return None

        def bar(snapshot: Callable[[], Counts], total: int | None) -> Callable[[], None]:
            def shown() -> tuple[int, int, int]:
                read, _, operations, cards = snapshot()
                return read, operations, cards

            self.progress = Progress(console.stderr, shown, total)
            return self.progress.poll

        return bar

    def fold(
        self,
        args: argparse.Namespace,
        paths: list[str],
        jobs: int | None = 1,
        watch: frozenset[str] | None = None,
    ) -> FoldedFiles:
        """Phase one of the fold of ``paths``, the bar cleared at its end."""
        console = self.console
        try:
            return open_fold(
                paths,
                self.listener,
                jobs=jobs,
                lifecycle=getattr(args, "lifecycle", D1_LIFECYCLE),
                polling=self.polling(args.progress),
                watch=watch,
                part_size=getattr(args, "part_size", None),
                dask=getattr(args, "dask", None),
                stdin=console.stdin,
                stdin_fd=console.stdin_fd,
                max_line=getattr(args, "max_line_bytes", MAX_BODY),
            )
        finally:
            if self.progress is not None:
                self.progress.clear()


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
    watch = frozenset(args.card) if args.card else None
    try:
        with rejects_file if rejects_file is not None else contextlib.nullcontext():
            shell = _Shell(console, rejects_file, "fold")
            folded = shell.fold(args, list(args.paths), args.jobs, watch)
            with folded:
                if folded.single is not None:
                    return _report(args, console, folded, watch)
                totals, missing = _in_ranges(args, console, folded)
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
    """Read and fold ``paths`` in this process as ``cardflow fold`` reads them, for
    another command.

    Every rejected item and unreadable input is reported on ``console.stderr``, its
    messages naming ``cardflow COMMAND``; the totals say what was read and lost.
    """
    shell = _Shell(console, None, command)
    folded = shell.fold(argparse.Namespace(progress=progress, max_line_bytes=max_line), paths)
    assert folded.single is not None
    return folded.single.folder, folded.totals


def _report(
    args: argparse.Namespace, console: Console, folded: FoldedFiles, watch: frozenset[str] | None
) -> int:
    assert folded.single is not None
    totals = folded.totals
    missing = folded.missing()
    states = folded.single.folder.finish()  # each summary released as its state is made
    ids = sorted(states) if watch is None else sorted(card for card in watch if card in states)
    cards: list[CardState] = [states[card] for card in ids]
    del states
    if args.status:
        wanted_statuses = set(args.status)
        cards = [s for s in cards if s.status in wanted_statuses]
    report_states(args, console, cards, totals, folded.histories, watching=watch is not None)
    return _closing_fold(args, console, totals, missing)


def _in_ranges(
    args: argparse.Namespace, console: Console, folded: FoldedFiles
) -> tuple[Totals, list[str]]:
    """The report of a fold on workers, written by ranges; the completed totals, and
    the watched cards that were not found."""
    assert folded.workers is not None
    asked = Asked(
        format=args.format,
        now=judged_at(args, console.clock),
        statuses=frozenset(args.status) if args.status else None,
        needs_reconcile=bool(args.needs_reconcile),
        keep=args.card is not None and args.format == "summary",
        directory=folded.workers.directory,
        lifecycle=None if args.lifecycle is D1_LIFECYCLE else args.lifecycle,
    )
    out = console.stdout
    report = write_ranges(folded, asked, out, filters_of(args), args.lifecycle)
    if args.format == "summary":  # the summary, or --card's views of each card
        if not args.card:
            write_summary(report, out)
        elif report.cards:
            write_views(report, out)
    out.flush()
    return report.totals, folded.missing()


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
        write_jsonl(report.cards, out, reasons=report.reasons)
    elif args.format == "json":
        write_json(report, out)
    elif args.format == "csv":
        write_csv(report.cards, out, reasons=report.reasons)
    elif watching:
        if report.cards:
            write_views(report, out)
    else:
        write_summary(report, out)
    out.flush()


def filters_of(args: argparse.Namespace) -> dict[str, object]:
    """The filters ``cardflow fold`` was given (``--card``, ``--status``,
    ``--needs-reconcile``), as the JSON report names them."""
    filters: dict[str, object] = {}
    if args.card:
        filters["card"] = list(args.card)
    if args.status:
        filters["status"] = list(args.status)
    if args.needs_reconcile:
        filters["needsReconcile"] = True
    return filters


def judged_at(args: argparse.Namespace, clock: Callable[[], datetime]) -> datetime | None:
    """When ``cardflow fold`` judges reconciliation: ``--now``, else the clock's time (to
    the second) when the summary or ``--needs-reconcile`` needs one; else never (None)."""
    now: datetime | None = args.now
    if now is None and (args.format == "summary" or args.needs_reconcile):
        now = clock().replace(microsecond=0)
    return now


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
