"""``cardflow fold --jobs N``: the inputs split into parts, folded in worker processes, merged.

The fold is a join (``merge`` is commutative, associative and idempotent), so any split
of the input folds to the same states: each part is folded on its own and the partial
states are merged in the parent, in any order. What must not depend on the split is
kept in input order instead: rejects are reported, and written to ``--rejects``, part
after part with their absolute file and line; ``--card`` histories keep the first place
each event was seen. Cards are reported sorted by id, as ``--jobs 1`` reports them.

A part is a whole file, or a byte range of a large one cut just before a line that
starts with ``{`` at column 0. The reader starts afresh at such a line whatever came
before (an unfinished multi-line document ends there), so the lines of a part decode
exactly as they do in one pass over the file. Its line numbers are counted from the
part's start; the parent adds the lines of the parts before it. Workers send their
states back in the state format (``encode_state``), one list per part.

The same parts run on a Dask cluster (``--dask``, see ``_parallel.py``) through any
:class:`concurrent.futures.Executor`. stdin and files that are not regular files (a
pipe, ``<(zcat ...)``) are read by the parent itself: a worker cannot open them.
"""

from __future__ import annotations

import collections
import contextlib
import io
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Final

import msgspec

from .._codec import decode_state, encode_state
from .._decode import Reject
from .._state import CardState, Folded, Folder, merge
from .._wire import Operation, fingerprint
from ._console import Console
from ._inputs import STDIN, Reader, Source, one_line, readable
from ._progress import Progress, wanted
from ._report import EventLog, Seen, Totals

__all__ = [
    "MAX_PART",
    "MIN_PART",
    "Gathered",
    "Part",
    "PartFolded",
    "RejectsWriteError",
    "cpu_count",
    "fold_part",
    "gather",
    "local_pool",
    "plan",
    "split",
]

MIN_PART: Final = 4 << 20
"""Bytes: a file is cut into parts of at least this size unless ``--part-size`` says less."""
MAX_PART: Final = 64 << 20
"""Bytes: parts are at most this size by default (a worker holds one part's bytes)."""
PARTS_PER_JOB: Final = 8
"""Parts per job by default: small enough to balance the load and move the progress bar."""
_SCAN: Final = 1 << 16
_OWN: Final = frozenset(
    {
        "card_id",
        "operation_id",
        "operation_ids",
        "start_time",
        "end_time",
        "shipment",
        "issuer_request_id",
        "input_file_name",
        "error",
    }
)
"""The fields of a state that are mostly its own: not worth sharing between states."""
_COMMON: Final = tuple(f.name for f in msgspec.structs.fields(CardState) if f.name not in _OWN)
"""The fields whose values many states have in common (statuses, lists of them, dates)."""


class RejectsWriteError(Exception):
    """The ``--rejects`` file failed to take a rejected item: stop rather than lose more."""

    def __init__(self, error: OSError) -> None:
        super().__init__(error.strerror or str(error))


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


@dataclass(slots=True)
class PartFolded:
    """What folding one part gave: states in the state format, counts, rejects, histories.

    Line numbers are counted from the part's first line (1). ``seen`` lists, for the
    watched cards, each distinct event in the order first seen: (fingerprint,
    operation, line, deliveries).
    """

    states: list[bytes] = field(default_factory=list)
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


def _fold_bodies(
    reader: Reader,
    watch: frozenset[str] | None,
    poll: Callable[[], None] | None = None,
) -> PartFolded:
    """Fold what ``reader`` reads: the loop of ``cardflow fold``, for one part."""
    out = PartFolded()
    folder = Folder()
    add = folder.add
    first: dict[bytes, tuple[Operation, int]] = {}
    deliveries: Counter[bytes] = Counter()
    try:
        for body in reader:
            out.bodies += 1
            operations = body.decoded.operations
            out.operations += len(operations)
            at = body.at
            if watch is None:
                out.added += len(operations)
                if at is None:
                    folder.update(operations)
                else:
                    for op in operations:
                        add(op, at=at)
            else:
                for op in operations:
                    if op.card_id in watch:
                        out.added += 1
                        add(op, at=at)
                        key = fingerprint(op)
                        deliveries[key] += 1
                        if key not in first:
                            first[key] = (op, body.line)
            out.rejects += [(body.line_of(r), r) for r in body.decoded.rejects]
            if poll is not None:
                poll()
    except OSError as exc:
        out.error = exc.strerror or str(exc)
    out.lines = reader.lines
    out.bytes_read = reader.bytes_read
    out.passed_over = folder.passed_over
    out.states = [encode_state(state) for state in folder.states().values()]
    out.seen = [(key, op, line, deliveries[key]) for key, (op, line) in first.items()]
    return out


