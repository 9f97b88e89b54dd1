"""One pass in this process: every input read in order and folded into one Folder.

The fold of ``--jobs 1``, of inputs too small to split, and of ``jobs=1``. Rejects and
problems go to a :class:`Listener` as they are read; ``--card``'s watched cards keep
the place each of their events was first seen.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from .._decode import MAX_BODY, Reject
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._wire import Operation, fingerprint
from ._inputs import STDIN, Source
from ._reading import Reading
from ._report import Counts, EventLog, Listener, Rejected, Seen, Totals

__all__ = ["InProcess"]


class InProcess(Reading):
    """Folds the inputs in this process, counting what it read (``totals``)."""

    def __init__(
        self,
        listener: Listener,
        watch: frozenset[str] | None = None,
        lifecycle: Lifecycle = D1_LIFECYCLE,
        stdin: BinaryIO | None = None,
        stdin_fd: int | None = None,
        max_line: int = MAX_BODY,
    ) -> None:
        super().__init__(watch, max_line, lifecycle)
        self.listener = listener
        self.stdin = stdin
        self.stdin_fd = stdin_fd
        self.totals = Totals()
        self.histories = {card: EventLog() for card in watch or ()}
        self._done = 0  # bytes of the sources read to the end
        self._done_lines = 0

    def snapshot(self) -> Counts:
        """How far it has got (bytes and lines are counted while ``poll`` is set)."""
        return (
            self._done + self.bytes,
            self._done_lines + self.lines,
            self.operations,
            len(self.folder),
        )

    def read_all(self, sources: list[Source]) -> None:
        """Fold ``sources``, in order."""
        for source in sources:
            self._read(source)

    def _read(self, source: Source) -> None:
        warn = self.listener.warn
        fd = self.stdin_fd
        if source.path == STDIN and fd is not None and os.isatty(fd):
            warn("reading D1 bodies from the terminal; end with Ctrl-D")
        try:
            if source.path == STDIN:
                if self.stdin is None:
                    raise FileNotFoundError(2, "no standard input")
                stream = self.stdin
            else:
                stream = open(source.path, "rb", buffering=1 << 20)  # noqa: SIM115 (closed below)
        except OSError as exc:
            self.totals.unreadable.append(source.name)
            warn(f"cannot read {source.name}: {exc.strerror or exc}")
            return
        try:
            self.fold(source.name, stream)
        except OSError as exc:
            self.totals.unreadable.append(source.name)
            warn(f"cannot read {source.name} after line {self.lines}: {exc.strerror or exc}")
        finally:
            if stream is not self.stdin:
                stream.close()
            self.totals.lines += self.lines
            self._done += self.bytes
            self._done_lines += self.lines
            self.bytes = self.lines = 0

    def finish(self) -> Totals:
        """The totals, completed with what the folder knows."""
        totals = self.totals
        totals.bodies = self.bodies
        totals.operations = self.operations
        return totals.complete(len(self.folder), self.folder.passed_over, self.added)

    def seen(self, op: Operation, name: str, line: int) -> None:
        events = self.histories[op.card_id].events
        key = fingerprint(op)
        seen = events.get(key)
        if seen is None:
            events[key] = Seen(op, f"{name}:{line}")
        else:
            seen.deliveries += 1

    def rejected(self, name: str, line: int, reject: Reject) -> None:
        if reject.index is None:
            self.totals.rejected_bodies += 1
        else:
            self.totals.rejected_operations += 1
        self.listener.rejected(Rejected(name, line, reject))
