"""The fleet in numbers: one pass over any iterable of card states, into bounded counts.

Nothing here grows with the number of cards except the counters' keys (statuses,
days, sites, carriers, whole days of delay) and a bounded heap of reconcile
candidates, so a log's fold, a store's cursor or a generator can all feed it.
``now`` is a parameter: nothing here reads a clock.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from .. import (
    D1_LIFECYCLE,
    CardState,
    Lifecycle,
    ReconcileReason,
    is_settled,
    last_heard,
    needs_reconcile,
)
from ._tally import (
    Backwards,
    Kept,
    keep_example,
    merge_kept,
    merge_rows,
    merge_tables,
    named,
    relabel,
)

__all__ = [
    "COLUMNS",
    "LATE_BINS",
    "OTHER_CARRIERS",
    "OTHER_OPERATION_STATUSES",
    "OTHER_SHIPMENT_STATUSES",
    "OTHER_SITES",
    "OTHER_STATUSES",
    "PERIODS",
    "TOP",
    "Candidate",
    "CarrierRow",
    "Examples",
    "Fleet",
    "LateBin",
    "SiteRow",
    "Spread",
    "aggregate",
    "is_settled",
    "period_start",
    "slot",
]

TOP: Final = 1000
"""Reconcile candidates the page lists, at most (the full count is always given)."""
COLUMNS: Final = 400
"""Columns of the chart of cards started, at most (unless it takes one per year)."""
PERIODS: Final = ("day", "week", "month", "year")
OTHER_STATUSES: Final = "(other statuses)"
OTHER_OPERATION_STATUSES: Final = "(other operation statuses)"
OTHER_SITES: Final = "(other sites)"
OTHER_CARRIERS: Final = "(other carriers)"
OTHER_SHIPMENT_STATUSES: Final = "(other shipment statuses)"
_NO_SITE: Final = "(no site)"
_NO_CARRIER: Final = "(no carrier)"
_NO_STATUS: Final = "(no status)"
_NEVER_DUE: Final = -(10**9)
"""Ranks a candidate without a due date below every candidate with one."""


@dataclass(frozen=True, slots=True)
class LateBin:
    """Unsettled cards whose days past their due date lie in ``low..high`` (None: open)."""

    label: str
    low: int | None
    high: int | None
    cards: int


LATE_BINS: Final[tuple[tuple[str, int | None, int | None], ...]] = (
    ("not yet due", None, 0),
    ("1", 1, 1),
    ("2", 2, 2),
    ("3", 3, 3),
    ("4-7", 4, 7),
    ("8-14", 8, 14),
    ("15-30", 15, 30),
    ("31-60", 31, 60),
    ("61-90", 61, 90),
    ("91-180", 91, 180),
    ("181-365", 181, 365),
    ("over 365", 366, None),
)
"""The histogram's bins of days late (label, lowest, highest): fine near the due date,
coarse far from it, where only the order of magnitude matters to whoever calls D1."""


@dataclass(frozen=True, slots=True)
class Examples:
    """How many cards show something, and a few of them (the smallest card ids)."""

    cards: int
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A card worth an on-demand status call, with what the table shows of it."""

    card_id: str
    status: str
    reasons: tuple[str, ...]
    due_date: date | None
    days_late: int | None
    """Whole days from the due date to ``now`` (negative: not yet due); None: no due date."""
    last_heard: datetime
    production_site: str | None
    carrier: str | None


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One production site: its cards, how many are unsettled, late, and to reconcile."""

    site: str
    cards: int
    settled: int
    unsettled: int
    late: int
    """Unsettled and past the due date (at least one whole day)."""
    reconcile: int


@dataclass(frozen=True, slots=True)
class Spread:
    """Five numbers of a distribution of whole days: least, quartiles, greatest."""

    count: int
    least: int
    lower: int
    median: int
    upper: int
    greatest: int


@dataclass(frozen=True, slots=True)
class CarrierRow:
    """One carrier: the cards with its shipment, by shipment status, and the estimated
    delivery's spread in days after the card's production request (``start_time``)."""

    carrier: str
    cards: int
    statuses: Mapping[str, int]
    estimated: Spread | None
    """None when none of its shipments carries an estimated delivery date."""


@dataclass(frozen=True, slots=True)
class Fleet:
    """Everything the report shows, counted at ``now``: plain, small, and ordered."""

    now: datetime
    cards: int
    by_status: Mapping[str, int]
    """Cards by current status: the lifecycle's order, then unknown statuses by name."""
    by_operation_status: Mapping[str, int]
    started: Mapping[date, Mapping[str, int]]
    """Cards by the UTC day (or week, month, year: ``period``) of their current
    operation's ``start_time``, by status; keyed by the period's first day."""
    period: str
    """``day``, or the shortest of ``week``, ``month``, ``year`` that spans the
    start days in at most ``COLUMNS`` periods (``year`` when none does)."""
    settled: int
    unsettled: int
    no_due_date: int
    """Unsettled cards without a due date (not in the histogram)."""
    late_bins: tuple[LateBin, ...]
    reconcile: int
    by_reason: Mapping[str, int]
    candidates: tuple[Candidate, ...]
    """The first ``TOP`` candidates: most reasons, then most days late, then the
    longest silence, then card id."""
    anomalies: Mapping[str, Examples]
    gaps: Mapping[str, Examples]
    """Lost notifications: for each status, the cards that passed it unnotified."""
    unknown_statuses: Mapping[str, Examples]
    sites: tuple[SiteRow, ...]
    shipped: int
    """Cards that carry shipment data."""
    carriers: tuple[CarrierRow, ...]
    statuses: tuple[str, ...]
    """Every status the page names, in the order it draws them."""


