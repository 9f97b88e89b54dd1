"""A body's transaction, written once for both engines.

Its PRODUCE events are inserted once each (``ON CONFLICT DO NOTHING``: a duplicate
costs one index lookup), in body order, so that the events table's order is the
order events were applied in (one writer at a time); the cards that new events touch
are read and written in card order, each written only if its version is still the
one read (compare-and-swap: a concurrent writer's change makes the transaction start
again, never lose that change); one outbox row per reaction and one rejects row per
rejected operation, each unique; commit. Cards are written in one fixed order and
only after the events, so that two transactions wait on each other in a cycle only
when they insert the same events in opposite orders (the same operations batched
differently, at the same moment); PostgreSQL detects that, and the transaction
starts again.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Final

import msgspec

from .._cardstate import CardState
from .._codec import encode_state
from .._decode import Body, Decoded, Reject, decode_lenient
from .._errors import InvalidNotification
from .._lifecycle import Lifecycle
from .._step import Change, ChangeKind, step
from .._wire import PRODUCE, Operation, encode, fingerprint
from ._outbox import OUTBOX_COLUMNS, micros, outbox_row
from ._rows import columns
from ._schema import Tx

__all__ = ["Conflict", "Ingested", "Prepared", "commit", "prepare"]

_REACTIONS: Final = frozenset({ChangeKind.STATUS.value, ChangeKind.SHIPMENT.value})
_CHUNK: Final = 400


class Conflict(Exception):  # noqa: N818 (an internal signal, never raised to a caller)
    """A concurrent transaction changed what this one read: start it again."""


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


def prepare(body: Body, at: datetime | None, card_id: str | None = None) -> Prepared:
    """Decode a body (``at``: an on-demand status read then, in UTC) for ``commit``.

    Raises ``InvalidNotification`` for a body that is not a D1 envelope. An event's key
    is the SHA-256 of its fingerprint, and of its reading time for an on-demand status
    (read again later, it confirms again: a new event). ``card_id``: the body is the
    on-demand status of that card, and an operation of any other card in it is a
    reject, never applied nor confirmed (an answer vouches for the card asked about).
    """
    decoded = decode_lenient(body)
    for reject in decoded.rejects:
        if reject.index is None:
            raise InvalidNotification(reject.reason, reject.path)
    operations = decoded.operations
    rejects = decoded.rejects
    if card_id is not None and any(op.card_id != card_id for op in operations):
        operations, rejects = _of_card(decoded, card_id)
    reading = b"" if at is None else b"@%d" % micros(at)
    events: list[Event] = []
    seen: set[bytes] = set()
    passed_over = produce = 0
    for op in operations:
        if op.operation != PRODUCE:
            passed_over += 1
            continue
        produce += 1
        print_ = fingerprint(op)
        key = hashlib.sha256(print_ + reading).digest()
        if key not in seen:
            seen.add(key)
            events.append(Event(key, print_, op))
    return Prepared(events=events, rejects=rejects, at=at, passed_over=passed_over, produce=produce)


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
    prepared: Prepared,
    *,
    now: int,
    lifecycle: Lifecycle,
    passed: bool,
    decode: Callable[[str, bytes], CardState],
) -> tuple[list[Change], int]:
    """Run a prepared body's transaction in ``tx``: (its changes, how many events were
    new). ``Conflict`` when a concurrent transaction wrote one of its cards first."""
    at = prepared.at
    events = prepared.events
    read_at = None if at is None else micros(at)
    fresh: set[bytes] = set()
    for start in range(0, len(events), _CHUNK):
        chunk = events[start : start + _CHUNK]
        params: list[object] = []
        for e in chunk:
            params += (e.key, e.op.card_id, e.op.operation_id, read_at, e.fingerprint, now)
        marks = ",".join(["(?,?,?,?,?,?)"] * len(chunk))
        rows = tx.rows(
            "INSERT INTO events (key, card_id, operation_id, read_at, event, stored_at)"
            f" VALUES {marks} ON CONFLICT (key) DO NOTHING RETURNING key",
            params,
        )
        fresh.update(bytes(row[0]) for row in rows)
    by_card: dict[str, list[Operation]] = {}
    for e in events:
        if e.key in fresh:
            by_card.setdefault(e.op.card_id, []).append(e.op)
    found = _write_states(tx, by_card, at, now, lifecycle, passed, decode)
    outbox = []
    for change in sorted(found, key=lambda c: c.key):
        if change.kind in _REACTIONS:
            outbox.append(outbox_row(change, encode_state(change.state), now))
    _insert(tx, "outbox", OUTBOX_COLUMNS, outbox, "key")
    kept = []
    for reject in prepared.rejects:
        raw = bytes(reject.raw)
        digest = hashlib.sha256(
            b"\0".join((reject.path.encode(), reject.reason.encode(), raw))
        ).digest()
        kept.append((digest, reject.index, reject.path, reject.reason, raw, now))
    kept.sort(key=lambda row: row[0])
    _insert(tx, "rejects", "key, idx, path, reason, raw, stored_at", kept, "key")
    return found, len(fresh)


def _write_states(
    tx: Tx,
    by_card: dict[str, list[Operation]],
    at: datetime | None,
    now: int,
    lifecycle: Lifecycle,
    passed: bool,
    decode: Callable[[str, bytes], CardState],
) -> list[Change]:
    """Apply each card's new events to its stored state and write it back, in card
    order; ``Conflict`` when another transaction wrote one of them first."""
    cards = sorted(by_card)
    stored: dict[str, tuple[int, bytes]] = {}
    for start in range(0, len(cards), _CHUNK):
        chunk = cards[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for card, version, blob in tx.rows(
            f"SELECT card_id, version, state FROM states WHERE card_id IN ({marks})", chunk
        ):
            stored[card] = (int(version), bytes(blob))
    found: list[Change] = []
    for card in cards:
        version, blob = stored.get(card, (None, None))
        old = None if blob is None else decode(card, blob)
        state = old
        for op in by_card[card]:
            state, changed = step(state, op, at=at, passed=passed, lifecycle=lifecycle)
            found += changed
        if state is None or state == old:
            continue
        flagged, settled, due, heard = columns(state, lifecycle)
        values = (
            state.operation_id,
            state.status,
            state.operation_status,
            flagged,
            settled,
            due,
            heard,
            encode_state(state),
            now,
        )
        if version is None:
            written = tx.run(
                "INSERT INTO states (operation_id, status, operation_status, flagged,"
                " settled, due_day, last_heard, state, updated_at, card_id, version)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,1) ON CONFLICT (card_id) DO NOTHING",
                (*values, card),
            )
        else:
            written = tx.run(
                "UPDATE states SET operation_id = ?, status = ?, operation_status = ?,"
                " flagged = ?, settled = ?, due_day = ?, last_heard = ?, state = ?,"
                " updated_at = ?, version = version + 1 WHERE card_id = ? AND version = ?",
                (*values, card, version),
            )
        if written != 1:
            raise Conflict(f"card {card!r} was written by another transaction")
    return found


def _insert(
    tx: Tx, table: str, columns: str, rows: Sequence[tuple[object, ...]], unique: str
) -> None:
    if not rows:
        return
    width = len(rows[0])
    mark = "(" + ",".join("?" * width) + ")"
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        tx.run(
            f"INSERT INTO {table} ({columns}) VALUES {','.join([mark] * len(chunk))}"
            f" ON CONFLICT ({unique}) DO NOTHING",
            [value for row in chunk for value in row],
        )
