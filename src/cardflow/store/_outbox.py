"""The outbox: one row per reaction, claimed under a lease, done only after it returned.

A body's transaction writes a row for each change a reaction answers (STATUS and
SHIPMENT), unique on the change's idempotency key, so a redelivered body never adds
one twice. A dispatcher claims due rows (a lease: owner and expiry; on PostgreSQL the
claim also skips rows another claim has locked), runs each reaction with the change
rebuilt from its row, and marks the row done only after the reaction returned. A
reaction that raises is tried again after a backoff; after ``max_attempts`` the row
is parked as dead with its error, until ``requeue``. A dispatcher that stops while it
holds a lease leaves the row to the next claim once the lease expires: a reaction
runs at least once, and exactly once unless its dispatcher stopped between the
reaction returning and the row being marked done (the key lets the reaction tell).
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from .._codec import decode_state
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._step import Change, ChangeKind
from ._schema import Tx

__all__ = [
    "DEAD",
    "DONE",
    "OUTBOX_COLUMNS",
    "PENDING",
    "DeadRow",
    "Due",
    "backoff",
    "claim",
    "dead_rows",
    "error_text",
    "fire",
    "micros",
    "outbox_row",
    "park",
    "requeue",
    "retry",
    "settle",
    "stage_counts",
    "when",
]

PENDING: Final = "pending"
DONE: Final = "done"
DEAD: Final = "dead"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)
_ERROR_LIMIT: Final = 8000
_skipped_encoder: Final = msgspec.json.Encoder()
_skipped_decoder: Final = msgspec.json.Decoder(tuple[str, ...])

OUTBOX_COLUMNS: Final = (
    "key, kind, card_id, operation_id, status, previous_status, skipped, observation,"
    " state, stage, attempts, next_at, created_at"
)
"""The columns ``outbox_row`` gives values for, in its order."""


def micros(moment: datetime) -> int:
    """A time as the store keeps it: microseconds since the Unix epoch (UTC)."""
    return (moment - _EPOCH) // _MICRO


def when(value: int) -> datetime:
    """The time that ``micros`` gave ``value`` for."""
    return _EPOCH + value * _MICRO


def backoff(attempts: int) -> timedelta:
    """The default wait before trying a failed reaction again: 1 s, doubling, at most 5 min."""
    return min(timedelta(seconds=2 ** min(attempts - 1, 16)), timedelta(minutes=5))


def outbox_row(change: Change, state: bytes, now: int) -> tuple[object, ...]:
    """The values of a new outbox row for a change (``OUTBOX_COLUMNS``)."""
    return (
        change.key,
        change.kind,
        change.card_id,
        change.operation_id,
        change.status,
        change.previous_status,
        _skipped_encoder.encode(change.skipped).decode(),
        change.observation,
        state,
        PENDING,
        0,
        0,
        now,
    )


class Due(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed outbox row: the change to react to, and the lease it is claimed under."""

    id: int
    key: str
    change: Change
    attempts: int
    lease_until: int


class DeadRow(msgspec.Struct, frozen=True, kw_only=True):
    """An outbox row parked after its reaction failed ``max_attempts`` times."""

    id: int
    key: str
    kind: str
    card_id: str
    operation_id: str
    status: str
    attempts: int
    error: str
    parked_at: datetime | None


_CLAIM: Final = """UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1
WHERE id IN (
    SELECT id FROM outbox
    WHERE stage = 'pending' AND next_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
    ORDER BY id LIMIT ? {lock}
)
RETURNING id, key, kind, card_id, operation_id, status, previous_status, skipped,
    observation, state, attempts, lease_until"""


