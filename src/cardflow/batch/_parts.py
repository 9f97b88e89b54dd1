"""Cutting a fold's inputs into parts for workers, and parts into groups.

A part is a whole file, or a byte range of a large one cut just before a line that
starts with ``{`` at column 0. The reader starts afresh at such a line whatever came
before (an unfinished multi-line document ends there), so the lines of a part decode
exactly as they do in one pass over the file. stdin and files that are not regular
files (a pipe, ``<(zcat ...)``) are one *local* part each: the parent reads them.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

from ._inputs import STDIN, Source

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "MAX_PART",
    "MIN_PART",
    "PARTS_PER_JOB",
    "Part",
    "PartReader",
    "cpu_count",
    "groups",
    "plan",
    "split",
]

MIN_PART: Final = 4 << 20
"""Bytes: a file is cut into parts of at least this size unless ``--part-size`` says less."""
MAX_PART: Final = 64 << 20
"""Bytes: parts are at most this size by default (a worker holds one part's bytes)."""
PARTS_PER_JOB: Final = 8
"""Parts per job by default: the progress bar moves a part at a time."""
_SCAN: Final = 1 << 16


def cpu_count() -> int:
    """The cores this process may use: the default of ``--jobs``."""
    counter = getattr(os, "process_cpu_count", None)  # Python 3.13
    if counter is not None:
        return int(counter() or 1)
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class Part:
    """Bytes ``[start, end)`` of one input (``end`` None: to the end of the file).

    ``source`` is the input's position among all inputs; ``local`` parts (stdin, a
    pipe) are read by the parent process.
    """

    source: int
    name: str
    path: str
    start: int = 0
    end: int | None = None
    local: bool = False

    @property
    def size(self) -> int:
        return 0 if self.end is None else self.end - self.start


def _cut_after(stream: BinaryIO, at: int) -> int | None:
    """The first position at or after ``at`` that starts a line beginning with ``{``."""
    stream.seek(at - 1)
    carry = b""
    base = at - 1
    while True:
        block = stream.read(_SCAN)
        if not block:
            return None
        found = (carry + block).find(b"\n{")
        if found >= 0:
            return base - len(carry) + found + 1
        carry = block[-1:]
        base += len(block)


def split(source: Source, index: int, part_size: int) -> list[Part]:
    """``source`` as parts of about ``part_size`` bytes, cut before lines starting ``{``."""
    if source.path == STDIN or source.size is None:
        return [Part(index, source.name, source.path, local=True)]
    path = os.path.abspath(source.path)  # a worker may run in another directory
    if source.size < 2 * part_size:
        return [Part(index, source.name, path)]
    starts = [0]
    try:
        with open(path, "rb") as stream:
            while True:
                cut = _cut_after(stream, starts[-1] + part_size)
                if cut is None or cut >= source.size:
                    break
                starts.append(cut)
    except OSError:
        return [Part(index, source.name, path)]  # its reader reports the error
    ends: list[int | None] = [*starts[1:], None]
    return [Part(index, source.name, path, s, e) for s, e in zip(starts, ends, strict=True)]


def plan(sources: list[Source], jobs: int, part_size: int | None) -> list[Part]:
    """Every input as parts, in input order: the default part size gives each job about
    ``PARTS_PER_JOB`` parts, between ``MIN_PART`` and ``MAX_PART`` bytes."""
    if part_size is None:
        total = sum(s.size or 0 for s in sources)
        part_size = min(MAX_PART, max(MIN_PART, total // (jobs * PARTS_PER_JOB) + 1))
    return [part for i, s in enumerate(sources) for part in split(s, i, part_size)]


def groups(parts: list[Part], count: int) -> list[list[Part]]:
    """``parts`` as consecutive groups, about ``count`` of them of about equal bytes for
    the workers; a part the parent reads (``local``) is a group of its own."""
    total = sum(part.size or 1 for part in parts if not part.local)
    share = max(1, -(-total // max(1, count)))
    out: list[list[Part]] = []
    current: list[Part] = []
    filled = 0
    for part in parts:
        if part.local:
            if current:
                out.append(current)
                current, filled = [], 0
            out.append([part])
            continue
        current.append(part)
        filled += part.size or 1
        if filled >= share:
            out.append(current)
            current, filled = [], 0
    if current:
        out.append(current)
    return out


class PartReader(io.RawIOBase):
    """The bytes of one part of a file, read as they are asked for: wrapped in a
    ``BufferedReader``, its lines are read as from the whole file (never the whole
    part in memory at once)."""

    def __init__(self, part: Part) -> None:
        super().__init__()
        self._file = open(part.path, "rb", buffering=0)  # noqa: SIM115 (closed by close)
        try:
            self._file.seek(part.start)
        except OSError:
            self._file.close()
            raise
        self._left = None if part.end is None else part.size
        self.bytes_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        view = memoryview(buffer).cast("B")
        if self._left is not None:
            view = view[: self._left]
        count = self._file.readinto(view) or 0
        self.bytes_read += count
        if self._left is not None:
            self._left -= count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
