"""Seeded D1 traffic from the same model as the test harness, streamed as body lines.

``simulate(cards=N, seed=S)`` plans each card's production (a walk on the
lifecycle, weighted to look like real traffic: most cards reach the success
status, a few fail or are canceled, some stop mid-way), renders it with
:func:`cardflow._model.render`, and delivers it the way D1 does: duplicates,
reordering within a window, bulk bodies, lost notifications repaired by an
on-demand response, and other operation types mixed in. The same arguments always
give the same bytes. Memory stays bounded by the reorder window, not the stream.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._model import CARRIERS, SITES, Plan, render
from ._wire import Operation, wire_time

__all__ = ["SimulationOptions", "simulate", "simulate_plans"]

_EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)
_OTHER: Final = ("ACTIVATE", "STANDALONE_TRACKING", "SUSPEND", "DIGITIZE", "RENEW")
_BODY_OPEN: Final = b'{"operations":['


@dataclass(frozen=True)
class SimulationOptions:
    """How D1 delivers: every probability is per notification."""

    duplicates: float = 0.15
    """Chance that a notification is delivered once more (again and again: geometric)."""
    reorder: bool = True
    """Shuffle deliveries within a sliding window of ``window`` notifications."""
    window: int = 1000
    bulk: int = 1
    """Operations per body, at most (bodies mix cards)."""
    lose: float = 0.0
    """Chance that a notification is never delivered; the card then gets an on-demand
    response with its latest event: a body of its own with ``confirmedAt``, as a log
    keeps a reading, so that folding it confirms the card."""
    mix_other_ops: bool = False
    """Send a non-PRODUCE operation beside about one card in ten."""
    shipment_updates: int = 5
    """The most shipment updates after a status that ships (drawn from 0 to this)."""

    def __post_init__(self) -> None:
        for name in ("duplicates", "lose"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if self.bulk < 1:
            raise ValueError(f"bulk must be at least 1, got {self.bulk}")
        if self.window < 1:
            raise ValueError(f"window must be at least 1, got {self.window}")
        if self.shipment_updates < 0:
            raise ValueError(f"shipment_updates must be >= 0, got {self.shipment_updates}")


def _walk(rng: random.Random, lifecycle: Lifecycle) -> tuple[str, ...]:
    """A walk weighted like real traffic, from the lifecycle's traits alone."""
    path = [lifecycle.initial]
    while True:
        here = path[-1]
        successors = lifecycle.successors(here)
        if not successors:
            break
        stop = 0.97 if lifecycle.is_success(here) else 0.01
        if rng.random() < stop:
            break
        weights = []
        for status in successors:
            if lifecycle.is_final(status) and not lifecycle.is_success(status):
                weights.append(0.005)
            elif "error" in lifecycle.carries(status):
                weights.append(0.02)
            else:
                weights.append(1.0)
        path.append(rng.choices(successors, weights)[0])
    return tuple(path)


def _card_id(rng: random.Random) -> str:
    digits = f"{rng.getrandbits(64):016x}"
    return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def simulate_plans(
    cards: int, seed: int, *, lifecycle: Lifecycle = D1_LIFECYCLE, shipment_updates: int = 5
) -> Iterator[Plan]:
    """The plans of ``cards`` cards, one operation each (a few re-ordered: two)."""
    rng = random.Random(seed)
    for _ in range(cards):
        card_id = _card_id(rng)
        operations = 2 if rng.random() < 0.02 else 1
        start = _EPOCH + timedelta(seconds=rng.randrange(365 * 24 * 3600))
        for _ in range(operations):
            walk = _walk(rng, lifecycle)
            yield Plan(
                card_id=card_id,
                operation_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                start_time=start + timedelta(milliseconds=rng.randrange(1000)),
                walk=walk,
                fail_at_end=rng.random() < 0.5,
                duration=timedelta(hours=rng.randrange(24, 240)),
                due_in_days=rng.randrange(3, 10),
                site=rng.choice(SITES),
                carrier=rng.choice(CARRIERS),
                tracking_number=str(rng.randrange(10**9, 10**10)),
                updates=tuple(rng.randint(0, shipment_updates) for _ in walk),
            )
            start += timedelta(days=rng.randrange(1, 20))


