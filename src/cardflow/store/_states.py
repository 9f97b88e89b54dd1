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

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Final, TypeVar

from .._cardstate import CardState
from .._codec import encode_state
from .._lifecycle import Lifecycle
from ._rows import columns
from ._schema import Tx

__all__ = [
    "PARAMETERS",
    "Conflict",
    "Known",
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

_UPSERT: Final = (
    f"ON CONFLICT (card_id) DO UPDATE SET {_UPDATE} WHERE states.version = excluded.version - 1"
)

Stored = tuple[int, CardState]
"""A card's stored row as read: its version and its state."""


class Conflict(Exception):  # noqa: N818 (an internal signal, never raised to a caller)
    """A concurrent transaction changed what this one read: start it again."""


class Known:
    """The states this process wrote lately, by card, with their bytes: a stored row
    whose bytes are the ones kept decodes to the state kept, so its reading costs a
    comparison instead of a decoding and its checks (``decode_state``). The bytes
    decide, never the version: a row another writer changed, or one damaged since,
    is decoded and checked as any other. At most ``size`` cards, the oldest written
    dropped first.
    """

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self._states: dict[str, tuple[bytes, CardState]] = {}
        self._lock = threading.Lock()

    def read(self, card: str, blob: bytes, decode: Callable[[str, bytes], CardState]) -> CardState:
        """The state that ``blob`` (card's row) holds: the one kept, else ``decode``'s."""
        kept = self._states.get(card)
        if kept is not None and kept[0] == blob:
            return kept[1]
        return decode(card, blob)

    def keep(self, written: Iterable[tuple[str, bytes, CardState]]) -> None:
        """Remember states written (each ``blob`` is ``encode_state(state)``)."""
        with self._lock:
            states = self._states
            for card, blob, state in written:
                states.pop(card, None)
                states[card] = (blob, state)
            while len(states) > self.size:
                del states[next(iter(states))]


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
) -> list[tuple[str, bytes, CardState]]:
    """Write each card's new state if its row is still at the version read (None: the
    card had no row), in card order, in one upsert (``Tx.upsert``); ``Conflict`` when
    another transaction wrote one of them first (nothing is then to be committed).
    What was written: (card, bytes, state), for ``Known.keep`` once committed.

    ``encoded``: states already encoded, by ``id`` of the state (the outbox's rows
    encode the same states).
    """
    rows: list[tuple[object, ...]] = []
    written: list[tuple[str, bytes, CardState]] = []
    for card in sorted(states):
        version, state = states[card]
        blob = None if encoded is None else encoded.get(id(state))
        if blob is None:
            blob = encode_state(state)
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
                blob,
                now,
            )
        )
        written.append((card, blob, state))
    if rows and tx.upsert("states", _COLUMNS, rows, _UPSERT) != len(rows):
        raise Conflict(f"{len(rows)} cards: one was written by another transaction")
    return written


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
