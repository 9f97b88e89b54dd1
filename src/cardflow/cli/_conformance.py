"""``cardflow conformance``: compare a receiver's view of every card with the truth.

Recomputes the fake D1's traffic from the same ``--truth-seed``, ``--cards`` and
``--lose``; with ``--d1``, asks that fake which cards it served on demand. The
receiver's views come from a URL template (any language) or a cardflow store.
Needs ``cardflow[serve]``; imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
from typing import Any

from .._errors import CardflowError
from ._args import add_secret, count, positive, probability
from ._console import Console

__all__ = ["add_conformance", "run_conformance"]

_DESCRIPTION = """\
Compare a receiver's view of each card with the truth of a fake D1 run.

--view is a URL template with {cardId} (such as http://localhost:8000/cards/{cardId}),
answering the JSON of cardflow.json_view, 404 for an unknown card; or a store URL
(sqlite:///path.db, postgresql://...). --truth-seed, --cards and --lose must be those
given to cardflow fake-d1. With --d1, the cards that fake served on demand count as
having received their latest event."""

_STATUS = """\
exit status:
  0    every card matches the truth
  1    some cards differ (each difference listed)
  2    usage error
  3    the fake D1 (--d1) or the store (--view) could not be reached"""


def add_conformance(commands: Any) -> argparse.ArgumentParser:
    """Add the ``conformance`` command to the subparsers ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "conformance",
        help="compare a receiver's view of every card with a fake D1's truth",
        description=_DESCRIPTION,
        epilog=_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--truth-seed", type=int, required=True, metavar="S")
    parser.add_argument("--cards", type=count, required=True, metavar="N")
    parser.add_argument("--lose", type=probability, default=0.0, metavar="F")
    parser.add_argument("--view", required=True, metavar="URL", help="URL template or store URL")
    parser.add_argument("--d1", metavar="URL", help="the fake D1's base URL (cards served)")
    add_secret(
        parser,
        "--view-token",
        "bearer token sent with each --view request (cardflow serve --token)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--show", type=count, default=20, metavar="N", help="differences listed (default: 20)"
    )
    parser.add_argument("--concurrency", type=positive, default=8, metavar="C")
    return parser


def run_conformance(args: argparse.Namespace, console: Console) -> int:
    """Run the check and report; the exit status."""
    return asyncio.run(_main(args, console))


_STORE_SCHEMES = ("sqlite:", "postgresql:", "postgres:")


async def _main(args: argparse.Namespace, console: Console) -> int:
    import httpx

    from ..store import open as open_store
    from ..testing import check_conformance, fake_traffic, http_views, served_cards, store_views

    traffic = fake_traffic(args.cards, args.truth_seed, lose=args.lose)
    stack = contextlib.ExitStack()
    viewing = contextlib.AsyncExitStack()
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0)) as client, viewing:
        viewer = client  # the token goes to the view only, never to the fake D1
        if args.view_token is not None:
            auth = {"Authorization": f"Bearer {args.view_token}"}
            viewer = await viewing.enter_async_context(
                httpx.AsyncClient(timeout=httpx.Timeout(30.0), headers=auth)
            )
        served: list[str] = []
        if args.d1:
            try:
                served = await served_cards(client, args.d1)
            except (httpx.HTTPError, ValueError) as exc:
                console.stderr.write(f"cardflow conformance: cannot ask {args.d1}: {exc}\n")
                return 3
        try:
            if args.view.startswith(_STORE_SCHEMES):
                views = store_views(stack.enter_context(open_store(args.view)))
            else:
                views = http_views(viewer, args.view)
        except ValueError as error:
            console.stderr.write(f"cardflow conformance: --view: {error}\n")
            return 2
        except CardflowError as error:  # the store could not be opened
            console.stderr.write(f"cardflow conformance: --view: {error}\n")
            return 3
        with stack:
            result = await check_conformance(
                traffic, views, served=served, concurrency=args.concurrency
            )
    shown = result.differences[: args.show]
    if args.format == "json":
        document = {
            "cards": result.cards,
            "served": len(served),
            "cardsDiffering": result.cards_differing,
            "differences": [
                {
                    "cardId": d.card_id,
                    "field": d.field,
                    "expected": repr(d.expected),
                    "actual": repr(d.actual),
                }
                for d in shown
            ],
        }
        console.stdout.write(json.dumps(document, indent=2).encode() + b"\n")
    else:
        lines = [str(d) for d in shown]
        more = len(result.differences) - len(shown)
        if more > 0:
            lines.append(f"... and {more} more differences")
        verdict = "conforms" if result.ok else f"{result.cards_differing} cards differ"
        lines.append(
            f"conformance: {result.cards} cards ({len(served)} served on demand): {verdict}"
        )
        console.stdout.write(("\n".join(lines) + "\n").encode())
    console.stdout.flush()
    return 0 if result.ok else 1
