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

Speed and memory (``docs/performance.md``): a fold keeps millions of summaries and
states alive, so both are ``gc=False`` Structs (the cyclic collector never scans
them), a summary costs no container until it needs one, an event that changes
nothing costs a few comparisons, and a state shares every value that repeats
across cards (statuses, sites, dates, the summaries that ``merge`` needs) instead
of holding its own copy.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, NamedTuple, cast

import msgspec

from ._errors import CardMismatchError, NotProduceError
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._wire import PRODUCE, Checkpoint, Details, Operation, OperationStatus, Shipment

__all__ = [
    "MAX_OPERATIONS",
    "Anomaly",
    "CardState",
    "Folded",
    "Folder",
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


# Bits of the per-operation anomaly flags, and of the two anomalies derived when freezing.
_MISMATCH: Final = 1
_MISSING: Final = 2
_CONFLICT: Final = 4
_REUSED: Final = 8
_ALL_ANOMALY_BITS: Final = 15
_ANOMALY_BITS: Final = (
    (_MISMATCH, Anomaly.OPERATION_STATUS_MISMATCH),
    (_MISSING, Anomaly.MISSING_STATUS),
    (_CONFLICT, Anomaly.CONFLICTING_STATUSES),
    (_REUSED, Anomaly.OPERATION_ID_REUSED),
)

_MIN_UTC: Final = datetime.min.replace(tzinfo=UTC)
_MAX_UTC: Final = datetime.max.replace(tzinfo=UTC)
MAX_OPERATIONS: Final = 16
"""A state keeps at most this many operations of its card: the greatest by
(startTime, operationId). Older ones are forgotten (``docs/semantics.md``, rule 7)."""
_MISSING_RANK: Final = -2
"""The rank of an event without ``details.status``: below unknown statuses (-1)."""
_ABSENT: Final = -3
"""The source rank recorded for an optional field that no event carried."""
_NO_SUMMARY: Final = (0, 0, _ABSENT, _ABSENT, _ABSENT, _ABSENT, _ABSENT, _ABSENT)
"""``CardState._summary`` of a state that nothing was joined into."""

_NO_DETAILS: Final = Details()
"""What an operation without ``details`` carries: nothing."""
_OPERATION_STATUSES: Final = frozenset(s.value for s in OperationStatus)
_SHARED_LIMIT: Final = 1 << 14
"""At most this many distinct values are shared per lifecycle and kind (``_Shared``)."""
_EAGER_STATUSES: Final = 12
"""Lifecycles up to this many statuses get every bit set's derived values up front
(4,096 at most), so that their tables never change after they are built."""
_msgpack: Final = msgspec.msgpack.Encoder()


class CardState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One card's state, folded from its PRODUCE events. A frozen, comparable value.

    The public attributes report the current operation; every time is in UTC. The
    attributes whose names start with ``_`` are the summaries that ``merge`` needs:
    ``_older``, the states of the card's other operations (each a state of that
    operation alone, at most ``MAX_OPERATIONS - 1``), and ``_summary``, which packs the
    observed statuses as a bit set, the anomaly flags, and the rank of the event each
    optional field came from (reason, due date, site, request, file, shipment). Two
    states are ``==`` exactly when they are the same element of the lattice, and then
    ``encode_state`` gives them the same bytes.
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
    _older: tuple[CardState, ...] = ()
    # One tuple instead of eight int fields: a shared tuple costs a state 8 bytes where
    # eight fields cost 64 (and a bit mask above 256 an int object of its own).
    _summary: tuple[int, int, int, int, int, int, int, int] = _NO_SUMMARY

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
    """One spelling per instant, in UTC, so that states never depend on which offset came
    first. An instant that UTC cannot spell (within an offset of year 1 or 9999) is
    clamped to the nearest one it can; a naive time (never decoded) is read as UTC."""
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        return _MIN_UTC if value.year < 5000 else _MAX_UTC


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


def _opt(value: str | None) -> tuple[bool, str]:
    """A total order on optional strings (absent lowest)."""
    return (value is not None, value or "")


def _opt_time(value: datetime | None) -> tuple[bool, datetime]:
    """A total order on optional times: absent lowest, below every real time."""
    return (False, _MIN_UTC) if value is None else (True, value)


