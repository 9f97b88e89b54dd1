"""The rows a rebuild found different, written back beside running writers.

A batch's rows are written in a transaction that first holds back new events
(``hold_events``: SQLite's one write lock is held already; PostgreSQL takes
``LOCK TABLE events IN SHARE MODE``), so a card whose mark (its number of events and
highest event id) is still the one read has no event the rebuild did not fold. Those
rows are written in one statement, each only if its version is still the one read
(``write_states``, the store's compare-and-swap); should one have moved meanwhile
without a new event (another process repairing it), the transaction is rolled back
and the rows are written one by one, each under its own compare-and-swap. A card not
written is read and folded again by the caller. The changes of the rows written go
to the outbox in the same transaction, each under its key, once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import msgspec

from .._cardstate import CardState
from .._lifecycle import Lifecycle
from .._step import Change
from ._rows import REACTIONS, queue
from ._schema import Tx
from ._states import Conflict, chunks, write_state, write_states
from ._unreadable import Transaction

__all__ = ["Plan", "Rewriter"]


class Plan(msgspec.Struct, kw_only=True):
    """One card of a batch whose row differs: the row's version as read, the card's
    mark as read, the rebuilt state and its bytes, why it differs, and the changes
    from the stored state to the rebuilt one."""

    card_id: str
    version: int | None
    mark: tuple[int, int]
    state: CardState
    blob: bytes
    why: str
    found: list[Change]


class Rewriter:
    """Writes a rebuild's rows on one store: its transactions, its hold on new events."""

    def __init__(
        self, transaction: Transaction, hold_events: Callable[[Tx], None], lifecycle: Lifecycle
    ) -> None:
        self._transaction = transaction
        self._hold_events = hold_events
        self._lifecycle = lifecycle

    def write(self, plans: list[Plan], outbox: bool, now: int) -> tuple[list[Plan], list[str], int]:
        """Write the rows that no writer touched since they were read: (those written,
        the card ids to read again, the outbox rows added; ``outbox``: queue the
        changes)."""
        try:
            return self._write(plans, outbox, now, together=True)
        except Conflict:
            pass
        try:
            return self._write(plans, outbox, now, together=False)
        except Conflict:
            return [], [plan.card_id for plan in plans], 0

    def _write(
        self, plans: list[Plan], outbox: bool, now: int, *, together: bool
    ) -> tuple[list[Plan], list[str], int]:
        """``write`` in one transaction. ``together``: in one statement, ``Conflict``
        (and nothing written) when one row moved."""
        with self._transaction(True) as tx:
            self._hold_events(tx)
            latest = _marks(tx, [plan.card_id for plan in plans])
            ready = [plan for plan in plans if latest.get(plan.card_id) == plan.mark]
            again = [plan.card_id for plan in plans if latest.get(plan.card_id) != plan.mark]
            if together:
                write_states(
                    tx,
                    {plan.card_id: (plan.version, plan.state) for plan in ready},
                    now=now,
                    lifecycle=self._lifecycle,
                    encoded={id(plan.state): plan.blob for plan in ready},
                )
                written = ready
            else:
                written = []
                for plan in ready:
                    if write_state(tx, plan.state, plan.blob, plan.version, now, self._lifecycle):
                        written.append(plan)
                    else:
                        again.append(plan.card_id)
            added = _queue(tx, written, now) if outbox else 0
        return written, again, added


def _queue(tx: Tx, written: list[Plan], now: int) -> int:
    """Queue the changes of the cards written whose keys the outbox lacks (a rebuild
    that writes every row finds most keys there: their rows are never built)."""
    keyed: dict[str, Change] = {}  # each key computed once; the first change of a key
    for plan in written:
        for change in plan.found:
            if change.kind in REACTIONS:
                keyed.setdefault(change.key, change)
    have: set[str] = set()
    for chunk in chunks([*keyed], 1):
        marks = ",".join("?" * len(chunk))
        have.update(
            str(row[0]) for row in tx.rows(f"SELECT key FROM outbox WHERE key IN ({marks})", chunk)
        )
    return queue(tx, (change for key, change in keyed.items() if key not in have), now)


def _marks(tx: Tx, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Each card's (number of events, highest event id): what changes when an event of
    it is stored (on PostgreSQL an id is drawn before its commit, so a later commit may
    hold a lower id: the count tells)."""
    marks = ",".join("?" * len(ids))
    return {
        str(card): (int(count), int(top))
        for card, count, top in tx.rows(
            f"SELECT card_id, COUNT(*), MAX(id) FROM events WHERE card_id IN ({marks})"
            " GROUP BY card_id",
            ids,
        )
    }
