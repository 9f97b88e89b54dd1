"""The store's event log on the command line: ``cardflow rebuild`` and ``cardflow history``.

``rebuild --db URL`` derives every card's state again from its stored events
(``Store.rebuild``), with a progress bar on a terminal, and prints how many cards it
read and how many states changed; ``history --db URL CARD_ID`` lists a card's stored
events with the changes each made (``Store.history``).
"""

from __future__ import annotations

import argparse
from typing import Final

import msgspec

from .._errors import StoreUnavailable
from ..batch._readable import counted
from ..store import history_json, history_table, printable
from ._console import Console
from ._db import NOT_FOUND, OK, UNAVAILABLE, USAGE, open_store
from ._progress import Progress, wanted

__all__ = ["add_commands", "run_history", "run_rebuild"]


_STATUS: Final = """\
exit status:
  0    success
  2    usage error
  4    a --card (rebuild) or CARD_ID (history) has no event in the store
  5    the store could not be opened or failed
  130  interrupted (Ctrl-C)
  141  stdout was closed early (for instance piped into head)"""


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> dict[str, argparse.ArgumentParser]:
    """The ``rebuild`` and ``history`` commands; their parsers by name."""
    raw = argparse.RawDescriptionHelpFormatter
    rebuild = commands.add_parser(
        "rebuild",
        help="derive every stored state again from the store's events",
        description="Derive every card's state again from its stored events, under this"
        "\ncardflow's rules and lifecycle (after an upgrade, or to repair damaged rows),"
        "\nin batches, beside running writers. The changes of each rebuilt state go to"
        "\nthe outbox under their idempotency keys (a reaction already queued is never"
        "\nqueued again); --no-outbox queues none. See docs/store.md.",
        epilog=_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    rebuild.add_argument("--db", required=True, metavar="URL", help="the store")
    rebuild.add_argument(
        "--card", action="append", metavar="ID", help="only this card (repeatable)"
    )
    rebuild.add_argument(
        "--dry-run", action="store_true", help="write nothing; report what would change"
    )
    rebuild.add_argument(
        "--no-outbox",
        dest="outbox",
        action="store_false",
        help="queue no reaction for the changes (the states alone are repaired)",
    )
    rebuild.add_argument("--verbose", action="store_true", help="list each changed card")
    rebuild.add_argument(
        "--batch", type=int, default=500, metavar="N", help="cards per batch (default 500)"
    )
    rebuild.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: on a terminal only)",
    )

    history = commands.add_parser(
        "history",
        help="a card's stored events, and what each changed",
        description="A card's stored events in the order they were stored: when, whether"
        "\nD1 notified it or it was read from D1's on-demand status, and the changes it"
        "\nmade when the events are replayed in that order: why the card is in its state.",
        epilog=_STATUS,
        formatter_class=raw,
        allow_abbrev=False,
    )
    history.add_argument("--db", required=True, metavar="URL", help="the store")
    history.add_argument("card_id", metavar="CARD_ID", help="the card")
    history.add_argument(
        "--format",
        choices=("table", "jsonl"),
        default="table",
        help="table: for people (default); jsonl: one object per event, every field",
    )
    return {"rebuild": rebuild, "history": history}


def run_rebuild(args: argparse.Namespace, console: Console) -> int:
    """``cardflow rebuild``; the exit status."""
    store = open_store(args.db, "rebuild", console)
    if store is None:
        return UNAVAILABLE
    out = console.stdout
    cards = sorted(set(args.card)) if args.card else None
    progress = wanted(args.progress, console.stderr, console.environ)
    with store:
        try:
            missing = [c for c in cards or () if not store.events(c)]
            bars: list[Progress] = []
            shown = [0]

            def on_batch(done: int, total: int) -> None:
                shown[0] = done
                if not bars:
                    bars.append(
                        Progress(console.stderr, lambda: (shown[0], 0, 0), total, unit="cards")
                    )
                bars[0].poll()

            def on_change(card: str, what: str) -> None:
                if args.verbose:
                    for bar in bars:
                        bar.clear()
                    out.write(f"{printable(card)}: {printable(what)}\n".encode())

            result = store.rebuild(
                cards,
                dry_run=args.dry_run,
                outbox=args.outbox,
                batch=args.batch,
                on_batch=on_batch if progress else None,
                on_change=on_change,
            )
            for bar in bars:
                bar.clear()
        except StoreUnavailable as exc:
            console.stderr.write(f"cardflow rebuild: --db {args.db}: {exc}\n")
            return UNAVAILABLE
        except ValueError as exc:  # --batch out of bounds
            console.stderr.write(f"cardflow rebuild: {exc}\n")
            return USAGE
    verb = "would change" if args.dry_run else "changed"
    line = f"{counted(result.cards, 'card')} read, {counted(result.changed, 'state')} {verb}"
    if args.dry_run:
        line += " (dry run: nothing was written)"
    elif args.outbox:
        line += f", {counted(result.queued, 'reaction')} queued"
    out.write((line + "\n").encode())
    out.flush()
    for card in result.newer:
        console.stderr.write(
            f"cardflow rebuild: card {printable(card)} left as it is: a later cardflow wrote"
            " its state\n"
        )
    for card in missing:
        console.stderr.write(f"cardflow rebuild: card {printable(card)}: no event in the store\n")
    return NOT_FOUND if missing else OK


def run_history(args: argparse.Namespace, console: Console) -> int:
    """``cardflow history``; the exit status."""
    store = open_store(args.db, "history", console)
    if store is None:
        return UNAVAILABLE
    with store:
        try:
            events = store.history(args.card_id)
        except StoreUnavailable as exc:
            console.stderr.write(f"cardflow history: --db {args.db}: {exc}\n")
            return UNAVAILABLE
    if not events:
        console.stderr.write(
            f"cardflow history: card {printable(args.card_id)}: no event in the store\n"
        )
        return NOT_FOUND
    out = console.stdout
    if args.format == "jsonl":
        out.write(b"".join(msgspec.json.encode(history_json(e)) + b"\n" for e in events))
    else:
        out.write("".join(line + "\n" for line in history_table(events)).encode())
    out.flush()
    return OK
