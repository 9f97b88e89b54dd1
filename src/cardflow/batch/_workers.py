"""The worker processes on this machine, as the two phases of a parallel fold use them:
started in a :class:`~cardflow.batch._pool.LocalPool`, counting for the parent's
progress, and holding the groups they folded between the phases."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from .._state import Folder
from ._pool import LocalPool, running, start_context

__all__ = ["Workers", "count_done", "held", "keep", "local_pool"]


@dataclass(frozen=True)
class Workers:
    """Where groups are folded: an executor and how many tasks it runs at once; for
    worker processes on this machine (a ``LocalPool``: they hold their groups' states
    between the phases), the directory they spill to and the counters (bytes read,
    lines, operations) they share with the parent's progress."""

    executor: Executor
    jobs: int
    directory: str | None = None
    counter: Any = None

    @property
    def local(self) -> LocalPool | None:
        """The pool of local workers, None for a cluster's executor."""
        return self.executor if isinstance(self.executor, LocalPool) else None


_progress: list[Any] = []
"""In a worker process of ``local_pool``: the counters it shares with the parent."""


def _attach(counter: Any) -> None:
    _progress.append(counter)


def count_done(bytes_read: int, lines: int, operations: int) -> None:
    """Tell the parent's progress of a part done (in a worker of ``local_pool``)."""
    if _progress:
        counter = _progress[0]
        with counter.get_lock():
            counter[0] += bytes_read
            counter[1] += lines
            counter[2] += operations


@contextlib.contextmanager
def local_pool(jobs: int) -> Iterator[Workers]:
    """``jobs`` worker processes on this machine, spilling to a temporary directory
    (removed afterwards; ``TMPDIR`` says where)."""
    context = start_context(["cardflow.batch._jobs", "cardflow.batch._exchange"])
    counter = context.Array("q", 3)
    with (
        tempfile.TemporaryDirectory(prefix="cardflow-fold-") as directory,
        running(LocalPool(jobs, context, _attach, (counter,))) as pool,
    ):
        yield Workers(pool, jobs, directory, counter)


_held: dict[int, tuple[Folder, list[str]]] = {}
"""In a worker of a ``LocalPool``: the groups it folded and holds, by number: the
folder and its card ids, sorted."""


def keep(group: int, folder: Folder, ids: list[str]) -> None:
    """Hold group ``group``'s ``folder`` (its card ids sorted: ``ids``) in this worker."""
    _held[group] = (folder, ids)


def held(groups: list[int]) -> list[tuple[Folder, list[str]]]:
    """The groups numbered ``groups`` that this worker holds (folder, sorted card
    ids); any other it holds is dropped (folded again elsewhere)."""
    for stale in set(_held) - set(groups):
        del _held[stale]
    return [_held[group] for group in groups]
