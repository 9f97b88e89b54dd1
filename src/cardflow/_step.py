"""What an event changes: ``step(state, op) -> (new_state, changes)``, pure.

A webhook service needs more than the new state: which reactions to fire. A change
says what moved on a card: a status that became current (or, with ``passed=True``,
each status the current operation is now known to have passed), newer shipment
data, other facts of the current operation, or the state of an older operation.
Every change of state is reported, and a duplicate reports nothing. The tracker and
the store compute their changes here too, so that all agree.
"""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime
from typing import Final

import msgspec

from ._cardstate import CardState
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._state import apply
from ._summary import Summary
from ._tables import D1_TABLES, Tables, tables_for
from ._times import shipment_clock, utc
from ._wire import PRODUCE, Operation

__all__ = ["Change", "ChangeKind", "Observation", "changes", "step"]
# ``diff`` is shared with the tracker, not public.


class ChangeKind(enum.StrEnum):
    """What an event changed on a card."""

    STATUS = "STATUS"
    """An (operation, status) became current, or (``passed=True``) was passed: once."""
    SHIPMENT = "SHIPMENT"
    """Newer shipment data for the current operation."""
    REVISED = "REVISED"
    """Other reported facts of the current operation (a late lower status filling a
    gap, a field, an anomaly, a confirmation); the current status did not move."""
    OLDER = "OLDER"
    """The state of another operation than the current one changed (it is kept in
    ``operation_ids``); nothing the card reports moved."""


class Observation(enum.StrEnum):
    """How a status that a STATUS change reports came to be known."""

    IN_ORDER = "IN_ORDER"
    """Notified, and no higher status of its operation was known before it."""
    LATE = "LATE"
    """Notified after a higher status of its operation: its notification came late."""
    INFERRED = "INFERRED"
    """Never notified: every lifecycle path to the current status passes it (a gap)."""


_STATUS: Final = ChangeKind.STATUS.value
_SHIPMENT: Final = ChangeKind.SHIPMENT.value
_REVISED: Final = ChangeKind.REVISED.value
_OLDER: Final = ChangeKind.OLDER.value
_IN_ORDER: Final = Observation.IN_ORDER.value
_msgpack: Final = msgspec.msgpack.Encoder()
_thaw: Final = Summary.thaw
"""Bound once: a classmethod read from its class makes a new bound method each time."""


class Change(msgspec.Struct, frozen=True, gc=False):
    """One change to one card, with the state it produced.

    Build one with keywords; the tracker's hot path passes positions (in field order).
    ``gc=False``, as ``CardState``: a change holds strings, a tuple of them and a
    state, none of which can lead back to it, so the cyclic collector need not track
    the one or more made per changing event.
    """

    kind: str
    card_id: str
    operation_id: str
    status: str
    """The status the change is about: the one that became current or was passed (the
    older operation's for OLDER)."""
    previous_status: str | None
    """The status before, in the same operation; None for a new card or operation."""
    skipped: tuple[str, ...]
    """Statuses the card must have passed on the way that were never notified."""
    state: CardState
    observation: str | None = None
    """For a STATUS change: how its status came to be known (``Observation``)."""

    @property
    def key(self) -> str:
        """The idempotency key of a reaction to this change: the same for the same
        (card, operation, status), or shipment data, however often it is computed, and
        different for any other (``key_part`` keeps it unambiguous for any strings)."""
        if self.kind == _SHIPMENT:
            ship = self.state.shipment
            when = None if ship is None else shipment_clock(ship)
            digest = hashlib.sha256(_msgpack.encode(ship)).hexdigest()[:16]
            what = f"shipment@{when.isoformat() if when else '-'}#{digest}"
        elif self.kind == _STATUS:
            what = key_part(self.status, status=True)
        else:
            what = f"{self.kind.lower()}:{key_part(self.status, status=True)}"
        return f"{key_part(self.card_id)}/{key_part(self.operation_id)}/{what}"


def key_part(text: str, *, status: bool = False) -> str:
    """One part of an idempotency key: ``%`` and ``/`` escaped as in a URL (``%25``,
    ``%2F``), and for a status ``@`` and ``:`` too (``%40``, ``%3A``), which mark a
    shipment's and another kind's keys. Parts made of anything else, D1's ids and
    statuses among them, are kept as they are, so their keys read as before."""
    if "%" in text:
        text = text.replace("%", "%25")
    if "/" in text:
        text = text.replace("/", "%2F")
    if status:
        if "@" in text:
            text = text.replace("@", "%40")
        if ":" in text:
            text = text.replace(":", "%3A")
    return text


def _same_operation(old: CardState, operation_id: str) -> CardState | None:
    """What ``old`` held of one operation: its current one, or one of its older ones."""
    if old.operation_id == operation_id:
        return old
    for state in old._older:
        if state.operation_id == operation_id:
            return state
    return None


def _reported(state: CardState) -> CardState:
    """What a state reports of its current operation alone."""
    return msgspec.structs.replace(state, operation_ids=(), _older=())


