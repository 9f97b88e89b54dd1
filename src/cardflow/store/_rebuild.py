"""Every state derived again from the event log: ``Store.rebuild``, and the repair of a
state row that this version cannot read (``_unreadable.py`` tells such rows apart).

The events table is the truth; a card's row in the states table is what the fold of
its events gave under the rules and lifecycle of the cardflow that wrote it. Rebuild
reads the cards in batches (card id order): a batch's events and rows in one read,
each card's events folded again under the current rules and lifecycle, the encoded
result compared with the stored row byte for byte (a stored row is decoded only when
it differs). The rows that differ are written back (``_rewrite.py``) only where no
event came since they were read, each only if its version is still the one read (the
store's compare-and-swap). A card that a writer touched meanwhile is read and folded
again, so it ends in the fold of all its events: the join of both. The changes from
the stored state to the rebuilt one go to the outbox in the same transaction, each
under its idempotency key: a reaction already queued is never queued twice, one owed
under the new rules is queued once.

A row that does not decode (corrupt, or a state format older than those this version
reads) is re-derived the same way, and logged; a row in a newer state format is never
rewritten by an older version: ``NewerStateError`` names the card.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

import msgspec

from .._cardstate import CardState
from .._codec import encode_state
from .._errors import NewerStateError, StoreUnavailable
from .._lifecycle import Lifecycle
from .._state import Folder
from .._step import changes
from .._wire import Operation
from ._outbox import when
from ._rewrite import Plan, Rewriter
from ._schema import Tx
from ._unreadable import Transaction, Unreadable, log, read_state

__all__ = ["DEFAULT_BATCH", "MAX_BATCH", "RebuildResult", "Rebuilder"]

_operation_decoder: Final = msgspec.msgpack.Decoder(Operation)
_TRIES: Final = 50
MAX_BATCH: Final = 10_000
"""The most cards a rebuild reads at once (each is a parameter of its statements)."""
DEFAULT_BATCH: Final = 500
"""The cards a rebuild reads at once unless told otherwise."""


class RebuildResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a rebuild did: ``cards`` read (those with stored events), ``changed`` states
    written (or, for a dry run, that would be), ``queued`` reactions added to the outbox
    (a change whose key is already there adds none), and ``newer``: the cards left as
    they are because a later cardflow wrote their state."""

    cards: int
    changed: int
    queued: int = 0
    newer: tuple[str, ...] = ()


