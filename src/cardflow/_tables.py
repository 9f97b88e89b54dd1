"""What the fold needs from a lifecycle, as flat tables, and the values states share.

Built once per lifecycle (``tables_for``); a fold, a ``Folder`` or a ``Tracker`` works
on a ``session()`` of them, which shares the repeating values of its own input and is
dropped with it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date
from typing import Any, Final, NamedTuple

from ._cardstate import ALL_ANOMALY_BITS, ANOMALY_BITS, CONFLICT, MISSING_RANK, NO_SUMMARY
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._times import utc_or_none
from ._wire import Checkpoint, Details, OperationStatus, Shipment

__all__: list[str] = []

NO_DETAILS: Final = Details()
"""What an operation without ``details`` carries: nothing."""
OPERATION_STATUSES: Final = frozenset(s.value for s in OperationStatus)
SHARED_LIMIT: Final = 1 << 14
"""At most this many distinct values are shared per lifecycle and kind (``Shared``)."""
EAGER_STATUSES: Final = 12
"""Lifecycles up to this many statuses get every bit set's derived values up front
(4,096 at most), so that their tables never change after they are built (but for
``passed_by_mask``, which ``passed=True`` alone reads, filled as bit sets are met:
idempotent, and bounded by the bit sets)."""


class Derived(NamedTuple):
    """What a bit set of observed statuses implies (one shared value per bit set)."""

    mask: int
    observed: tuple[str, ...]
    gaps: tuple[str, ...]
    conflict: int
    """``CONFLICT`` when the observed statuses lie on no single path, else 0."""


class Shared(dict[Any, Any]):
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
        self, kinds: tuple[type, ...], values: Iterable[object] = (), limit: int = SHARED_LIMIT
    ) -> None:
        super().__init__((v, v) for v in (None, *values))
        self.kinds = kinds
        self.limit = limit

    def __missing__(self, value: object) -> object:
        # The limit first: a lifecycle's tables (limit 0, which ``step`` and ``merge`` use)
        # answer a miss with one comparison.
        if len(self) < self.limit and type(value) in self.kinds:
            self[value] = value
        return value


class Tables:
    """What the fold needs from a lifecycle, as flat tables (built once per lifecycle).

    Besides the tables, it shares values across the states of all cards: the derived
    tuples per bit set of observed statuses, the anomaly tuples, the ``_summary``
    tuples, and the strings and dates that repeat (``shared``). Sharing changes which
    object a state holds, never its value, so it is invisible but for memory.

    The tables of a lifecycle (``tables_for``) are built once and never change: their
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
        "passed_by_mask",
        "rank_of",
        "ranks",
        "remembers",
        "shared",
        "statuses",
        "summaries",
    )

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle
        self.ranks: dict[str, int] = dict(lifecycle.ranks)
        # ``details.status`` (absent read as empty) to its rank in one lookup.
        self.rank_of: dict[str, int] = {**self.ranks, "": MISSING_RANK}
        self.statuses: tuple[str, ...] = lifecycle.statuses
        self.allowed: tuple[frozenset[str], ...] = tuple(
            lifecycle.operation_statuses(s) for s in lifecycle.statuses
        )
        # Per rank, the known top-level statuses it does not allow: one lookup per event.
        self.mismatch: tuple[frozenset[str], ...] = tuple(
            OPERATION_STATUSES - allowed for allowed in self.allowed
        )
        self.by_mask: dict[int, Derived] = {}
        self.passed_by_mask: dict[int, frozenset[str]] = {}
        # The anomaly codes for each combination of the anomaly bits, sorted.
        self.anomalies: tuple[tuple[str, ...], ...] = tuple(
            tuple(sorted(code.value for bit, code in ANOMALY_BITS if bits & bit))
            for bits in range(ALL_ANOMALY_BITS + 1)
        )
        self.summaries = Shared((tuple,), (NO_SUMMARY,), limit=0)
        self.shared = Shared((str, date), (*self.statuses, *OPERATION_STATUSES), limit=0)
        self.remembers = False
        """Whether ``shared`` remembers the input's values (a session's): else only the
        lifecycle's own are shared, and a value read from the input is taken as it is."""
        if len(self.statuses) <= EAGER_STATUSES:
            for mask in range(1 << len(self.statuses)):
                self.derive(mask)

    def session(self) -> Tables:
        """These tables, sharing the repeating values of one fold's input as well."""
        fresh = copy.copy(self)
        fresh.summaries = Shared((tuple,), self.summaries)
        fresh.shared = Shared((str, date), self.shared)
        fresh.remembers = True
        return fresh

    def derive(self, mask: int) -> Derived:
        """What ``mask`` implies: observed in precedence order, gaps, conflict."""
        found = self.by_mask.get(mask)
        if found is None:
            observed = tuple(s for r, s in enumerate(self.statuses) if mask >> r & 1)
            gaps: tuple[str, ...] = ()
            if observed:
                missing = self.lifecycle.gaps(observed, observed[-1])
                gaps = tuple(s for s in self.statuses if s in missing)
            conflict = 0 if self.lifecycle.on_one_path(observed) else CONFLICT
            found = self.by_mask[mask] = Derived(mask, observed, gaps, conflict)
        return found

    def passed(self, observed: Iterable[str]) -> frozenset[str]:
        """The statuses known to be passed given ``observed`` (known statuses of one
        operation): the observed ones and the gaps that any part of them implies.

        Monotone in ``observed``, unlike the gaps of the whole (which shrink when a
        contradicting status arrives): what ``passed=True`` reports, each status once.
        """
        ranks = self.ranks
        mask = 0
        for status in observed:
            rank = ranks.get(status)
            if rank is not None:
                mask |= 1 << rank
        return self._passed(mask)

    def _passed(self, mask: int) -> frozenset[str]:
        found = self.passed_by_mask.get(mask)
        if found is None:
            derived = self.derive(mask)
            known = {*derived.observed, *derived.gaps}
            bits = mask
            while bits:
                low = bits & -bits
                known |= self._passed(mask & ~low)
                bits &= bits - 1
            found = self.passed_by_mask[mask] = frozenset(known)
        return found

    def shipment(self, ship: Shipment) -> Shipment:
        """An equal shipment in canonical form: every time in UTC, repeating values shared
        (carrier, statuses, places, messages), the checkpoint time the update time when
        they are the same instant."""
        shared = self.shared
        # A lifecycle's tables (``step``, ``merge``) remember nothing: a shipment's
        # strings, never among the lifecycle's own, would each miss into Python only to
        # come back as they are. Only a session's tables share them.
        remembers = self.remembers
        checkpoint = ship.last_checkpoint
        updated = utc_or_none(ship.last_updated_at)
        if checkpoint is not None:
            scanned = utc_or_none(checkpoint.checkpoint_time)
            city, country, said = checkpoint.city, checkpoint.country_name, checkpoint.message
            if remembers:
                city, country, said = shared[city], shared[country], shared[said]
            checkpoint = Checkpoint(
                checkpoint_time=updated if scanned is not None and scanned == updated else scanned,
                city=city,
                country_name=country,
                message=said,
            )
        carrier, status, message = ship.carrier, ship.status, ship.message
        if remembers:
            carrier, status, message = shared[carrier], shared[status], shared[message]
        return Shipment(
            carrier=carrier,
            tracking_number=ship.tracking_number,
            status=status,
            message=message,
            tracking_url=ship.tracking_url,
            estimated_delivery_date=utc_or_none(ship.estimated_delivery_date),
            last_updated_at=updated,
            last_checkpoint=checkpoint,
            unparsed=ship.unparsed,
        )


def tables_for(lifecycle: Lifecycle) -> Tables:
    return lifecycle.memo(TABLES_KEY, Tables)


TABLES_KEY: Final = "cardflow.fold"
D1_TABLES: Final = tables_for(D1_LIFECYCLE)
"""The default lifecycle's tables, at hand (merge is called once per pair of states)."""
