"""Where D1 bodies come from: paths, directories and stdin, read as a stream of bodies.

A stream holds JSON Lines (one webhook body or on-demand response per line) or
indented JSON documents (a body as a pretty-printer writes it, spanning lines), in
any mix. Each line is decoded on its own; only a line that opens an unfinished JSON
value and is followed by indented lines starts a multi-line document, which ends at
the first unindented line that completes it. So a bad line never swallows the good
lines after it: a line cut short is followed by a line at column 0, and is rejected
alone. Memory holds one body at a time.

Nothing read is unbounded: a line longer than ``max_line`` bytes (``--max-line-bytes``)
is rejected with its line number and skipped to the next newline a chunk at a time, and
a multi-line document that grows past the same limit is refused and skipped. In a
directory, only regular files are read: a FIFO or a device there is skipped with a
warning (reading it could wait forever); named on the command line, it is read as a
stream.
"""

from __future__ import annotations

import codecs
import io
import itertools
import os
import re
import stat
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

import msgspec

from .._decode import MAX_BODY, READING_MARK, Decoded, Reject, decode_lenient, decode_reading

__all__ = [
    "STDIN",
    "Body",
    "Problem",
    "Reader",
    "Source",
    "expand",
    "lines_of",
    "one_line",
    "readable",
]

STDIN: Final = "-"
SUFFIXES: Final = (".json", ".jsonl", ".ndjson")
"""The files a directory contributes (case-insensitive); a file named directly may be any."""
_BOM: Final = b"\xef\xbb\xbf"
_TRUNCATED: Final = "Input data was truncated"
_CONTINUES: Final = frozenset(b" \t\r\n}]")
"""First bytes of a line that can go on a multi-line document: indented, blank, or closing."""


@dataclass(frozen=True, slots=True)
class Source:
    """One input: a file, or stdin (``path`` is ``-``). ``name`` is what messages show."""

    name: str
    path: str
    size: int | None


@dataclass(frozen=True, slots=True)
class Problem:
    """An input path that gives nothing to read, and why."""

    name: str
    reason: str
    fatal: bool
    """True when input was lost (unreadable); False for a warning (an empty directory)."""


def _regular_size(fd: int) -> int | None:
    info = os.fstat(fd)
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def expand(paths: Sequence[str], stdin_fd: int | None) -> Iterator[Source | Problem]:
    """The sources that ``paths`` name, in order; directories walked, sorted, recursively.

    No paths means stdin. Hidden files and directories (``.name``) are skipped.
    """
    for path in paths or [STDIN]:
        if path == STDIN:
            size = None
            if stdin_fd is not None:
                try:
                    size = _regular_size(stdin_fd)
                    if size is not None:
                        size -= os.lseek(stdin_fd, 0, os.SEEK_CUR)
                except OSError:
                    size = None
            yield Source("<stdin>", STDIN, size)
            continue
        try:
            info = os.stat(path)
        except OSError as exc:
            yield Problem(path, exc.strerror or str(exc), fatal=True)
            continue
        if not stat.S_ISDIR(info.st_mode):
            size = info.st_size if stat.S_ISREG(info.st_mode) else None
            yield Source(path, path, size)
            continue
        found = False
        for found_source in _walk(path):
            found = True
            yield found_source
        if not found:
            yield Problem(path, f"directory holds no {', '.join(SUFFIXES)} files", fatal=False)


def readable(
    paths: Sequence[str],
    stdin_fd: int | None,
    unreadable: list[str],
    warn: Callable[[str], object],
    prefix: str = "",
) -> list[Source]:
    """The sources ``paths`` name; each problem said with ``warn`` (``prefix`` first,
    when given), and the name of each input that cannot be read added to ``unreadable``."""
    sources: list[Source] = []
    lead = f"{prefix} " if prefix else ""
    for item in expand(paths, stdin_fd):
        if isinstance(item, Problem):
            if item.fatal:
                unreadable.append(item.name)
                warn(f"{lead}cannot read {item.name}: {item.reason}")
            else:
                warn(f"{lead}warning: {item.name}: {item.reason}")
            continue
        sources.append(item)
    return sources


def _walk(top: str) -> Iterator[Source | Problem]:
    def fail(exc: OSError) -> None:
        raise exc

    try:
        for here, dirs, files in os.walk(top, onerror=fail):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(SUFFIXES):
                    continue
                path = os.path.join(here, name)
                try:
                    info = os.stat(path)
                except OSError as exc:
                    yield Problem(path, exc.strerror or str(exc), fatal=True)
                    continue
                if not stat.S_ISREG(info.st_mode):
                    reason = "not a regular file (a FIFO, a device, a socket): skipped"
                    yield Problem(path, reason, fatal=False)
                    continue
                yield Source(path, path, info.st_size)
    except OSError as exc:
        yield Problem(exc.filename or top, exc.strerror or str(exc), fatal=True)


