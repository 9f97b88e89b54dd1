"""A parallel fold's first phase (``fold_files``, ``cardflow fold --jobs N``): the inputs
split into parts and folded.

The fold is a join (``merge`` is commutative, associative and idempotent), so any split
of the input folds to the same states. Phase one (this module) cuts the inputs into
parts and hands each worker a *group* of consecutive parts, folded into one
:class:`~cardflow.Folder` by the very loop that folds in one process (``_reading.py``,
fast path included). A worker on this machine keeps the group's folder for phase two;
on a Dask cluster the group's states, sorted by card id and encoded in the state
format, are *spilled* (returned as bytes), as are those of an input that the parent
reads itself (to a file of a directory the parent made). Phase two (``_exchange.py``,
``_ranges.py``) writes the report by ranges of card ids, merging each card's states
from every group; the parent reports rejects, sums counts and joins the ranges' text.

What must not depend on the split is kept in input order: rejects are told to the
listener (the command reports them, and writes ``--rejects``) part after part with
their absolute file and line; ``--card`` histories keep the first place each event
was seen.

A part is a whole file, or a byte range of a large one cut just before a line that
starts with ``{`` at column 0. The reader starts afresh at such a line whatever came
before (an unfinished multi-line document ends there), so the lines of a part decode
exactly as they do in one pass over the file. Its line numbers are counted from the
part's start; the parent adds the lines of the parts before it. stdin and files that
are not regular files (a pipe, ``<(zcat ...)``) are read by the parent itself: a worker
cannot open them.
"""

from __future__ import annotations

import array
import io
import os
import tempfile
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from .._codec import encode_state
from .._decode import MAX_BODY, Reject
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._state import Folder
from .._wire import Operation, fingerprint
from ._inputs import STDIN, Source
from ._parts import Part, PartReader, groups, plan
from ._pool import worker_index
from ._reading import Reading
from ._report import Counts, EventLog, Listener, Rejected, Seen, Totals
from ._workers import Workers, count_done, keep

__all__ = [
    "GROUPS_PER_JOB",
    "Gather",
    "Gathered",
    "GroupFolded",
    "PartFolded",
    "Spilled",
    "fold_group",
    "fold_part",
    "spill",
]


@dataclass(slots=True)
class PartFolded:
    """What folding one part gave, but its states (they are its group's): counts,
    rejects, and the watched cards' events.

    Line numbers are counted from the part's first line (1). ``seen`` lists, for the
    watched cards, each distinct event in the order first seen: (fingerprint,
    operation, line, deliveries).
    """

    lines: int = 0
    bytes_read: int = 0
    bodies: int = 0
    operations: int = 0
    added: int = 0
    passed_over: int = 0
    rejects: list[tuple[int, Reject]] = field(default_factory=list)
    seen: list[tuple[bytes, Operation, int, int]] = field(default_factory=list)
    error: str | None = None
    opened: bool = True
    """False when the error came on opening the input (before any line was read)."""
    skipped: bool = False
    """Not read: an earlier part of the same input failed to read."""


@dataclass(frozen=True, slots=True)
class Spilled:
    """A fold's states sorted by card id, in the state format one after another.

    ``ends[i]`` is where the state of ``ids[i]`` ends; ``data`` holds them, or is the
    path of the file that does (a worker on this machine).
    """

    ids: list[str]
    ends: bytes
    """The end offsets, an ``array("Q")`` as bytes."""
    data: str | bytes
    worker: int | None = None
    """The local worker that holds these states in memory (``ends`` and ``data`` are
    then empty): phase two asks it for them."""


@dataclass(slots=True)
class GroupFolded:
    """A group of parts folded: each part's counts, and the group's states."""

    parts: list[PartFolded]
    spilled: Spilled


