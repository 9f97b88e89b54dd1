"""The truth behind generated D1 traffic: plans, their rendering, and the oracle.

Nothing here draws at random: every choice is an input (a :class:`Plan`), so that
the Hypothesis strategies of :mod:`cardflow.testing` and the seeded simulator share
one model of what D1 sends. Pure and free of Hypothesis, so the command line can use
it without the test extras.

- A :class:`Plan` says what really happened to one operation of one card: the walk
  it took on the lifecycle, its identifiers and times.
- :func:`render` turns a plan into the notifications D1 would send, in true order,
  with consistent fields.
- :func:`expected_state` is the oracle: the state a correct consumer must report,
  computed from the truth (the walk and which notifications were delivered), never
  from cardflow's fold. It ranks nothing by precedence; the current status is where
  the card really went.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from ._lifecycle import Lifecycle
from ._wire import (
    PRODUCE,
    Checkpoint,
    Details,
    Operation,
    OperationStatus,
    Shipment,
)

__all__ = [
    "CardHistory",
    "Expected",
    "History",
    "Plan",
    "TrueOperation",
    "expected_state",
    "must_pass",
    "planned_shipment",
    "render",
]

PENDING: Final = OperationStatus.PENDING.value
SUCCESSFUL: Final = OperationStatus.SUCCESSFUL.value
FAILED: Final = OperationStatus.FAILED.value

CARRIERS: Final = ("fedex", "dhl", "ups", "la-poste-colissimo", "chronopost-france", "usps-iv-api")
SITES: Final = ("Gemenos", "Tczew", "Curitiba", "Singapore", "Chennai")
CITIES: Final = (
    ("Paris", "France"),
    ("Lyon", "France"),
    ("Madrid", "Spain"),
    ("Berlin", "Germany"),
)
SHIPMENT_STATUSES: Final = ("INFO_RECEIVED", "IN_TRANSIT", "OUT_FOR_DELIVERY", "DELIVERED")


@dataclass(frozen=True)
class Plan:
    """What really happened to one operation: every choice the renderer needs.

    ``walk`` is the statuses the card went through, in order, starting at the
    lifecycle's initial state. ``updates[i]`` is how many further shipment updates
    followed the i-th status (used where the lifecycle says the status carries a
    shipment). ``unknown`` inserts notifications with statuses the lifecycle does not
    know, each after the walk position it names.

    ``start_time`` is the true instant; its offset (``tzinfo``) is the one D1 writes
    the operation's timestamps in, and ``time_digits`` how many fractional digits at
    least (None: as few as the instant needs, D1's own spelling). The spelling changes
    the bodies' text, never the instants: a correct consumer compares instants.
    """

    card_id: str
    operation_id: str
    start_time: datetime
    walk: tuple[str, ...]
    fail_at_end: bool = False
    duration: timedelta = timedelta(days=3)
    due_in_days: int = 4
    site: str = "Gemenos"
    reason: str = "Embossing quality check failed"
    error_code: str = "FIELD_INVALID_FORMAT"
    error: str = "pan"
    carrier: str = "fedex"
    tracking_number: str = "1234567890"
    updates: tuple[int, ...] = ()
    unknown: tuple[tuple[int, str], ...] = ()
    issuer_request_id: str | None = None
    input_file_name: str | None = None
    time_digits: int | None = None


@dataclass(frozen=True)
class TrueOperation:
    """A plan and the notifications it renders to, in true order."""

    plan: Plan
    notifications: tuple[Operation, ...]

    @property
    def key(self) -> tuple[datetime, str]:
        """How operations of one card are ordered: (startTime, operationId).

        Instants compare whatever their offsets; equal start times (two operations of
        one card started at the same instant) go to the greater operationId.
        """
        return (self.plan.start_time, self.plan.operation_id)


@dataclass(frozen=True)
class CardHistory:
    """Everything that really happened to one card."""

    card_id: str
    operations: tuple[TrueOperation, ...]

    @property
    def current(self) -> TrueOperation:
        """The operation a correct consumer must report: the greatest key."""
        return max(self.operations, key=lambda o: o.key)


@dataclass(frozen=True)
class History:
    """The true histories of several cards, and other operations sent beside them."""

    cards: tuple[CardHistory, ...]
    others: tuple[bytes, ...] = ()
    """Non-PRODUCE operations sent beside them, as raw JSON (their details may not fit)."""

    def notifications(self) -> list[Operation]:
        """Every PRODUCE notification, card by card, operation by operation, in true order."""
        return [n for c in self.cards for o in c.operations for n in o.notifications]


@dataclass(frozen=True)
class Expected:
    """The oracle's answer for one card (the fields any correct consumer agrees on)."""

    card_id: str
    operation_id: str
    status: str
    operation_status: str
    end_time: datetime | None
    error_code: str | None
    error: str | None
    reason: str | None
    due_date: date | None
    production_site: str | None
    shipment: Shipment | None
    observed: frozenset[str]
    unknown_statuses: frozenset[str]
    gaps: frozenset[str]
    operation_ids: frozenset[str]
    issuer_request_id: str | None = None
    input_file_name: str | None = None
    extra: Mapping[str, object] = field(default_factory=dict)


def _operation_status(lifecycle: Lifecycle, status: str, last: bool, fail: bool) -> str:
    """The top-level status D1 sends with ``status``, from the lifecycle's allowed set."""
    allowed = lifecycle.operation_statuses(status)
    if last and fail and FAILED in allowed:
        return FAILED
    if PENDING in allowed and not lifecycle.is_final(status):
        return PENDING
    if SUCCESSFUL in allowed and (lifecycle.is_success(status) or FAILED not in allowed):
        return SUCCESSFUL
    if FAILED in allowed:
        return FAILED
    return min(allowed) if allowed else PENDING


def planned_shipment(plan: Plan, update: int, status: str) -> Shipment:
    """The ``update``-th shipment data of the plan (0: the first, estimate only)."""
    eta = plan.start_time + plan.duration + timedelta(days=2)
    if update == 0:
        return Shipment(estimated_delivery_date=eta)
    when = plan.start_time + plan.duration + timedelta(hours=6 * update)
    city, country = CITIES[update % len(CITIES)]
    return Shipment(
        carrier=plan.carrier,
        tracking_number=plan.tracking_number,
        status=SHIPMENT_STATUSES[min(update, len(SHIPMENT_STATUSES)) - 1],
        message=f"Update {update} ({status})",
        tracking_url=f"https://tracking.example/{plan.carrier}/{plan.tracking_number}",
        estimated_delivery_date=eta,
        last_updated_at=when,
        last_checkpoint=Checkpoint(
            checkpoint_time=when, city=city, country_name=country, message="Scanned"
        ),
    )


def render(plan: Plan, lifecycle: Lifecycle) -> tuple[Operation, ...]:
    """The notifications D1 sends for ``plan``, in true order, with consistent fields.

    One operationId and startTime for the whole operation; endTime once it completed;
    dueDate and productionSite from the status that plans production on; reason,
    errorCode and error where the status carries them; a first shipment notification
    with an estimate, then updates with rising ``lastUpdatedAt``.
    """
    out: list[Operation] = []
    end_time = plan.start_time + plan.duration
    planned = False
    shipments = 0
    unknown_after: dict[int, list[str]] = {}
    for position, code in plan.unknown:
        unknown_after.setdefault(position, []).append(code)
    common = {
        "operation_id": plan.operation_id,
        "operation": PRODUCE,
        "start_time": plan.start_time,
        "card_id": plan.card_id,
        "issuer_request_id": plan.issuer_request_id,
        "input_file_name": plan.input_file_name,
    }
    last_index = len(plan.walk) - 1
    for index, status in enumerate(plan.walk):
        carries = lifecycle.carries(status)
        planned = planned or "due_date" in carries
        op_status = _operation_status(lifecycle, status, index == last_index, plan.fail_at_end)
        done = op_status != PENDING
        failed = op_status == FAILED
        plan_fields = {}
        if planned:
            plan_fields = {
                "due_date": (plan.start_time + timedelta(days=plan.due_in_days)).date(),
                "production_site": plan.site,
            }
        copies = 1
        if "shipment" in carries:
            copies += plan.updates[index] if index < len(plan.updates) else 0
        for _ in range(copies):
            shipment = None
            if "shipment" in carries:
                shipment = planned_shipment(plan, shipments, status)
                shipments += 1
            details = Details(
                status=status,
                reason=plan.reason if "reason" in carries else None,
                shipment=shipment,
                **plan_fields,  # type: ignore[arg-type]
            )
            with_error = "error" in carries and failed
            out.append(
                Operation(
                    status=op_status,
                    end_time=end_time if done else None,
                    details=details,
                    error_code=plan.error_code if with_error else None,
                    error=plan.error if with_error else None,
                    **common,  # type: ignore[arg-type]
                )
            )
        for code in unknown_after.get(index, ()):
            out.append(
                Operation(status=PENDING, details=Details(status=code), **common)  # type: ignore[arg-type]
            )
    return tuple(out)


def must_pass(lifecycle: Lifecycle, observed: Iterable[str], current: str) -> frozenset[str]:
    """Gaps by brute force: the statuses on every path to ``current`` through the evidence.

    Enumerates every path from the initial state to ``current`` over the lifecycle's
    edges, keeps those through every observed status that can precede ``current`` (or
    all of them when no path goes through every one), and intersects them. An
    independent check of :meth:`cardflow.Lifecycle.gaps`, slow on purpose.
    """
    successors: dict[str, set[str]] = {}
    for edge in lifecycle.edges:
        successors.setdefault(edge.source, set()).add(edge.dest)
    paths: list[tuple[str, ...]] = []

    def walk(path: tuple[str, ...]) -> None:
        if path[-1] == current:
            paths.append(path)
            return
        for nxt in sorted(successors.get(path[-1], ())):
            walk((*path, nxt))

    if current not in lifecycle.statuses:
        return frozenset()
    walk((lifecycle.initial,))
    seen = {s for s in observed if s in lifecycle.statuses}
    before = {s for s in seen if s != current and any(s in p for p in paths)}
    through = [p for p in paths if before <= set(p)]
    chosen = through or paths
    common = set(chosen[0]).intersection(*map(set, chosen[1:]))
    return frozenset(common - seen - {current})


def expected_state(
    card: CardHistory,
    delivered: Iterable[Operation],
    lifecycle: Lifecycle,
) -> Expected | None:
    """What a correct consumer reports for ``card`` once ``delivered`` arrived (any order).

    ``delivered`` is the set of the card's notifications that arrived at least once
    (an on-demand response counts: it is a notification too). None when nothing of
    the card arrived. The answer comes from the truth: the current operation's walk
    in true order, not from any ranking of statuses.
    """
    arrived = set(delivered)
    seen_ops = [o for o in card.operations if any(n in arrived for n in o.notifications)]
    if not seen_ops:
        return None
    current = max(seen_ops, key=lambda o: o.key)
    got = [n for n in current.notifications if n in arrived]  # true order
    known = [n for n in got if _status(n) in lifecycle.statuses]
    unknown = {_status(n) for n in got if _status(n) not in lifecycle.statuses}
    if known:
        last_status = _status(known[-1])
        winner = [n for n in known if _status(n) == last_status][-1]
    else:
        last_status = max(unknown)
        winner = [n for n in got if _status(n) == last_status][-1]
    observed = frozenset(_status(n) for n in known)
    shipments = [n.details.shipment for n in got if n.details and n.details.shipment]
    # Within one status, later shipment updates carry later lastUpdatedAt; across
    # statuses, the truth's order is the order of lastUpdatedAt too.
    shipment = shipments[-1] if shipments else None

    def carried(attr: str) -> object:
        values = [getattr(n.details, attr) for n in got if n.details is not None]
        present = [v for v in values if v is not None]
        return present[-1] if present else None

    return Expected(
        card_id=card.card_id,
        operation_id=current.plan.operation_id,
        status=last_status,
        operation_status=winner.status,
        end_time=winner.end_time,
        error_code=winner.error_code,
        error=winner.error,
        reason=carried("reason"),  # type: ignore[arg-type]
        due_date=carried("due_date"),  # type: ignore[arg-type]
        production_site=carried("production_site"),  # type: ignore[arg-type]
        shipment=shipment,
        observed=observed,
        unknown_statuses=frozenset(unknown),
        gaps=must_pass(lifecycle, observed, last_status) if known else frozenset(),
        operation_ids=frozenset(o.plan.operation_id for o in seen_ops),
        issuer_request_id=current.plan.issuer_request_id
        if any(n.issuer_request_id for n in got)
        else None,
        input_file_name=current.plan.input_file_name
        if any(n.input_file_name for n in got)
        else None,
    )


def _status(op: Operation) -> str:
    return op.details.status or "" if op.details is not None else ""


def plans_by_card(plans: Sequence[Plan]) -> dict[str, list[Plan]]:
    """Group plans by card, keeping their order."""
    out: dict[str, list[Plan]] = {}
    for plan in plans:
        out.setdefault(plan.card_id, []).append(plan)
    return out
