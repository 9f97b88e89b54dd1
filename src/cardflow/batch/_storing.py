"""Files of D1 bodies into a store, a transaction per batch of bodies: what
``cardflow fold --db`` does, for any caller.

The files are read as :func:`fold_files` reads them (JSON Lines and pretty-printed
documents, a bad line rejected alone, logged on-demand readings stored as readings),
in this process: a store takes its bodies from one writer at a time. The store keeps
each event once, so storing the same files again changes nothing, and a run stopped
at any point then run again ends where an uninterrupted run ends.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import BinaryIO, Final, Protocol

from .._decode import MAX_BODY, Decoded
from .._wire import PRODUCE
from ._inputs import STDIN, Body, Reader, readable
from ._report import Rejected, Totals

__all__ = ["STORE_BATCH", "BodyStore", "store_files"]

STORE_BATCH: Final = 1000
"""Bodies stored per transaction: enough that a commit's flush and a statement's round
trip cost little per body (``docs/store.md``)."""

Item = Decoded | tuple[Decoded, datetime]


class BodyStore(Protocol):
    """What :func:`store_files` needs of a store (:class:`cardflow.store.Store` has it)."""

    def ingest_many(self, bodies: list[Item], /) -> object: ...


def _ignore(_: object) -> None:
    return None


def store_files(
    store: BodyStore,
    paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    *,
    on_reject: Callable[[Rejected], object] = _ignore,
    on_problem: Callable[[str], object] = _ignore,
    max_line: int = MAX_BODY,
    batch: int = STORE_BATCH,
    stdin: BinaryIO | None = None,
    stdin_fd: int | None = None,
) -> Totals:
    """Store every body of ``paths`` (files, directories, ``-`` for ``stdin``) in
    ``store``, ``batch`` bodies a transaction; what was read (``cards`` is left 0).

    ``on_reject`` hears of each rejected body or operation as it is read (a body
    rejected whole is not stored; the good operations beside a bad one are),
    ``on_problem`` of each input that cannot be read (``cannot read NAME: REASON``), which
    ``totals.unreadable`` names too. A store's ``StoreUnavailable`` propagates.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    names = [os.fspath(p) for p in paths]
    totals = Totals()
    if not names:  # nothing to read (the command reads stdin then; a library, no)
        return totals
    if stdin is None and STDIN in names and sys.stdin is not None:
        stdin = sys.stdin.buffer
    sources = readable(names, stdin_fd, totals.unreadable, on_problem)
    totals.sources = [s.name for s in sources]
    for source in sources:
        try:
            stream = (
                stdin
                if source.path == STDIN and stdin is not None
                else open(source.path, "rb", buffering=1 << 20)  # noqa: SIM115 (closed below)
            )
        except OSError as exc:
            totals.unreadable.append(source.name)
            on_problem(f"cannot read {source.name}: {exc.strerror}")
            continue
        reader = Reader(stream, max_line)
        try:
            items: list[Item] = []
            for read in reader:
                kept = _item(read, source.name, totals, on_reject)
                if kept is not None:
                    items.append(kept)
                if len(items) >= batch:
                    _commit(store, items)
            _commit(store, items)
        except OSError as exc:
            totals.unreadable.append(source.name)
            on_problem(
                f"cannot read {source.name} after line {reader.lines}: {exc.strerror or exc}"
            )
        finally:
            if stream is not stdin:
                stream.close()
            totals.lines += reader.lines
    return totals


def _item(
    body: Body, name: str, totals: Totals, on_reject: Callable[[Rejected], object]
) -> Item | None:
    """What to store of one body read from a file (an on-demand status with its reading
    time); None when it is not a D1 body. Counts it, and reports what it rejects."""
    decoded = body.decoded
    totals.bodies += 1
    totals.operations += len(decoded.operations)
    for reject in decoded.rejects:
        if reject.index is None:
            totals.rejected_bodies += 1
        else:
            totals.rejected_operations += 1
        on_reject(Rejected(name, body.line_of(reject), reject))
    if any(reject.index is None for reject in decoded.rejects):
        return None
    passed_over = sum(op.operation != PRODUCE for op in decoded.operations)
    totals.passed_over += passed_over
    totals.folded += len(decoded.operations) - passed_over
    return decoded if body.at is None else (decoded, body.at)


def _commit(store: BodyStore, items: list[Item]) -> None:
    if items:
        store.ingest_many(items)
        items.clear()