def _clock(ship: Shipment) -> datetime | None:
    """When a shipment was last updated: ``lastUpdatedAt``, else the last scan's time."""
    when = ship.last_updated_at
    if when is None:
        checkpoint = ship.last_checkpoint
        if checkpoint is None:
            return None
        when = checkpoint.checkpoint_time
        if when is None:
            return None
    return when if when.tzinfo is UTC else _utc(when)


def _key(state: CardState) -> tuple[datetime, str]:
    """The order of a card's operations: (startTime, operationId)."""
    return (state.start_time, state.operation_id)


class _Derived(NamedTuple):
    """What a bit set of observed statuses implies (one shared value per bit set)."""

    mask: int
    observed: tuple[str, ...]
    gaps: tuple[str, ...]
    conflict: int
    """``_CONFLICT`` when the observed statuses lie on no single path, else 0."""


class _Shared(dict[Any, Any]):
    """One shared object per distinct value: ``shared[value]`` is an equal value already
    held, or ``value`` itself, now remembered. A hit is a dict lookup in C; only a value
    not seen before runs Python (``__missing__``).

    Bounded: past ``limit`` distinct values, a new one is returned but not remembered,
    so that no input can grow it without limit (with a limit of 0 it never grows). Only
    values of exactly the ``kinds`` types are remembered (an Enum member keeps its own
    type); ``None`` maps to itself.
    """

    __slots__ = ("kinds", "limit")

    def __init__(
        self, kinds: tuple[type, ...], values: Iterable[object] = (), limit: int = _SHARED_LIMIT
    ) -> None:
        super().__init__((v, v) for v in (None, *values))
        self.kinds = kinds
        self.limit = limit

    def __missing__(self, value: object) -> object:
        if type(value) in self.kinds and len(self) < self.limit:
            self[value] = value
        return value


class _Tables:
    """What the fold needs from a lifecycle, as flat tables (built once per lifecycle).

    Besides the tables, it shares values across the states of all cards: the derived
    tuples per bit set of observed statuses, the anomaly tuples, the ``_summary``
    tuples, and the strings and dates that repeat (``shared``). Sharing changes which
    object a state holds, never its value, so it is invisible but for memory.

    The tables of a lifecycle (``_tables``) are built once and never change: their
    ``shared`` values are the lifecycle's own strings. A fold, a ``Folder`` or a
    ``Tracker`` works on a ``session()``, which shares the values of its own input
    too and is dropped with it: no input is remembered beyond its fold.
    """

    __slots__ = (
        "allowed",
        "anomalies",
        "by_mask",
        "lifecycle",
        "mismatch",
        "rank_of",
        "ranks",
        "shared",
        "statuses",
        "summaries",
    )

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.ranks: dict[str, int] = dict(lifecycle.ranks)
        # ``details.status`` (absent read as empty) to its rank in one lookup.
        self.rank_of: dict[str, int] = {**self.ranks, "": _MISSING_RANK}
        self.statuses: tuple[str, ...] = lifecycle.statuses
        self.allowed: tuple[frozenset[str], ...] = tuple(
            lifecycle.operation_statuses(s) for s in lifecycle.statuses
        )
        # Per rank, the known top-level statuses it does not allow: one lookup per event.
        self.mismatch: tuple[frozenset[str], ...] = tuple(
            _OPERATION_STATUSES - allowed for allowed in self.allowed
        )
        self.by_mask: dict[int, _Derived] = {}
        # The anomaly codes for each combination of the anomaly bits, sorted.
        self.anomalies: tuple[tuple[str, ...], ...] = tuple(
            tuple(sorted(code.value for bit, code in _ANOMALY_BITS if bits & bit))
            for bits in range(_ALL_ANOMALY_BITS + 1)
        )
        self.summaries = _Shared((tuple,), (_NO_SUMMARY,), limit=0)
        self.shared = _Shared((str, date), (*self.statuses, *_OPERATION_STATUSES), limit=0)
        if len(self.statuses) <= _EAGER_STATUSES:
            for mask in range(1 << len(self.statuses)):
                self.derive(mask)

    def session(self) -> _Tables:
        """These tables, sharing the repeating values of one fold's input as well."""
        fresh = copy.copy(self)
        fresh.summaries = _Shared((tuple,), self.summaries)
        fresh.shared = _Shared((str, date), self.shared)
        return fresh

    def derive(self, mask: int) -> _Derived:
        """What ``mask`` implies: observed in precedence order, gaps, conflict."""
        found = self.by_mask.get(mask)
        if found is None:
            observed = tuple(s for r, s in enumerate(self.statuses) if mask >> r & 1)
            gaps: tuple[str, ...] = ()
            if observed:
                missing = self.lifecycle.gaps(observed, observed[-1])
                gaps = tuple(s for s in self.statuses if s in missing)
            conflict = 0 if self.lifecycle.on_one_path(observed) else _CONFLICT
            found = self.by_mask[mask] = _Derived(mask, observed, gaps, conflict)
        return found

    def shipment(self, ship: Shipment) -> Shipment:
        """An equal shipment in canonical form: every time in UTC, repeating values shared
        (carrier, statuses, places, messages), the checkpoint time the update time when
        they are the same instant."""
        shared = self.shared
        checkpoint = ship.last_checkpoint
        updated = _utc_or_none(ship.last_updated_at)
        if checkpoint is not None:
            scanned = _utc_or_none(checkpoint.checkpoint_time)
            checkpoint = Checkpoint(
                checkpoint_time=updated if scanned is not None and scanned == updated else scanned,
                city=shared[checkpoint.city],
                country_name=shared[checkpoint.country_name],
                message=shared[checkpoint.message],
            )
        return Shipment(
            carrier=shared[ship.carrier],
            tracking_number=ship.tracking_number,
            status=shared[ship.status],
            message=shared[ship.message],
            tracking_url=ship.tracking_url,
            estimated_delivery_date=_utc_or_none(ship.estimated_delivery_date),
            last_updated_at=updated,
            last_checkpoint=checkpoint,
            unparsed=ship.unparsed,
        )