@dataclass(frozen=True, slots=True)
class Body:
    """One body read from a stream: its first line number, its text, what decoded."""

    line: int
    text: bytes
    decoded: Decoded
    at: datetime | None = None
    """When a logged on-demand response was read (its ``confirmedAt``); None for a
    notification."""

    def line_of(self, reject: Reject) -> int:
        """The line a reject starts on (an operation of a multi-line document has its own)."""
        if reject.index is None:
            return self.line
        at = self.text.find(reject.raw)
        return self.line + (self.text.count(b"\n", 0, at) if at > 0 else 0)


def _body(line: int, text: bytes, decoded: Decoded) -> Body:
    """A body, read as a logged on-demand response when it says when it was read
    (decoded again then: rare; ``decode_reading`` rejects a bad ``confirmedAt``)."""
    if READING_MARK not in text:
        return Body(line, text, decoded)
    decoded, at = decode_reading(text)
    return Body(line, text, decoded, at)


def one_line(raw: bytes) -> bytes:
    """A rejected item's text on one line, for a file of one rejected item per line.

    A JSON Lines line is written as it was, without its line ending; the text of a
    multi-line document or operation has its line breaks (white space in JSON)
    turned into spaces.
    """
    text = raw.rstrip(b"\r\n")
    if b"\n" in text or b"\r" in text:
        try:
            return msgspec.json.format(text, indent=0)
        except msgspec.DecodeError:
            return text.replace(b"\r\n", b" ").replace(b"\n", b" ").replace(b"\r", b" ")
    return text


_STRING: Final = re.compile(rb'"(?:[^"\\\n]|\\.)*"?')
"""A JSON string on one line (JSON text holds no raw line break in a string), or what
is left of an unterminated one."""


def _depth(line: bytes) -> int:
    """How many more brackets the line opens than it closes, outside strings."""
    bare = _STRING.sub(b"", line)
    return bare.count(b"{") + bare.count(b"[") - bare.count(b"}") - bare.count(b"]")


def _unfinished(text: bytes, decoded: Decoded) -> bool:
    """Text that starts a JSON value at column 0 and ends before the value does."""
    if decoded.operations or len(decoded.rejects) != 1:
        return False
    reject = decoded.rejects[0]
    return reject.index is None and reject.reason == _TRUNCATED and text[:1] in (b"{", b"[")


_BLOCK: Final = 1 << 16
"""Bytes read at a time by :func:`lines_of`: small enough to come from the allocator's
free lists (a megabyte would be mapped afresh, and its pages faulted in, each time)."""


def lines_of(stream: BinaryIO | Iterator[bytes], limit: int) -> Iterator[bytes]:
    """The lines of ``stream``, each at most ``limit + 2`` bytes: a longer line comes in
    chunks of that size, its last one ending with its newline. Memory never holds more
    of a line than that (and a block), whatever the input (a file of one 2 GiB line,
    ``/dev/zero``). An iterator of lines (already bounded) is returned as it is.

    A stream is read a block at a time and checked a block at a time, so that a line
    costs nothing of its own: each line it gives as ``bytes`` is valid UTF-8 and at
    most ``limit`` bytes (its line ending too). A longer line (each of its chunks), and
    a line that is not valid UTF-8, comes as a ``bytearray`` instead, which the fast
    path (``notified_text_operations``) never takes: the lenient path then rejects it,
    and says why.
    """
    if not hasattr(stream, "readline"):
        return iter(stream)
    return itertools.chain.from_iterable(_blocks(typing.cast("BinaryIO", stream), limit + 2))


def _blocks(stream: BinaryIO, size: int) -> Iterator[list[bytes]]:
    """The lines of ``stream`` as :func:`lines_of` gives them, a list for each block read."""
    read = stream.read1 if hasattr(stream, "read1") else stream.read
    carry = b""
    while True:
        block = read(_BLOCK)
        if not block:
            break
        if carry:
            block = carry + block
        lines = io.BytesIO(block).readlines()
        carry = b"" if lines[-1].endswith(b"\n") else lines.pop()
        if len(carry) >= size:  # a line this long is over the limit: its chunks, now
            cut = len(carry) - len(carry) % size
            lines += _chunks(carry[:cut], size)
            carry = carry[cut:]
        if lines:
            yield _checked(block, lines, size, final=False)
    if carry:
        yield _checked(carry, [carry], size, final=True)