def changes(
    old: CardState | None,
    new: CardState,
    *,
    passed: bool = False,
    operation_id: str | None = None,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> list[Change]:
    """The changes from ``old`` to ``new``, two states of one card; empty when equal.

    ``passed``: a STATUS change for each status the current operation is now known to
    have passed (observed, or inferred from a gap), in lifecycle order, instead of one
    for the status that became current. ``operation_id`` names the operation an OLDER
    change is about (the event's), where the caller knows it.
    """
    if old == new:
        return []
    return diff(old, new, tables_for(lifecycle), passed=passed, operation_id=operation_id)


def diff(
    old: CardState | None,
    new: CardState,
    tables: Tables,
    passed: bool = False,
    operation_id: str | None = None,
) -> list[Change]:
    """``changes`` for two states known to differ (the tracker knows it: its summary rose).

    The hot path of ``step``, the tracker and the store: the usual cases (the same
    current operation; a status that became current, a shipment, or other facts of the
    current status) are written out in line, each with as few steps as it needs.
    """
    if old is None:
        before = previous = None
    elif old.operation_id == new.operation_id:
        before, previous = old, old.status
    else:
        before = _same_operation(old, new.operation_id)
        previous = None if before is None else before.status
    status = new.status
    shipment = new.shipment
    if passed or previous != status:  # (a status is a str: always so without ``before``)
        if passed:
            out = _passed(before, new, tables)
        else:
            skipped: tuple[str, ...] = new.gaps
            if skipped and previous is not None:
                ranks = tables.ranks
                floor = ranks.get(previous, -1)
                if floor >= 0:
                    skipped = tuple([s for s in skipped if ranks[s] > floor])
            card, operation = new.card_id, new.operation_id
            out = [Change(_STATUS, card, operation, status, previous, skipped, new, _IN_ORDER)]
        # Most states share their predecessor's shipment object: ``is`` first.
        if shipment is not None and (
            before is None or (before.shipment is not shipment and before.shipment != shipment)
        ):
            out.append(Change(_SHIPMENT, new.card_id, new.operation_id, status, previous, (), new))
        if out:
            return out
    elif (
        shipment is not None
        and before is not None
        and before.shipment is not shipment
        and before.shipment != shipment
    ):
        return [Change(_SHIPMENT, new.card_id, new.operation_id, status, previous, (), new)]
    if before is not None and (
        # The usual case, cheaply: the same current operation, and nothing changed among
        # the others, so what changed is what it reports.
        (before is old and old._older == new._older and old.operation_ids == new.operation_ids)
        or _reported(before) != _reported(new)
    ):
        return [Change(_REVISED, new.card_id, new.operation_id, status, previous, (), new)]
    about = _same_operation(new, operation_id or new.operation_id) or new
    return [_change(_OLDER, new, about.status, None, operation_id=about.operation_id)]


def _passed(before: CardState | None, new: CardState, tables: Tables) -> list[Change]:
    """A STATUS change per status newly known to be passed, in lifecycle order.

    What is known to be passed only grows with what was observed (``Tables.passed``),
    so each (operation, status) is reported once, whatever the order of the events.
    """
    ranks = tables.ranks
    known_before = frozenset() if before is None else tables.passed(before.observed)
    known = tables.passed(new.observed)
    top = -1 if before is None else ranks.get(before.status, -1)
    observed = set(new.observed)
    out = []
    previous = None if before is None else before.status
    for status in tables.statuses:
        if status in known_before or status not in known:
            continue
        if status not in observed:
            how = Observation.INFERRED.value
        elif ranks[status] < top:
            how = Observation.LATE.value
        else:
            how = Observation.IN_ORDER.value
        out.append(_change(_STATUS, new, status, previous, (), how))
        previous = status
    return out


def _change(
    kind: str,
    state: CardState,
    status: str,
    previous: str | None,
    skipped: tuple[str, ...] = (),
    observation: str | None = None,
    *,
    operation_id: str | None = None,
) -> Change:
    return Change(
        kind,
        state.card_id,
        operation_id or state.operation_id,
        status,
        previous,
        skipped,
        state,
        observation,
    )


def step(
    state: CardState | None,
    op: Operation,
    *,
    at: datetime | None = None,
    passed: bool = False,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> tuple[CardState, list[Change]]:
    """The state after one more event, and what it changed: pure, no clock, no I/O.

    ``changes`` is empty exactly when nothing changed (a duplicate, an event that an
    operation already reported). ``at``: the event is D1's on-demand status read at that
    time, which also confirms its operation (``docs/semantics.md``). ``passed``: see
    :func:`changes`. The new state is ``apply(state, op, at=at)``; an operation of
    another type leaves ``state`` as it is (``NotProduceError`` when it is None).
    """
    if op.operation != PRODUCE or (state is not None and op.card_id != state.card_id):
        new = apply(state, op, at=at, lifecycle=lifecycle)  # as it is, or the error
        return new, changes(
            state, new, passed=passed, operation_id=op.operation_id, lifecycle=lifecycle
        )
    # ``apply`` written out, so that the summary says whether anything changed: an event
    # that changes nothing (a duplicate, a dominated event) costs no state and no diff.
    tables = D1_TABLES if lifecycle is D1_LIFECYCLE else tables_for(lifecycle)
    if state is None:
        summary = Summary(op.card_id, utc(op.start_time), op.operation_id)
    else:
        summary = _thaw(state, tables)
    joined = summary.add(op, tables) if at is None else summary.add_reading(op, at, tables)
    if state is not None and not joined:
        return state, []
    # A summary changes only when one of its joins rises, and then so does the state
    # (tests/test_step.py checks it against ``apply`` and ``changes``): no comparison.
    new = summary.freeze(tables)
    return new, diff(state, new, tables, passed, op.operation_id)