def slot(day: date, period: str) -> int:
    """The number of ``day``'s period: consecutive periods have consecutive numbers."""
    if period == "day":
        return day.toordinal()
    if period == "week":
        return (day.toordinal() - 1) // 7  # ordinal 1 (0001-01-01) is a Monday
    if period == "month":
        return day.year * 12 + day.month - 1
    return day.year


def period_start(day: date, period: str) -> date:
    """The first day of ``day``'s period (weeks start on Monday)."""
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    if period == "year":
        return day.replace(month=1, day=1)
    return day


def _by_period(
    days: Mapping[date, Counter[str]], order: Mapping[str, int]
) -> tuple[str, dict[date, dict[str, int]]]:
    """The per-day counts in the shortest period that keeps the chart within COLUMNS."""
    period = PERIODS[-1]
    if days:
        first, last = min(days), max(days)
        period = next((p for p in PERIODS if slot(last, p) - slot(first, p) < COLUMNS), PERIODS[-1])
    merged: dict[date, Counter[str]] = {}
    for day, counts in days.items():
        merged.setdefault(period_start(day, period), Counter()).update(counts)
    return period, {d: _ordered(merged[d], order) for d in sorted(merged)}


def _spread(days: Counter[int]) -> Spread | None:
    count = days.total()
    if not count:
        return None
    ordered = sorted(days.items())

    def at(rank: int) -> int:
        seen = 0
        for value, n in ordered:
            seen += n
            if seen > rank:
                return value
        return ordered[-1][0]

    return Spread(
        count, ordered[0][0], at(count // 4), at(count // 2), at(3 * count // 4), ordered[-1][0]
    )


def _ordered(counter: Counter[str], order: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counter.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0])))


def _examples(kept: Mapping[str, Kept], order: Mapping[str, int]) -> dict[str, Examples]:
    names = sorted(kept, key=lambda name: (order.get(name, len(order)), name))
    return {name: Examples(kept[name].cards, kept[name].examples()) for name in names}


def _bin(days_late: int) -> int:
    for index, (_, low, high) in enumerate(LATE_BINS):
        if (low is None or days_late >= low) and (high is None or days_late <= high):
            return index
    raise AssertionError(f"LATE_BINS leave {days_late} days out")


def _candidate(state: CardState, reasons: tuple[str, ...], today: date) -> Candidate:
    return Candidate(
        card_id=state.card_id,
        status=state.status,
        reasons=reasons,
        due_date=state.due_date,
        days_late=None if state.due_date is None else (today - state.due_date).days,
        last_heard=last_heard(state),
        production_site=state.production_site,
        carrier=state.shipment.carrier if state.shipment is not None else None,
    )


