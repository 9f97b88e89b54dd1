"""A card's history: its stored events in the order they were stored, each with what it
changed when they are replayed in that order (``Store.history``).

It answers "why is this card in this state?": the replay is ``cardflow.step`` from
nothing, event after event, under the store's lifecycle and ``passed``, exactly what
the body transactions computed when one writer stored them in that order.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec

from .._cardstate import CardState
from .._errors import StoreUnavailable
from .._lifecycle import Lifecycle
from .._step import Change, step
from .._wire import Operation
from ._outbox import when
from ._schema import Tx

__all__ = ["NOTIFICATION", "ON_DEMAND", "HistoryEvent", "history"]

NOTIFICATION: Final = "notification"
"""The source of an event D1 notified (a webhook body)."""
ON_DEMAND: Final = "on-demand"
"""The source of an event read from D1's on-demand status (a reading: it also confirms)."""
_operation_decoder: Final = msgspec.msgpack.Decoder(Operation)


class HistoryEvent(msgspec.Struct, frozen=True, kw_only=True):
    """One stored event of a card: its number in the order events were stored, when it
    was stored, the time it was read from D1's on-demand status (None for a
    notification), the operation, and the changes it made in the replay."""

    id: int
    stored_at: datetime
    read_at: datetime | None
    operation: Operation
    changes: list[Change]

    @property
    def source(self) -> str:
        """``notification``, or ``on-demand`` for a reading of D1's on-demand status."""
        return NOTIFICATION if self.read_at is None else ON_DEMAND

    @property
    def state(self) -> CardState | None:
        """The card's state after this event, when it changed anything."""
        return self.changes[-1].state if self.changes else None


def history(tx: Tx, card_id: str, lifecycle: Lifecycle, passed: bool) -> list[HistoryEvent]:
    """A card's stored events, in stored order, each with the changes it makes when they
    are replayed in that order (empty: the card has no event)."""
    rows = tx.rows(
        "SELECT id, event, read_at, stored_at FROM events WHERE card_id = ? ORDER BY id",
        (card_id,),
    )
    out = []
    state: CardState | None = None
    for id_, event, read_at, stored_at in rows:
        try:
            op = _operation_decoder.decode(bytes(event))
        except (msgspec.DecodeError, ValueError) as exc:
            raise StoreUnavailable(
                f"events row {id_} (card {card_id!r}) does not decode: {exc}; the database"
                " is damaged: restore it from a backup"
            ) from exc
        at = None if read_at is None else when(read_at)
        state, found = step(state, op, at=at, passed=passed, lifecycle=lifecycle)
        out.append(
            HistoryEvent(
                id=int(id_), stored_at=when(stored_at), read_at=at, operation=op, changes=found
            )
        )
    return out
