"""Argument types shared by the D1 edge's commands: each names the value it refuses."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Final

__all__ = [
    "MAX_SECRET_FILE",
    "add_secret",
    "count",
    "moment",
    "port",
    "positive",
    "probability",
    "read_secret_files",
    "seconds",
    "share",
]

MAX_SECRET_FILE: Final = 4096
"""The most bytes a ``--...-file`` secret is read from: a bearer token is far shorter."""


def count(text: str) -> int:
    """A whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive(text: str) -> int:
    """A whole number, 1 or more."""
    value = count(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port to listen on: 1 to 65535."""
    value = positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port, 1 to 65535, got {value}")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def probability(text: str) -> float:
    """A chance per event: at least 0 and below 1 (1 would repeat forever)."""
    value = _number(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {text}")
    return value


def share(text: str) -> float:
    """A share of a whole: from 0 to 1."""
    value = _number(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def moment(text: str) -> datetime:
    """An ISO 8601 time with a UTC offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 time: {text!r} (for example 2026-01-31T12:00:00Z)"
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no UTC offset: add one, such as Z or +01:00"
        )
    return value


def seconds(text: str) -> float:
    """A positive duration in seconds."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {text}")
    return value


def add_secret(
    parser: argparse.ArgumentParser,
    flag: str,
    help: str,
    group: argparse._MutuallyExclusiveGroup | None = None,
) -> None:
    """``FLAG SECRET`` or ``FLAG-file PATH``, one of them (in ``group`` when given): a
    secret read from a file stays out of the process list (``ps``) and shell history.
    ``read_secret_files`` puts the file's secret in ``FLAG``'s place after parsing."""
    target = group if group is not None else parser.add_mutually_exclusive_group()
    target.add_argument(flag, metavar="TOKEN", help=help)
    target.add_argument(
        f"{flag}-file",
        metavar="PATH",
        help=f"read {flag} from this file (its one line; kept out of the process list)",
    )
    dest = flag.lstrip("-").replace("-", "_")
    secrets = parser.get_default("secret_files") or ()
    parser.set_defaults(secret_files=(*secrets, dest))


def read_secret_files(args: argparse.Namespace) -> str | None:
    """Read each ``--...-file`` secret given into its flag's place; what is wrong with
    one (unreadable, too large, not text, empty), or None."""
    for dest in getattr(args, "secret_files", ()):
        path = getattr(args, f"{dest}_file", None)
        if path is None:
            continue
        flag = f"--{dest.replace('_', '-')}-file"
        try:
            with open(path, "rb") as file:  # a pipe too: --token-file <(secret-tool ...)
                data = file.read(MAX_SECRET_FILE + 1)
        except OSError as exc:
            return f"{flag} {path}: cannot read it: {exc.strerror or exc}"
        if len(data) > MAX_SECRET_FILE:
            return f"{flag} {path}: over {MAX_SECRET_FILE} bytes, not a token"
        try:
            secret = data.decode("ascii").strip()
        except UnicodeDecodeError:
            return f"{flag} {path}: not ASCII text"
        if not secret:
            return f"{flag} {path}: the file holds no token"
        setattr(args, dest, secret)
    return None
