"""The outbox: one row per reaction, claimed under a lease, done only after it returned.

A body's transaction writes a row for each change a reaction answers (STATUS and
SHIPMENT), unique on the change's idempotency key, so a redelivered body never adds
one twice. A dispatcher (``_dispatch.py``) claims due rows (a lease: owner and expiry;
on PostgreSQL the claim also skips rows another claim has locked), then, row by row,
starts one (an attempt is counted, and the lease moves to follow that row), runs its
reaction with the change rebuilt from the row, and marks the row done only after the
reaction returned. A reaction that raises is tried again after a backoff; after
``max_attempts`` the row is parked as dead with its error, until ``requeue``. A row
that does not decode is parked at once, naming why. The statements are here.
"""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import msgspec

from .._codec import decode_state
from .._errors import StateFormatError
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._step import Change, ChangeKind
from ._schema import Tx

__all__ = [
    "DEAD",
    "DONE",
    "OUTBOX_COLUMNS",
    "PENDING",
    "Claimed",
    "DeadRow",
    "backoff",
    "change_of",
    "claim",
    "dead_rows",
    "error_text",
    "fire",
    "give_back",
    "hold",
    "micros",
    "outbox_row",
    "park",
    "requeue",
    "retry",
    "settle",
    "stage_counts",
    "start",
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


def outbox_row(
    change: Change, state: bytes, now: int, key: str | None = None
) -> tuple[object, ...]:
    """The values of a new outbox row for a change (``OUTBOX_COLUMNS``); ``key``: its
    ``change.key``, where the caller has it already."""
    return (
        change.key if key is None else key,
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


class Claimed(msgspec.Struct, frozen=True, kw_only=True):
    """A claimed outbox row, as read: its change is rebuilt (``change_of``) only when its
    turn comes, so that a row that does not decode costs no other row its turn."""

    id: int
    key: str
    values: tuple[Any, ...]
    """kind, card_id, operation_id, status, previous_status, skipped, observation, state."""


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


_CLAIM: Final = """UPDATE outbox SET lease_owner = ?, lease_until = ?
WHERE id IN (
    SELECT id FROM outbox
    WHERE stage = 'pending' AND next_at <= ? AND (lease_until IS NULL OR lease_until <= ?)
    ORDER BY id LIMIT ? {lock}
)
RETURNING id, key, kind, card_id, operation_id, status, previous_status, skipped,
    observation, state"""


def claim(tx: Tx, lock: str, owner: str, now: int, until: int, limit: int) -> list[Claimed]:
    """Claim up to ``limit`` due rows for ``owner`` until ``until``, oldest first.

    A claim counts no attempt: ``start`` does, when a row's reaction is about to run.
    ``lock`` is what the engine adds to the inner select (PostgreSQL: ``FOR UPDATE
    SKIP LOCKED``, so that concurrent claims pass each other by).
    """
    rows = tx.rows(_CLAIM.format(lock=lock), (owner, until, now, now, limit))
    return [Claimed(id=row[0], key=row[1], values=tuple(row[2:])) for row in sorted(rows)]


def change_of(row: Claimed, lifecycle: Lifecycle = D1_LIFECYCLE) -> Change:
    """The change a claimed row was made from (its state folded under ``lifecycle``);
    ``ValueError`` naming the row and why, when it does not decode (damaged, or
    written by a later cardflow)."""
    kind, card, operation, status, previous, skipped, observation, blob = row.values
    try:
        return Change(
            kind=str(kind),
            card_id=str(card),
            operation_id=str(operation),
            status=str(status),
            previous_status=None if previous is None else str(previous),
            skipped=_skipped_decoder.decode(str(skipped)),
            state=decode_state(bytes(blob), lifecycle=lifecycle),
            observation=None if observation is None else str(observation),
        )
    except (StateFormatError, msgspec.DecodeError, ValueError, TypeError) as exc:
        raise ValueError(f"outbox row {row.id} ({row.key}) does not decode: {exc}") from exc


def start(tx: Tx, row: int, owner: str, until: int, max_attempts: int) -> int | None:
    """Start a row ``owner`` still holds: count an attempt and hold it until ``until``;
    the attempt's number, or None when the row is not ``owner``'s any more or has no
    attempt left (``hold`` says which)."""
    found = tx.rows(
        "UPDATE outbox SET attempts = attempts + 1, lease_until = ?"
        " WHERE id = ? AND lease_owner = ? AND stage = 'pending' AND attempts < ?"
        " RETURNING attempts",
        (until, row, owner, max_attempts),
    )
    return int(found[0][0]) if found else None


def hold(tx: Tx, row: int, owner: str, until: int) -> int | None:
    """Hold a row ``owner`` still holds until ``until``; its attempts so far, or None."""
    found = tx.rows(
        "UPDATE outbox SET lease_until = ? WHERE id = ? AND lease_owner = ?"
        " AND stage = 'pending' RETURNING attempts",
        (until, row, owner),
    )
    return int(found[0][0]) if found else None


def error_of(tx: Tx, row: int) -> str | None:
    """The error last recorded on a row (its last failed attempt's), or None."""
    found = tx.rows("SELECT error FROM outbox WHERE id = ?", (row,))
    return None if not found or found[0][0] is None else str(found[0][0])


def give_back(tx: Tx, rows: Sequence[int], owner: str) -> int:
    """Give back rows ``owner`` claimed and did not start: due at once to any claim."""
    return _by_ids(
        tx,
        "UPDATE outbox SET lease_owner = NULL, lease_until = NULL"
        " WHERE lease_owner = ? AND stage = 'pending' AND id IN ({marks})",
        rows,
        (owner,),
    )


def _by_ids(tx: Tx, sql: str, ids: Sequence[int], first: Sequence[object] = ()) -> int:
    """Run ``sql`` (``{marks}``: a list of ids) over ``ids``, 500 at a time, after the
    parameters ``first``; how many rows it changed."""
    total = 0
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        total += tx.run(sql.format(marks=",".join("?" * len(chunk))), [*first, *chunk])
    return total


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


def settle(tx: Tx, row: int, owner: str, now: int) -> bool:
    """Mark a row done, if ``owner`` still holds it; whether it did."""
    changed = tx.run(
        "UPDATE outbox SET stage = 'done', done_at = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ?",
        (now, row, owner),
    )
    return changed == 1


def error_text(error: BaseException) -> str:
    """The text kept of a reaction's failure: its traceback, cut to a bounded length."""
    text = "".join(traceback.format_exception(error))
    return text if len(text) <= _ERROR_LIMIT else "...\n" + text[-_ERROR_LIMIT:]


def retry(tx: Tx, row: int, owner: str, error: str, next_at: int) -> None:
    """Put a failed row back, due again at ``next_at``, with its error."""
    tx.run(
        "UPDATE outbox SET next_at = ?, error = ?, lease_owner = NULL, lease_until = NULL"
        " WHERE id = ? AND lease_owner = ?",
        (next_at, error, row, owner),
    )


def park(tx: Tx, row: int, owner: str, error: str, now: int) -> bool:
    """Park a row ``owner`` holds as dead, with its error; whether it did."""
    changed = tx.run(
        "UPDATE outbox SET stage = 'dead', done_at = ?, error = ?, lease_owner = NULL,"
        " lease_until = NULL WHERE id = ? AND lease_owner = ?",
        (now, error, row, owner),
    )
    return changed == 1


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
    return _by_ids(
        tx,
        "UPDATE outbox SET stage = 'pending', attempts = 0, next_at = 0, done_at = NULL"
        " WHERE stage = 'dead' AND id IN ({marks})",
        ids,
    )


def stage_counts(tx: Tx) -> dict[str, int]:
    """Outbox rows by stage (pending, done, dead)."""
    rows = tx.rows("SELECT stage, COUNT(*) FROM outbox GROUP BY stage ORDER BY stage")
    return {stage: int(n) for stage, n in rows}