def fold_part(part: Part, watch: frozenset[str] | None) -> PartFolded:
    """Fold one part of a file (in a worker: a module-level function, so it pickles)."""
    try:
        with open(part.path, "rb") as stream:
            stream.seek(part.start)
            data = stream.read() if part.end is None else stream.read(part.end - part.start)
    except OSError as exc:
        return PartFolded(error=exc.strerror or str(exc), opened=False)
    return _fold_bodies(Reader(io.BytesIO(data)), watch)


def _start_method() -> str:
    """forkserver where there is one (POSIX): children start from a clean, preloaded
    process, which is safe although the parent runs threads (fork is not) and quicker
    than spawn, which every platform has and re-imports cardflow in each worker."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@contextlib.contextmanager
def local_pool(jobs: int) -> Iterator[Executor]:
    """``jobs`` worker processes on this machine."""
    context = multiprocessing.get_context(_start_method())
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload([__name__])
    with ProcessPoolExecutor(jobs, mp_context=context) as pool:
        yield pool


@dataclass
class Gathered:
    """A fold over every part, merged: what the report is written from."""

    totals: Totals
    folder: Folded
    added: int
    watch: frozenset[str] | None
    histories: dict[str, EventLog]

    def finish(self) -> Totals:
        """The totals, completed with what the merged fold knows."""
        return self.totals.complete(len(self.folder), self.folder.passed_over, self.added)


class _Gather:
    """The parent's side: submits the parts, takes their results back in input order."""

    def __init__(
        self, console: Console, rejects: BinaryIO | None, watch: frozenset[str] | None
    ) -> None:
        self.console = console
        self.rejects = rejects
        self.watch = watch
        self.totals = Totals()
        self.states: dict[str, CardState] = {}
        self.histories = {card: EventLog() for card in watch or ()}
        self.added = 0
        self.passed_over = 0
        self.progress: Progress | None = None
        self._lock = threading.Lock()
        self._done_bytes = 0
        self._done_operations = 0
        self._reader: Reader | None = None
        self._lines: dict[int, int] = {}  # lines of each source taken so far
        self._broken: set[int] = set()  # sources that failed to read: the rest is dropped
        self._values: dict[Any, Any] = {}  # the common values of the states, by value

    def warn(self, message: str) -> None:
        if self.progress is not None:
            self.progress.clear()
        self.console.stderr.write(message + "\n")

    def _share(self, state: CardState) -> CardState:
        """``state`` with its common values (statuses, status lists, dates...) made the
        objects that earlier states hold: a decoded state shares nothing, and a million
        of them would take about twice the memory of the states a fold makes."""
        values = self._values
        changes: dict[str, Any] = {}
        for name in _COMMON:
            value = getattr(state, name)
            if value:  # None, "" and () are one object already
                shared = values.setdefault(value, value)
                if shared is not value:
                    changes[name] = shared
        return msgspec.structs.replace(state, **changes) if changes else state

    def _snapshot(self) -> tuple[int, int, int]:
        local = self._reader.bytes_read if self._reader is not None else 0
        return self._done_bytes + local, self._done_operations, len(self.states)

    def _finished(self, future: Future[PartFolded]) -> None:
        """A worker is done with a part (called from the executor's thread)."""
        if future.cancelled() or future.exception() is not None:
            return
        result = future.result()
        with self._lock:
            self._done_bytes += result.bytes_read
            self._done_operations += result.operations

    def _wait(self, future: Future[PartFolded]) -> PartFolded:
        while True:
            done, _ = wait_for([future], timeout=0.1)
            if done:
                return future.result()
            if self.progress is not None:
                self.progress.poll()

    def _local(self, part: Part) -> PartFolded:
        """A part the parent reads: stdin or a file that is not a regular file."""
        if part.path == STDIN:
            fd = self.console.stdin_fd
            if fd is not None and os.isatty(fd):
                self.warn("cardflow fold: reading D1 bodies from the terminal; end with Ctrl-D")
            return self._read_local(self.console.stdin, part)
        try:
            stream = open(part.path, "rb", buffering=1 << 20)  # noqa: SIM115 (closed below)
        except OSError as exc:
            return PartFolded(error=exc.strerror or str(exc), opened=False)
        with stream:
            return self._read_local(stream, part)

    def _read_local(self, stream: BinaryIO, part: Part) -> PartFolded:
        reader = self._reader = Reader(stream)
        poll = self.progress.poll if self.progress is not None else None
        try:
            result = _fold_bodies(reader, self.watch, poll)
        finally:
            self._reader = None
        with self._lock:
            self._done_bytes += result.bytes_read
            self._done_operations += result.operations
        return result

    def run(self, parts: list[Part], executor: Executor | None, ahead: int) -> None:
        """Fold ``parts``, taking results in order; at most ``ahead`` parts submitted and
        not yet taken, so that results never pile up in the parent."""
        waiting = collections.deque(
            i for i, part in enumerate(parts) if executor is not None and not part.local
        )
        futures: dict[int, Future[PartFolded]] = {}
        try:
            for i, part in enumerate(parts):
                while executor is not None and waiting and len(futures) < ahead:
                    index = waiting.popleft()
                    submitted = executor.submit(fold_part, parts[index], self.watch)
                    submitted.add_done_callback(self._finished)
                    futures[index] = submitted
                future = futures.pop(i, None)
                result = self._local(part) if future is None else self._wait(future)
                self._take(part, result)
        finally:
            for pending in futures.values():
                pending.cancel()

    def _take(self, part: Part, result: PartFolded) -> None:
        """Merge one part's result, in input order."""
        if part.source in self._broken:
            return
        totals = self.totals
        base = self._lines.get(part.source, 0)
        self._lines[part.source] = base + result.lines
        totals.lines += result.lines
        totals.bodies += result.bodies
        totals.operations += result.operations
        self.added += result.added
        self.passed_over += result.passed_over
        states = self.states
        share = self._share
        for data in result.states:
            state = share(decode_state(data))
            old = states.get(state.card_id)
            states[state.card_id] = state if old is None else merge(old, state)
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
            self.warn(str(reject.error().located(part.name, base + line)))
            if self.rejects is not None:
                try:
                    self.rejects.write(one_line(reject.raw) + b"\n")
                except OSError as exc:
                    raise RejectsWriteError(exc) from exc
        if result.error is not None:
            self._broken.add(part.source)
            totals.unreadable.append(part.name)
            where = f" after line {base + result.lines}" if result.opened else ""
            self.warn(f"cardflow fold: cannot read {part.name}{where}: {result.error}")