def _tables(lifecycle: Lifecycle) -> _Tables:
    return lifecycle.memo(_TABLES_KEY, _Tables)


class _Summary(msgspec.Struct, gc=False):
    """The join being computed for one card: mutable while folding, frozen at the end.

    The fields up to ``older`` name the card and its current operation, the greatest
    (startTime, operationId) seen; ``older`` holds the card's other operations, each
    as the frozen state of that operation alone (``None`` when there are none: most
    cards have one operation). The fields after it summarise the current operation.

    A ``gc=False`` Struct: a fold keeps one per card alive, and the cyclic collector
    would otherwise scan every one of them again and again (it holds no cycles). The
    sets exist only when needed (``None`` is empty): most cards never need them.
    """

    card_id: str
    start: datetime
    operation_id: str
    older: dict[str, CardState] | None = None
    mask: int = 0
    unknown: set[str] | None = None
    flags: int = 0
    w_rank: int = _MISSING_RANK - 1
    w_status: str = ""
    w_end: datetime | None = None
    w_op_status: str = ""
    w_error_code: str | None = None
    w_error: str | None = None
    reason: str | None = None
    reason_rank: int = _ABSENT
    due: date | None = None
    due_rank: int = _ABSENT
    site: str | None = None
    site_rank: int = _ABSENT
    request: str | None = None
    request_rank: int = _ABSENT
    file: str | None = None
    file_rank: int = _ABSENT
    ship: Shipment | None = None
    ship_rank: int = _ABSENT
    ship_clock: datetime | None = None

    @classmethod
    def empty(cls, card_id: str, start: datetime, operation_id: str) -> _Summary:
        return cls(card_id, start, operation_id)

    # -- events ------------------------------------------------------------------

    def add(self, op: Operation, tables: _Tables) -> bool:
        """Join one PRODUCE event of this card into the summary; whether it changed.

        The hot path of every fold: each join below is the rule of its field, written
        out in line (a method call per field would cost more than the rule). ``join``
        applies the same rules to a whole summary; an event of another operation than
        the current one takes that way too (``_add_other``).

        A value is shared (``_Tables.shared``) when it is taken, not when freezing: a
        summary that held the event's own copies until the end of a fold would leave
        the memory they took behind, in holes no state can reuse.
        """
        start = op.start_time
        if start.tzinfo is not UTC:
            start = _utc(start)
        if op.operation_id != self.operation_id:
            return self._add_other(op, start, tables)
        changed = False
        if start != self.start:
            # One operationId, two startTimes: one operation all the same, started at
            # the latest of them (rule 1); the anomaly says so.
            if not self.flags & _REUSED:
                self.flags |= _REUSED
                changed = True
            if start > self.start:
                self.start = start
                changed = True

        details = op.details or _NO_DETAILS
        status = details.status or ""
        rank = tables.rank_of.get(status, -1)
        op_status = op.status
        if rank >= 0:
            bit = 1 << rank
            if not self.mask & bit:
                self.mask |= bit
                changed = True
            if op_status in tables.mismatch[rank] and not self.flags & _MISMATCH:
                self.flags |= _MISMATCH
                changed = True
        elif rank == -1:
            unknown = self.unknown
            if unknown is None:
                self.unknown = {status}
                changed = True
            elif status not in unknown:
                unknown.add(status)
                changed = True
        else:
            if not self.flags & _MISSING:
                self.flags |= _MISSING
                changed = True

        # The winner: highest (rank, status), then a fixed order of what it reports.
        # Most events lose on rank, or repeat the winner exactly (a duplicate).
        end = op.end_time
        if end is not None and end.tzinfo is not UTC:
            end = _utc(end)
        w_rank = self.w_rank
        if rank > w_rank or (
            rank == w_rank
            and not (
                status == self.w_status
                and end == self.w_end
                and op_status == self.w_op_status
                and op.error_code == self.w_error_code
                and op.error == self.w_error
            )
            and self._beats_winner(status, end, op_status, op.error_code, op.error)
        ):
            self.w_rank = rank
            shared = tables.shared
            self.w_status = tables.statuses[rank] if rank >= 0 else status
            self.w_end = end
            self.w_op_status = shared[op_status]
            self.w_error_code = shared[op.error_code]
            self.w_error = shared[op.error]
            changed = True

        # Each field: from the event of highest rank that carries it, then the greater.
        reason = details.reason
        if reason is not None and (
            rank > self.reason_rank or (rank == self.reason_rank and reason > self.reason)  # type: ignore[operator]
        ):
            self.reason, self.reason_rank = tables.shared[reason], rank
            changed = True
        due = details.due_date
        if due is not None and (
            rank > self.due_rank or (rank == self.due_rank and due > self.due)  # type: ignore[operator]
        ):
            self.due, self.due_rank = tables.shared[due], rank
            changed = True
        site = details.production_site
        if site is not None and (
            rank > self.site_rank or (rank == self.site_rank and site > self.site)  # type: ignore[operator]
        ):
            self.site, self.site_rank = tables.shared[site], rank
            changed = True
        ship = details.shipment
        if ship is not None and self._takes_shipment(ship, rank, tables):
            changed = True
        # Top-level issuerRequestId and inputFileName before the ones in details.
        request = op.issuer_request_id
        if request is None:
            request = details.issuer_request_id
        file = op.input_file_name
        if file is None:
            file = details.input_file_name
        if request is not None and (
            rank > self.request_rank or (rank == self.request_rank and request > self.request)  # type: ignore[operator]
        ):
            self.request, self.request_rank = tables.shared[request], rank
            changed = True
        if file is not None and (
            rank > self.file_rank or (rank == self.file_rank and file > self.file)  # type: ignore[operator]
        ):
            self.file, self.file_rank = tables.shared[file], rank
            changed = True
        return changed

    def _add_other(self, op: Operation, start: datetime, tables: _Tables) -> bool:
        """An event of another operation than the current one: the state of that
        operation alone, joined in as ``join`` would (``_absorb``)."""
        one = _Summary(self.card_id, start, op.operation_id)
        one.add(op, tables)
        return self._absorb(one, tables)

    # -- the joins that take more than a comparison -----------------------------------

    def _beats_winner(
        self,
        status: str,
        end: datetime | None,
        op_status: str,
        error_code: str | None,
        error: str | None,
    ) -> bool:
        """Whether an event of the winner's rank and different report wins the tie."""
        if status != self.w_status:
            return status > self.w_status
        mine = (_opt_time(self.w_end), self.w_op_status, _opt(self.w_error_code))
        theirs = (_opt_time(end), op_status, _opt(error_code))
        return (theirs, _opt(error)) > (mine, _opt(self.w_error))

    def _takes_shipment(self, ship: Shipment, rank: int, tables: _Tables) -> bool:
        """Join a shipment in: the latest clock wins (rule 5); whether it did.

        Ties (the same clock, or none) go to precedence, then to the canonical
        encoding of the canonical shipment; an equal one changes nothing.
        """
        current = self.ship
        clock = _clock(ship)
        if current is not None:
            mine = self.ship_clock
            if clock is None:
                if mine is not None:
                    return False
            elif mine is not None and clock < mine:
                return False
            if clock == mine:
                if rank < self.ship_rank:
                    return False
                ship = tables.shipment(ship)
                if rank == self.ship_rank and (
                    ship == current or _msgpack.encode(ship) < _msgpack.encode(current)
                ):
                    return False
                self.ship, self.ship_rank = ship, rank
                return True
        self.ship, self.ship_rank, self.ship_clock = tables.shipment(ship), rank, clock
        return True

    # -- joining summaries -----------------------------------------------------------

    def join(self, other: _Summary, tables: _Tables) -> None:
        """Join another summary of the same card into this one: every operation of the
        two, each joined with its namesake (the rules of ``add``), the greatest current."""
        older = other.older
        if older:
            other.older = None
            for state in older.values():
                self._absorb(_Summary.thaw(state, tables), tables)
        self._absorb(other, tables)

    def _absorb(self, one: _Summary, tables: _Tables) -> bool:
        """Join the summary of one operation (no ``older``) in; whether anything changed."""
        if one.operation_id == self.operation_id:
            self._join_operation(one, tables)
            return True
        older = self.older
        known = None if older is None else older.get(one.operation_id)
        if known is not None:
            joined = _Summary.thaw(known, tables)
            joined._join_operation(one, tables)
            if joined.freeze(tables) == known:
                return False
            one = joined
        if (one.start, one.operation_id) > (self.start, self.operation_id):
            pushed = self.freeze(tables, alone=True)
            for name in _OPERATION_FIELDS:
                setattr(self, name, getattr(one, name))
            self._keep(pushed, drop=one.operation_id)
            return True
        return self._keep(one.freeze(tables))

    def _keep(self, state: CardState, drop: str | None = None) -> bool:
        """Keep a state of one operation among the older ones, forgetting the least
        when there are more than ``MAX_OPERATIONS``; whether ``state`` was kept."""
        older = self.older
        if older is None:
            older = self.older = {}
        elif drop is not None:
            older.pop(drop, None)
        older[state.operation_id] = state
        if len(older) < MAX_OPERATIONS:
            return True
        least = min(older.values(), key=_key)
        del older[least.operation_id]
        return least is not state

    def _join_operation(self, other: _Summary, tables: _Tables) -> None:
        """Join a summary of the same operation into this one (the rules of ``add``)."""
        if other.start != self.start:
            self.flags |= _REUSED
            if other.start > self.start:
                self.start = other.start
        self.mask |= other.mask
        if other.unknown:
            self.unknown = self.unknown | other.unknown if self.unknown else set(other.unknown)
        self.flags |= other.flags
        rank = other.w_rank
        if rank > self.w_rank or (
            rank == self.w_rank
            and rank >= _MISSING_RANK
            and not (
                other.w_status == self.w_status
                and other.w_end == self.w_end
                and other.w_op_status == self.w_op_status
                and other.w_error_code == self.w_error_code
                and other.w_error == self.w_error
            )
            and self._beats_winner(
                other.w_status, other.w_end, other.w_op_status, other.w_error_code, other.w_error
            )
        ):
            self.w_rank = rank
            self.w_status = other.w_status
            self.w_end = other.w_end
            self.w_op_status = other.w_op_status
            self.w_error_code = other.w_error_code
            self.w_error = other.w_error
        rank = other.reason_rank
        if other.reason is not None and (
            rank > self.reason_rank or (rank == self.reason_rank and other.reason > self.reason)  # type: ignore[operator]
        ):
            self.reason, self.reason_rank = other.reason, rank
        rank = other.due_rank
        if other.due is not None and (
            rank > self.due_rank or (rank == self.due_rank and other.due > self.due)  # type: ignore[operator]
        ):
            self.due, self.due_rank = other.due, rank
        rank = other.site_rank
        if other.site is not None and (
            rank > self.site_rank or (rank == self.site_rank and other.site > self.site)  # type: ignore[operator]
        ):
            self.site, self.site_rank = other.site, rank
        rank = other.request_rank
        if other.request is not None and (
            rank > self.request_rank or (rank == self.request_rank and other.request > self.request)  # type: ignore[operator]
        ):
            self.request, self.request_rank = other.request, rank
        rank = other.file_rank
        if other.file is not None and (
            rank > self.file_rank or (rank == self.file_rank and other.file > self.file)  # type: ignore[operator]
        ):
            self.file, self.file_rank = other.file, rank
        if other.ship is not None:
            self._takes_shipment(other.ship, other.ship_rank, tables)

    # -- to and from the frozen value --------------------------------------------------

    def freeze(self, tables: _Tables, *, alone: bool = False) -> CardState:
        """The state of the current operation, with the older ones unless ``alone``."""
        derived = tables.by_mask.get(self.mask) or tables.derive(self.mask)
        anomaly_bits = self.flags | derived.conflict
        older = None if alone else self.older
        if older:
            older_states = tuple(sorted(older.values(), key=_key))
            operation_ids = tuple(sorted((*older, self.operation_id)))
            for state in older_states:
                anomaly_bits |= state._summary[1] & _REUSED
        else:
            older_states = ()
            operation_ids = (self.operation_id,)
        summary = (
            derived.mask,
            self.flags,
            self.reason_rank,
            self.due_rank,
            self.site_rank,
            self.request_rank,
            self.file_rank,
            self.ship_rank,
        )
        state = CardState(
            card_id=self.card_id,
            operation_id=self.operation_id,
            start_time=self.start,
            status=self.w_status,
            operation_status=self.w_op_status,
            end_time=self.w_end,
            due_date=self.due,
            production_site=self.site,
            issuer_request_id=self.request,
            input_file_name=self.file,
            shipment=self.ship,
            observed=derived.observed,
            gaps=derived.gaps,
            operation_ids=operation_ids,
            _summary=tables.summaries[summary],
        )
        # CPython 3.11 takes a call of more than 15 keywords about five times slower
        # (0.6 µs against 0.12 for 15): the fields that are usually at their default
        # are set apart, only when one of them is not.
        if (
            anomaly_bits
            or older_states
            or self.unknown
            or self.reason is not None
            or self.w_error_code is not None
            or self.w_error is not None
        ):
            state = msgspec.structs.replace(
                state,
                error_code=self.w_error_code,
                error=self.w_error,
                reason=self.reason,
                anomalies=tables.anomalies[anomaly_bits],
                unknown_statuses=tuple(sorted(self.unknown)) if self.unknown else (),
                _older=older_states,
            )
        return state

    @classmethod
    def thaw(cls, state: CardState, tables: _Tables) -> _Summary:
        mask, flags, reason_rank, due_rank, site_rank, request_rank, file_rank, ship_rank = (
            state._summary
        )
        ship = state.shipment
        # Positional, in field order: msgspec takes 26 keywords about five times slower
        # than 26 positions, and merge thaws two states per call.
        return cls(
            state.card_id,  # card_id
            state.start_time,  # start
            state.operation_id,  # operation_id
            {s.operation_id: s for s in state._older} if state._older else None,  # older
            mask,  # mask
            set(state.unknown_statuses) if state.unknown_statuses else None,  # unknown
            flags,  # flags
            tables.rank_of.get(state.status, -1),  # w_rank
            state.status,  # w_status
            state.end_time,  # w_end
            state.operation_status,  # w_op_status
            state.error_code,  # w_error_code
            state.error,  # w_error
            state.reason,  # reason
            reason_rank,  # reason_rank
            state.due_date,  # due
            due_rank,  # due_rank
            state.production_site,  # site
            site_rank,  # site_rank
            state.issuer_request_id,  # request
            request_rank,  # request_rank
            state.input_file_name,  # file
            file_rank,  # file_rank
            ship,  # ship
            ship_rank,  # ship_rank
            None if ship is None else _clock(ship),  # ship_clock
        )


