"""The ``cardflow`` command: ``fold``, ``simulate``, ``diagram``, ``report`` and the rest.

An adapter at the edge: it reads files, stdin and the clock, and depends on the core
(``import cardflow`` never imports it). Standard library only: ``argparse`` for the
commands and a small progress bar of its own.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Final

from .._diagram import mermaid, state_diagram_markdown
from .._lifecycle import D1_LIFECYCLE
from .._simulate import SimulationOptions, simulate
from .._version import __version__
from ._args import count as _count
from ._args import moment as _moment
from ._args import positive as _positive
from ._args import probability as _probability
from ._args import read_secret_files
from ._conformance import add_conformance, run_conformance
from ._console import Console
from ._db import (
    USAGE,
    add_commands,
    add_fold_options,
    run_dispatch,
    run_fold_db,
    run_outbox,
)
from ._eventlog import add_commands as add_eventlog_commands
from ._eventlog import run_history, run_rebuild
from ._fake_d1 import add_fake_d1, run_fake_d1
from ._fold import add_reading_options, run_fold
from ._reconcile import add_reconcile, run_reconcile
from ._report_cmd import add_parser as add_report_parser
from ._report_cmd import run_report
from ._serve import add_serve, run_serve

__all__ = ["main", "run"]

INTERRUPTED: Final = 130
BROKEN_PIPE: Final = 141

EXIT_STATUS: Final = """\
exit status:
  0    success
  1    input was rejected (each item reported on stderr); everything else was
       folded and reported. --allow-rejects makes this 0
  2    usage error: a bad option or value, or the --rejects file cannot be opened
  3    an input could not be read (the other inputs were folded), or the
       --rejects file failed to take a rejected item (then it stops)
  4    a --card was not in the input
  130  interrupted (Ctrl-C)
  141  stdout was closed early (for instance piped into head)
When several apply, the first of 3, 1, 4 wins."""

_SIMPLE_STATUS: Final = """\
exit status:
  0    success
  2    usage error
  130  interrupted (Ctrl-C)
  141  stdout was closed early (for instance piped into head)"""

_FOLD_HELP: Final = """\
Fold D1 production notifications into one state per card and report.

