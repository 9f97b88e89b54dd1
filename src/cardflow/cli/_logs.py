"""The logging options of the long-running commands (``serve``, ``dispatch``,
``reconcile``): ``--log-level`` and ``--log-format``, applied through
:func:`cardflow.store.logging_config` (what each line holds is described there).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..store import LEVELS, logging_config

__all__ = ["add_logging_options", "configure"]


def add_logging_options(
    parser: argparse.ArgumentParser, default: str, access: bool = False
) -> None:
    """``--log-level``, ``--log-format`` (and, with ``access``, ``--access-log``)."""
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default=default,
        help=f"the least severe log lines written to stderr (default: {default})",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text for people, or one JSON object per line with stable keys (default: text)",
    )
    if access:
        parser.add_argument(
            "--access-log", action="store_true", help="log every request (uvicorn's access log)"
        )


def configure(args: argparse.Namespace) -> dict[str, Any]:
    """Configure logging in this process from the command's options; the dictionary."""
    import logging.config

    config = logging_config(args.log_level, args.log_format, getattr(args, "access_log", False))
    logging.config.dictConfig(config)
    return config
