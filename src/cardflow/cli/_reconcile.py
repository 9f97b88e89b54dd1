"""``cardflow reconcile``: ask D1's on-demand status of every card that needs it.

Lists the stored cards that ``needs_reconcile`` as of now (or ``--now``), fetches each
one's productionstatus with :class:`cardflow.d1.Client`, stores each answer as a
confirmation, and ends with a summary of what changed and what failed. Needs
``cardflow[d1]`` and the store; imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from typing import Any, Final

from ..store import public_url
from ._args import add_secret, count, moment, positive, seconds
from ._console import Console
from ._db import add_passed_option
from ._logs import add_logging_options, configure
from ._progress import wanted

__all__ = ["add_reconcile", "run_reconcile"]

log: Final = logging.getLogger("cardflow.reconcile")

_DESCRIPTION = """\
Reconcile the store with D1: for every card that needs it (gaps, anomalies, unknown
statuses, overdue, silent), GET {D1}/issuers/{issuerId}/physicalcards/{cardId}/
productionstatus and store the answer as a confirmation read at the time it was asked.
A card whose status cannot be read (404, refused, garbage, no answer after every
retry, no whole answer within --deadline) is reported and left as it was. An answer
stores only the card asked about: an operation of another card in it is recorded
as a reject, never applied."""

_STATUS = """\
exit status:
  0    every card that needed it was reconciled
  1    some cards could not be read (each listed, up to --show)
  2    usage error
  3    the store is unavailable"""


def add_reconcile(commands: Any) -> argparse.ArgumentParser:
    """Add the ``reconcile`` command to the subparsers ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "reconcile",
        help="ask D1's on-demand status of every card that needs it, and store it",
        description=_DESCRIPTION,
        epilog=_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--db", required=True, metavar="URL", help="the store URL")
    parser.add_argument("--d1", required=True, metavar="BASE_URL", help="D1's API base URL")
    parser.add_argument("--issuer", required=True, metavar="ID", help="your issuerId")
    parser.add_argument("--cert", help="client certificate (PEM) for D1's mutual TLS")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--ca", help="CA bundle to check D1's certificate (default: system)")
    add_secret(parser, "--token", "bearer token (Authorization: Bearer)")
    parser.add_argument("--concurrency", type=positive, default=8, metavar="C")
    parser.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="for connecting and for each read or write (default: 10)",
    )
    parser.add_argument(
        "--deadline",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="for a request as a whole: an answer not read by then fails its card (default: 30)",
    )
    parser.add_argument("--attempts", type=positive, default=5, metavar="N")
    parser.add_argument("--backoff", type=seconds, default=0.5, metavar="SECONDS")
    parser.add_argument("--now", type=moment, metavar="TIME", help="judge needs as of TIME")
    parser.add_argument("--show", type=count, default=20, metavar="N", help="failures listed")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress on stderr (default: only when stderr is a terminal)",
    )
    add_passed_option(parser, "store the answers")
    add_logging_options(parser, "warning")
    return parser


def run_reconcile(args: argparse.Namespace, console: Console) -> int:
    """Reconcile and report; the exit status."""
    from ..d1 import Client, Retry
    from ..store import StoreUnavailable, open

    configure(args)
    try:
        client = Client(
            args.d1,
            args.issuer,
            cert=args.cert,
            key=args.key,
            ca=args.ca,
            token=args.token,
            timeout=args.timeout,
            deadline=args.deadline,
            concurrency=args.concurrency,
            retry=Retry(attempts=args.attempts, base=args.backoff),
            clock=console.clock,
        )
    except (OSError, ValueError) as error:
        console.stderr.write(f"cardflow reconcile: {error}\n")
        return 2
    store_url = public_url(args.db)
    log.info(
        "reconciling %s with %s for issuer %s",
        store_url,
        args.d1,
        args.issuer,
        extra={"event": "started", "store": store_url, "address": args.d1},
    )
    try:
        with open(args.db, passed=args.passed) as store:
            sweep = asyncio.run(_sweep(store, client, args, console))
    except (StoreUnavailable, ValueError) as error:
        log.error("the store is unavailable: %s", error, extra={"event": "outage"})
        console.stderr.write(f"cardflow reconcile: the store: {error}\n")
        return 3
    log.info("%s", sweep.summary().splitlines()[0], extra={"event": "finished"})
    for failure in sweep.failures:  # stdout lists them too (up to --show): info, not warning
        log.info(
            "card %s could not be read: %s: %s",
            failure.card_id,
            failure.kind,
            failure.detail,
            extra={"event": "failed", "reason": str(failure.kind)},
        )
    lines = [sweep.summary()]
    for failure in sweep.failures[: args.show]:
        lines.append(f"{failure.card_id}: {failure.kind}: {failure.detail}")
    if sweep.failed > args.show:
        lines.append(f"... and {sweep.failed - args.show} more failures")
    console.stdout.write(("\n".join(lines) + "\n").encode())
    console.stdout.flush()
    return 1 if sweep.failures else 0


async def _sweep(store: Any, client: Any, args: argparse.Namespace, console: Console) -> Any:
    from ..d1 import reconcile

    show = wanted(args.progress, console.stderr, console.environ)
    next_draw = time.monotonic() + 0.5

    def progress(sweep: Any) -> None:
        nonlocal next_draw
        now = time.monotonic()
        if now >= next_draw:
            next_draw = now + 0.1
            done = sweep.fetched + sweep.failed
            console.stderr.write(
                f"\r{done:,}/{sweep.candidates:,} cards  {sweep.changed:,} changed"
                f"  {sweep.failed:,} failed\x1b[K"
            )
            console.stderr.flush()

    async with client:
        sweep = await reconcile(
            store, client, now=args.now or console.clock(), on_result=progress if show else None
        )
    if show:
        console.stderr.write("\r\x1b[K")
        console.stderr.flush()
    return sweep