def claim(
    tx: Tx,
    lock: str,
    owner: str,
    now: int,
    until: int,
    limit: int,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> list[Due]:
    """Claim up to ``limit`` due rows for ``owner`` until ``until``, oldest first.

    ``lock`` is what the engine adds to the inner select (PostgreSQL: ``FOR UPDATE
    SKIP LOCKED``, so that concurrent claims pass each other by).
    """
    rows = tx.rows(_CLAIM.format(lock=lock), (owner, until, now, now, limit))
    out = []
    for row in sorted(rows):
        (id_, key, kind, card, operation, status, previous, skipped, observation, blob) = row[:10]
        change = Change(
            kind=kind,
            card_id=card,
            operation_id=operation,
            status=status,
            previous_status=previous,
            skipped=_skipped_decoder.decode(skipped),
            state=decode_state(bytes(blob), lifecycle=lifecycle),
            observation=observation,
        )
        out.append(Due(id=id_, key=key, change=change, attempts=row[10], lease_until=row[11]))
    return out


def fire(reactions: object, change: Change, lifecycle: Lifecycle) -> None:
    """Call the reaction to a change, as ``cardflow.Tracker`` does: ``on_enter_<STATUS>``
    for a STATUS change of a status the lifecycle knows, ``on_shipment`` for shipment
    data; a reactions object without the method has nothing to do."""
    if change.kind == ChangeKind.SHIPMENT:
        method = getattr(reactions, "on_shipment", None)
    elif change.kind == ChangeKind.STATUS and lifecycle.is_known(change.status):
        method = getattr(reactions, f"on_enter_{change.status}", None)
    else:
        method = None
    if callable(method):
        method(change)


def settle(tx: Tx, due: Due, owner: str, now: int) -> bool:
    """Mark a row done, if ``owner`` still holds it; whether it did."""
    changed = tx.run(
        "UPDATE outbox SET stage = 'done', done_at = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ?",
        (now, due.id, owner),
    )
    return changed == 1


def error_text(error: BaseException) -> str:
    """The text kept of a reaction's failure: its traceback, cut to a bounded length."""
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= _ERROR_LIMIT else "...\n" + text[-_ERROR_LIMIT:]


def retry(tx: Tx, due: Due, owner: str, error: str, next_at: int) -> None:
    """Put a failed row back, due again at ``next_at``, with its error."""
    tx.run(
        "UPDATE outbox SET next_at = ?, error = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ?",
        (next_at, error, due.id, owner),
    )


def park(tx: Tx, due: Due, owner: str, error: str, now: int) -> None:
    """Park a row as dead, with its error."""
    tx.run(
        "UPDATE outbox SET stage = 'dead', done_at = ?, error = ?, lease_owner = NULL,"
        " lease_until = NULL WHERE id = ? AND lease_owner = ?",
        (now, error, due.id, owner),
    )


def dead_rows(tx: Tx) -> list[DeadRow]:
    """Every dead row, oldest first."""
    rows = tx.rows(
        "SELECT id, key, kind, card_id, operation_id, status, attempts, error, done_at"
        " FROM outbox WHERE stage = 'dead' ORDER BY id"
    )
    return [
        DeadRow(
            id=r[0],
            key=r[1],
            kind=r[2],
            card_id=r[3],
            operation_id=r[4],
            status=r[5],
            attempts=r[6],
            error=r[7] or "",
            parked_at=None if r[8] is None else when(r[8]),
        )
        for r in rows
    ]


def requeue(tx: Tx, ids: Sequence[int]) -> int:
    """Dead rows back to pending, due at once, attempts from zero; how many."""
    total = 0
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        total += tx.run(
            "UPDATE outbox SET stage = 'pending', attempts = 0, next_at = 0, done_at = NULL"
            f" WHERE stage = 'dead' AND id IN ({marks})",
            chunk,
        )
    return total


def stage_counts(tx: Tx) -> dict[str, int]:
    """Outbox rows by stage (pending, done, dead)."""
    rows = tx.rows("SELECT stage, COUNT(*) FROM outbox GROUP BY stage ORDER BY stage")
    return {stage: int(n) for stage, n in rows}