def _checked(text: bytes, lines: list[bytes], size: int, final: bool) -> list[bytes]:
    """``lines`` (read from ``text``; ``final``: the end of the input) as they are when
    each is valid UTF-8 and at most ``size - 2`` bytes; else marked (``_marked``), a
    line longer than ``size`` in marked chunks."""
    limit = size - 2
    if len(text) > limit and max(map(len, lines)) > limit:
        lines = [
            piece
            for line in lines
            for piece in (
                [line] if len(line) <= limit else [_marked(line)] if len(line) <= size
                else _chunks(line, size)
            )
        ]  # fmt: skip
    if not text.isascii():
        try:  # a character cut at the end of a block is whole in the next one
            codecs.utf_8_decode(text, "strict", final)
        except UnicodeDecodeError:  # marked line by line (a chunk is marked already)
            lines = [
                line if type(line) is not bytes or _utf8(line) else _marked(line) for line in lines
            ]
    return lines


def _chunks(text: bytes, size: int) -> list[bytes]:
    """``text`` cut into marked pieces of ``size`` bytes: the parts of a line too long."""
    return [_marked(text[at : at + size]) for at in range(0, len(text), size)]


def _marked(text: bytes) -> bytes:
    """``text`` as a ``bytearray``: a line that the fast path must leave to the lenient
    one (too long, or not UTF-8). It reads as bytes everywhere else."""
    return typing.cast("bytes", bytearray(text))


def _utf8(text: bytes) -> bool:
    try:
        text.decode()
    except UnicodeDecodeError:
        return False
    return True


def _refused(line: int, reason: str) -> Body:
    return Body(
        line,
        b"",
        Decoded(operations=[], rejects=[Reject(index=None, path="$", reason=reason, raw=b"")]),
    )


class Reader:
    """Splits a binary stream into bodies and decodes each, leniently.

    ``lines`` and ``bytes_read`` count what was consumed, for progress and totals.
    ``max_line``: the longest line, and multi-line document, read (bytes).
    """

    def __init__(self, stream: BinaryIO | Iterator[bytes], max_line: int = MAX_BODY) -> None:
        self._stream = stream
        self.max_line = max_line
        self.lines = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[Body]:
        limit = self.max_line
        document: list[bytes] = []
        depth = size = start = 0
        skipping = False  # in a document refused as too long: read to its end, kept nowhere
        lines = lines_of(self._stream, limit)
        for line in lines:
            self.lines += 1
            self.bytes_read += len(line)
            if type(line) is not bytes:  # marked by ``lines_of``: checked here, as any line
                line = bytes(line)
            if self.lines == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if len(line) > limit and len(line.rstrip(b"\r\n")) > limit:
                if document:
                    yield self._finish(start, document)
                    document = []
                skipping = False
                yield self._skip_line(line, lines)
                continue
            if document or skipping:
                if not line.strip() or line[0] in _CONTINUES:
                    depth += _depth(line)
                    # Decoded once, when its brackets close: linear in the document.
                    ends = depth <= 0 and line[:1] in (b"}", b"]")
                    if skipping:
                        skipping = not ends
                        continue
                    document.append(line)
                    size += len(line)
                    if ends:
                        text = b"".join(document)
                        yield _body(start, text, decode_lenient(text))
                        document = []
                    elif size > limit:
                        document = []
                        skipping = True
                        yield _refused(
                            start,
                            f"a document of more than {limit:,} bytes (--max-line-bytes):"
                            " skipped to its end",
                        )
                    continue
                if document:
                    yield self._finish(start, document)
                    document = []
                skipping = False
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            decoded = decode_lenient(text)
            if _unfinished(text, decoded):
                document = [line]
                depth = _depth(line)
                size = len(line)
                start = self.lines
                continue
            yield _body(self.lines, text, decoded)
        if document:
            yield self._finish(start, document)

    def _skip_line(self, chunk: bytes, lines: Iterator[bytes]) -> Body:
        """A line over the limit, read to its newline a chunk at a time and dropped."""
        size = len(chunk.rstrip(b"\r\n"))
        while not chunk.endswith(b"\n"):
            chunk = next(lines, b"")
            if not chunk:
                break
            self.bytes_read += len(chunk)
            size += len(chunk.rstrip(b"\r\n"))
        return _refused(
            self.lines,
            f"a line of {size:,} bytes, over the limit of {self.max_line:,} bytes"
            " (--max-line-bytes): skipped",
        )

    @staticmethod
    def _finish(start: int, document: list[bytes]) -> Body:
        """A document that never completed: rejected as a whole, trailing blank lines off."""
        while len(document) > 1 and not document[-1].strip():
            document.pop()
        text = b"".join(document).rstrip(b"\r\n")
        return _body(start, text, decode_lenient(text))
