"""State rows this version cannot read: told apart, and derived from the events.

A row that does not decode (corrupt, or a state format older than those this version
reads, or no state a fold under the store's lifecycle gives) is ``Unreadable``: a
reader gets the card's state folded from its events instead (and a warning in the
log), and the next write or rebuild writes the row again (``Rebuilder.repair``). A row
in a newer state format is never read nor rewritten by an older version:
``NewerStateError`` names the card, for that card alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Final

import msgspec

from .._cardstate import CardState
from .._codec import STATE_FORMAT_VERSION, decode_state, state_format_version
from .._errors import NewerStateError, StateFormatError
from .._lifecycle import Lifecycle
from .._state import Folder
from .._wire import Operation
from ._outbox import when
from ._schema import Tx

__all__ = ["Transaction", "Unreadable", "derive", "log", "read_or_derive", "read_state"]

log: Final = logging.getLogger("cardflow.store")
_operation_decoder: Final = msgspec.msgpack.Decoder(Operation)

Transaction = Callable[[bool], AbstractContextManager[Tx]]
"""The store's transactions: ``transaction(write)``."""


class Unreadable(Exception):  # noqa: N818 (an internal signal, never raised to a caller)
    """A card's stored state does not decode: derive it again from the card's events."""

    def __init__(self, card_id: str, reason: str) -> None:
        super().__init__(f"the stored state of card {card_id!r} is unreadable: {reason}")
        self.card_id = card_id
        self.reason = reason


def read_state(card_id: str, blob: bytes, lifecycle: Lifecycle) -> CardState:
    """A stored state; ``Unreadable`` when it is corrupt, in an older format this
    version no longer reads, or no state a fold under ``lifecycle`` gives (a rule or
    lifecycle changed since it was written); ``NewerStateError`` when a later version
    wrote it."""
    try:
        return decode_state(blob, lifecycle=lifecycle)
    except StateFormatError as exc:
        version = state_format_version(blob)
        if version is not None and version > STATE_FORMAT_VERSION:
            raise NewerStateError(card_id, version, STATE_FORMAT_VERSION) from None
        raise Unreadable(card_id, str(exc)) from None


def read_or_derive(
    transaction: Transaction, lifecycle: Lifecycle, card_id: str, blob: bytes
) -> CardState | None:
    """A stored state for a reader: an unreadable one derived from its events (and
    logged), its row left for the next write or rebuild to repair."""
    try:
        return read_state(card_id, blob, lifecycle)
    except Unreadable as exc:
        log.warning("re-deriving the state of card %r from its events: %s", card_id, exc.reason)
        return derive(transaction, lifecycle, card_id)


def derive(transaction: Transaction, lifecycle: Lifecycle, card_id: str) -> CardState | None:
    """A card's state, folded from its events alone (None: it has none)."""
    with transaction(False) as tx:
        rows = tx.rows("SELECT event, read_at FROM events WHERE card_id = ?", (card_id,))
    if not rows:
        return None
    folder = Folder(lifecycle=lifecycle)
    for event, read_at in rows:
        folder.add(_operation_decoder.decode(event), at=None if read_at is None else when(read_at))
    return folder[card_id]
