"""A card's history: its stored events in the order they were stored, each with what it
changed when they are replayed in that order (``Store.history``).

It answers "why is this card in this state?": the replay is ``cardflow.step`` from
nothing, event after event, under the store's lifecycle and ``passed``, exactly what
the body transactions computed when one writer stored them in that order.
:func:`history_table` shows it to people (what ``cardflow history`` prints),
:func:`history_json` to programs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Final

import msgspec

from .._cardstate import CardState
from .._errors import StoreUnavailable
from .._lifecycle import Lifecycle
from .._step import Change, step
from .._wire import Operation, wire_time
from ._logging import printable
from ._outbox import when
from ._schema import Tx

__all__ = [
    "NOTIFICATION",
    "ON_DEMAND",
    "HistoryEvent",
    "history",
    "history_json",
    "history_table",
]

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


def history_json(event: HistoryEvent) -> dict[str, object]:
    """``event`` as a JSON object (for ``msgspec.json.encode``): every field in camelCase,
    the operation as D1 sent it, each change with its idempotency key."""
    return {
        "id": event.id,
        "storedAt": wire_time(event.stored_at),
        "source": event.source,
        "readAt": None if event.read_at is None else wire_time(event.read_at),
        "operation": msgspec.Raw(msgspec.json.encode(event.operation)),
        "changes": [_change_json(c) for c in event.changes],
    }


def history_table(events: Sequence[HistoryEvent]) -> list[str]:
    """A card's history for people, one line each: a header, a row per event (when it
    was stored, where from, the operation, the status it reported, the changes it
    made), then the card's state now. Text from the input is escaped (``printable``)."""
    header = ("id", "stored at", "source", "operation", "reported", "changes")
    rows = [header]
    for e in events:
        details = e.operation.details
        reported = details.status if details is not None and details.status else "-"
        rows.append(
            (
                str(e.id),
                wire_time(e.stored_at),
                e.source if e.read_at is None else f"{e.source} @ {wire_time(e.read_at)}",
                printable(e.operation.operation_id),
                printable(reported),
                printable("; ".join(_describe(c) for c in e.changes) or "none (already known)"),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
        + "  "
        + row[-1]
        for row in rows
    ]
    state = next((e.state for e in reversed(events) if e.state is not None), None)
    if state is not None:
        stored = f"{len(events):,} stored event{'' if len(events) == 1 else 's'}"
        lines.append(
            f"card {printable(state.card_id)}: {stored}; now"
            f" {printable(state.operation_id)}/{printable(state.status)}"
        )
    return lines


def _change_json(change: Change) -> dict[str, object]:
    return {
        "kind": change.kind,
        "operationId": change.operation_id,
        "status": change.status,
        "previousStatus": change.previous_status,
        "skipped": list(change.skipped),
        "observation": change.observation,
        "key": change.key,
    }


def _describe(change: Change) -> str:
    if change.kind == "STATUS":
        how = f" ({change.observation})" if change.observation else ""
        return f"STATUS {change.status}{how}"
    if change.kind == "SHIPMENT":
        return "SHIPMENT"
    return f"{change.kind} {change.status}"
