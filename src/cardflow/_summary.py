"""The join being computed for one card: ``Summary``, mutable while folding.

``apply``, ``merge``, ``fold``, ``step`` and the tracker all run on it, so that the
rules of ``docs/semantics.md`` live in one place.
"""

from __future__ import annotations

import operator
from datetime import UTC, date, datetime
from typing import Final

import msgspec

from ._cardstate import (
    ABSENT,
    MAX_OPERATIONS,
    MISMATCH,
    MISSING,
    MISSING_RANK,
    REUSED,
    CardState,
    operation_key,
)
from ._tables import NO_DETAILS, Tables
from ._times import opt_time, shipment_clock, utc
from ._wire import Operation, Shipment

__all__: list[str] = []

_msgpack: Final = msgspec.msgpack.Encoder()


def _opt(value: str | None) -> tuple[bool, str]:
    """A total order on optional strings (absent lowest)."""
    return (value is not None, value or "")


class Summary(msgspec.Struct, gc=False):
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
    w_rank: int = MISSING_RANK - 1
    w_status: str = ""
    w_end: datetime | None = None
    w_op_status: str = ""
    w_error_code: str | None = None
    w_error: str | None = None
    reason: str | None = None
    reason_rank: int = ABSENT
    due: date | None = None
    due_rank: int = ABSENT
    site: str | None = None
    site_rank: int = ABSENT
    request: str | None = None
    request_rank: int = ABSENT
    file: str | None = None
    file_rank: int = ABSENT
    ship: Shipment | None = None
    ship_rank: int = ABSENT
    ship_clock: datetime | None = None
    confirmed_at: datetime | None = None
    confirmed_status: str | None = None
    confirmed_rank: int = ABSENT

    @classmethod
    def empty(cls, card_id: str, start: datetime, operation_id: str) -> Summary:
        return cls(card_id, start, operation_id)

    # -- events ------------------------------------------------------------------

    def add(self, op: Operation, tables: Tables) -> bool:
        """Join one PRODUCE event of this card into the summary; whether it changed.

        The hot path of every fold: each join below is the rule of its field, written
        out in line (a method call per field would cost more than the rule). ``join``
        applies the same rules to a whole summary; an event of another operation than
        the current one takes that way too (``_add_other``).

        A value is shared (``Tables.shared``) when it is taken, not when freezing: a
        summary that held the event's own copies until the end of a fold would leave
        the memory they took behind, in holes no state can reuse. A lifecycle's tables
        (``step``, ``merge``) remember nothing: a field's value is taken as it is, where
        a lookup would miss into Python only to give it back.
        """
        start = op.start_time
        if start.tzinfo is not UTC:
            start = utc(start)
        if op.operation_id != self.operation_id:
            return self._add_other(op, start, tables)
        changed = False
        if start != self.start:
            # One operationId, two startTimes: one operation all the same, started at
            # the latest of them (rule 1); the anomaly says so.
            if not self.flags & REUSED:
                self.flags |= REUSED
                changed = True
            if start > self.start:
                self.start = start
                changed = True

        details = op.details or NO_DETAILS
        status = details.status or ""
        rank = tables.rank_of.get(status, -1)
        op_status = op.status
        if rank >= 0:
            bit = 1 << rank
            if not self.mask & bit:
                self.mask |= bit
                changed = True
            if op_status in tables.mismatch[rank] and not self.flags & MISMATCH:
                self.flags |= MISMATCH
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
            if not self.flags & MISSING:
                self.flags |= MISSING
                changed = True

        # The winner: highest (rank, status), then a fixed order of what it reports.
        # Most events lose on rank, or repeat the winner exactly (a duplicate).
        end = op.end_time
        if end is not None and end.tzinfo is not UTC:
            end = utc(end)
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
            self.reason, self.reason_rank = (
                tables.shared[reason] if tables.remembers else reason,
                rank,
            )
            changed = True
        due = details.due_date
        if due is not None and (
            rank > self.due_rank or (rank == self.due_rank and due > self.due)  # type: ignore[operator]
        ):
            self.due, self.due_rank = tables.shared[due] if tables.remembers else due, rank
            changed = True
        site = details.production_site
        if site is not None and (
            rank > self.site_rank or (rank == self.site_rank and site > self.site)  # type: ignore[operator]
        ):
            self.site, self.site_rank = tables.shared[site] if tables.remembers else site, rank
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
            self.request, self.request_rank = (
                tables.shared[request] if tables.remembers else request,
                rank,
            )
            changed = True
        if file is not None and (
            rank > self.file_rank or (rank == self.file_rank and file > self.file)  # type: ignore[operator]
        ):
            self.file, self.file_rank = tables.shared[file] if tables.remembers else file, rank
            changed = True
        return changed

    def _add_other(self, op: Operation, start: datetime, tables: Tables) -> bool:
        """An event of another operation than the current one: the state of that
        operation alone, joined in as ``join`` would (``_absorb``)."""
        one = Summary(self.card_id, start, op.operation_id)
        one.add(op, tables)
        return self._absorb(one, tables)

    def add_reading(self, op: Operation, at: datetime, tables: Tables) -> bool:
        """Join an event that D1's on-demand status returned at ``at``: the event, and a
        confirmation of its operation (the latest reading, the highest status read)."""
        one = Summary(self.card_id, utc(op.start_time), op.operation_id)
        one.add(op, tables)
        status = (op.details or NO_DETAILS).status
        one.confirm(utc(at), status, tables.rank_of.get(status, -1) if status else ABSENT)
        return self._absorb(one, tables)

    def confirm(self, at: datetime | None, status: str | None, rank: int) -> None:
        """Join a confirmation in: the latest time, the highest (rank, status)."""
        if at is not None and (self.confirmed_at is None or at > self.confirmed_at):
            self.confirmed_at = at
        if status is not None and (
            rank > self.confirmed_rank
            or (rank == self.confirmed_rank and status > (self.confirmed_status or ""))
        ):
            self.confirmed_status, self.confirmed_rank = status, rank

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
        mine = (opt_time(self.w_end), self.w_op_status, _opt(self.w_error_code))
        theirs = (opt_time(end), op_status, _opt(error_code))
        return (theirs, _opt(error)) > (mine, _opt(self.w_error))

    def _takes_shipment(self, ship: Shipment, rank: int, tables: Tables) -> bool:
        """Join a shipment in: the latest clock wins (rule 5); whether it did.

        Ties (the same clock, or none) go to precedence, then to the canonical
        encoding of the canonical shipment; an equal one changes nothing.
        """
        current = self.ship
        # ``shipment_clock``, in line for the usual shipment (a UTC lastUpdatedAt).
        clock = ship.last_updated_at
        if clock is None or clock.tzinfo is not UTC:
            clock = shipment_clock(ship)
        if current is not None:
            mine = self.ship_clock
            if clock is None:
                if mine is not None:
                    return False
            elif mine is not None and clock < mine:
                return False
            if clock == mine:
                ship_rank = self.ship_rank
                # A duplicate (the same shipment: equal values whatever their spelling)
                # changes nothing, and costs no canonical copy.
                if rank < ship_rank or (rank == ship_rank and ship == current):
                    return False
                ship = tables.shipment(ship)
                if rank == ship_rank and (
                    ship == current or _msgpack.encode(ship) < _msgpack.encode(current)
                ):
                    return False
                self.ship, self.ship_rank = ship, rank
                return True
        self.ship, self.ship_rank, self.ship_clock = tables.shipment(ship), rank, clock
        return True

    # -- joining summaries -----------------------------------------------------------

    def join(self, other: Summary, tables: Tables) -> None:
        """Join another summary of the same card into this one: every operation of the
        two, each joined with its namesake (the rules of ``add``), the greatest current."""
        older = other.older
        if older:
            other.older = None
            for state in older.values():
                self._absorb(Summary.thaw(state, tables), tables)
        if other.operation_id == self.operation_id:
            self._join_operation(other, tables)  # the usual merge: no need to ask what changed
        else:
            self._absorb(other, tables)

    def _absorb(self, one: Summary, tables: Tables) -> bool:
        """Join the summary of one operation (no ``older``) in; whether anything changed."""
        if one.operation_id == self.operation_id:
            before = _operation_values(self)
            self._join_operation(one, tables)
            return _operation_values(self) != before
        older = self.older
        known = None if older is None else older.get(one.operation_id)
        if known is not None:
            joined = Summary.thaw(known, tables)
            joined._join_operation(one, tables)
            if joined.freeze(tables) == known:
                return False
            one = joined
        if (one.start, one.operation_id) > (self.start, self.operation_id):
            pushed = self.freeze(tables, alone=True)
            for name in OPERATION_FIELDS:
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
        least = min(older.values(), key=operation_key)
        del older[least.operation_id]
        return least is not state

    def _join_operation(self, other: Summary, tables: Tables) -> None:
        """Join a summary of the same operation into this one (the rules of ``add``)."""
        if other.start != self.start:
            self.flags |= REUSED
            if other.start > self.start:
                self.start = other.start
        self.mask |= other.mask
        if other.unknown:
            self.unknown = self.unknown | other.unknown if self.unknown else set(other.unknown)
        self.flags |= other.flags
        rank = other.w_rank
        if rank > self.w_rank or (
            rank == self.w_rank
            and rank >= MISSING_RANK
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
        if other.confirmed_at is not None or other.confirmed_status is not None:
            self.confirm(other.confirmed_at, other.confirmed_status, other.confirmed_rank)

    # -- to and from the frozen value --------------------------------------------------

    def freeze(self, tables: Tables, *, alone: bool = False) -> CardState:
        """The state of the current operation, with the older ones unless ``alone``."""
        mask, observed, gaps, conflict = tables.by_mask.get(self.mask) or tables.derive(self.mask)
        flags = self.flags
        anomaly_bits = flags | conflict
        older = None if alone else self.older
        if older:
            older_states = tuple(sorted(older.values(), key=operation_key))
            operation_ids = tuple(sorted((*older, self.operation_id)))
            for state in older_states:
                anomaly_bits |= state._summary[1] & REUSED
        else:
            older_states = ()
            operation_ids = (self.operation_id,)
        summary = (
            mask,
            flags,
            self.reason_rank,
            self.due_rank,
            self.site_rank,
            self.request_rank,
            self.file_rank,
            self.ship_rank,
        )
        summaries = tables.summaries
        if summaries.limit:  # a session's: shared across its states (a lifecycle's: none)
            summary = summaries[summary]
        # Positional, in field order: one call, whatever the fields hold (keywords cost
        # CPython 3.11 several times more past 15 of them).
        return CardState(
            self.card_id,  # card_id
            self.operation_id,  # operation_id
            self.start,  # start_time
            self.w_status,  # status
            self.w_op_status,  # operation_status
            self.w_end,  # end_time
            self.w_error_code,  # error_code
            self.w_error,  # error
            self.reason,  # reason
            self.due,  # due_date
            self.site,  # production_site
            self.request,  # issuer_request_id
            self.file,  # input_file_name
            self.ship,  # shipment
            observed,  # observed
            gaps,  # gaps
            tables.anomalies[anomaly_bits],  # anomalies
            tuple(sorted(self.unknown)) if self.unknown else (),  # unknown_statuses
            operation_ids,  # operation_ids
            self.confirmed_at,  # confirmed_at
            self.confirmed_status,  # confirmed_status
            older_states,  # _older
            summary,  # _summary
        )

    @classmethod
    def thaw(cls, state: CardState, tables: Tables) -> Summary:
        mask, flags, reason_rank, due_rank, site_rank, request_rank, file_rank, ship_rank = (
            state._summary
        )
        ship = state.shipment
        clock = None
        if ship is not None:
            # ``shipment_clock``, in line for the usual shipment (a UTC lastUpdatedAt):
            # most states hold one, and ``step`` thaws a state per event.
            clock = ship.last_updated_at
            if clock is None or clock.tzinfo is not UTC:
                clock = shipment_clock(ship)
        # Positional, in field order: msgspec takes 29 keywords about five times slower
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
            clock,  # ship_clock
            state.confirmed_at,  # confirmed_at
            state.confirmed_status,  # confirmed_status
            ABSENT  # confirmed_rank
            if state.confirmed_status is None
            else tables.rank_of.get(state.confirmed_status, -1),
        )


OPERATION_FIELDS: Final = tuple(
    name for name in Summary.__struct_fields__ if name not in ("card_id", "older")
)
"""What a summary says of its current operation: what changes when another becomes current."""
_operation_values: Final = operator.attrgetter(*OPERATION_FIELDS)
"""Those values, to tell whether a join changed any (every one is replaced, never
mutated in place, when it changes)."""
