"""A transaction of bodies, written once for both engines.

Its PRODUCE events are inserted once each (``ON CONFLICT DO NOTHING``: a duplicate
costs one index lookup), in body order, so that the events table's order is the
order events were applied in (one writer at a time); the cards that new events touch
are read in one query and written in card order with one upsert, each only if its
version is still the one read (compare-and-swap, ``_states.py``: a concurrent
writer's change makes the transaction start again, never lose that change); one
outbox row per reaction and one rejects row per rejected operation, each unique;
commit. Each table is written in one go per transaction, however many bodies it
holds (``Tx.insert``: multi-row statements on PostgreSQL, a statement compiled once
and run for each row on SQLite), and the result is the one of committing the bodies
one by one in their order. Cards are written in one fixed order and only
after the events, so that two transactions wait on each other in a cycle only when
they insert the same events in opposite orders (the same operations batched
differently, at the same moment); PostgreSQL detects that, and the transaction
starts again.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from .._cardstate import CardState
from .._codec import encode_state
from .._decode import Body, Decoded, Reject, decode_lenient
from .._errors import InvalidNotification
from .._lifecycle import Lifecycle
from .._step import Change, ChangeKind, diff
from .._summary import Summary
from .._tables import Tables, tables_for
from .._times import utc
from .._wire import PRODUCE, Operation, encode, fingerprint
from ._outbox import OUTBOX_COLUMNS, micros, outbox_row
from ._schema import Tx
from ._states import Conflict, Known, read_states, write_states

__all__ = ["Conflict", "Ingested", "Prepared", "commit", "prepare"]

_REACTIONS: Final = frozenset({ChangeKind.STATUS.value, ChangeKind.SHIPMENT.value})


class Ingested(msgspec.Struct, frozen=True, kw_only=True):
    """What one body did to the store, once committed.

    ``changes`` are those of its new events (``cardflow.step``'s, in body order per
    card, cards in id order); ``rejects`` the operations that did not decode (also
    kept in the rejects table); ``passed_over`` the operations of other types;
    ``new`` and ``duplicates`` count its PRODUCE events that were stored now and those
    the store already had (or that the body held twice).
    """

    changes: list[Change]
    rejects: list[Reject]
    passed_over: int
    new: int
    duplicates: int


class Event(msgspec.Struct, frozen=True):
    """A PRODUCE event of a body: its key in the events table, its fingerprint."""

    key: bytes
    fingerprint: bytes
    op: Operation


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """A body decoded for its transaction: its distinct events, rejects and counts."""

    events: list[Event]
    rejects: list[Reject]
    at: datetime | None
    passed_over: int
    produce: int


def prepare(body: Body | Decoded, at: datetime | None, card_id: str | None = None) -> Prepared:
    """Decode a body (``at``: an on-demand status read then, in UTC) for ``commit``; a
    body already decoded (``decode_lenient``) is taken as it is.

    Raises ``InvalidNotification`` for a body that is not a D1 envelope. An event's key
    is the SHA-256 of its fingerprint, and of its reading time for an on-demand status
    (read again later, it confirms again: a new event). ``card_id``: the body is the
    on-demand status of that card, and an operation of any other card in it is a
    reject, never applied nor confirmed (an answer vouches for the card asked about).
    """
    decoded = body if isinstance(body, Decoded) else decode_lenient(body)
    rejects = decoded.rejects
    for reject in rejects:
        if reject.index is None:
            raise InvalidNotification(reject.reason, reject.path)
    operations = decoded.operations
    if card_id is not None and any(op.card_id != card_id for op in operations):
        operations, rejects = _of_card(decoded, card_id)
    reading = None if at is None else b"@%d" % micros(at)
    events: list[Event] = []
    seen: set[bytes] = set()
    passed_over = 0
    sha256 = hashlib.sha256
    for op in operations:
        if op.operation != PRODUCE:
            passed_over += 1
            continue
        print_ = fingerprint(op)
        key = sha256(print_ if reading is None else print_ + reading).digest()
        if key not in seen:
            seen.add(key)
            events.append(Event(key, print_, op))
    return Prepared(
        events=events,
        rejects=rejects,
        at=at,
        passed_over=passed_over,
        produce=len(operations) - passed_over,
    )


def _of_card(decoded: Decoded, card_id: str) -> tuple[list[Operation], list[Reject]]:
    """The operations of ``card_id``, and the rejects with every other card's added,
    each at its index in the body."""
    taken = {r.index for r in decoded.rejects}
    indices = (i for i in itertools.count() if i not in taken)
    kept: list[Operation] = []
    rejects = list(decoded.rejects)
    for op, index in zip(decoded.operations, indices, strict=False):
        if op.card_id == card_id:
            kept.append(op)
            continue
        reason = (
            f"an operation of card {op.card_id!r} in the on-demand status of card"
            f" {card_id!r}: not applied, not confirmed"
        )
        raw = encode([op])
        rejects.append(
            Reject(index=index, path=f"$.operations[{index}].cardId", reason=reason, raw=raw)
        )
    rejects.sort(key=lambda r: -1 if r.index is None else r.index)
    return kept, rejects


def commit(
    tx: Tx,
    batch: Sequence[Prepared],
    *,
    now: int,
    lifecycle: Lifecycle,
    passed: bool,
    decode: Callable[[str, bytes], CardState],
    known: Known | None = None,
    tables: Tables | None = None,
) -> list[tuple[list[Change], int]]:
    """Run the transaction of prepared bodies in ``tx``, as if each were committed in
    turn: per body, (its changes, how many of its events were new). ``Conflict`` when a
    concurrent transaction wrote one of their cards first.

    Each table is written in one go (``Tx.insert``), the states read in one query: an
    event is new in the first body that holds it, and each card's new events are applied
    in body order, each with its body's reading time. ``known``: the states this
    process wrote lately (read through it, and told what this transaction writes);
    ``tables``: the lifecycle's tables to fold with (a ``session()`` that the store's
    transactions share, so that repeating values are shared as a Tracker shares them).
    """
    firsts: list[tuple[int, Event]] = []
    owner: set[bytes] = set()
    rows: list[tuple[object, ...]] = []
    for index, prepared in enumerate(batch):
        read_at = None if prepared.at is None else micros(prepared.at)
        for e in prepared.events:
            key = e.key
            if key in owner:
                continue
            owner.add(key)
            firsts.append((index, e))
            op = e.op
            rows.append((key, op.card_id, op.operation_id, read_at, e.fingerprint, now))
    fresh = tx.insert(
        "events", "key, card_id, operation_id, read_at, event, stored_at", rows, "key",
        returning=True,
    )  # fmt: skip
    new = [0] * len(batch)
    by_card: dict[str, list[tuple[int, Operation]]] = {}
    for index, e in firsts:
        if e.key in fresh:
            new[index] += 1
            op = e.op
            mine = by_card.get(op.card_id)
            if mine is None:
                by_card[op.card_id] = [(index, op)]
            else:
                mine.append((index, op))
    found: list[list[Change]] = [[] for _ in batch]
    cards = sorted(by_card)
    if known is not None:
        read = known.read
        stored = read_states(tx, cards, lambda card, blob: read(card, blob, decode))
    else:
        stored = read_states(tx, cards, decode)
    written: dict[str, tuple[int | None, CardState]] = {}
    if tables is None:
        tables = tables_for(lifecycle)
    thaw = Summary.thaw
    for card in cards:
        version, old = stored.get(card, (None, None))
        # One summary per card for the whole transaction (as the Tracker keeps one): an
        # event that changes nothing costs no state; one that does, a state and its
        # changes (``step``'s, for each event in turn).
        summary = None if old is None else thaw(old, tables)
        state = old
        for index, op in by_card[card]:
            at = batch[index].at
            if summary is None:
                summary = Summary(card, utc(op.start_time), op.operation_id)
            joined = summary.add(op, tables) if at is None else summary.add_reading(op, at, tables)
            if not joined and state is not None:
                continue
            after = summary.freeze(tables)
            found[index] += diff(state, after, tables, passed, op.operation_id)
            state = after
        if state is not None and state is not old:
            written[card] = (version, state)
    encoded: dict[int, bytes] = {}
    outbox: list[tuple[object, ...]] = []
    queued: set[str] = set()
    for changes in found:
        if not changes:
            continue
        keyed = [(c.key, c) for c in changes if c.kind in _REACTIONS]
        if len(keyed) > 1:
            keyed.sort(key=_first)
        for reaction, change in keyed:
            if reaction in queued:
                continue
            queued.add(reaction)
            blob = encoded.get(id(change.state))
            if blob is None:
                blob = encoded[id(change.state)] = encode_state(change.state)
            outbox.append(outbox_row(change, blob, now, reaction))
    kept = write_states(tx, written, now=now, lifecycle=lifecycle, encoded=encoded)
    tx.insert("outbox", OUTBOX_COLUMNS, outbox, "key")
    rejected: list[tuple[object, ...]] = []
    seen: set[bytes] = set()
    for prepared in batch:
        if not prepared.rejects:
            continue
        kept_here: list[tuple[object, ...]] = []
        for reject in prepared.rejects:
            raw = bytes(reject.raw)
            digest = hashlib.sha256(
                b"\0".join((reject.path.encode(), reject.reason.encode(), raw))
            ).digest()
            if digest not in seen:
                seen.add(digest)
                kept_here.append((digest, reject.index, reject.path, reject.reason, raw, now))
        kept_here.sort(key=_first)
        rejected += kept_here
    tx.insert("rejects", "key, idx, path, reason, raw, stored_at", rejected, "key")
    if known is not None:
        # Kept at once: what it remembers is how bytes decode, true whether or not this
        # transaction commits.
        known.keep(kept)
    return [(changes, count) for changes, count in zip(found, new, strict=True)]


def _first(pair: tuple[Any, ...]) -> Any:
    return pair[0]
