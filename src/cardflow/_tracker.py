"""The tracker: many cards' states, the changes each delivery causes, reactions fired once.

A webhook service keeps one :class:`Tracker`, hands it every body D1 sends, and gets
back what changed: nothing for a duplicate or a stale event, each (operation, status)
becoming current at most once, and shipment updates as changes of their own kind.

Reactions are methods on a user object, named the way ``transitions`` names state
callbacks (``on_enter_CARD_SHIPPED``). They are driven through one
``transitions.Machine(model=None)`` built from the lifecycle and shared by every
card: never one machine per card. A status that was skipped (its notification
lost) is reported in ``Change.skipped`` and never fired.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Final

import msgspec
from transitions import Machine

from ._cardstate import CardState
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._summary import Summary
from ._tables import tables_for
from ._times import utc
from ._wire import PRODUCE, Body, Operation, Reject, _fast_operations, decode_lenient

__all__ = ["Change", "ChangeKind", "Ingested", "Tracker"]

_MODEL_ATTRIBUTE: Final = "cardflow_status"
"""Where the shared machine keeps the status on the reactions object."""


class ChangeKind(enum.StrEnum):
    """What an event changed on a card."""

    STATUS = "STATUS"
    """An (operation, status) became current: the first time, and only once."""
    SHIPMENT = "SHIPMENT"
    """Newer shipment data for the current operation."""
    REVISED = "REVISED"
    """Other reported facts of the current operation (a late lower status filling a
    gap, a field, an anomaly); the current status did not move."""


_STATUS: Final = ChangeKind.STATUS.value
_SHIPMENT: Final = ChangeKind.SHIPMENT.value
_REVISED: Final = ChangeKind.REVISED.value


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """One change to one card, with the state it produced."""

    kind: str
    card_id: str
    operation_id: str
    status: str
    previous_status: str | None
    """The status before, in the same operation; None for a new card or operation."""
    skipped: tuple[str, ...]
    """Statuses the card must have passed on the way that were never notified."""
    state: CardState


class Ingested(msgspec.Struct, frozen=True, kw_only=True):
    """What one body did: its changes, the operations that did not decode, and the
    operations of other types that were passed over."""

    changes: list[Change]
    rejects: list[Reject]
    passed_over: int


class Tracker(Mapping[str, CardState]):
    """Holds the states of many cards; a read-only mapping from card id to state.

    ``reactions`` is any object with methods ``on_enter_<STATUS>(change)`` (called
    when that status becomes current for an operation) and, optionally,
    ``on_shipment(change)``. ``states`` restores a tracker from saved states.
    """

    def __init__(
        self,
        *,
        lifecycle: Lifecycle = D1_LIFECYCLE,
        reactions: object | None = None,
        states: Mapping[str, CardState] | None = None,
    ) -> None:
        self._lifecycle = lifecycle
        self._tables = tables_for(lifecycle).session()
        self._states: dict[str, CardState] = dict(states or {})
        # The join in progress per card, beside its state: an event is joined into the
        # summary, which says whether anything changed, so that a duplicate or a stale
        # event costs neither a thaw nor a freeze. A restored state is thawed when its
        # card is next heard of.
        self._summaries: dict[str, Summary] = {}
        self._reactions = reactions
        self._machine: Machine | None = None
        if reactions is not None:
            self._machine = _reaction_machine(lifecycle, reactions)

    @property
    def lifecycle(self) -> Lifecycle:
        """The lifecycle this tracker ranks statuses by."""
        return self._lifecycle

    # -- the mapping ---------------------------------------------------------------

    def __getitem__(self, card_id: str) -> CardState:
        return self._states[card_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._states)

    def __len__(self) -> int:
        return len(self._states)

    # -- ingestion -------------------------------------------------------------------

    def ingest(self, body: Body) -> Ingested:
        """Decode a D1 body leniently and apply every good operation in it.

        Never raises on bad input: the operations that do not decode come back in
        ``rejects``, verbatim, and cost nothing to the others.
        """
        operations = _fast_operations(body)
        rejects: list[Reject] = []
        if operations is None:
            decoded = decode_lenient(body)
            operations, rejects = decoded.operations, decoded.rejects
        changes: list[Change] = []
        passed_over = 0
        apply = self.apply
        for op in operations:
            if op.operation != PRODUCE:
                passed_over += 1
                continue
            change = apply(op)
            if change is not None:
                changes.append(change)
        return Ingested(changes=changes, rejects=rejects, passed_over=passed_over)

    def ingest_operations(self, ops: Iterable[Operation]) -> list[Change]:
        """Apply decoded operations; operations of other types are passed over."""
        changes = []
        for op in ops:
            change = self.apply(op)
            if change is not None:
                changes.append(change)
        return changes

    def apply(self, op: Operation) -> Change | None:
        """Apply one operation; the change it caused, or None (duplicate, stale, not PRODUCE)."""
        if op.operation != PRODUCE:
            return None
        card_id = op.card_id
        tables = self._tables
        summary = self._summaries.get(card_id)
        if summary is None:
            restored = self._states.get(card_id)
            if restored is None:
                summary = Summary.empty(card_id, utc(op.start_time), op.operation_id)
            else:
                summary = Summary.thaw(restored, tables)
            self._summaries[card_id] = summary
        # The summary says whether the event changed anything (a summary changes only
        # when one of its joins rises, and then so does the state): a duplicate or a
        # dominated event costs no state at all.
        if not summary.add(op, tables):
            return None
        old = self._states.get(card_id)
        new = self._states[card_id] = summary.freeze(tables)
        if old is not None and op.operation_id != new.operation_id:
            # Joined, the event is not of the current operation: it is of an older one,
            # kept in operation_ids, and not a change.
            return None
        change = self._change(old, new)
        if self._machine is not None:
            self._react(change)
        return change

    def _change(self, old: CardState | None, new: CardState) -> Change:
        previous: str | None = None
        same_operation = old is not None and old.operation_id == new.operation_id
        if old is not None:
            if same_operation:
                previous = old.status
            else:
                # An older operation that became current again (its start rose under a
                # re-used operationId): what it had reached was reported already.
                for state in old._older:
                    if state.operation_id == new.operation_id:
                        previous = state.status
                        same_operation = True
        skipped: tuple[str, ...] = ()
        if not same_operation or previous != new.status:
            kind = _STATUS
            if new.gaps:
                ranks = self._tables.ranks
                floor = ranks.get(previous, -1) if previous is not None else -1
                skipped = tuple(s for s in new.gaps if ranks[s] > floor)
        elif old is not None and old.shipment != new.shipment:
            kind = _SHIPMENT
        else:
            kind = _REVISED
        return Change(
            kind=kind,
            card_id=new.card_id,
            operation_id=new.operation_id,
            status=new.status,
            previous_status=previous,
            skipped=skipped,
            state=new,
        )

    # -- reactions -------------------------------------------------------------------

    def _react(self, change: Change) -> None:
        machine = self._machine
        reactions = self._reactions
        assert machine is not None
        if change.kind == ChangeKind.SHIPMENT:
            on_shipment = getattr(reactions, "on_shipment", None)
            if on_shipment is not None:
                on_shipment(change)
            return
        if change.kind != ChangeKind.STATUS or not self._lifecycle.is_known(change.status):
            return
        previous = change.previous_status
        if previous is None or not self._lifecycle.is_known(previous):
            previous = self._lifecycle.initial
        setattr(reactions, _MODEL_ATTRIBUTE, previous)
        # transitions names its auto transitions after the model attribute.
        machine.events[f"to_{_MODEL_ATTRIBUTE}_{change.status}"].trigger(reactions, change)


def _reaction_machine(lifecycle: Lifecycle, reactions: object) -> Machine:
    """One machine for every card, with the lifecycle's states and edges.

    ``to_cardflow_status_<STATUS>`` triggers (transitions' auto transitions) let a status become
    current even when the statuses between were never notified; the lifecycle's own
    named edges are there too. The reactions object is the model the callbacks are
    looked up on; it is never added to the machine, so the machine stays shared.
    """
    machine = Machine(
        model=None,
        states=list(lifecycle.statuses),
        transitions=[[e.trigger, e.source, e.dest] for e in lifecycle.edges],
        initial=lifecycle.initial,
        auto_transitions=True,
        model_attribute=_MODEL_ATTRIBUTE,
    )
    for status in lifecycle.statuses:
        name = f"on_enter_{status}"
        if callable(getattr(reactions, name, None)):
            machine.get_state(status).add_callback("enter", name)
    return machine
