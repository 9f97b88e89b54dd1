"""The states table's reads and its compare-and-swap writes, in one statement each.

A card's row carries a version: a writer reads the rows it needs (one query for a
whole transaction), computes their new states, and writes them back with one upsert
whose update applies only where the version is still the one read (a new card's row
is inserted at version 1, and only if no one inserted it first). A row another
transaction wrote in between is left as it is, and the write raises ``Conflict``: the
caller's transaction starts again, never losing that change. The body's transaction
(``_ingest.py``) and anything else that derives states (a rebuild) write through
``write_states``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Final, TypeVar

from .._cardstate import CardState
from .._codec import encode_state
from .._lifecycle import Lifecycle
from ._rows import columns
from ._schema import Tx

__all__ = [
    "PARAMETERS",
    "Conflict",
    "Stored",
    "chunks",
    "read_states",
    "write_state",
    "write_states",
]

PARAMETERS: Final = 30_000
"""At most this many parameters per statement (SQLite allows 32,766, PostgreSQL 65,535)."""
_T = TypeVar("_T")
_COLUMNS: Final = (
    "card_id, version, operation_id, status, operation_status, flagged, settled, due_day,"
    " last_heard, state, updated_at"
)
_UPDATE: Final = ", ".join(
    f"{name} = excluded.{name}" for name in _COLUMNS.split(", ") if name != "card_id"
)

Stored = tuple[int, CardState]
"""A card's stored row as read: its version and its state."""


class Conflict(Exception):  # noqa: N818 (an internal signal, never raised to a caller)
    """A concurrent transaction changed what this one read: start it again."""


def chunks(items: list[_T], width: int) -> Iterable[list[_T]]:
    """``items`` in slices small enough for one statement (``width`` parameters each)."""
    size = max(1, PARAMETERS // width)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_states(
    tx: Tx, cards: list[str], decode: Callable[[str, bytes], CardState]
) -> dict[str, Stored]:
    """The stored rows of ``cards`` (those the table has), in one query per 30,000 cards."""
    stored: dict[str, Stored] = {}
    for chunk in chunks(cards, 1):
        marks = ",".join("?" * len(chunk))
        for card, version, blob in tx.rows(
            f"SELECT card_id, version, state FROM states WHERE card_id IN ({marks})", chunk
        ):
            stored[card] = (int(version), decode(card, bytes(blob)))
    return stored


def write_states(
    tx: Tx,
    states: Mapping[str, tuple[int | None, CardState]],
    *,
    now: int,
    lifecycle: Lifecycle,
    encoded: Mapping[int, bytes] | None = None,
) -> None:
    """Write each card's new state if its row is still at the version read (None: the
    card had no row), in card order, one upsert per 30,000 parameters; ``Conflict``
    when another transaction wrote one of them first (nothing is then to be committed).

    ``encoded``: states already encoded, by ``id`` of the state (the outbox's rows
    encode the same states).
    """
    rows: list[tuple[object, ...]] = []
    for card in sorted(states):
        version, state = states[card]
        blob = None if encoded is None else encoded.get(id(state))
        flagged, settled, due, heard = columns(state, lifecycle)
        rows.append(
            (
                card,
                1 if version is None else version + 1,
                state.operation_id,
                state.status,
                state.operation_status,
                flagged,
                settled,
                due,
                heard,
                encode_state(state) if blob is None else blob,
                now,
            )
        )
    mark = "(" + ",".join("?" * 11) + ")"
    for chunk in chunks(rows, 11):
        written = tx.rows(
            f"INSERT INTO states ({_COLUMNS}) VALUES {','.join([mark] * len(chunk))}"
            f" ON CONFLICT (card_id) DO UPDATE SET {_UPDATE}"
            " WHERE states.version = excluded.version - 1 RETURNING card_id",
            [*chain.from_iterable(chunk)],
        )
        if len(written) != len(chunk):
            lost = sorted({str(row[0]) for row in chunk} - {str(row[0]) for row in written})
            raise Conflict(f"cards {lost[:3]!r} were written by another transaction")


def write_state(
    tx: Tx, state: CardState, blob: bytes, version: int | None, now: int, lifecycle: Lifecycle
) -> bool:
    """Write one card's row (``blob`` is ``encode_state(state)``) if it is still at
    ``version`` (None: if it has no row), through ``write_states``; whether it was
    written (a row another transaction wrote first is left as it is)."""
    try:
        write_states(
            tx, {state.card_id: (version, state)}, now=now, lifecycle=lifecycle,
            encoded={id(state): blob},
        )  # fmt: skip
    except Conflict:
        return False
    return True