class Rebuilder:
    """Rebuild on one store: its transactions, its hold on new events, its rules."""

    def __init__(
        self,
        transaction: Transaction,
        hold_events: Callable[[Tx], None],
        lifecycle: Lifecycle,
        passed: bool,
        read_in_bulk: Callable[[], AbstractContextManager[None]] = nullcontext,
    ) -> None:
        self._transaction = transaction
        self._rewriter = Rewriter(transaction, hold_events, lifecycle)
        self._read_in_bulk = read_in_bulk
        self.lifecycle = lifecycle
        self.passed = passed

    def card_count(self, cards: Sequence[str] | None) -> int:
        """How many cards a rebuild of ``cards`` (None: all) reads."""
        with self._transaction(False) as tx:
            if cards is None:
                return int(tx.rows("SELECT COUNT(DISTINCT card_id) FROM events")[0][0])
        return len(cards)

    def batches(self, cards: Sequence[str] | None, size: int) -> Iterator[list[str]]:
        """The card ids to rebuild, ``size`` at a time, in id order."""
        if cards is not None:
            for start in range(0, len(cards), size):
                yield list(cards[start : start + size])
            return
        after: str | None = None
        while True:
            with self._transaction(False) as tx:
                rows = tx.rows(
                    "SELECT DISTINCT card_id FROM events"
                    f" {'' if after is None else 'WHERE card_id > ?'}"
                    f" ORDER BY card_id LIMIT {int(size)}",
                    () if after is None else (after,),
                )
            if rows:
                yield [str(row[0]) for row in rows]
            if len(rows) < size:
                return
            after = rows[-1][0]

    def run(
        self,
        cards: Iterable[str] | None,
        *,
        dry_run: bool,
        outbox: bool,
        now: Callable[[], int],
        batch: int = DEFAULT_BATCH,
        on_batch: Callable[[int, int], None] | None = None,
        on_change: Callable[[str, str], None] | None = None,
    ) -> RebuildResult:
        """Rebuild ``cards`` (None: every card with an event); see ``Store.rebuild``."""
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"Store.rebuild: `batch` must be from 1 to {MAX_BATCH}")
        asked = None if cards is None else sorted(set(cards))
        read = changed = queued = done_cards = 0
        total = 0 if on_batch is None else self.card_count(asked)
        newer: list[str] = []
        with self._read_in_bulk():  # SQLite: through a memory map of the file
            for ids in self.batches(asked, batch):
                # A batch of every card is read as the range of ids it spans (one walk of
                # the index, no parameter per card); a card stored meanwhile inside the
                # range is rebuilt with it (no later batch reaches back to it).
                span = ids if asked is not None else None
                todo = ids
                for _ in range(_TRIES):
                    plans, seen, skipped = self._plan(todo, span is None and todo is ids)
                    newer += skipped
                    if todo is ids:
                        read += seen
                    if dry_run or not plans:
                        done, todo = plans, []
                    else:
                        done, todo, added = self._rewriter.write(plans, outbox, now())
                        queued += added
                    for plan in done:
                        changed += 1
                        if on_change is not None:
                            on_change(plan.card_id, plan.why)
                    if not todo:
                        break
                else:
                    raise StoreUnavailable(
                        f"rebuild: cards {todo[:5]} changed under it {_TRIES} times in a row"
                    )
                done_cards += len(ids)
                if on_batch is not None:
                    on_batch(done_cards, total)
        return RebuildResult(cards=read, changed=changed, queued=queued, newer=tuple(newer))

    def _plan(self, ids: list[str], span: bool) -> tuple[list[Plan], int, list[str]]:
        """Read a batch, fold each card's events: the cards whose row differs, how many
        cards have events, and the cards whose row a later version wrote. One read
        transaction: the events, the rows, and the marks of the cards that differ.
        ``span``: read every card from the first id to the last (else those of ``ids``).
        """
        if span:
            where, params = "card_id >= ? AND card_id <= ?", [ids[0], ids[-1]]
        else:
            where, params = f"card_id IN ({','.join('?' * len(ids))})", ids
        with self._transaction(False) as tx:
            # One statement reads the events and their marks: on PostgreSQL (READ
            # COMMITTED) two statements may see two different sets of commits.
            events = tx.rows(f"SELECT id, event, read_at FROM events WHERE {where}", params)
            stored = {
                str(card): (version, blob)
                for card, version, blob in tx.rows(
                    f"SELECT card_id, version, state FROM states WHERE {where}", params
                )
            }
        ops = self._decoded(events)
        states = self._fold(ops, events).finish()
        plans: list[Plan] = []
        newer = []
        nothing = (None, None)
        for card, state in states.items():
            blob = encode_state(state)
            version, old_blob = stored.get(card, nothing)
            if old_blob is not None and blob == bytes(old_blob):
                continue  # the usual case: the stored row is never decoded
            plan = self._planned(card, state, blob, version, old_blob)
            if plan is None:
                newer.append(card)
            else:
                plans.append(plan)
        if plans:
            plans.sort(key=lambda plan: plan.card_id)
            last = _counted({plan.card_id for plan in plans}, ops, events)
            for plan in plans:
                plan.mark = last[plan.card_id]
        return plans, len(states), sorted(newer)

    def _planned(
        self, card: str, state: CardState, blob: bytes, version: Any, old_blob: Any
    ) -> Plan | None:
        """A card whose row differs from its rebuilt state: why, and the changes from
        what the row held (None: a later version wrote the row; it is left, and logged).
        """
        old: CardState | None = None
        if old_blob is None:
            why = "no state row"
        else:
            try:
                old = read_state(card, bytes(old_blob), self.lifecycle)
                why = _moved(old, state)
                if old.card_id != card:
                    old = None  # another card's state: nothing of this card's
            except Unreadable as exc:
                why = f"unreadable row ({exc.reason})"
            except NewerStateError as exc:
                log.error("rebuild: card %r left as it is: %s", card, exc)
                return None
        return Plan(
            card_id=card,
            version=None if version is None else int(version),
            mark=(0, 0),
            state=state,
            blob=blob,
            why=why,
            found=changes(old, state, passed=self.passed, lifecycle=self.lifecycle),
        )

    def _decoded(self, events: list[tuple[Any, ...]]) -> list[Operation]:
        """The operations of a batch's events (rows of id, event, read_at), in order."""
        decode = _operation_decoder.decode
        try:
            return [decode(row[1]) for row in events]
        except (msgspec.DecodeError, ValueError):
            raise self._damaged(events) from None

    def _fold(self, ops: list[Operation], events: list[tuple[Any, ...]]) -> Folder:
        """The fold of a batch's events: the notifications in one loop (the fold's own),
        the readings each with its time (the fold is a join: the order is free)."""
        folder = Folder(lifecycle=self.lifecycle)
        readings = [n for n, row in enumerate(events) if row[2] is not None]
        if not readings:
            folder.update(ops)
            return folder
        folder.update([op for op, row in zip(ops, events, strict=True) if row[2] is None])
        for n in readings:
            folder.add(ops[n], at=when(events[n][2]))
        return folder

    def _damaged(self, events: list[tuple[Any, ...]]) -> StoreUnavailable:
        """The error for the first event row of a batch that does not decode, naming it
        and its card."""
        for id_, event in sorted((row[0], row[1]) for row in events):
            try:
                _operation_decoder.decode(event)
            except (msgspec.DecodeError, ValueError) as exc:
                with self._transaction(False) as tx:
                    card = tx.rows("SELECT card_id FROM events WHERE id = ?", (id_,))[0][0]
                return StoreUnavailable(
                    f"events row {id_} (card {card!r}) does not decode: {exc}; the database"
                    " is damaged: restore it from a backup"
                )
        raise AssertionError("unreachable: a row failed to decode")  # pragma: no cover

    def repair(self, card_id: str, reason: str, now: int) -> None:
        """Write an unreadable row again from its card's events (its changes queued, as
        rebuild does), and log it."""
        log.warning("re-deriving the state of card %r from its events: %s", card_id, reason)
        if self.run([card_id], dry_run=False, outbox=True, now=lambda: now).cards:
            return
        # No event of it is left (pruned): nothing to derive the row from. It is
        # dropped, and the card starts again from its next events.
        log.error("card %r: its unreadable state row is dropped: no event of it is stored", card_id)
        with self._transaction(True) as tx:
            rows = tx.rows("SELECT state FROM states WHERE card_id = ?", (card_id,))
            try:
                if rows:
                    read_state(card_id, bytes(rows[0][0]), self.lifecycle)
            except Unreadable:
                tx.run("DELETE FROM states WHERE card_id = ?", (card_id,))


def _counted(
    cards: set[str], ops: list[Operation], events: list[tuple[Any, ...]]
) -> dict[str, tuple[int, int]]:
    """The marks (``_marks``) of ``cards``, from the events read (rows of id, event,
    read_at) and their operations."""
    count = dict.fromkeys(cards, 0)
    top = dict.fromkeys(cards, 0)
    for op, row in zip(ops, events, strict=True):
        card = op.card_id
        if card in count:
            count[card] += 1
            if row[0] > top[card]:
                top[card] = row[0]
    return {card: (count[card], int(top[card])) for card in cards if count[card]}


def _moved(old: CardState, new: CardState) -> str:
    """What a rebuilt state changes, in a few words."""
    if old.card_id != new.card_id:
        return f"the row held card {old.card_id!r}'s state"
    if (old.operation_id, old.status) != (new.operation_id, new.status):
        return f"{old.operation_id}/{old.status} -> {new.operation_id}/{new.status}"
    return f"{new.status}, revised"