class _PartReading(Reading):
    """The fold of one group: rejects and watched events kept for the parent, a part at
    a time, with lines counted from the part's start."""

    def __init__(
        self,
        watch: frozenset[str] | None,
        lifecycle: Lifecycle | None = None,
        max_line: int = MAX_BODY,
    ) -> None:
        super().__init__(watch, max_line, D1_LIFECYCLE if lifecycle is None else lifecycle)
        self._result = PartFolded()
        self._first: dict[bytes, tuple[Operation, int]] = {}
        self._deliveries: Counter[bytes] = Counter()

    def rejected(self, name: str, line: int, reject: Reject) -> None:
        self._result.rejects.append((line, reject))

    def seen(self, op: Operation, name: str, line: int) -> None:
        key = fingerprint(op)
        self._deliveries[key] += 1
        if key not in self._first:
            self._first[key] = (op, line)

    def part(self, part: Part, stream: BinaryIO) -> PartFolded:
        """Fold ``stream``, which holds ``part``: what it gave (``bytes_read`` is the
        caller's to fill: a pipe cannot say where it is)."""
        out = self._result = PartFolded()
        self._first = {}
        self._deliveries = Counter()
        folder = self.folder
        before = (self.bodies, self.operations, self.added, folder.passed_over)
        try:
            self.fold(part.name, stream)
        except OSError as exc:
            out.error = exc.strerror or str(exc)
        out.lines = self.lines
        out.bodies = self.bodies - before[0]
        out.operations = self.operations - before[1]
        out.added = self.added - before[2]
        out.passed_over = folder.passed_over - before[3]
        out.seen = [
            (key, op, line, self._deliveries[key]) for key, (op, line) in self._first.items()
        ]
        return out


def spill(folder: Folder, directory: str | None) -> Spilled:
    """``folder``'s states sorted by card id and encoded, into a new file of
    ``directory`` (or kept in memory: None)."""
    ids = sorted(folder)
    if directory is None:
        buffer = io.BytesIO()
        ends = _write_states(folder, ids, buffer)
        return Spilled(ids, ends, buffer.getvalue())
    fd, path = tempfile.mkstemp(suffix=".states", dir=directory)
    with open(fd, "wb", buffering=1 << 20) as file:
        ends = _write_states(folder, ids, file)
    return Spilled(ids, ends, path)


def _write_states(folder: Folder, ids: list[str], out: BinaryIO) -> bytes:
    """Write the states of ``ids`` as they are encoded (never all of them in memory
    beside the folder); their end offsets."""
    ends = array.array("Q")
    write = out.write
    end = 0
    for card in ids:
        end += write(encode_state(folder[card]))
        ends.append(end)
    return ends.tobytes()


GROUPS_PER_JOB: Final = 4
"""Groups of parts per job: a worker that finishes early takes another group, so the
first phase ends with the workers close together; and a worker holds one group's
states at a time. Each group adds a partial state for the few cards it shares with
its neighbours."""


def fold_group(
    parts: list[Part],
    watch: frozenset[str] | None,
    directory: str | None,
    skip: frozenset[tuple[int, int]] = frozenset(),
    hold: int | None = None,
    lifecycle: Lifecycle | None = None,
    max_line: int = MAX_BODY,
) -> GroupFolded:
    """Fold ``parts`` (in a worker: a module-level function, so it pickles) into one
    folder; spill its states to ``directory`` (None: return them), or, in a worker of
    a ``LocalPool`` given ``hold`` (the group's number), keep them there for phase two.

    A part whose input failed to read ends that input for the group: its later parts
    are skipped, as one pass would stop there. ``skip`` names parts (source, start) to
    leave out: those the parent drops because an earlier group failed on their input.
    ``lifecycle`` None is D1's (sent by name: a worker's is then ``D1_LIFECYCLE`` itself).
    """
    reading = _PartReading(watch, lifecycle, max_line)
    results = []
    broken: set[int] = set()
    for part in parts:
        if part.source in broken or (part.source, part.start) in skip:
            results.append(PartFolded(skipped=True))
            continue
        try:
            raw = PartReader(part)
        except OSError as exc:
            result = PartFolded(error=exc.strerror or str(exc), opened=False)
        else:
            with raw, io.BufferedReader(raw, 1 << 20) as stream:
                result = reading.part(part, stream)
            result.bytes_read = raw.bytes_read
        if result.error is not None:
            broken.add(part.source)
        count_done(result.bytes_read, result.lines, result.operations)
        results.append(result)
    worker = worker_index()
    if hold is not None and worker is not None:
        ids = sorted(reading.folder)
        keep(hold, reading.folder, ids)
        return GroupFolded(results, Spilled(ids, b"", b"", worker))
    return GroupFolded(results, spill(reading.folder, directory))


