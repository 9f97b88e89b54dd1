"""A one-line progress bar on stderr, for terminals only: no dependency, no noise in logs.

The bar is drawn only when stderr is a terminal (never into a pipe, a file or a CI
log), only once the work has run for a moment (short inputs never flash it), and at
most a few times a second. Anything else written to stderr first calls ``clear``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import Final, TextIO

__all__ = ["Progress", "wanted"]

_DELAY: Final = 0.5
"""Seconds of work before the bar first shows."""
_INTERVAL: Final = 0.1
"""Seconds between redraws."""

Snapshot = tuple[int, int, int]
"""(bytes read, operations decoded, cards folded)."""


def wanted(flag: bool | None, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Whether to draw: as ``flag`` says, else only on a real terminal outside CI."""
    if flag is not None:
        return flag
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):  # a closed or unusual stream is no terminal
        return False
    return tty and environ.get("TERM") != "dumb" and not environ.get("CI")


def _size(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Redraws ``snapshot()`` as one line of ``stream`` when polled, at most every 0.1 s.

    ``total`` is the number of bytes to read when it is known (files, a redirected
    regular file); without it the line shows what was read and the rate. With ``unit``
    the work is counted in that unit (``cards``) instead of bytes.
    """

    def __init__(
        self,
        stream: TextIO,
        snapshot: Callable[[], Snapshot],
        total: int | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        unit: str | None = None,
    ) -> None:
        self._stream = stream
        self._unit = unit
        self._snapshot = snapshot
        self._total = total
        self._clock = clock
        self._start = clock()
        self._next = self._start + _DELAY
        self._shown = False
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self._fill, self._empty = ("█", "░") if encoding == "utf8" else ("#", "-")

    def poll(self) -> None:
        """Redraw if it is time; cheap enough to call for every body read."""
        now = self._clock()
        if now >= self._next:
            self._next = now + _INTERVAL
            self._draw(now)

    def _draw(self, now: float) -> None:
        done, operations, cards = self._snapshot()
        elapsed = max(now - self._start, 1e-9)
        rate = done / elapsed
        amount = _size if self._unit is None else lambda n: f"{n:,.0f} {self._unit}"
        counts = f"{operations:,} ops  {cards:,} cards  {amount(rate)}/s"
        if self._unit is not None:
            counts = f"{amount(rate)}/s"
        columns = self._columns()
        if self._total:
            fraction = min(done / self._total, 1.0)
            left = (self._total - done) / rate if rate > 0 else 0.0
            tail = f" {amount(done)}/{amount(self._total)}  {counts}  {_clock(left)} left"
            width = max(10, min(40, columns - len(tail) - 8))
            filled = round(fraction * width)
            bar = self._fill * filled + self._empty * (width - filled)
            line = f"{fraction:4.0%} {bar}{tail}"
        else:
            line = f"{amount(done)} read  {counts}"
        self._stream.write("\r" + line[: columns - 1] + "\x1b[K")
        self._stream.flush()
        self._shown = True

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self._stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            return shutil.get_terminal_size().columns

    def clear(self) -> None:
        """Erase the bar, if it is shown, so that a message can be written in its place."""
        if self._shown:
            self._stream.write("\r\x1b[K")
            self._stream.flush()
            self._shown = False
