"""``cardflow serve``: the webhook receiver (``cardflow.d1.receiver``) under uvicorn.

The settings travel to the worker processes as ``CARDFLOW_SERVE_*`` variables, read
by the factory ``cardflow.d1:receiver_from_env``: with ``--workers N`` uvicorn starts
N processes, each opening the store itself. Needs ``cardflow[serve]``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from typing import Any, Final

from ..store import public_url
from ._args import add_secret, count, positive, seconds
from ._console import Console
from ._logs import add_logging_options, configure

__all__ = ["add_serve", "run_serve"]

_DESCRIPTION = """\
Receive D1's notifications into a cardflow store, under uvicorn.

POST /notifications/d1/v2/issuers/{issuerId}/cards answers 204 once the store
committed the body; 400 for a body that is not a D1 envelope (D1 must not retry it);
413 over --max-body; 408 when the body does not arrive within --body-timeout; 503
when the store is unavailable (D1 retries). GET /cards/{cardId} answers the card's
JSON view; GET /health; GET /metrics (Prometheus, summed over the workers);
GET /openapi.json (OpenAPI 3.1). Reactions are not run here: run cardflow dispatch.
It logs to stderr: a line when it starts, each worker's start and stop, each
body refused (status, reason, request id), the store's outages and recoveries.

Every request but GET /health must carry --token as Authorization: Bearer (401
otherwise, whatever the path); serving without a token takes an explicit --no-auth
(behind a proxy that authenticates), and says so when it starts.

With --certfile and --keyfile it serves TLS; with --client-ca too, it refuses in the
handshake every client without a certificate signed by that CA (D1's mutual TLS)."""

_STATUS = """\
exit status:
  0    stopped
  2    usage error
  3    the store could not be opened
  4    the address cannot be listened on (the port is in use, or not ours to take)
  5    the TLS certificate, key or client CA cannot be loaded"""

USAGE: Final = 2
STORE: Final = 3
ADDRESS: Final = 4
CERTIFICATE: Final = 5
log: Final = logging.getLogger("cardflow.serve")


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
    add_secret(
        parser, "--token", "require Authorization: Bearer TOKEN on every request", group=auth
    )
    auth.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without authentication (only behind a proxy that authenticates)",
    )
    parser.add_argument("--issuer", action="append", metavar="ID", help="accept only this issuer")
    parser.add_argument("--max-body", type=positive, default=None, metavar="BYTES")
    parser.add_argument("--body-timeout", type=seconds, default=None, metavar="SECONDS")
    parser.add_argument(
        "--passed",
        action="store_true",
        help="reactions as Tracker(passed=True): also for statuses a card passed without"
        " a notification (docs/d1.md)",
    )
    add_logging_options(parser, "info", access=True)
    return parser


def run_serve(args: argparse.Namespace, console: Console) -> int:
    """Serve until interrupted; the exit status."""
    import uvicorn

    from ..d1 import TLSFileError, check_token, server_options
    from ..store import StoreUnavailable, open

    config = configure(args)
    settings = {"DB": args.db}
    if args.token is not None:
        try:
            settings["TOKEN"] = check_token(args.token)
        except ValueError as error:
            console.stderr.write(f"cardflow serve: --token: {error}\n")
            return USAGE
    elif args.no_auth:
        settings["NO_AUTH"] = "1"
    else:
        console.stderr.write(
            "cardflow serve: give --token TOKEN (the bearer token D1 sends), or --no-auth"
            " to serve without authentication\n"
        )
        return USAGE
    if args.issuer:
        settings["ISSUERS"] = ",".join(args.issuer)
    if args.max_body is not None:
        settings["MAX_BODY"] = str(args.max_body)
    if args.body_timeout is not None:
        settings["BODY_TIMEOUT"] = str(args.body_timeout)
    for key in ("TOKEN", "NO_AUTH"):  # none left over from the caller's environment
        os.environ.pop("CARDFLOW_SERVE_" + key, None)
    if args.passed:
        settings["PASSED"] = "1"
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
            log_config=config,
            log_level=args.log_level,
            access_log=args.access_log,
        )
    except TLSFileError as error:
        console.stderr.write(f"cardflow serve: {error}\n")
        return CERTIFICATE
    except ValueError as error:
        console.stderr.write(f"cardflow serve: {error}\n")
        return USAGE
    try:  # open (creating or upgrading) the store once, before the workers race to
        with open(args.db):
            pass
    except (StoreUnavailable, ValueError) as error:
        console.stderr.write(f"cardflow serve: {error}\n")
        return STORE
    busy = _cannot_listen(args.host, args.port)
    if busy is not None:
        console.stderr.write(f"cardflow serve: {busy}\n")
        return ADDRESS
    scheme = "https" if args.certfile else "http"
    if args.no_auth:
        log.warning(
            "--no-auth: serving WITHOUT AUTHENTICATION on %s://%s:%d: anyone who reaches it"
            " can post notifications and read every card",
            scheme,
            _host(args.host),
            args.port,
            extra={"event": "no_auth"},
        )
    kinds = [kind for kind, used in (("bearer token", args.token), ("mutual TLS", args.client_ca))
             if used]  # fmt: skip
    auth = " and ".join(kinds) or "none"
    address = f"{scheme}://{_host(args.host)}:{args.port}"
    store = public_url(args.db)
    log.info(
        "listening on %s: store %s, %d worker%s, auth %s",
        address,
        store,
        args.workers,
        "" if args.workers == 1 else "s",
        auth,
        extra={"event": "started", "address": address, "store": store,
               "workers": args.workers, "auth": auth},
    )  # fmt: skip
    with _metrics_directory():  # each worker's counts, summed by /metrics
        uvicorn.run("cardflow.d1:receiver_from_env", **options)
    return 0


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _cannot_listen(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on (as uvicorn binds it); None if it can."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as error:
        return f"--host {host}: {error}"
    family, kind, proto, _, where = found[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(where)
        except OSError as error:
            reason = "it is in use" if error.errno == errno.EADDRINUSE else error.strerror
            return f"cannot listen on port {port} of {host}: {reason}"
    return None


@contextlib.contextmanager
def _metrics_directory() -> Iterator[str]:
    """A fresh directory for prometheus-client's multiprocess mode, named to the
    workers in ``PROMETHEUS_MULTIPROC_DIR``; removed afterwards."""
    directory = tempfile.mkdtemp(prefix="cardflow-metrics-")
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield directory
    finally:
        if before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
        shutil.rmtree(directory, ignore_errors=True)