def fold_part(part: Part, watch: frozenset[str] | None) -> PartFolded:
    """Fold one part of a file on its own: what it gave."""
    return fold_group([part], watch, None).parts[0]


@dataclass
class Gathered:
    """Every group folded, the rejects reported: what phase two starts from."""

    totals: Totals
    spilled: list[Spilled]
    added: int
    passed_over: int
    watch: frozenset[str] | None
    histories: dict[str, EventLog]
    lifecycle: Lifecycle | None = None
    """None: D1's."""


class Gather:
    """The parent's side of phase one: submits the groups, takes their results back in
    input order, tells ``listener`` of each reject and problem. Set ``poll`` to be
    called while it waits (a progress display reading :meth:`snapshot`)."""

    def __init__(
        self,
        listener: Listener,
        watch: frozenset[str] | None,
        workers: Workers,
        lifecycle: Lifecycle | None = None,
        stdin: BinaryIO | None = None,
        stdin_fd: int | None = None,
        max_line: int = MAX_BODY,
    ) -> None:
        self.listener = listener
        self.watch = watch
        self.max_line = max_line
        self.workers = workers
        self.lifecycle = lifecycle
        self.stdin = stdin
        self.stdin_fd = stdin_fd
        self.totals = Totals()
        self.histories = {card: EventLog() for card in watch or ()}
        self.added = 0
        self.passed_over = 0
        self.poll: Callable[[], None] | None = None
        self._lock = threading.Lock()
        self._done = [0, 0, 0]  # bytes, lines, operations of the parts done
        self._cards = 0
        self._reading: _PartReading | None = None
        self._lines: dict[int, int] = {}  # lines of each source taken so far
        self._broken: set[int] = set()  # sources that failed to read: the rest is dropped
        self._refold: dict[int, set[tuple[int, int]]] = {}  # groups folded with dropped parts

    def snapshot(self) -> Counts:
        """How far phase one has got: the parts done, the workers' and this process's."""
        counter = self.workers.counter
        done_bytes, done_lines, done_operations = self._done
        if counter is not None:
            done_bytes += counter[0]
            done_lines += counter[1]
            done_operations += counter[2]
        reading = self._reading
        if reading is not None:
            done_bytes += reading.bytes
            done_lines += reading.lines
            done_operations += reading.operations
        return done_bytes, done_lines, done_operations, self._cards

    def _count(self, result: PartFolded) -> None:
        with self._lock:
            self._done[0] += result.bytes_read
            self._done[1] += result.lines
            self._done[2] += result.operations

    def _finished(self, future: Future[GroupFolded]) -> None:
        """A worker is done with a group (called from the executor's thread)."""
        if self.workers.counter is not None or future.cancelled():
            return  # the workers count for themselves
        if future.exception() is not None:
            return
        for result in future.result().parts:
            self._count(result)

    def _wait(self, future: Future[GroupFolded]) -> GroupFolded:
        while True:
            done, _ = wait_for([future], timeout=0.1)
            if done:
                return future.result()
            if self.poll is not None:
                self.poll()

    def _local(self, part: Part) -> GroupFolded:
        """A part the parent reads: stdin or a file that is not a regular file."""
        reading = self._reading = _PartReading(self.watch, self.lifecycle, self.max_line)
        reading.poll = self.poll
        try:
            if part.path == STDIN:
                fd = self.stdin_fd
                if fd is not None and os.isatty(fd):
                    self.listener.warn("reading D1 bodies from the terminal; end with Ctrl-D")
                if self.stdin is None:
                    result = PartFolded(error="no standard input", opened=False)
                else:
                    result = reading.part(part, self.stdin)
            else:
                try:
                    stream = open(part.path, "rb", buffering=1 << 20)  # noqa: SIM115 (closed below)
                except OSError as exc:
                    result = PartFolded(error=exc.strerror or str(exc), opened=False)
                else:
                    with stream:
                        result = reading.part(part, stream)
            result.bytes_read = reading.bytes
        finally:
            self._reading = None
        self._count(result)
        return GroupFolded([result], spill(reading.folder, self.workers.directory))

    def run(self, planned: list[list[Part]]) -> list[Spilled]:
        """Fold the groups ``planned``, taking their results in order; then fold again,
        without them, the groups that folded parts of an input that failed earlier."""
        submit = self.workers.executor.submit
        directory = self.workers.directory
        lifecycle, max_line = self.lifecycle, self.max_line
        futures: dict[int, Future[GroupFolded]] = {}
        spilled: list[Spilled] = []
        try:
            for i, group in enumerate(planned):
                if not group[0].local:
                    futures[i] = submit(
                        fold_group,
                        group,
                        self.watch,
                        directory,
                        frozenset(),
                        i,
                        lifecycle,
                        max_line,
                    )
                    futures[i].add_done_callback(self._finished)
            for i, group in enumerate(planned):
                future = futures.pop(i, None)
                result = self._local(group[0]) if future is None else self._wait(future)
                self._take(i, group, result)
                spilled.append(result.spilled)
                self._cards += len(result.spilled.ids)
            for i, skip in self._refold.items():
                spilled[i] = self._wait(
                    submit(
                        fold_group,
                        planned[i],
                        self.watch,
                        directory,
                        frozenset(skip),
                        i,
                        lifecycle,
                        max_line,
                    )
                ).spilled
        finally:
            for pending in futures.values():
                pending.cancel()
        return spilled

    def _take(self, index: int, group: list[Part], folded: GroupFolded) -> None:
        """Count and report one group's parts, in input order."""
        for part, result in zip(group, folded.parts, strict=True):
            if part.source in self._broken:
                if not result.skipped:
                    self._refold.setdefault(index, set()).add((part.source, part.start))
                continue
            self._part(part, result)

    def _part(self, part: Part, result: PartFolded) -> None:
        totals = self.totals
        base = self._lines.get(part.source, 0)
        self._lines[part.source] = base + result.lines
        totals.lines += result.lines
        totals.bodies += result.bodies
        totals.operations += result.operations
        self.added += result.added
        self.passed_over += result.passed_over
        for key, op, line, deliveries in result.seen:
            events = self.histories[op.card_id].events
            seen = events.get(key)
            if seen is None:
                events[key] = Seen(op, f"{part.name}:{base + line}", deliveries)
            else:
                seen.deliveries += deliveries
        for line, reject in result.rejects:
            if reject.index is None:
                totals.rejected_bodies += 1
            else:
                totals.rejected_operations += 1
            self.listener.rejected(Rejected(part.name, base + line, reject))
        if result.error is not None:
            self._broken.add(part.source)
            totals.unreadable.append(part.name)
            where = f" after line {base + result.lines}" if result.opened else ""
            self.listener.warn(f"cannot read {part.name}{where}: {result.error}")

    def gather(self, sources: list[Source], part_size: int | None) -> Gathered:
        """Phase one: fold ``sources`` in groups of parts on the workers; report their
        rejects and problems in input order."""
        self.totals.sources = [s.name for s in sources]
        jobs = self.workers.jobs
        spilled = self.run(groups(plan(sources, jobs, part_size), jobs * GROUPS_PER_JOB))
        return Gathered(
            totals=self.totals,
            spilled=spilled,
            added=self.added,
            passed_over=self.passed_over,
            watch=self.watch,
            histories=self.histories,
            lifecycle=self.lifecycle,
        )
