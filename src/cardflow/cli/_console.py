"""What a command touches outside itself: its streams, environment and clock, in one value.

``main`` builds it from ``sys`` and the real clock; tests build one over buffers.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO, TextIO

__all__ = ["Console"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Console:
    """Binary stdin and stdout, text stderr, the environment, and the clock."""

    stdin: BinaryIO
    stdout: BinaryIO
    stderr: TextIO
    environ: Mapping[str, str]
    clock: Callable[[], datetime] = _utc_now
    stdin_fd: int | None = None
    """stdin's file descriptor when it has one (to learn the size of a redirected file)."""

    @classmethod
    def from_sys(cls) -> Console:
        """The process's own streams, environment and clock."""
        stdin: BinaryIO = sys.stdin.buffer if sys.stdin is not None else io.BytesIO()
        try:
            fd: int | None = stdin.fileno()
        except (AttributeError, ValueError, OSError):
            fd = None
        return cls(
            stdin=stdin,
            stdout=sys.stdout.buffer,
            stderr=sys.stderr,
            environ=os.environ,
            stdin_fd=fd,
        )