def aggregate(
    states: Iterable[CardState],
    now: datetime,
    *,
    lifecycle: Lifecycle = D1_LIFECYCLE,
    top: int = TOP,
) -> Fleet:
    """Count ``states`` (one per card) at ``now`` (timezone-aware) into a :class:`Fleet`."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("aggregate: `now` must be timezone-aware")
    today = now.date()
    cards = settled = no_due = shipped = reconcile = 0
    by_status: Counter[str] = Counter()
    by_op: Counter[str] = Counter()
    started: dict[date, Counter[str]] = {}
    late = [0] * len(LATE_BINS)
    by_reason: Counter[str] = Counter()
    heap: list[tuple[tuple[int, int, float, Backwards], CardState, tuple[str, ...]]] = []
    anomalies: dict[str, Kept] = {}
    gaps: dict[str, Kept] = {}
    unknown: dict[str, Kept] = {}
    sites: dict[str, list[int]] = {}  # cards, settled, late, reconcile
    carriers: dict[str, Counter[str]] = {}
    estimated: dict[str, Counter[int]] = {}
    for state in states:
        cards += 1
        status = state.status
        by_status[status] += 1
        by_op[state.operation_status] += 1
        day = state.start_time.date()  # states hold UTC times
        per_day = started.get(day)
        if per_day is None:
            per_day = started[day] = Counter()
        per_day[status] += 1
        site = sites.get(state.production_site or _NO_SITE)
        if site is None:
            site = sites[state.production_site or _NO_SITE] = [0, 0, 0, 0]
        site[0] += 1
        days_late = None if state.due_date is None else (today - state.due_date).days
        if is_settled(state, lifecycle):
            settled += 1
            site[1] += 1
        elif days_late is None:
            no_due += 1
        else:
            late[_bin(days_late)] += 1
            if days_late > 0:
                site[2] += 1
        for anomaly in state.anomalies:
            keep_example(anomalies, anomaly, state.card_id)
        for gap in state.gaps:
            keep_example(gaps, gap, state.card_id)
        for unknown_status in state.unknown_statuses:
            keep_example(unknown, unknown_status, state.card_id)
        shipment = state.shipment
        if shipment is not None:
            shipped += 1
            carrier = shipment.carrier or _NO_CARRIER
            statuses = carriers.get(carrier)
            if statuses is None:
                statuses = carriers[carrier] = Counter()
            statuses[shipment.status or _NO_STATUS] += 1
            if shipment.estimated_delivery_date is not None:
                leads = estimated.get(carrier)
                if leads is None:
                    leads = estimated[carrier] = Counter()
                leads[(shipment.estimated_delivery_date.date() - day).days] += 1
        found = needs_reconcile(state, now, lifecycle=lifecycle)
        if found:
            reasons = tuple(map(str, found))
            reconcile += 1
            site[3] += 1
            by_reason.update(reasons)
            # The heap keeps the `top` worst: its root is the mildest of them.
            worse = (
                len(reasons),
                _NEVER_DUE if days_late is None else days_late,
                -last_heard(state).timestamp(),
                Backwards(state.card_id),
            )
            if len(heap) < top:
                heapq.heappush(heap, (worse, state, reasons))
            elif top and heap[0][0] < worse:
                heapq.heapreplace(heap, (worse, state, reasons))
    order = {s: i for i, s in enumerate(lifecycle.statuses)}
    unsettled = cards - settled
    candidates = tuple(
        _candidate(state, reasons, today)
        for _, state, reasons in sorted(heap, key=lambda entry: entry[0], reverse=True)
    )
    reason_order = {str(r): i for i, r in enumerate(ReconcileReason)}
    # Open-ended names: the NAMED largest by name, the rest together (_cap).
    keep = named(by_status, (*lifecycle.statuses, ""))
    by_status = relabel(by_status, keep, OTHER_STATUSES)
    started = {d: relabel(c, keep, OTHER_STATUSES) for d, c in started.items()}
    by_op = relabel(by_op, named(by_op), OTHER_OPERATION_STATUSES)
    keep = named({name: kept.cards for name, kept in unknown.items()})
    unknown = merge_kept(unknown, keep, OTHER_STATUSES)
    keep = named({name: row[0] for name, row in sites.items()}, (_NO_SITE,))
    sites = merge_rows(sites, keep, OTHER_SITES)
    keep = named({name: c.total() for name, c in carriers.items()}, (_NO_CARRIER,))
    carriers = merge_tables(carriers, keep, OTHER_CARRIERS)
    estimated = merge_tables(estimated, keep, OTHER_CARRIERS)
    overall: Counter[str] = Counter()
    for counts in carriers.values():
        overall.update(counts)
    keep = named(overall, (_NO_STATUS,))
    carriers = {name: relabel(c, keep, OTHER_SHIPMENT_STATUSES) for name, c in carriers.items()}
    named_statuses = set(by_status) | {s for c in started.values() for s in c}
    period, columns = _by_period(started, order)
    return Fleet(
        now=now,
        cards=cards,
        by_status=_ordered(by_status, order),
        by_operation_status=dict(sorted(by_op.items())),
        started=columns,
        period=period,
        settled=settled,
        unsettled=unsettled,
        no_due_date=no_due,
        late_bins=tuple(
            LateBin(label, low, high, n)
            for (label, low, high), n in zip(LATE_BINS, late, strict=True)
        ),
        reconcile=reconcile,
        by_reason=_ordered(by_reason, reason_order),
        candidates=candidates,
        anomalies=_examples(anomalies, {}),
        gaps=_examples(gaps, order),
        unknown_statuses=_examples(unknown, {}),
        sites=tuple(
            SiteRow(name, n, s, n - s, lt, r)
            for name, (n, s, lt, r) in sorted(sites.items(), key=lambda kv: (-kv[1][0], kv[0]))
        ),
        shipped=shipped,
        carriers=tuple(
            CarrierRow(
                name,
                counts.total(),
                dict(sorted(counts.items())),
                _spread(estimated.get(name, Counter())),
            )
            for name, counts in sorted(carriers.items(), key=lambda kv: (-kv[1].total(), kv[0]))
        ),
        statuses=tuple(sorted(named_statuses, key=lambda s: (order.get(s, len(order)), s))),
    )