def gather(
    paths: list[str],
    console: Console,
    rejects: BinaryIO | None,
    *,
    watch: frozenset[str] | None,
    progress: bool | None,
    executor: Callable[[], contextlib.AbstractContextManager[Executor]],
    jobs: int,
    part_size: int | None,
) -> Gathered:
    """Fold the inputs that ``paths`` name in parts on ``executor()``, merged in order.

    No worker is started when every part is local (stdin only).
    """
    run = _Gather(console, rejects, watch)
    sources = readable(paths, console.stdin_fd, run.totals.unreadable, run.warn, "cardflow fold:")
    run.totals.sources = [s.name for s in sources]
    parts = plan(sources, jobs, part_size)
    if wanted(progress, console.stderr, console.environ):
        sizes = [s.size for s in sources]
        total = None if None in sizes else sum(s or 0 for s in sizes)
        run.progress = Progress(console.stderr, run._snapshot, total)
    try:
        if all(part.local for part in parts):
            run.run(parts, None, ahead=0)
        else:
            with executor() as pool:
                run.run(parts, pool, ahead=2 * jobs)
    finally:
        if run.progress is not None:
            run.progress.clear()
    return Gathered(
        totals=run.totals,
        folder=Folded(run.states, run.passed_over),
        added=run.added,
        watch=watch,
        histories=run.histories,
    )