_OPERATION_FIELDS: Final = tuple(
    name for name in _Summary.__struct_fields__ if name not in ("card_id", "older")
)
"""What a summary says of its current operation: what changes when another becomes current."""


_TABLES_KEY: Final = "cardflow.fold"
_D1_TABLES: Final = _tables(D1_LIFECYCLE)
"""The default lifecycle's tables, at hand (merge is called once per pair of states)."""


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
    tables = _D1_TABLES if lifecycle is D1_LIFECYCLE else _tables(lifecycle)
    summary = _Summary.thaw(a, tables)
    summary.join(_Summary.thaw(b, tables), tables)
    return summary.freeze(tables)


class Folder(Mapping[str, CardState]):
    """A fold in progress: ``add`` events in any order, read states by card id at any time.

    ``fold(ops)`` is ``Folder(ops)`` read once at the end; a reader that decodes a log
    line by line, reports what it rejects and shows progress hands events over as it
    goes, and may read a card's state before the end. Memory grows with the number of
    cards, never with the number of events. A read-only mapping from card id to
    :class:`CardState`: each lookup freezes the card's summary into a new state, so
    read once and keep the value. Operations of other types are passed over and
    counted in ``passed_over``.
    """

    __slots__ = ("_summaries", "_tables", "passed_over")

    def __init__(
        self, ops: Iterable[Operation] = (), *, lifecycle: Lifecycle = D1_LIFECYCLE
    ) -> None:
        self._tables = _tables(lifecycle).session()
        self._summaries: dict[str, _Summary] = {}
        self.passed_over = 0
        self.update(ops)

    def add(self, op: Operation) -> bool:
        """Fold one event in; False when it was passed over (not a PRODUCE operation)."""
        if op.operation != PRODUCE:
            self.passed_over += 1
            return False
        summary = self._summaries.get(op.card_id)
        if summary is None:
            card_id = op.card_id
            summary = self._summaries[card_id] = _Summary(
                card_id, _utc(op.start_time), op.operation_id
            )
        summary.add(op, self._tables)
        return True

    def update(self, ops: Iterable[Operation]) -> None:
        """Fold several events in; a stream is consumed one event at a time.

        ``add`` in a loop, written out: this is the loop every fold runs.
        """
        tables = self._tables
        summaries = self._summaries
        get = summaries.get
        passed_over = 0
        for op in ops:
            if op.operation != PRODUCE:
                passed_over += 1
                continue
            summary = get(op.card_id)
            if summary is None:
                card_id = op.card_id
                summary = summaries[card_id] = _Summary(
                    card_id, _utc(op.start_time), op.operation_id
                )
            summary.add(op, tables)
        self.passed_over += passed_over

    def __getitem__(self, card_id: str) -> CardState:
        return self._summaries[card_id].freeze(self._tables)

    def __contains__(self, card_id: object) -> bool:
        return card_id in self._summaries

    def __iter__(self) -> Iterator[str]:
        return iter(self._summaries)

    def __len__(self) -> int:
        return len(self._summaries)

    def states(self) -> Folded:
        """Every card's state now, as ``fold`` returns them (the folder stays usable)."""
        tables = self._tables
        return Folded(
            {card_id: s.freeze(tables) for card_id, s in self._summaries.items()},
            self.passed_over,
        )

    def _finish(self) -> Folded:
        """Every card's state, freezing each summary in place, so that each one is
        released as soon as its state exists: the fold never holds both for every card,
        and the states reuse the memory. The folder is empty afterwards."""
        summaries, self._summaries = self._summaries, {}
        states = cast("dict[str, Any]", summaries)
        for card_id, summary in summaries.items():
            states[card_id] = summary.freeze(self._tables)
        return Folded(states, self.passed_over)


def fold(ops: Iterable[Operation], *, lifecycle: Lifecycle = D1_LIFECYCLE) -> Folded:
    """Fold events, in any order and with any duplicates, into one state per card.

    Operations of other types are passed over and counted (``Folded.passed_over``).
    Streams: give it an iterator and it keeps one summary per card, never the events.
    """
    return Folder(ops, lifecycle=lifecycle)._finish()
