"""Group commit: the bodies that reach one receiver process together share a transaction.

Each request hands its body to the process's :class:`GroupWriter` and waits for that
body's own outcome. The writer takes every body waiting (at most ``max_bodies``) into
one call of the store's ``ingest_each``, on a thread of its own, so that one flush to
disk acknowledges them all; bodies that arrive meanwhile form the next group. When the
last group held more than one body (senders are sending together), the writer waits up
to ``max_wait`` seconds for more before it starts the next one. A body is answered only
after the transaction that holds it committed, and a body that fails (not a D1
envelope, or failing alone in the store) fails no other: durability and answers are
those of one transaction per body, at the cost of one flush per group.

A store without ``ingest_each`` (any :class:`ReceiverStore`) gets its bodies one
``ingest`` at a time, on the same thread.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Protocol

from .._errors import InvalidNotification, StoreUnavailable

__all__ = [
    "DEFAULT_GROUP_WAIT",
    "DEFAULT_MAX_GROUP",
    "GroupWriter",
    "Stored",
    "WritingStore",
    "Written",
]

DEFAULT_MAX_GROUP: Final = 64
"""Bodies per transaction at most."""
DEFAULT_GROUP_WAIT: Final = 0.002
"""Seconds a group waits for more bodies, when senders are sending together."""


class Stored(enum.StrEnum):
    """What became of one body handed to the writer (what a receiver's metrics count)."""

    STORED = "stored"
    """Committed, with at least one event the store did not have (or none to store)."""
    DUPLICATE = "duplicate"
    """Committed, and every event of it was already stored: a redelivery."""
    REJECTED = "rejected"
    """Not a D1 envelope: nothing stored, no delivery can fix it."""
    UNAVAILABLE = "unavailable"
    """The database failed: nothing stored; a later delivery will succeed."""


@dataclass(frozen=True)
class Written:
    """One body's outcome, and why (for a body rejected or not stored)."""

    outcome: Stored
    detail: str = ""
    ingested: object = None
    """What the store said it did with a committed body (its ``Ingested``)."""


class WritingStore(Protocol):
    """What the writer needs of a store: ``ingest`` (and ``ingest_each`` where it has it)."""

    def ingest(self, body: bytes) -> object:
        """Commit one body; ``InvalidNotification``, ``StoreUnavailable``."""


def _written(result: object) -> Written:
    if isinstance(result, InvalidNotification):
        return Written(Stored.REJECTED, str(result))
    if isinstance(result, StoreUnavailable):
        return Written(Stored.UNAVAILABLE, str(result))
    new, duplicates = getattr(result, "new", None), getattr(result, "duplicates", None)
    if new == 0 and isinstance(duplicates, int) and duplicates > 0:
        return Written(Stored.DUPLICATE, ingested=result)
    return Written(Stored.STORED, ingested=result)


class GroupWriter:
    """Writes the bodies of one process's requests, a group per transaction (see the
    module). Use it from one event loop; ``close`` when the application stops."""

    def __init__(
        self,
        store: WritingStore,
        *,
        max_bodies: int = DEFAULT_MAX_GROUP,
        max_wait: float = DEFAULT_GROUP_WAIT,
    ) -> None:
        if max_bodies < 1:
            raise ValueError(f"max_bodies must be at least 1, got {max_bodies}")
        if not 0 <= max_wait <= 1:
            raise ValueError(f"max_wait must be between 0 and 1 second, got {max_wait}")
        self.max_bodies = max_bodies
        self.max_wait = max_wait
        self._store = store
        each = getattr(store, "ingest_each", None)
        self._each: Callable[[Sequence[bytes]], Sequence[object]] = (
            each if callable(each) else self._one_by_one
        )
        self._pending: list[tuple[bytes, asyncio.Future[Written]]] = []
        self._task: asyncio.Task[None] | None = None
        self._together = False
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="cardflow-writer")

    async def write(self, body: bytes) -> Written:
        """Store ``body`` with the others waiting; its outcome, once its group committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Written] = loop.create_future()
        self._pending.append((body, future))
        if self._task is None:
            self._task = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        group: list[tuple[bytes, asyncio.Future[Written]]] = []
        try:
            while self._pending:
                if self._together and self.max_wait and len(self._pending) < self.max_bodies:
                    await asyncio.sleep(self.max_wait)
                group = self._pending[: self.max_bodies]
                del self._pending[: self.max_bodies]
                self._together = len(group) > 1
                bodies = [body for body, _ in group]
                try:
                    results = await loop.run_in_executor(self._thread, self._store_group, bodies)
                except Exception as exc:  # a store's own failure: each body unavailable
                    # (its type only: the sender learns nothing of the store's insides)
                    failed = Written(Stored.UNAVAILABLE, f"the store failed ({type(exc).__name__})")
                    results = [failed] * len(group)
                for (_, future), result in zip(group, results, strict=True):
                    if not future.done():
                        future.set_result(result)
                group = []
        finally:  # normally nothing is left; when cancelled, answer what is
            self._task = None
            left, self._pending = [*group, *self._pending], []
            for _, future in left:
                if not future.done():
                    future.set_result(Written(Stored.UNAVAILABLE, "the receiver is stopping"))

    def _store_group(self, bodies: list[bytes]) -> list[Written]:
        return [_written(result) for result in self._each(bodies)]

    def _one_by_one(self, bodies: Sequence[bytes]) -> list[object]:
        out: list[object] = []
        for body in bodies:
            try:
                out.append(self._store.ingest(body))
            except (InvalidNotification, StoreUnavailable) as exc:
                out.append(exc)
        return out

    def close(self) -> None:
        """Stop the writer's thread (after the group it is writing, if any)."""
        self._thread.shutdown(wait=True)
