"""``cardflow serve``: the webhook receiver (``cardflow.d1.receiver``) under uvicorn.

The settings travel to the worker processes as ``CARDFLOW_SERVE_*`` variables, read
by the factory ``cardflow.d1:receiver_from_env``: with ``--workers N`` uvicorn starts
N processes, each opening the store itself. Needs ``cardflow[serve]``.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ._args import count, positive, seconds
from ._console import Console

__all__ = ["add_serve", "run_serve"]

_DESCRIPTION = """\
Receive D1's notifications into a cardflow store, under uvicorn.

POST /notifications/d1/v2/issuers/{issuerId}/cards answers 204 once the store
committed the body; 400 for a body that is not a D1 envelope (D1 must not retry it);
413 over --max-body; 408 when the body does not arrive within --body-timeout; 503
when the store is unavailable (D1 retries). GET /cards/{cardId} answers the card's
JSON view; GET /health. Reactions are not run here: run cardflow dispatch.

Every request but GET /health must carry --token as Authorization: Bearer (401
otherwise, whatever the path); serving without a token takes an explicit --no-auth
(behind a proxy that authenticates), and says so when it starts.

With --certfile and --keyfile it serves TLS; with --client-ca too, it refuses in the
handshake every client without a certificate signed by that CA (D1's mutual TLS)."""

_STATUS = """\
exit status:
  0    stopped
  2    usage error
  3    the store could not be opened"""


def add_serve(commands: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` command to the subparsers ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "serve",
        help="receive D1 notifications into a store (uvicorn)",
        description=_DESCRIPTION,
        epilog=_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--db", required=True, metavar="URL", help="the store URL")
    parser.add_argument("--host", default="127.0.0.1", metavar="H", help="(default: 127.0.0.1)")
    parser.add_argument("--port", type=count, default=8000, metavar="P", help="(default: 8000)")
    parser.add_argument("--workers", type=positive, default=1, metavar="N", help="processes")
    parser.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="and this private key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--token", help="require Authorization: Bearer TOKEN on every request")
    auth.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without authentication (only behind a proxy that authenticates)",
    )
    parser.add_argument("--issuer", action="append", metavar="ID", help="accept only this issuer")
    parser.add_argument("--max-body", type=positive, default=None, metavar="BYTES")
    parser.add_argument("--body-timeout", type=seconds, default=None, metavar="SECONDS")
    return parser


def run_serve(args: argparse.Namespace, console: Console) -> int:
    """Serve until interrupted; the exit status."""
    import uvicorn

    from ..d1 import check_token
    from ..store import StoreUnavailable, open
    from ._serving import server_options

    settings = {"DB": args.db}
    if args.token is not None:
        try:
            settings["TOKEN"] = check_token(args.token)
        except ValueError as error:
            console.stderr.write(f"cardflow serve: --token: {error}\n")
            return 2
    elif args.no_auth:
        settings["NO_AUTH"] = "1"
    else:
        console.stderr.write(
            "cardflow serve: give --token TOKEN (the bearer token D1 sends), or --no-auth"
            " to serve without authentication\n"
        )
        return 2
    if args.issuer:
        settings["ISSUERS"] = ",".join(args.issuer)
    if args.max_body is not None:
        settings["MAX_BODY"] = str(args.max_body)
    if args.body_timeout is not None:
        settings["BODY_TIMEOUT"] = str(args.body_timeout)
    for key in ("TOKEN", "NO_AUTH"):  # none left over from the caller's environment
        os.environ.pop("CARDFLOW_SERVE_" + key, None)
    for key, value in settings.items():
        os.environ["CARDFLOW_SERVE_" + key] = value
    try:
        options = server_options(
            args.host,
            args.port,
            args.certfile,
            args.keyfile,
            args.client_ca,
            factory=True,
            workers=args.workers,
            lifespan="on",
        )
    except ValueError as error:
        console.stderr.write(f"cardflow serve: {error}\n")
        return 2
    try:  # open (creating or upgrading) the store once, before the workers race to
        with open(args.db):
            pass
    except (StoreUnavailable, ValueError) as error:
        console.stderr.write(f"cardflow serve: {error}\n")
        return 3
    if args.no_auth:
        scheme = "https" if args.certfile else "http"
        console.stderr.write(
            f"cardflow serve: --no-auth: serving WITHOUT AUTHENTICATION on"
            f" {scheme}://{args.host}:{args.port}: anyone who reaches it can post"
            " notifications and read every card\n"
        )
        console.stderr.flush()
    # Each worker imports the factory and opens the store itself.
    uvicorn.run("cardflow.d1:receiver_from_env", **options)
    return 0
