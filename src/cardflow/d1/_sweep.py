"""The reconcile loop: ask D1 about every card that needs it, store each answer.

:func:`reconcile` lists the cards that ``needs_reconcile`` as of ``now`` (the store's
``states(needs_reconcile_at=now)``), fetches each one's on-demand status with a
:class:`~cardflow.d1.Client`, and stores each answer as a confirmation read at its
``at`` (``Store.reconcile``). A card that cannot be read is recorded, never raised:
the loop ends with a :class:`Sweep` saying what changed and what failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from .._cardstate import CardState
from .._errors import InvalidNotification
from ._client import Client, Failed, FailureKind, Fetched

__all__ = ["ReconcileStore", "Sweep", "reconcile"]


class ReconcileStore(Protocol):
    """What the loop needs of a store (:class:`cardflow.store.Store` has it)."""

    def states(
        self, status: str | Iterable[str] | None = None, needs_reconcile_at: datetime | None = None
    ) -> Iterable[CardState]:
        """The stored states, filtered."""

    def reconcile(self, body: bytes, at: datetime, *, card_id: str | None = None) -> object:
        """Commit an on-demand status of ``card_id`` read at ``at`` (operations of other
        cards in it are rejects, never applied)."""

    def get(self, card_id: str) -> CardState | None:
        """A card's stored state."""


@dataclass
class Sweep:
    """What one reconcile run did."""

    candidates: int = 0
    """Cards that needed reconciling when the run began."""
    fetched: int = 0
    changed: int = 0
    """Cards whose stored state the answer changed (its confirmation counts)."""
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(status before, status after) for each card whose current status moved."""
    failures: list[Failed] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """Cards whose status could not be read, or not stored."""
        return len(self.failures)

    def failures_by_kind(self) -> Counter[str]:
        """How many failures of each kind."""
        return Counter(f.kind.value for f in self.failures)

    def summary(self) -> str:
        """The run in a few lines, for people."""
        lines = [
            f"reconcile: {self.candidates} cards needed it; {self.fetched} answered,"
            f" {self.changed} changed, {self.failed} failed"
        ]
        for (before, after), n in sorted(self.moves.items()):
            lines.append(f"  {n:6d}  {before} -> {after}")
        for kind, n in sorted(self.failures_by_kind().items()):
            lines.append(f"  {n:6d}  failed: {kind}")
        return "\n".join(lines)


async def reconcile(
    store: ReconcileStore,
    client: Client,
    *,
    now: datetime,
    on_result: Callable[[Sweep], None] | None = None,
) -> Sweep:
    """Fetch and store the on-demand status of every card that needs it as of ``now``.

    ``on_result`` is called after each card (a progress display). Store calls run in
    the loop's thread between answers: they are short, and the client keeps its other
    requests in flight meanwhile.
    """
    cards = [state.card_id for state in store.states(needs_reconcile_at=now)]
    sweep = Sweep(candidates=len(cards))
    async for result in client.fetch_many(cards):
        if isinstance(result, Fetched):
            _store(store, result, sweep)
        else:
            sweep.failures.append(result)
        if on_result is not None:
            on_result(sweep)
    return sweep


def _store(store: ReconcileStore, fetched: Fetched, sweep: Sweep) -> None:
    before = store.get(fetched.card_id)
    try:
        store.reconcile(fetched.body, fetched.at, card_id=fetched.card_id)
    except InvalidNotification as error:  # the client checked it; a store may judge more
        failure = Failed(fetched.card_id, FailureKind.GARBAGE, str(error), fetched.attempts, 200)
        sweep.failures.append(failure)
        return
    sweep.fetched += 1
    after = store.get(fetched.card_id)
    if after != before:
        sweep.changed += 1
    if after is not None and before is not None and after.status != before.status:
        sweep.moves[(before.status, after.status)] += 1
