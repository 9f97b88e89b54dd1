"""``cardflow report``: fold D1 bodies and write one static HTML page of the card fleet.

The inputs are read and folded exactly as ``cardflow fold`` reads them
(:func:`fold_inputs`), or, with ``--db``, the states come from the store's states
table (never folded again); the page is :mod:`cardflow.report`'s. Only this command
reads the clock, when ``--now`` is not given.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

from .._errors import StoreSchemaError, StoreUnavailable
from .._lifecycle import D1_LIFECYCLE
from ..batch._readable import counted
from ..report import Fleet, aggregate, render
from ..store import open as open_store
from ._console import Console
from ._fold import OK, REJECTED, UNREADABLE, USAGE, add_reading_options, fold_inputs

UNAVAILABLE: Final = 5

__all__ = ["add_parser", "run_report"]

_HELP: Final = """\
Fold D1 production notifications and write one self-contained HTML page of the
fleet: cards by status, cards started per day, days late, reconcile candidates,
anomalies and lost notifications, production sites, carriers and shipments.

Inputs are read as 'cardflow fold' reads them: JSON Lines, JSON files, directories
of them, or stdin (no PATH, or -). Every rejected item is reported on stderr and the
rest is folded and shown. The page has no external resource: it opens offline."""

_STATUS: Final = """\
exit status:
  0    the page was written
  1    input was rejected (each item reported on stderr); the page shows the rest.
       --allow-rejects makes this 0
  2    usage error, or the page could not be written
  3    an input could not be read (the page shows the others)
  5    the store (--db) could not be read
  130  interrupted (Ctrl-C)"""


def add_parser(
    commands: Any,  # argparse's _SubParsersAction, which typeshed keeps private
    moment: Callable[[str], datetime],
) -> argparse.ArgumentParser:
    """Add the ``report`` command to ``commands``; ``moment`` parses ``--now``."""
    report: argparse.ArgumentParser = commands.add_parser(
        "report",
        help="write one static HTML page of the card fleet",
        description=_HELP,
        epilog=_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    report.add_argument("paths", nargs="*", metavar="PATH", help="files or directories; - is stdin")
    report.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the HTML page to write"
    )
    report.add_argument(
        "--now",
        type=moment,
        metavar="TIME",
        help="the time lateness and reconciliation are judged at, ISO 8601 with offset"
        " (default: the clock)",
    )
    report.add_argument("--title", default="Card fleet", metavar="TEXT", help="the page's title")
    report.add_argument(
        "--db",
        metavar="URL",
        help="the page of the states in this store (sqlite:///file.db or postgresql://...),"
        " instead of PATHs",
    )
    add_reading_options(report)
    report.set_defaults(lifecycle=D1_LIFECYCLE)
    return report


def run_report(args: argparse.Namespace, console: Console) -> int:
    """Run ``cardflow report`` with parsed ``args``; the exit status."""
    now: datetime = args.now or console.clock().replace(microsecond=0)
    if args.db is not None:
        return _from_store(args, console, now)
    folder, totals = fold_inputs(
        list(args.paths), console, args.progress, "report", args.max_line_bytes
    )
    fleet = aggregate((folder[card] for card in folder), now, lifecycle=args.lifecycle)
    inputs = {
        "lines": totals.lines,
        "bodies": totals.bodies,
        "operations": totals.operations,
        "rejected": totals.rejected,
    }
    status = _write(args, console, fleet, inputs)
    if status != OK:
        return status
    if totals.rejected:
        console.stderr.write(
            f"cardflow report: rejected {counted(totals.rejected_bodies, 'body', 'bodies')} and"
            f" {counted(totals.rejected_operations, 'operation')}; everything else is shown\n"
        )
    if totals.unreadable:
        return UNREADABLE
    if totals.rejected and not args.allow_rejects:
        return REJECTED
    return OK


def _from_store(args: argparse.Namespace, console: Console, now: datetime) -> int:
    """The page of a store's states, read from its states table."""
    if args.paths:
        console.stderr.write(
            "cardflow report: --db reports the store's states; give no PATH"
            " (store logs first with cardflow fold --db URL PATH...)\n"
        )
        return USAGE
    try:
        with open_store(args.db) as store:
            fleet = aggregate(store.states(), now, lifecycle=args.lifecycle)
            inputs = {"events stored": store.event_count(), "rejected": len(store.rejects())}
    except (StoreUnavailable, StoreSchemaError, ValueError) as exc:
        console.stderr.write(f"cardflow report: cannot read the store {args.db}: {exc}\n")
        return UNAVAILABLE
    return _write(args, console, fleet, inputs)


def _write(args: argparse.Namespace, console: Console, fleet: Fleet, inputs: dict[str, int]) -> int:
    page = render(fleet, title=args.title, inputs=inputs, lifecycle=args.lifecycle).encode()
    try:
        with open(args.output, "wb") as out:
            out.write(page)
    except OSError as exc:
        console.stderr.write(
            f"cardflow report: cannot write {args.output}: {exc.strerror or exc}\n"
        )
        return USAGE
    size = os.path.getsize(args.output)
    console.stderr.write(
        f"cardflow report: wrote {args.output} ({counted(fleet.cards, 'card')},"
        f" {size / 1024:,.0f} KiB)\n"
    )
    return OK