Reads JSON Lines (one webhook body or on-demand response per line), JSON files
(a body, pretty-printed or not) and directories of them (*.json, *.jsonl,
*.ndjson, recursively). No PATH, or -, reads stdin. Memory grows with the number
of cards, not of events. Bad input is reported on stderr as FILE:LINE: JSON-PATH:
REASON and, with --rejects, written to a file, one rejected item per line; the good
operations beside it are folded all the same."""

_FORMATS_HELP: Final = """\
output formats:
  summary  for people: cards by status, anomalies, lost notifications, reconcile
           candidates and totals; with --card, each card's whole view and events
  jsonl    one object per card: cardId, operationId, startTime, status,
           operationStatus, ... gaps, anomalies (CardState's public fields, in
           camelCase), plus reconcile when --needs-reconcile or --now is given
  json     one document: {"input", "filters", "summary", "cards": [...]}
  csv      a header and one row per card; shipment fields flattened
           (shipment.carrier), lists joined with ;"""


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser of the command line, and the parser of each command by name."""
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cardflow",
        description="Fold Thales D1 card production notifications into one state per card.",
        epilog="Run 'cardflow COMMAND --help' for a command's options.\n\n" + EXIT_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"cardflow {__version__}")
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, title="commands"
    )

    fold = commands.add_parser(
        "fold",
        help="fold D1 bodies into one state per card, and report",
        description=_FOLD_HELP,
        epilog=_FORMATS_HELP + "\n\n" + EXIT_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    fold.add_argument("paths", nargs="*", metavar="PATH", help="files or directories; - is stdin")
    fold.add_argument(
        "--format",
        choices=("summary", "jsonl", "json", "csv"),
        default="summary",
        help="output format (default: summary)",
    )
    fold.add_argument(
        "--card", action="append", metavar="ID", help="only this card: its whole view (repeatable)"
    )
    fold.add_argument(
        "--status", action="append", metavar="S", help="only cards with status S (repeatable)"
    )
    fold.add_argument(
        "--needs-reconcile",
        action="store_true",
        help="only cards worth asking D1's on-demand status for, with the reasons",
    )
    fold.add_argument(
        "--now",
        type=_moment,
        metavar="TIME",
        help="the time reconciliation is judged at, ISO 8601 with offset (default: the clock)",
    )
    fold.add_argument(
        "--rejects", metavar="FILE", help="write each rejected line or operation here, verbatim"
    )
    add_reading_options(fold)
    fold.add_argument(
        "--jobs",
        type=_positive,
        metavar="N",
        help="fold in N worker processes (default: one per core; 1: in this process)",
    )
    fold.add_argument(
        "--part-size",
        type=_positive,
        metavar="BYTES",
        help="split large files into parts of about this size for the workers"
        " (default: 1/8 of the input per job, 4 MiB to 64 MiB)",
    )
    fold.add_argument(
        "--dask",
        metavar="ADDRESS",
        help="fold on the Dask cluster whose scheduler is at ADDRESS (its workers must"
        " see the input files at the same paths; needs cardflow[dask])",
    )
    add_fold_options(fold)
    fold.set_defaults(lifecycle=D1_LIFECYCLE)

    sim = commands.add_parser(
        "simulate",
        help="write seeded, realistic D1 traffic as JSON Lines",
        description=(
            "Write realistic D1 traffic as JSON Lines (one body per line), from the test\n"
            "harness's model: each card's production is a walk on the lifecycle, delivered\n"
            "as D1 does. The same options and seed always give the same bytes. About ten\n"
            "events per card: --cards 100000 writes about a million."
        ),
        epilog=_SIMPLE_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    defaults = SimulationOptions()
    sim.add_argument("--cards", type=_count, required=True, metavar="N", help="cards to simulate")
    sim.add_argument("--seed", type=int, required=True, metavar="S", help="random seed")
    sim.add_argument(
        "--duplicates",
        type=_probability,
        default=defaults.duplicates,
        metavar="P",
        help=f"chance a notification is delivered again (default: {defaults.duplicates})",
    )
    sim.add_argument(
        "--reorder",
        action=argparse.BooleanOptionalAction,
        default=defaults.reorder,
        help="shuffle deliveries within a window (default: on)",
    )
    sim.add_argument(
        "--window",
        type=_positive,
        default=defaults.window,
        metavar="N",
        help=f"notifications in the reordering window (default: {defaults.window})",
    )
    sim.add_argument(
        "--bulk",
        type=_positive,
        default=defaults.bulk,
        metavar="K",
        help=f"at most K operations per body (default: {defaults.bulk})",
    )
    sim.add_argument(
        "--lose",
        type=_probability,
        default=defaults.lose,
        metavar="P",
        help="chance a notification is lost; an on-demand response then repairs the card"
        f" (default: {defaults.lose})",
    )
    sim.add_argument(
        "--mix-other-ops",
        action="store_true",
        help="send other operation types (ACTIVATE, ...) beside one card in ten",
    )

    diagram = commands.add_parser(
        "diagram",
        help="print the lifecycle's state diagram (mermaid)",
        description=(
            "Print the production lifecycle as a mermaid stateDiagram-v2: the source of\n"
            "the diagram in docs/state-diagram.md."
        ),
        epilog=_SIMPLE_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    diagram.add_argument(
        "--markdown", action="store_true", help="print the whole page docs/state-diagram.md"
    )
    report = add_report_parser(commands, _moment)
    parsers = {
        "fold": fold,
        "simulate": sim,
        "diagram": diagram,
        "report": report,
        **add_commands(commands),
        **add_eventlog_commands(commands),
    }
    # The D1 edge's commands: each module adds its parser and names its runner.
    edge_commands = (
        (add_serve, run_serve),
        (add_reconcile, run_reconcile),
        (add_fake_d1, run_fake_d1),
        (add_conformance, run_conformance),
    )
    for add, runner in edge_commands:
        edge = add(commands)
        edge.set_defaults(runner=runner)
        parsers[edge.prog.split()[-1]] = edge
    return parser, parsers


def _simulate(args: argparse.Namespace, console: Console) -> int:
    options = SimulationOptions(
        duplicates=args.duplicates,
        reorder=args.reorder,
        window=args.window,
        bulk=args.bulk,
        lose=args.lose,
        mix_other_ops=args.mix_other_ops,
    )
    out = console.stdout
    chunk: list[bytes] = []
    for body in simulate(args.cards, args.seed, options):
        chunk.append(body)
        if len(chunk) >= 512:
            chunk.append(b"")
            out.write(b"\n".join(chunk))
            chunk.clear()
    if chunk:
        chunk.append(b"")
        out.write(b"\n".join(chunk))
    out.flush()
    return 0


def _diagram(args: argparse.Namespace, console: Console) -> int:
    text = state_diagram_markdown() if args.markdown else mermaid()
    console.stdout.write(text.encode())
    console.stdout.flush()
    return 0


def run(argv: Sequence[str], console: Console) -> int:
    """Parse ``argv`` and run the command on ``console``; the exit status."""
    argv = list(argv)
    parser, commands = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.command in ("fold", "report"):
            # PATHs may come after options too: parse the command's part again, intermixed.
            name = args.command
            rest = argv[argv.index(name) + 1 :]
            args = commands[name].parse_intermixed_args(rest, argparse.Namespace(command=name))
        elif extra:
            commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    except SystemExit as exc:  # --help, --version, or a usage error
        return exc.code if isinstance(exc.code, int) else USAGE
    problem = read_secret_files(args)
    if problem is not None:
        console.stderr.write(f"cardflow {args.command}: {problem}\n")
        return USAGE
    if args.command == "fold":
        if args.passed and not args.db:
            console.stderr.write("cardflow fold: --passed applies only with --db\n")
            return USAGE
        return run_fold_db(args, console) if args.db else run_fold(args, console)
    if hasattr(args, "runner"):
        return int(args.runner(args, console))
    if args.command == "outbox":
        return run_outbox(args, console)
    if args.command == "dispatch":
        return run_dispatch(args, console)
    if args.command == "rebuild":
        return run_rebuild(args, console)
    if args.command == "history":
        return run_history(args, console)
    if args.command == "simulate":
        return _simulate(args, console)
    if args.command == "report":
        return run_report(args, console)
    return _diagram(args, console)


def main(argv: Sequence[str] | None = None) -> int:
    """The ``cardflow`` console script: run on the process's streams; the exit status."""
    console = Console.from_sys()
    try:
        return run(sys.argv[1:] if argv is None else argv, console)
    except KeyboardInterrupt:
        sys.stderr.write("\ncardflow: interrupted\n")
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE
