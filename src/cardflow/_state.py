"""Per-card state as a join-semilattice: ``apply``, ``merge`` and ``fold``.

A card's state is a summary of a set of events, and every summary is a join (a
maximum in a fixed total order, or a set union), so that folding any permutation of
any multiset of the events, split into any number of partial folds merged in any
order, gives the same state. ``docs/semantics.md`` states each rule with its reason.

The order that everything ranks by is the lifecycle's precedence
(:class:`cardflow.Lifecycle`); nothing here names a status.

One mutable accumulator, :class:`_Summary`, holds the join while it is being
computed; ``apply``, ``merge`` and ``fold`` are thin layers over it, so that the
rules live in one place. A :class:`CardState` is the frozen value it produces.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import UTC, date, datetime
from typing import Final

import msgspec

from ._errors import CardMismatchError, NotProduceError
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._wire import PRODUCE, Operation, OperationStatus, Shipment

__all__ = [
    "Anomaly",
    "CardState",
    "Folded",
    "apply",
    "fold",
    "merge",
    "state_of",
]


class Anomaly(enum.StrEnum):
    """Codes for evidence that cannot all be true. Reported on the state, never raised."""

    CONFLICTING_STATUSES = "CONFLICTING_STATUSES"
    """The observed statuses of the current operation lie on no single lifecycle path."""
    OPERATION_STATUS_MISMATCH = "OPERATION_STATUS_MISMATCH"
    """A top-level status the lifecycle does not allow with its ``details.status``."""
    OPERATION_ID_REUSED = "OPERATION_ID_REUSED"
    """One operationId seen with different startTimes."""
    MISSING_STATUS = "MISSING_STATUS"
    """A PRODUCE operation without ``details.status``."""


# Bits of the per-operation anomaly flags (the others are derived when freezing).
_MISMATCH: Final = 1
_MISSING: Final = 2

_NO_TIME: Final = datetime.min.replace(tzinfo=UTC)
"""Orders below every real timestamp: an absent time counts as the oldest."""
_MISSING_RANK: Final = -2
"""The rank of an event without ``details.status``: below unknown statuses (-1)."""
_ABSENT: Final = -3
"""The source rank recorded for an optional field that no event carried."""

_KNOWN_OPERATION_STATUSES: Final = frozenset(OperationStatus)
_msgpack: Final = msgspec.msgpack.Encoder()


class CardState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One card's state, folded from its PRODUCE events. A frozen, comparable value.

    The public attributes report; the attributes whose names start with ``_`` are
    the summaries that ``merge`` needs (the rank of the event each optional field
    came from, the observed statuses as a bit set, the older operations seen).
    Two states are ``==`` exactly when they are the same element of the lattice.
    """

    card_id: str
    operation_id: str
    start_time: datetime
    status: str
    operation_status: str
    end_time: datetime | None = None
    error_code: str | None = None
    error: str | None = None
    reason: str | None = None
    due_date: date | None = None
    production_site: str | None = None
    issuer_request_id: str | None = None
    input_file_name: str | None = None
    shipment: Shipment | None = None
    observed: tuple[str, ...] = ()
    gaps: tuple[str, ...] = ()
    anomalies: tuple[str, ...] = ()
    unknown_statuses: tuple[str, ...] = ()
    operation_ids: tuple[str, ...] = ()
    _mask: int = 0
    _flags: int = 0
    _older: tuple[tuple[datetime, str], ...] = ()
    _reason_rank: int = _ABSENT
    _due_rank: int = _ABSENT
    _site_rank: int = _ABSENT
    _request_rank: int = _ABSENT
    _file_rank: int = _ABSENT
    _shipment_rank: int = _ABSENT

    @property
    def current_operation(self) -> tuple[datetime, str]:
        """The key that chose the current operation: (start_time, operation_id)."""
        return (self.start_time, self.operation_id)


class Folded(dict[str, CardState]):
    """What ``fold`` returns: the states by card id, and what it passed over.

    ``passed_over`` counts the operations that were not PRODUCE (other operation
    types share D1's notification endpoint).
    """

    passed_over: int

    def __init__(self, states: dict[str, CardState], passed_over: int = 0) -> None:
        super().__init__(states)
        self.passed_over = passed_over


def _utc(value: datetime) -> datetime:
    """One spelling per instant, so that states never depend on which offset came first."""
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def _opt(value: str | None) -> tuple[bool, str]:
    """A total order on optional strings (absent lowest)."""
    return (value is not None, value or "")


class _Tables:
    """What the fold needs from a lifecycle, as flat tables (built once per lifecycle)."""

    __slots__ = ("allowed", "by_mask", "lifecycle", "ranks", "statuses")

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.ranks: dict[str, int] = dict(lifecycle.ranks)
        self.statuses: tuple[str, ...] = lifecycle.statuses
        self.allowed: tuple[frozenset[str], ...] = tuple(
            lifecycle.operation_statuses(s) for s in lifecycle.statuses
        )
        self.by_mask: dict[int, tuple[tuple[str, ...], tuple[str, ...], bool]] = {}

    def derive(self, mask: int) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
        """(observed in precedence order, gaps, whether the observed lie on one path)."""
        found = self.by_mask.get(mask)
        if found is None:
            observed = tuple(s for r, s in enumerate(self.statuses) if mask >> r & 1)
            gaps: tuple[str, ...] = ()
            if observed:
                missing = self.lifecycle.gaps(observed, observed[-1])
                gaps = tuple(s for s in self.statuses if s in missing)
            found = (observed, gaps, self.lifecycle.on_one_path(observed))
            self.by_mask[mask] = found
        return found


def _tables(lifecycle: Lifecycle) -> _Tables:
    return lifecycle.memo("cardflow.fold", _Tables)


class _Summary:
    """The join being computed for one card: mutable while folding, frozen at the end."""

    __slots__ = (
        "card_id",
        "due",
        "due_rank",
        "file",
        "file_rank",
        "flags",
        "mask",
        "older",
        "operation_id",
        "reason",
        "reason_rank",
        "request",
        "request_rank",
        "ship",
        "ship_rank",
        "ship_time",
        "site",
        "site_rank",
        "start",
        "unknown",
        "w_end",
        "w_error",
        "w_error_code",
        "w_op_status",
        "w_rank",
        "w_status",
    )

    card_id: str
    start: datetime
    operation_id: str
    older: set[tuple[datetime, str]]
    mask: int
    unknown: set[str]
    flags: int
    w_rank: int
    w_status: str
    w_end: datetime | None
    w_op_status: str
    w_error_code: str | None
    w_error: str | None
    reason: str | None
    reason_rank: int
    due: date | None
    due_rank: int
    site: str | None
    site_rank: int
    request: str | None
    request_rank: int
    file: str | None
    file_rank: int
    ship: Shipment | None
    ship_rank: int
    ship_time: datetime

    def _reset(self, start: datetime, operation_id: str) -> None:
        """Begin a new current operation: what the older one said no longer reports."""
        self.start = start
        self.operation_id = operation_id
        self.mask = 0
        self.unknown = set()
        self.flags = 0
        self.w_rank = _MISSING_RANK - 1
        self.w_status = ""
        self.w_end = None
        self.w_op_status = ""
        self.w_error_code = None
        self.w_error = None
        self.reason = self.due = self.site = self.request = self.file = self.ship = None
        self.reason_rank = self.due_rank = self.site_rank = _ABSENT
        self.request_rank = self.file_rank = self.ship_rank = _ABSENT
        self.ship_time = _NO_TIME

    @classmethod
    def empty(cls, card_id: str, start: datetime, operation_id: str) -> _Summary:
        self = cls()
        self.card_id = card_id
        self.older = set()
        self._reset(start, operation_id)
        return self

    # -- events ------------------------------------------------------------------

    def add(self, op: Operation, tables: _Tables) -> None:
        """Join one PRODUCE event of this card into the summary."""
        start = op.start_time
        if start.tzinfo is not UTC:
            start = start.astimezone(UTC)
        operation_id = op.operation_id
        if operation_id != self.operation_id or start != self.start:
            if (start, operation_id) < (self.start, self.operation_id):
                self.older.add((start, operation_id))
                return
            self.older.add((self.start, self.operation_id))
            self._reset(start, operation_id)

        details = op.details
        status = details.status if details is not None else None
        if not status:
            rank = _MISSING_RANK
            status = ""
            self.flags |= _MISSING
        else:
            rank = tables.ranks.get(status, -1)
            if rank >= 0:
                self.mask |= 1 << rank
                op_status = op.status
                if op_status not in tables.allowed[rank] and op_status in _KNOWN_OPERATION_STATUSES:
                    self.flags |= _MISMATCH
            else:
                self.unknown.add(status)

        end = op.end_time
        if end is not None and end.tzinfo is not UTC:
            end = end.astimezone(UTC)
        self._offer_winner(rank, status, end, op.status, op.error_code, op.error)

        request = op.issuer_request_id
        file = op.input_file_name
        if details is not None:
            if request is None:
                request = details.issuer_request_id
            if file is None:
                file = details.input_file_name
            if details.reason is not None:
                self._offer_reason(rank, details.reason)
            if details.due_date is not None:
                self._offer_due(rank, details.due_date)
            if details.production_site is not None:
                self._offer_site(rank, details.production_site)
            if details.shipment is not None:
                self._offer_ship(rank, details.shipment)
        if request is not None:
            self._offer_request(rank, request)
        if file is not None:
            self._offer_file(rank, file)

    # -- the joins, one per summary ------------------------------------------------

    def _offer_winner(
        self,
        rank: int,
        status: str,
        end: datetime | None,
        op_status: str,
        error_code: str | None,
        error: str | None,
    ) -> None:
        """The winning event: highest (rank, status), then a fixed order of what it reports."""
        if rank != self.w_rank or status != self.w_status:
            if (rank, status) < (self.w_rank, self.w_status):
                return
        else:
            mine = (self.w_end or _NO_TIME, self.w_op_status, _opt(self.w_error_code))
            theirs = (end or _NO_TIME, op_status, _opt(error_code))
            if (theirs, _opt(error)) <= (mine, _opt(self.w_error)):
                return
        self.w_rank = rank
        self.w_status = status
        self.w_end = end
        self.w_op_status = op_status
        self.w_error_code = error_code
        self.w_error = error

    def _offer_reason(self, rank: int, value: str) -> None:
        if rank > self.reason_rank or (rank == self.reason_rank and value > self.reason):  # type: ignore[operator]
            self.reason, self.reason_rank = value, rank

    def _offer_due(self, rank: int, value: date) -> None:
        if rank > self.due_rank or (rank == self.due_rank and value > self.due):  # type: ignore[operator]
            self.due, self.due_rank = value, rank

    def _offer_site(self, rank: int, value: str) -> None:
        if rank > self.site_rank or (rank == self.site_rank and value > self.site):  # type: ignore[operator]
            self.site, self.site_rank = value, rank

    def _offer_request(self, rank: int, value: str) -> None:
        if rank > self.request_rank or (rank == self.request_rank and value > self.request):  # type: ignore[operator]
            self.request, self.request_rank = value, rank

    def _offer_file(self, rank: int, value: str) -> None:
        if rank > self.file_rank or (rank == self.file_rank and value > self.file):  # type: ignore[operator]
            self.file, self.file_rank = value, rank

    def _offer_ship(self, rank: int, value: Shipment) -> None:
        """Latest ``lastUpdatedAt`` wins; ties by precedence, then the canonical encoding."""
        updated = value.last_updated_at
        when = _NO_TIME if updated is None else updated
        current = self.ship
        if current is not None:
            if (when, rank) < (self.ship_time, self.ship_rank):
                return
            if (when, rank) == (self.ship_time, self.ship_rank) and (
                value == current or _msgpack.encode(value) < _msgpack.encode(current)
            ):
                return
        self.ship, self.ship_rank, self.ship_time = value, rank, when

    # -- joining summaries -----------------------------------------------------------

    def join(self, other: _Summary) -> None:
        """Join another summary of the same card into this one."""
        mine = (self.start, self.operation_id)
        theirs = (other.start, other.operation_id)
        self.older |= other.older
        if theirs < mine:
            self.older.add(theirs)
            return
        if mine < theirs:
            self.older.add(mine)
            self._reset(other.start, other.operation_id)
        self.mask |= other.mask
        self.unknown |= other.unknown
        self.flags |= other.flags
        if other.w_rank >= _MISSING_RANK:
            self._offer_winner(
                other.w_rank,
                other.w_status,
                other.w_end,
                other.w_op_status,
                other.w_error_code,
                other.w_error,
            )
        if other.reason is not None:
            self._offer_reason(other.reason_rank, other.reason)
        if other.due is not None:
            self._offer_due(other.due_rank, other.due)
        if other.site is not None:
            self._offer_site(other.site_rank, other.site)
        if other.request is not None:
            self._offer_request(other.request_rank, other.request)
        if other.file is not None:
            self._offer_file(other.file_rank, other.file)
        if other.ship is not None:
            self._offer_ship(other.ship_rank, other.ship)

    # -- to and from the frozen value --------------------------------------------------

    def freeze(self, tables: _Tables) -> CardState:
        observed, gaps, consistent = tables.derive(self.mask)
        anomalies: list[str] = []
        if not consistent:
            anomalies.append(Anomaly.CONFLICTING_STATUSES.value)
        if self.flags & _MISMATCH:
            anomalies.append(Anomaly.OPERATION_STATUS_MISMATCH.value)
        if self.flags & _MISSING:
            anomalies.append(Anomaly.MISSING_STATUS.value)
        older = self.older
        if older:
            ids = {operation_id for _, operation_id in older}
            ids.add(self.operation_id)
            if len(ids) < len(older) + 1:
                anomalies.append(Anomaly.OPERATION_ID_REUSED.value)
            operation_ids = tuple(sorted(ids))
            older_key = tuple(sorted(older))
        else:
            operation_ids = (self.operation_id,)
            older_key = ()
        return CardState(
            card_id=self.card_id,
            operation_id=self.operation_id,
            start_time=self.start,
            status=self.w_status,
            operation_status=self.w_op_status,
            end_time=self.w_end,
            error_code=self.w_error_code,
            error=self.w_error,
            reason=self.reason,
            due_date=self.due,
            production_site=self.site,
            issuer_request_id=self.request,
            input_file_name=self.file,
            shipment=self.ship,
            observed=observed,
            gaps=gaps,
            anomalies=tuple(sorted(anomalies)),
            unknown_statuses=tuple(sorted(self.unknown)),
            operation_ids=operation_ids,
            _mask=self.mask,
            _flags=self.flags,
            _older=older_key,
            _reason_rank=self.reason_rank,
            _due_rank=self.due_rank,
            _site_rank=self.site_rank,
            _request_rank=self.request_rank,
            _file_rank=self.file_rank,
            _shipment_rank=self.ship_rank,
        )

    @classmethod
    def thaw(cls, state: CardState, tables: _Tables) -> _Summary:
        self = cls.empty(state.card_id, state.start_time, state.operation_id)
        self.older = set(state._older)
        self.mask = state._mask
        self.unknown = set(state.unknown_statuses)
        self.flags = state._flags
        status = state.status
        self.w_rank = tables.ranks.get(status, -1) if status else _MISSING_RANK
        self.w_status = status
        self.w_end = state.end_time
        self.w_op_status = state.operation_status
        self.w_error_code = state.error_code
        self.w_error = state.error
        self.reason, self.reason_rank = state.reason, state._reason_rank
        self.due, self.due_rank = state.due_date, state._due_rank
        self.site, self.site_rank = state.production_site, state._site_rank
        self.request, self.request_rank = state.issuer_request_id, state._request_rank
        self.file, self.file_rank = state.input_file_name, state._file_rank
        self.ship, self.ship_rank = state.shipment, state._shipment_rank
        if state.shipment is not None:
            updated = state.shipment.last_updated_at
            self.ship_time = _NO_TIME if updated is None else updated
        return self


def _require_produce(op: Operation) -> None:
    if op.operation != PRODUCE:
        raise NotProduceError(
            f"operation {op.operation_id!r} of card {op.card_id!r} is {op.operation!r},"
            f" not {PRODUCE}: only PRODUCE operations make a card state"
        )


def state_of(op: Operation, *, lifecycle: Lifecycle = D1_LIFECYCLE) -> CardState:
    """The state that one PRODUCE event alone gives."""
    _require_produce(op)
    tables = _tables(lifecycle)
    summary = _Summary.empty(op.card_id, _utc(op.start_time), op.operation_id)
    summary.add(op, tables)
    return summary.freeze(tables)


def apply(
    state: CardState | None, op: Operation, *, lifecycle: Lifecycle = D1_LIFECYCLE
) -> CardState:
    """The state after one more event: equal to ``merge(state, state_of(op))``.

    An operation of another type leaves ``state`` as it is (it raises
    ``NotProduceError`` when there is no state to leave); an event of another
    card raises ``CardMismatchError``.
    """
    if state is None:
        return state_of(op, lifecycle=lifecycle)
    if op.operation != PRODUCE:
        return state
    if op.card_id != state.card_id:
        raise CardMismatchError(
            f"cannot apply an event of card {op.card_id!r} to the state of card {state.card_id!r}"
        )
    tables = _tables(lifecycle)
    summary = _Summary.thaw(state, tables)
    summary.add(op, tables)
    return summary.freeze(tables)


def merge(a: CardState, b: CardState, *, lifecycle: Lifecycle = D1_LIFECYCLE) -> CardState:
    """The join of two states of the same card: commutative, associative, idempotent."""
    if a.card_id != b.card_id:
        raise CardMismatchError(
            f"cannot merge the states of two cards: {a.card_id!r} and {b.card_id!r}"
        )
    tables = _tables(lifecycle)
    summary = _Summary.thaw(a, tables)
    summary.join(_Summary.thaw(b, tables))
    return summary.freeze(tables)


def fold(ops: Iterable[Operation], *, lifecycle: Lifecycle = D1_LIFECYCLE) -> Folded:
    """Fold events, in any order and with any duplicates, into one state per card.

    Operations of other types are passed over and counted (``Folded.passed_over``).
    Streams: give it an iterator and it keeps one summary per card, never the events.
    """
    tables = _tables(lifecycle)
    summaries: dict[str, _Summary] = {}
    passed_over = 0
    get = summaries.get
    for op in ops:
        if op.operation != PRODUCE:
            passed_over += 1
            continue
        summary = get(op.card_id)
        if summary is None:
            card_id = op.card_id
            summary = summaries[card_id] = _Summary.empty(
                card_id, _utc(op.start_time), op.operation_id
            )
        summary.add(op, tables)
    return Folded({card_id: s.freeze(tables) for card_id, s in summaries.items()}, passed_over)
