"""``cardflow fake-d1``: play D1 against a receiver, over real HTTP.

Serves the on-demand production status of every simulated card at ``--port`` and,
with ``--deliver-to``, posts the notifications to that receiver at least once each
(duplicates, any order, bulk bodies, losses). It keeps serving until interrupted,
or, with ``--exit-when-delivered``, stops once every body was answered. Needs
``cardflow[serve]``; imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from ._args import add_secret, count, positive, probability, share
from ._console import Console

__all__ = ["add_fake_d1", "run_fake_d1"]

_DESCRIPTION = """\
Play Thales D1 over real HTTP, from the simulator's truth model (--cards, --seed).

Serves GET /issuers/{issuerId}/physicalcards/{cardId}/productionstatus (each card's
latest true event; 404 for an unknown card), GET /fake/status and GET /fake/served.
With --deliver-to, POSTs the notification bodies to
{URL}/notifications/d1/v2/issuers/{issuerId}/cards, at least once each: a non-2xx
answer (but 400), a timeout or a broken connection is retried with backoff.
Lost notifications (--lose) are never sent: only the on-demand status has them."""

_STATUS = """\
exit status:
  0    stopped after serving (or, with --exit-when-delivered, every body acknowledged)
  1    with --exit-when-delivered: some bodies were refused (400) or abandoned
  2    usage error
  130  interrupted (Ctrl-C)"""


def add_fake_d1(commands: Any) -> argparse.ArgumentParser:
    """Add the ``fake-d1`` command to the subparsers ``commands``."""
    parser: argparse.ArgumentParser = commands.add_parser(
        "fake-d1",
        help="play D1: serve the on-demand status, deliver notifications to a receiver",
        description=_DESCRIPTION,
        epilog=_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--port", type=count, required=True, metavar="P", help="port to serve on")
    parser.add_argument("--host", default="127.0.0.1", metavar="H", help="(default: 127.0.0.1)")
    parser.add_argument("--cards", type=count, required=True, metavar="N", help="cards")
    parser.add_argument("--seed", type=int, required=True, metavar="S", help="random seed")
    parser.add_argument("--lose", type=probability, default=0.0, metavar="F", help="loss rate")
    parser.add_argument(
        "--duplicates", type=probability, default=0.0, metavar="F", help="duplicate rate"
    )
    parser.add_argument("--bulk", type=positive, default=10, metavar="K", help="ops per body")
    parser.add_argument("--issuer", default=None, metavar="ID", help="issuerId (10 characters)")
    parser.add_argument("--deliver-to", metavar="URL", help="the receiver's base URL")
    parser.add_argument("--concurrency", type=positive, default=4, metavar="C")
    parser.add_argument("--attempts", type=positive, default=8, metavar="A")
    parser.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS")
    add_secret(parser, "--token", "bearer token sent with each notification")
    parser.add_argument("--cert", help="client certificate (PEM) for a receiver wanting mTLS")
    parser.add_argument("--key", help="its private key (PEM)")
    parser.add_argument("--ca", help="CA bundle the receiver's certificate is checked against")
    parser.add_argument("--certfile", help="serve TLS with this certificate (PEM)")
    parser.add_argument("--keyfile", help="and this key (PEM)")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    parser.add_argument(
        "--fault",
        choices=("error", "busy", "garbage", "empty", "hang"),
        help="make the on-demand status misbehave (for --fault-rate of the cards)",
    )
    parser.add_argument("--fault-rate", type=share, default=1.0, metavar="F")
    parser.add_argument(
        "--fault-times", type=positive, metavar="K", help="misbehave only K times per card"
    )
    parser.add_argument("--exit-when-delivered", action="store_true")
    return parser


def run_fake_d1(args: argparse.Namespace, console: Console) -> int:
    """Run the fake until interrupted (or delivered); the exit status."""
    return asyncio.run(_main(args, console))


async def _main(args: argparse.Namespace, console: Console) -> int:
    import uvicorn

    from ..d1 import client_ssl_context, server_options
    from ..testing import DEFAULT_ISSUER, FakeD1, Fault, fake_traffic

    traffic = fake_traffic(
        args.cards,
        args.seed,
        lose=args.lose,
        duplicates=args.duplicates,
        bulk=args.bulk,
        issuer_id=args.issuer or DEFAULT_ISSUER,
    )
    fake = FakeD1(
        traffic,
        fault=Fault(args.fault) if args.fault else None,
        fault_rate=args.fault_rate,
        fault_times=args.fault_times,
    )
    try:
        options = server_options(args.host, args.port, args.certfile, args.keyfile, args.client_ca)
    except ValueError as error:
        console.stderr.write(f"cardflow fake-d1: {error}\n")
        return 2
    server = uvicorn.Server(uvicorn.Config(fake.app, timeout_graceful_shutdown=1, **options))
    serving = asyncio.ensure_future(server.serve())
    while not server.started and not serving.done():
        await asyncio.sleep(0.02)
    if serving.done():  # it could not start (the port is taken...): uvicorn said why
        await serving
        return 1
    scheme = "https" if args.certfile else "http"
    say = console.stderr
    say.write(
        f"fake-d1: {len(traffic.cards)} cards, {traffic.notifications} notifications"
        f" ({traffic.lost} lost), {len(traffic.bodies)} bodies; issuer {traffic.issuer_id};"
        f" on-demand status at {scheme}://{args.host}:{args.port}\n"
    )
    say.flush()
    status = 0
    if args.deliver_to:
        verify = True
        if args.deliver_to.startswith("https:"):
            verify = client_ssl_context(args.cert, args.key, args.ca)  # type: ignore[assignment]
        delivering = asyncio.ensure_future(
            fake.deliver(
                args.deliver_to,
                concurrency=args.concurrency,
                timeout=args.timeout,
                attempts=args.attempts,
                verify=verify,
                token=args.token,
            )
        )
        done, _ = await asyncio.wait({delivering, serving}, return_when=asyncio.FIRST_COMPLETED)
        if delivering in done:
            report = delivering.result()
            say.write(
                f"fake-d1: delivered {report.bodies} bodies: {report.acknowledged} acknowledged,"
                f" {report.rejected} refused (400), {report.abandoned} abandoned;"
                f" {report.attempts} attempts\n"
            )
            say.flush()
            if report.rejected or report.abandoned:
                status = 1
            if args.exit_when_delivered:
                server.should_exit = True
        else:
            delivering.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await delivering
    await serving
    return status
