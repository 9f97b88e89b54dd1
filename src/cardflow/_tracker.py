"""The tracker: many cards' states, the changes each delivery causes, reactions fired.

A webhook service keeps one :class:`Tracker`, hands it every body D1 sends (and,
with ``reconcile``, every on-demand status it fetched), and gets back what changed:
``step``'s changes, computed the same way. Reactions are methods on a user object,
named the way ``transitions`` names state callbacks (``on_enter_CARD_SHIPPED``),
driven through one ``transitions.Machine(model=None)`` built from the lifecycle and
shared by every card: never one machine per card.

A reaction that raises loses neither itself nor the rest of the body: every
operation is applied, the failures are raised together after the whole body
(:class:`ReactionError`), and each failed reaction fires again on the next delivery
of its operation. ``docs/semantics.md`` states exactly which reactions can fire twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Final

import msgspec
from transitions import Machine

from ._cardstate import CardState
from ._decode import (
    READING_MARK,
    Body,
    Reject,
    decode_lenient,
    decode_reading,
    fast_operations,
    notified_operations,
)
from ._errors import ReactionError
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._step import Change, ChangeKind, diff
from ._summary import Summary
from ._tables import tables_for
from ._times import utc
from ._wire import PRODUCE, Operation

__all__ = ["Ingested", "Tracker"]

_MODEL_ATTRIBUTE: Final = "cardflow_status"
"""Where the shared machine keeps the status on the reactions object."""


class Ingested(msgspec.Struct, frozen=True):
    """What one body did: its changes, the operations that did not decode, and the
    operations of other types that were passed over (built with keywords, or positions
    in that order)."""

    changes: list[Change]
    rejects: list[Reject]
    passed_over: int


class Tracker(Mapping[str, CardState]):
    """Holds the states of many cards; a read-only mapping from card id to state.

    ``reactions`` is any object with methods ``on_enter_<STATUS>(change)`` (called when
    that status becomes current for an operation, or with ``passed=True`` once for each
    status the operation is known to have passed, in lifecycle order) and, optionally,
    ``on_shipment(change)``. ``change.key`` is the reaction's idempotency key. ``states``
    restores a tracker from saved states.
    """

    def __init__(
        self,
        *,
        lifecycle: Lifecycle = D1_LIFECYCLE,
        reactions: object | None = None,
        states: Mapping[str, CardState] | None = None,
        passed: bool = False,
    ) -> None:
        self._lifecycle = lifecycle
        self._tables = tables_for(lifecycle).session()
        self._states: dict[str, CardState] = dict(states or {})
        # The join in progress per card, beside its state: an event is joined into the
        # summary, which says whether anything changed, so that a duplicate or a stale
        # event costs neither a thaw nor a freeze. A restored state is thawed when its
        # card is next heard of.
        self._summaries: dict[str, Summary] = {}
        self._passed = passed
        self._reactions = reactions
        self._machine: Machine | None = None
        # Reactions that raised, by (card, operation): they fire again when the
        # operation is next delivered.
        self._pending: dict[tuple[str, str], list[Change]] = {}
        if reactions is not None:
            self._machine = _reaction_machine(lifecycle, reactions)
        # What the loop of every ingestion reads, in one attribute (it runs once per body).
        self._loop = (
            self._tables,
            self._summaries,
            self._states,
            self._pending,
            self._passed,
            self._machine,
        )

    @property
    def lifecycle(self) -> Lifecycle:
        """The lifecycle this tracker ranks statuses by."""
        return self._lifecycle

    @property
    def pending(self) -> list[Change]:
        """The changes whose reaction raised and has not succeeded since."""
        return [change for waiting in self._pending.values() for change in waiting]

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

        A logged on-demand response (its envelope says ``confirmedAt``) is applied as
        ``reconcile`` would, read at that time.

        Never raises on bad input: the operations that do not decode come back in
        ``rejects``, verbatim, and cost nothing to the others. Raises
        ``ReactionError`` after the whole body when reactions raised (its
        ``ingested`` is what this call would have returned).
        """
        # The usual body first (this runs once per body): one that decodes as a whole
        # and is no logged reading.
        operations = notified_operations(body)
        if operations is not None:
            found, passed_over, failures = self._run(operations, None)
            ingested = Ingested(found, [], passed_over)
            if failures:
                raise ReactionError.of(failures, ingested)
            return ingested
        return self._ingest(body, None)

    def reconcile(self, body: Body, at: datetime) -> Ingested:
        """Apply D1's on-demand status of a card (a productionstatus response), read at
        ``at``: its event, and a confirmation of its operation, an authoritative reading
        (``docs/semantics.md``). Otherwise as ``ingest``."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("Tracker.reconcile: `at` must be timezone-aware")
        return self._ingest(body, utc(at))

    def _ingest(self, body: Body, at: datetime | None) -> Ingested:
        # A logged on-demand response (``confirmedAt``) takes the slow path, which reads it.
        if at is not None:
            operations = fast_operations(body)
        elif type(body) is bytes:
            operations = None if READING_MARK in body else fast_operations(body)
        elif type(body) is str:
            operations = None if '"confirmedAt"' in body else fast_operations(body)
        else:
            operations = None
        rejects: list[Reject] = []
        if operations is None:
            if at is None:
                decoded, at = decode_reading(body)
            else:
                decoded = decode_lenient(body)
            operations, rejects = decoded.operations, decoded.rejects
        found, passed_over, failures = self._run(operations, at)
        ingested = Ingested(changes=found, rejects=rejects, passed_over=passed_over)
        if failures:
            raise ReactionError.of(failures, ingested)
        return ingested

    def ingest_operations(self, ops: Iterable[Operation]) -> list[Change]:
        """Apply decoded operations; operations of other types are passed over.

        Raises ``ReactionError`` after all of them when reactions raised.
        """
        found, _, failures = self._run(ops, None)
        if failures:
            raise ReactionError.of(failures, found)
        return found

    def apply(self, op: Operation) -> list[Change]:
        """Apply one operation; the changes it caused (none for a duplicate, a stale
        event or another operation type). Raises ``ReactionError`` when reactions
        raised, after the state was updated."""
        return self.ingest_operations((op,))

    def _run(
        self, ops: Iterable[Operation], at: datetime | None
    ) -> tuple[list[Change], int, list[tuple[Change, Exception]]]:
        """Apply operations (read at ``at``, or notified): (the changes, how many were
        passed over, the reactions that raised). The loop every ingestion runs."""
        found: list[Change] = []
        failures: list[tuple[Change, Exception]] = []
        passed_over = 0
        tables, summaries, states, pending, passed, machine = self._loop
        for op in ops:
            if op.operation != PRODUCE:
                passed_over += 1
                continue
            card_id = op.card_id
            if pending:
                waiting = pending.pop((card_id, op.operation_id), None)
                if waiting:
                    self._react(waiting, failures)
            summary = summaries.get(card_id)
            if summary is None:
                restored = states.get(card_id)
                if restored is None:
                    summary = Summary(card_id, utc(op.start_time), op.operation_id)
                else:
                    summary = Summary.thaw(restored, tables)
                summaries[card_id] = summary
            # The summary says whether the event changed anything (a summary changes
            # only when one of its joins rises, and then so does the state): a duplicate
            # or a dominated event costs no state at all.
            if at is None:
                if not summary.add(op, tables):
                    continue
            elif not summary.add_reading(op, at, tables):
                continue
            old = states.get(card_id)
            new = states[card_id] = summary.freeze(tables)
            changes = diff(old, new, tables, passed, op.operation_id)
            if machine is not None:
                self._react(changes, failures)
            found += changes
        return found, passed_over, failures

    # -- reactions -------------------------------------------------------------------

    def _react(self, found: list[Change], failures: list[tuple[Change, Exception]]) -> None:
        """Fire each change's reaction; keep those that raise to fire them again."""
        machine = self._machine
        if machine is None:
            return
        for change in found:
            try:
                self._fire(machine, change)
            except Exception as error:
                failures.append((change, error))
                self._pending.setdefault((change.card_id, change.operation_id), []).append(change)

    def _fire(self, machine: Machine, change: Change) -> None:
        reactions = self._reactions
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
