"""The store on the command line: ``fold --db``, ``outbox dead|requeue``, ``dispatch``.

``cardflow fold --db URL FILES...`` stores every body in the store (a transaction per
batch of bodies; the store keeps each event once, so folding the same logs again
changes nothing, and a run killed at any point then run again ends where an
uninterrupted run ends), then reports from the stored states. Without FILES it only
reports: every format and filter of ``cardflow fold``, from the states table.
"""

from __future__ import annotations

import argparse
import logging
import time
from datetime import timedelta
from typing import Final

import msgspec

from .._cardstate import CardState
from .._errors import StoreUnavailable
from ..batch import store_files
from ..batch._readable import counted
from ..batch._report import EventLog, Seen, Totals
from ..store import Follow, Store, find_reactions, public_url, stopping
from ..store import open as open_url
from ._args import port
from ._console import Console
from ._fold import closing, report_states
from ._logs import add_logging_options, configure

__all__ = [
    "add_commands",
    "add_fold_options",
    "open_store",
    "run_dispatch",
    "run_fold_db",
    "run_outbox",
]

OK: Final = 0
REJECTED: Final = 1
USAGE: Final = 2
UNREADABLE: Final = 3
NOT_FOUND: Final = 4
UNAVAILABLE: Final = 5


def add_fold_options(fold: argparse.ArgumentParser) -> None:
    """``--db`` on ``cardflow fold``."""
    fold.add_argument(
        "--db",
        metavar="URL",
        help="fold into this store (sqlite:///file.db or postgresql://...) and report from"
        " it; with no PATH, only report from it",
    )


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> dict[str, argparse.ArgumentParser]:
    """The ``outbox`` and ``dispatch`` commands; their parsers by name."""
    raw = argparse.RawDescriptionHelpFormatter
    outbox = commands.add_parser(
        "outbox",
        help="list and requeue the store's dead reactions",
        description="The store's outbox: reactions whose every attempt failed are parked as"
        "\ndead; list them, and put them back to be dispatched again.",
        epilog=_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    actions = outbox.add_subparsers(dest="action", metavar="ACTION", required=True)
    dead = actions.add_parser("dead", help="list the dead rows", allow_abbrev=False)
    dead.add_argument("--db", required=True, metavar="URL", help="the store")
    dead.add_argument(
        "--format",
        choices=("text", "jsonl"),
        default="text",
        help="text: one line per row with its last error line; jsonl: every field",
    )
    requeue = actions.add_parser("requeue", help="dead rows back to pending", allow_abbrev=False)
    requeue.add_argument("--db", required=True, metavar="URL", help="the store")
    requeue.add_argument("ids", nargs="*", type=int, metavar="ID", help="row ids (outbox dead)")
    requeue.add_argument("--all", action="store_true", help="every dead row")

    dispatch = commands.add_parser(
        "dispatch",
        help="deliver the store's pending reactions",
        description="Run the reactions of the store's outbox rows that are due, with an"
        "\nobject of yours: on_enter_<STATUS>(change) and on_shipment(change) methods."
        "\nStops after a pass that delivers nothing, or runs on with --follow. SIGTERM or"
        "\nSIGINT: finish the reaction running, give back the rows not started, exit 0."
        "\nEach failed reaction is reported on stderr as it happens.",
        epilog=_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    dispatch.add_argument("--db", required=True, metavar="URL", help="the store")
    dispatch.add_argument(
        "--reactions",
        required=True,
        metavar="MODULE:OBJECT",
        help="the reactions object (a class is instantiated without arguments)",
    )
    dispatch.add_argument("--limit", type=int, default=100, help="rows per claim (default 100)")
    dispatch.add_argument(
        "--lease", type=float, default=30.0, metavar="SECONDS", help="lease (default 30)"
    )
    dispatch.add_argument(
        "--max-attempts", type=int, default=5, metavar="N", help="then dead (default 5)"
    )
    dispatch.add_argument(
        "--follow",
        action="store_true",
        help="keep polling for new rows (stop with SIGTERM or Ctrl-C)",
    )
    dispatch.add_argument(
        "--interval", type=float, default=1.0, metavar="SECONDS", help="polling interval"
    )
    dispatch.add_argument(
        "--progress-every",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="with --follow, a progress line on stderr this often (default 60)",
    )
    dispatch.add_argument(
        "--metrics-port",
        type=port,
        metavar="P",
        help="serve cardflow_reactions_total on http://HOST:P/metrics (Prometheus)",
    )
    dispatch.add_argument(
        "--metrics-host", default="127.0.0.1", metavar="HOST", help="(default: 127.0.0.1)"
    )
    add_logging_options(dispatch, "warning")
    return {"outbox": outbox, "dispatch": dispatch}


_STATUS: Final = """\
exit status:
  0    success; dispatch: also when stopped by SIGTERM or SIGINT
  1    outbox requeue: some ids were not dead rows
  2    usage error; dispatch: --reactions cannot be imported
  5    the store could not be opened or failed
  130  outbox: interrupted (Ctrl-C)"""


def open_store(url: str, command: str, console: Console) -> Store | None:
    """The store at ``url``, or None once the reason it cannot be opened is reported."""
    try:
        return open_url(url)
    except (StoreUnavailable, ValueError) as exc:
        console.stderr.write(f"cardflow {command}: --db {url}: {exc}\n")
        return None


# -- fold --db ---------------------------------------------------------------------------


def run_fold_db(args: argparse.Namespace, console: Console) -> int:
    """``cardflow fold --db URL [PATH...]``; the exit status."""
    if getattr(args, "jobs", None) not in (None, 1) or getattr(args, "dask", None):
        console.stderr.write(
            "cardflow fold: --jobs and --dask do not apply with --db: the store takes the"
            " bodies in this process, a transaction per batch\n"
        )
        return USAGE
    if args.rejects:
        console.stderr.write(
            "cardflow fold: --rejects does not apply with --db: the store keeps the"
            " rejected operations in its rejects table\n"
        )
        return USAGE
    store = open_store(args.db, "fold", console)
    if store is None:
        return UNAVAILABLE
    with store:
        try:
            totals = store_files(
                store,
                args.paths,
                on_reject=lambda rejected: console.stderr.write(f"{rejected}\n"),
                on_problem=lambda problem: console.stderr.write(f"cardflow fold: {problem}\n"),
                max_line=args.max_line_bytes,
                stdin=console.stdin,
                stdin_fd=console.stdin_fd,
            )
            return _report(args, console, store, totals)
        except StoreUnavailable as exc:
            console.stderr.write(f"cardflow fold: --db {args.db}: {exc}\n")
            return UNAVAILABLE


def _report(args: argparse.Namespace, console: Console, store: Store, totals: Totals) -> int:
    watch = sorted(set(args.card)) if args.card else None
    histories: dict[str, EventLog] = {}
    missing: list[str] = []
    if watch is not None:
        states: list[CardState] = []
        for card in watch:
            state = store.get(card)
            if state is None:
                missing.append(card)
                continue
            states.append(state)
            log = histories[card] = EventLog()
            for event in store.events(card):
                where = "store" if event.read_at is None else f"read at {event.read_at}"
                log.events[msgspec.msgpack.encode(event.operation)] = Seen(event.operation, where)
        if args.status:
            states = [s for s in states if s.status in set(args.status)]
    else:
        states = list(store.states(status=args.status or None))
    totals.cards = sum(store.counts().values())
    if not args.paths:  # only a report: the states were folded from the stored events
        totals.folded = store.event_count()
    report_states(args, console, states, totals, histories, watching=watch is not None)
    return closing(
        args,
        console,
        totals,
        [f"card {card}: not in the store" for card in missing],
        "; everything else was stored",
    )


# -- outbox, dispatch ------------------------------------------------------------------------


def run_outbox(args: argparse.Namespace, console: Console) -> int:
    """``cardflow outbox dead|requeue``; the exit status."""
    store = open_store(args.db, "outbox", console)
    if store is None:
        return UNAVAILABLE
    out = console.stdout
    with store:
        try:
            if args.action == "dead":
                rows = store.dead()
                if args.format == "jsonl":
                    out.write(b"".join(msgspec.json.encode(row) + b"\n" for row in rows))
                else:
                    for row in rows:
                        last = (row.error.strip().splitlines() or [""])[-1]
                        out.write(
                            f"{row.id}  {row.key}  {row.attempts} attempts  {last}\n".encode()
                        )
                    console.stderr.write(f"{counted(len(rows), 'dead row')}\n")
                out.flush()
                return OK
            if args.all == bool(args.ids):
                console.stderr.write("cardflow outbox requeue: give row ids, or --all\n")
                return USAGE
            ids = [row.id for row in store.dead()] if args.all else list(args.ids)
            count = store.requeue(ids)
        except StoreUnavailable as exc:
            console.stderr.write(f"cardflow outbox: --db {args.db}: {exc}\n")
            return UNAVAILABLE
    console.stderr.write(f"requeued {counted(count, 'row')}\n")
    if count < len(set(ids)):
        console.stderr.write(
            f"cardflow outbox requeue: {counted(len(set(ids)) - count, 'id')} named no dead row\n"
        )
        return REJECTED
    return OK


def run_dispatch(args: argparse.Namespace, console: Console) -> int:
    """``cardflow dispatch``; the exit status."""
    configure(args)
    try:
        reactions = find_reactions(args.reactions)
    except (ImportError, AttributeError, ValueError) as exc:
        console.stderr.write(f"cardflow dispatch: --reactions {args.reactions}: {exc}\n")
        return USAGE
    if args.limit < 1 or args.max_attempts < 1 or not args.lease > 0 or args.interval < 0:
        console.stderr.write(
            "cardflow dispatch: --limit and --max-attempts must be at least 1, --lease more"
            " than 0 and --interval not less than 0\n"
        )
        return USAGE
    if args.metrics_port is not None:
        from ..store import serve_metrics

        try:
            reactions = serve_metrics(reactions, args.metrics_host, args.metrics_port)
        except OSError as exc:
            console.stderr.write(
                f"cardflow dispatch: --metrics-port {args.metrics_port}: cannot listen on port"
                f" {args.metrics_port} of {args.metrics_host}: {exc.strerror or exc}\n"
            )
            return USAGE
    logging.getLogger("cardflow.dispatch").info(
        "dispatching from %s with %s%s",
        public_url(args.db),
        args.reactions,
        "" if args.metrics_port is None else
        f"; metrics on http://{args.metrics_host}:{args.metrics_port}/metrics",
        extra={"event": "started", "store": public_url(args.db), "port": args.metrics_port},
    )  # fmt: skip
    store = open_store(args.db, "dispatch", console)
    if store is None:
        return UNAVAILABLE
    total = 0
    follow = Follow(console.stderr, args.progress_every, echo=args.log_format == "text")
    with store, stopping() as stop, follow.attached():
        try:
            while not stop.is_set():
                done = store.dispatch(
                    reactions,
                    limit=args.limit,
                    lease=timedelta(seconds=args.lease),
                    max_attempts=args.max_attempts,
                    now=console.clock,
                    stop=stop,
                )
                total += done
                if args.follow and follow.every <= time.monotonic() - follow.last:
                    follow.tick(total, store.outbox_counts().get("pending", 0))
                if done:
                    continue
                if not args.follow:
                    break
                stop.wait(args.interval)
            counts = store.outbox_counts()
        except StoreUnavailable as exc:
            console.stderr.write(f"cardflow dispatch: --db {args.db}: {exc}\n")
            return UNAVAILABLE
    stopped = "stopped by a signal; " if stop.is_set() else ""
    console.stderr.write(
        f"{stopped}dispatched {counted(total, 'reaction')}; outbox: "
        + ", ".join(f"{n} {stage}" for stage, n in sorted(counts.items()))
        + "\n"
    )
    return OK