def _other(rng: random.Random, card_id: str) -> bytes:
    start = _EPOCH + timedelta(seconds=rng.randrange(365 * 24 * 3600))
    return msgspec.json.encode(
        {
            "operationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "operation": rng.choice(_OTHER),
            "status": "SUCCESSFUL",
            "startTime": start.isoformat().replace("+00:00", "Z"),
            "cardId": card_id,
            "details": {"status": rng.choice(["ACTIVE", 7, "CARD_RETURNED"])},
        }
    )


_encoder: Final = msgspec.json.Encoder()


def _op_json(op: Operation) -> bytes:
    """``encode([op])`` without its envelope, and twice as fast for simulated operations.

    msgspec writes a UTC time with six fractional digits; D1 (and ``encode``) writes
    milliseconds when that is exact. Every simulated time is UTC to the millisecond
    and no simulated string ends in ``000Z``, so dropping ``000`` before ``Z"`` gives
    ``encode``'s bytes (tests/test_simulate.py checks it).
    """
    return _encoder.encode(op).replace(b'000Z"', b'Z"')


class _Reading(bytes):
    """A logged on-demand response: a whole body (``confirmedAt`` and the card's latest
    event), delivered alone, never batched with notifications."""


_READ_AFTER: Final = timedelta(days=30)
"""How long after an operation's planned end its on-demand status is read: past every
notification of it (shipment updates included)."""


def _reading(latest: Operation, end: datetime) -> _Reading:
    """The on-demand answer for a card whose latest event is ``latest``, read after
    the operation ended (``end``), as ``cardflow fold`` reads a logged one."""
    at = wire_time(end + _READ_AFTER)
    return _Reading(b'{"confirmedAt":"%s","operations":[%s]}' % (at.encode(), _op_json(latest)))


def simulate(
    cards: int,
    seed: int,
    options: SimulationOptions | None = None,
    *,
    lifecycle: Lifecycle = D1_LIFECYCLE,
) -> Iterator[bytes]:
    """D1 bodies (one JSON document each, no newline) for ``cards`` simulated cards."""
    if cards < 0:
        raise ValueError(f"cards must be >= 0, got {cards}")
    opts = options or SimulationOptions()
    rng = random.Random(seed ^ 0x5EED)
    window: list[bytes] = []
    batch: list[bytes] = []

    def emit(item: bytes) -> Iterator[bytes]:
        if isinstance(item, _Reading):  # an on-demand answer is a body of its own
            yield bytes(item)
            return
        batch.append(item)
        if len(batch) >= rng.randint(1, opts.bulk):
            yield _BODY_OPEN + b",".join(batch) + b"]}"
            batch.clear()

    def deliver(item: bytes) -> Iterator[bytes]:
        if not opts.reorder:
            yield from emit(item)
            return
        window.append(item)
        if len(window) >= opts.window:
            at = rng.randrange(len(window))
            window[at], window[-1] = window[-1], window[at]
            yield from emit(window.pop())

    plans = simulate_plans(cards, seed, lifecycle=lifecycle, shipment_updates=opts.shipment_updates)
    for plan in plans:
        notes = render(plan, lifecycle)
        lost = False
        for note in notes:
            if opts.lose and rng.random() < opts.lose:
                lost = True
                continue
            item = _op_json(note)
            yield from deliver(item)
            while rng.random() < opts.duplicates:
                yield from deliver(item)
        if lost:
            yield from deliver(_reading(notes[-1], plan.start_time + plan.duration))
        if opts.mix_other_ops and rng.random() < 0.1:
            yield from deliver(_other(rng, plan.card_id))
    rng.shuffle(window)
    for item in window:
        yield from emit(item)
    if batch:
        yield _BODY_OPEN + b",".join(batch) + b"]}"
