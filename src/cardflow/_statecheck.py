"""What makes a decoded :class:`CardState` one that a fold could have made.

The state format's CRC catches accidents, not intent: a payload written on purpose
(or by a bug elsewhere) can hold any msgpack that fits the Struct's types. ``merge``
and ``step`` rely on more than types: times in UTC, a bit set of observed statuses
within the lifecycle, a current status that is the highest one observed, ranks that
point at evidence the state holds, older operations that are older, alone and few,
and derived fields (observed, gaps, anomalies, operation ids) that follow from the
summary. :func:`state_fault` checks each; ``decode_state`` refuses a state with one.

The derived fields are checked by deriving them again from the summary, with the
same tables ``Summary.freeze`` takes them from (``tests/test_codec_hostile.py`` checks
that every state this accepts obeys the laws of the join).
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Final

from ._cardstate import ABSENT, MAX_OPERATIONS, MISMATCH, MISSING, MISSING_RANK, REUSED, CardState
from ._tables import Tables
from ._wire import Shipment, valid_operation_id

__all__ = ["state_fault"]

_FLAGS: Final = MISMATCH | MISSING | REUSED
"""The anomaly flags a summary records (the conflict bit is derived, never stored)."""


def _utc(name: str, value: datetime | None) -> str | None:
    if value is None or value.tzinfo is UTC:
        return None
    return f"{name} {value.isoformat()} is not in UTC"


def _shipment_times(ship: Shipment | None) -> str | None:
    if ship is None:
        return None
    checkpoint = ship.last_checkpoint
    return (
        _utc("shipment.estimated_delivery_date", ship.estimated_delivery_date)
        or _utc("shipment.last_updated_at", ship.last_updated_at)
        or _utc(
            "shipment.last_checkpoint.checkpoint_time",
            None if checkpoint is None else checkpoint.checkpoint_time,
        )
    )


_RANKED: Final = (
    "reason",
    "due_date",
    "production_site",
    "issuer_request_id",
    "input_file_name",
    "shipment",
)
"""The optional fields, in the order of their ranks in ``CardState._summary[2:]``."""
_ranked: Final = operator.attrgetter(*_RANKED)


def _summary_fault(state: CardState, tables: Tables) -> str | None:
    """The summary and the fields it ranks, against the lifecycle's statuses."""
    summary = state._summary
    mask, flags = summary[0], summary[1]
    statuses = tables.statuses
    if not 0 <= mask < 1 << len(statuses):
        return f"observed statuses {mask:#x} are not a set of {tables.lifecycle.name}'s statuses"
    if flags & ~_FLAGS or (flags & MISMATCH and not mask):
        return f"anomaly flags {flags} are not flags a fold records"
    unknown = state.unknown_statuses
    if unknown and any(s in tables.rank_of for s in unknown):
        return f"unknown statuses {list(unknown)} name a status the lifecycle knows"
    if mask:
        top = mask.bit_length() - 1
        expected = statuses[top]
    elif unknown:
        top, expected = -1, max(unknown)
    else:
        top, expected = MISSING_RANK, ""
    if state.status != expected or (top == MISSING_RANK and not flags & MISSING):
        return f"status {state.status!r} is not the highest status it observed"
    # A field's rank is that of the event it came from: one the summary holds evidence of.
    for i, value in enumerate(_ranked(state), 2):
        rank = summary[i]
        if value is None:
            if rank != ABSENT:
                return f"{_RANKED[i - 2]} is absent but ranked {rank}"
        elif not (
            (0 <= rank <= top and mask >> rank & 1)
            or (rank == -1 and unknown)
            or (rank == MISSING_RANK and flags & MISSING)
        ):
            return f"{_RANKED[i - 2]} is ranked {rank}, which no observed event has"
    return None


def _own_fault(state: CardState, tables: Tables, *, alone: bool) -> str | None:
    """What is wrong with one state, its older operations aside."""
    if valid_operation_id(state.operation_id) is None:
        return f"operation id {state.operation_id!r} is not one D1 sends"
    fault = (
        _utc("start_time", state.start_time)
        or _utc("end_time", state.end_time)
        or _utc("confirmed_at", state.confirmed_at)
        or _shipment_times(state.shipment)
        or _summary_fault(state, tables)
    )
    if fault is not None:
        return fault
    if state.confirmed_status is not None and state.confirmed_at is None:
        return "a confirmed status without the time it was confirmed"
    return _derived_fault(state, tables, alone=alone)


def _derived_fault(state: CardState, tables: Tables, *, alone: bool) -> str | None:
    """The fields ``Summary.freeze`` derives, derived again the way it does."""
    mask, flags = state._summary[0], state._summary[1]
    derived = tables.by_mask.get(mask) or tables.derive(mask)
    bits = flags | derived.conflict
    if alone:
        operation_ids: tuple[str, ...] = (state.operation_id,)
    else:
        for one in state._older:
            bits |= one._summary[1] & REUSED
        operation_ids = tuple(sorted((*(s.operation_id for s in state._older), state.operation_id)))
    unknown = state.unknown_statuses
    if (
        state.observed != derived.observed
        or state.gaps != derived.gaps
        or state.anomalies != tables.anomalies[bits]
        or state.operation_ids != operation_ids
        or (unknown and unknown != tuple(sorted(set(unknown))))
    ):
        return "its derived fields (observed, gaps, anomalies, operation ids) do not follow"
    return None


def state_fault(state: CardState, tables: Tables) -> str | None:
    """What makes ``state`` one no fold under ``tables``' lifecycle gives, or None."""
    older = state._older
    fault = _utc("start_time", state.start_time)  # before any comparison of times
    if fault is not None:
        return fault
    if len(older) >= MAX_OPERATIONS:
        return f"{len(older)} older operations, more than the {MAX_OPERATIONS - 1} a state keeps"
    key = state.current_operation
    seen = {state.operation_id}
    previous: tuple[datetime, str] | None = None
    for one in older:
        where = f"older operation {one.operation_id!r}"
        if one.card_id != state.card_id:
            return f"{where} is of another card, {one.card_id!r}"
        if one._older:
            return f"{where} holds older operations of its own"
        if one.operation_id in seen:
            return f"{where} is there twice, or is the current one"
        seen.add(one.operation_id)
        fault = _utc("start_time", one.start_time) or _own_fault(one, tables, alone=True)
        if fault is not None:
            return f"{where}: {fault}"
        if one.current_operation >= key:
            return f"{where} is not older than the current operation"
        if previous is not None and previous >= one.current_operation:
            return f"{where} is out of order"
        previous = one.current_operation
    # The current operation last: its round trip relies on the older ones being sound.
    return _own_fault(state, tables, alone=False)
