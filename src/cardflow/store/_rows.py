"""A card's row in the states table, and rows of the outbox: what every writer shares.

``columns`` gives the values that reads filter on (the states table's writes, under
the store's compare-and-swap, are ``_states.write_states``); ``queue`` inserts outbox
rows, each once (unique on the change's idempotency key).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from .._cardstate import CardState
from .._codec import encode_state
from .._lifecycle import Lifecycle
from .._reconcile import is_settled, last_heard, needs_reconcile
from .._step import Change, ChangeKind
from ._outbox import OUTBOX_COLUMNS, micros, outbox_row
from ._schema import Tx

__all__ = ["REACTIONS", "columns", "queue"]

REACTIONS: Final = frozenset({ChangeKind.STATUS.value, ChangeKind.SHIPMENT.value})
"""The kinds of change a reaction answers: each one an outbox row."""
_DAWN: Final = datetime.min.replace(tzinfo=UTC)
_CHUNK: Final = 400


def columns(state: CardState, lifecycle: Lifecycle) -> tuple[int, int, int | None, int]:
    """What reads filter on: (flagged, settled, due day, last heard).

    ``flagged``: a reason to reconcile that holds at any time (gaps, anomalies, unknown
    statuses, asked at the dawn of time). ``settled``: a card that can never be
    OVERDUE or SILENT (``cardflow.is_settled``). Reads check each candidate with
    ``needs_reconcile`` itself, so these only need to leave no card out.
    """
    flagged = 1 if needs_reconcile(state, _DAWN, lifecycle=lifecycle) else 0
    settled = 1 if is_settled(state, lifecycle) else 0
    heard = last_heard(state)
    due = None if state.due_date is None else state.due_date.toordinal()
    return flagged, settled, due, micros(heard)


def queue(tx: Tx, found: Iterable[Change], now: int) -> int:
    """An outbox row for each change a reaction answers, unless its key has one; how many
    rows were added."""
    rows = [
        outbox_row(change, encode_state(change.state), now)
        for change in sorted(found, key=lambda c: c.key)
        if change.kind in REACTIONS
    ]
    if not rows:
        return 0
    mark = "(" + ",".join("?" * len(rows[0])) + ")"
    added = 0
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        added += tx.run(
            f"INSERT INTO outbox ({OUTBOX_COLUMNS}) VALUES {','.join([mark] * len(chunk))}"
            " ON CONFLICT (key) DO NOTHING",
            [value for row in chunk for value in row],
        )
    return added
