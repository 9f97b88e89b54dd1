"""The loop at the heart of ``cardflow fold``: one stream of D1 bodies into a Folder.

Shared by the fold in this process (``_single.py``) and by each worker of ``--jobs``
and ``--dask`` (``_jobs.py``), so that a worker reads exactly as one process does,
fast path included. What becomes of a rejected item and of a watched card's event
differs (reported at once, or sent to the parent with line numbers counted from the
part's start), so :class:`Reading` leaves those two to its subclasses.
"""

from __future__ import annotations

import codecs
import itertools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import BinaryIO, Final

from .. import Folder
from .._decode import MAX_BODY, Reject, notified_operations, notified_text_operations
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._wire import Operation
from ._inputs import Body, Reader, lines_of

__all__ = ["Reading"]

_BOM: Final = codecs.BOM_UTF8


class Reading:
    """Folds streams of bodies into ``folder``, counting what it read.

    ``watch``: fold only these cards' operations, and tell :meth:`seen` of each.
    ``poll``: called after each line (a progress bar), with ``bytes`` and ``lines`` kept
    current.
    """

    def __init__(
        self,
        watch: frozenset[str] | None,
        max_line: int = MAX_BODY,
        lifecycle: Lifecycle = D1_LIFECYCLE,
    ) -> None:
        self.folder = Folder(lifecycle=lifecycle)
        self.watch = watch
        self.max_line = max_line
        """The longest line read (bytes); a longer one is a reject (``Reader``)."""
        self.poll: Callable[[], None] | None = None
        self.bodies = 0
        self.operations = 0
        self.added = 0
        """Operations handed to the folder, PRODUCE or not."""
        self.lines = 0
        """Lines read of the current stream (also after a read error ended it)."""
        self.bytes = 0
        """Bytes read of the current stream: counted only while ``poll`` is set."""
        self._line = 0  # the line of the body whose operations were last handed over

    def rejected(self, name: str, line: int, reject: Reject) -> None:
        """A rejected item, at ``line`` of the stream ``name``."""
        raise NotImplementedError

    def seen(self, op: Operation, name: str, line: int) -> None:
        """A watched card's event, read in the body that starts at ``line`` of ``name``."""
        raise NotImplementedError

    def fold(self, name: str, stream: BinaryIO) -> None:
        """Fold every body of ``stream`` (``name`` is how rejects and events name it).

        An ``OSError`` of the stream propagates, with ``lines`` and ``bytes`` saying how
        far it got; what was read before it stays folded.
        """
        self.lines = 0
        self.bytes = 0
        if self.watch is None:
            self.folder.update(itertools.chain.from_iterable(self._bodies(name, stream)))
            return
        watch = self.watch
        add = self.folder.add
        for ops in self._bodies(name, stream):
            for op in ops:
                if op.card_id in watch:
                    self.added += 1
                    add(op)
                    self.seen(op, name, self._line)

    def _bodies(self, name: str, stream: BinaryIO) -> Iterator[list[Operation]]:
        """The operations of each body of ``stream``, one list a body, as they are read.

        The fast path first: a line that decodes as a whole (the usual case) costs one
        strict decoding (``notified_text_operations``: ``lines_of`` checked its length
        and its UTF-8 with the rest of its block). A line that does not (a blank line,
        a bad line, a logged reading, the first line of a pretty-printed document) goes
        to a :class:`Reader`, the lenient path that reports every reject with its line;
        the Reader is left as soon as it has read no further than the body it gave, so
        that one bad line never slows the lines after it.
        """
        poll = self.poll
        watching = self.watch is not None
        limit = self.max_line
        lines = lines_of(stream, limit)
        first = next(lines, None)  # taken apart: only line 1 may start with a BOM
        if first is not None:
            if first.startswith(_BOM):
                if poll is not None:
                    self.bytes += len(_BOM)
                first = first[len(_BOM) :]
            lines = itertools.chain((first,), lines)
        count = bodies = operations = 0
        # Lines of a stream were checked by the block; any other iterator's are not.
        checked = hasattr(stream, "readline")
        notified = notified_text_operations if checked else notified_operations
        try:
            for line in lines:
                count += 1
                if poll is not None:
                    self.bytes += len(line)
                    self.lines = count
                    poll()
                # One decoding for the usual line; a reading (the Reader says when it
                # was read) or a line that does not decode whole goes the lenient way.
                ops = notified(line)
                if ops is None or (not checked and len(line) > limit):
                    if not line.strip():
                        continue
                    # The Reader's line 1 is a blank line that it skips; the line that
                    # failed is its line 2, our line ``count``.
                    offset = count - 2
                    before = self.bytes - 1 - len(line)
                    reader = Reader(_resume(line, lines), limit)
                    for body in reader:
                        bodies += 1
                        ops = body.decoded.operations
                        operations += len(ops)
                        self._line = body.line + offset
                        if body.at is not None:
                            self._fold_reading(name, ops, body.at)
                        elif ops:
                            yield ops
                        for reject in body.decoded.rejects:
                            self.rejected(name, body.line_of(reject) + offset, reject)
                        if poll is not None:
                            self.bytes = before + reader.bytes_read
                            poll()
                        if _last_line(body) == reader.lines:
                            break  # the Reader holds nothing more: back to the fast path
                    count = reader.lines + offset
                    if poll is not None:
                        self.bytes = before + reader.bytes_read
                    continue
                bodies += 1
                operations += len(ops)
                if watching:
                    self._line = count
                yield ops
        finally:
            self.lines = count
            self.bodies += bodies
            self.operations += operations
            if not watching:
                self.added += operations

    def _fold_reading(self, name: str, ops: list[Operation], at: datetime) -> None:
        """Fold the events of a logged on-demand response, read at ``at``."""
        watch = self.watch
        add = self.folder.add
        for op in ops:
            if watch is None:
                add(op, at=at)
            elif op.card_id in watch:
                self.added += 1
                add(op, at=at)
                self.seen(op, name, self._line)


def _resume(failed: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    """What a Reader reads from where the fast path left: a blank line (so that no byte
    order mark is taken off a line after the first), the line that failed, the rest."""
    yield b"\n"
    yield failed
    # Not ``yield from``: closing this generator would close ``rest``, the file itself.
    for line in rest:  # noqa: UP028
        yield line


def _last_line(body: Body) -> int:
    """The line a body ends on, in its Reader's numbering."""
    return body.line + body.text.rstrip(b"\r\n").count(b"\n")
