"""Where D1 bodies come from: paths, directories and stdin, read as a stream of bodies.

A stream holds JSON Lines (one webhook body or on-demand response per line) or
indented JSON documents (a body as a pretty-printer writes it, spanning lines), in
any mix. Each line is decoded on its own; only a line that opens an unfinished JSON
value and is followed by indented lines starts a multi-line document, which ends at
the first unindented line that completes it. So a bad line never swallows the good
lines after it: a line cut short is followed by a line at column 0, and is rejected
alone. Memory holds one body at a time.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Final

import msgspec

from .._decode import READING_MARK, Decoded, Reject, decode_lenient, decode_reading

__all__ = [
    "STDIN",
    "Body",
    "Problem",
    "Reader",
    "Source",
    "expand",
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
    warn: Callable[[str], None],
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
                yield Source(path, path, info.st_size if stat.S_ISREG(info.st_mode) else None)
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


class Reader:
    """Splits a binary stream into bodies and decodes each, leniently.

    ``lines`` and ``bytes_read`` count what was consumed, for progress and totals.
    """

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.lines = 0
        self.bytes_read = 0

    def __iter__(self) -> Iterator[Body]:
        document: list[bytes] = []
        depth = 0
        start = 0
        for line in self._stream:
            self.lines += 1
            self.bytes_read += len(line)
            if self.lines == 1 and line.startswith(_BOM):
                line = line[len(_BOM) :]
            if document:
                if not line.strip() or line[0] in _CONTINUES:
                    document.append(line)
                    depth += _depth(line)
                    # Decoded once, when its brackets close: linear in the document.
                    if depth <= 0 and line[:1] in (b"}", b"]"):
                        text = b"".join(document)
                        yield _body(start, text, decode_lenient(text))
                        document = []
                    continue
                yield self._finish(start, document)
                document = []
            text = line.rstrip(b"\r\n")
            if not text.strip():
                continue
            decoded = decode_lenient(text)
            if _unfinished(text, decoded):
                document = [line]
                depth = _depth(line)
                start = self.lines
                continue
            yield _body(self.lines, text, decoded)
        if document:
            yield self._finish(start, document)

    @staticmethod
    def _finish(start: int, document: list[bytes]) -> Body:
        """A document that never completed: rejected as a whole, trailing blank lines off."""
        while len(document) > 1 and not document[-1].strip():
            document.pop()
        text = b"".join(document).rstrip(b"\r\n")
        return _body(start, text, decode_lenient(text))
