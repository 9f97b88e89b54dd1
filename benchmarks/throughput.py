"""Decoding plus folding a realistic stream, against bare msgspec decoding of the same bytes.

Every contender streams: it takes one body at a time from the same bytes and keeps
no event. The floor is msgspec alone, decoding each body into Structs and dropping
them, consumed in C (``deque(maxlen=0)``) so that no Python loop is counted:

- *same Structs*: cardflow's own wire model (the same fields and the same checks);
- *plain Structs*: a copy without the ``operationId`` pattern and the required
  offsets (``benchmarks/_plain.py``), what msgspec costs with no check at all.

The contender is what a user writes: ``fold(chain.from_iterable(map(decode, bodies)))``.
The same measures run on the simulator's traffic (group ``throughput``) and on the
shipment-heavy stream (group ``shipments``, ``_data.SHIPMENTS``).
"""

from __future__ import annotations

import collections
import functools
import itertools
from collections.abc import Callable
from typing import Final

import msgspec

import cardflow

from . import _plain
from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us

TARGET: Final = 0.40
"""decode + fold reaches at least this share of bare msgspec's throughput (plain Structs)."""
STEP_LIMIT: Final = 1.6
"""``cardflow.step`` over every event, at most this many times decode + fold."""
TRACKER_LIMIT: Final = 1.45
"""``Tracker.ingest`` over every body, at most this many times decode + fold."""
FLAT: Final = 1.10
"""Per-event cost (relative to plain Structs) at any size at most this many times the
smallest size's."""


class _SameBody(msgspec.Struct, gc=False):
    operations: list[cardflow.Operation]


_same: Final = msgspec.json.Decoder(_SameBody)
_plain_decoder: Final = msgspec.json.Decoder(_plain.Body)


def bare_same(data: Dataset) -> None:
    collections.deque(map(_same.decode, data.stream()), maxlen=0)


def bare_plain(data: Dataset) -> None:
    collections.deque(map(_plain_decoder.decode, data.stream()), maxlen=0)


def steps(data: Dataset) -> int:
    """What a caller of ``cardflow.step`` writes: a dict of states, each event stepped."""
    states: dict[str, cardflow.CardState] = {}
    get = states.get
    step = cardflow.step
    changed = 0
    for op in itertools.chain.from_iterable(map(cardflow.decode, data.stream())):
        states[op.card_id], found = step(get(op.card_id), op)
        changed += len(found)
    return changed


def tracked(data: Dataset) -> cardflow.Tracker:
    tracker = cardflow.Tracker()
    collections.deque(map(tracker.ingest, data.stream()), maxlen=0)
    return tracker


def decode_fold(data: Dataset) -> cardflow.Folded:
    return cardflow.fold(itertools.chain.from_iterable(map(cardflow.decode, data.stream())))


class _Card:
    """What the floor keeps per card: nothing but a place for the fields it reads."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: object = None


def floor(data: Dataset) -> int:
    """The least any fold in Python does per event, and no rule at all: strict decoding
    (``cardflow.decode``, as the contender), the card found (or made) in a dict, and the
    fields that the join's rules read, read once. What the rules cost comes on top: the
    share of bare msgspec this reaches bounds what a join written in Python can reach."""
    cards: dict[str, _Card] = {}
    get = cards.get
    read = 0
    for op in itertools.chain.from_iterable(map(cardflow.decode, data.stream())):
        card = get(op.card_id)
        if card is None:
            card = cards[op.card_id] = _Card()
        details = op.details
        if details is not None:
            card.last = (
                op.operation_id,
                op.start_time,
                op.end_time,
                op.status,
                op.error_code,
                op.error,
                op.issuer_request_id,
                op.input_file_name,
                details.status,
                details.reason,
                details.due_date,
                details.production_site,
                details.shipment,
                details.issuer_request_id,
                details.input_file_name,
            )
        read += 1
    return read


def rounds_for(events: int) -> int:
    """Enough rounds for a stable median, within the time a size deserves."""
    if events <= 20_000:
        return 15
    if events <= 200_000:
        return 7
    if events <= 2_000_000:
        return 3
    return 1


def run(datasets: list[Dataset], group: str = "throughput") -> list[Result]:
    """Each size side by side with the floors; the same Structs' floor only where the data
    is in memory (a streamed size is there for flatness, against plain Structs)."""
    results: list[Result] = []
    normalized: dict[str, float] = {}
    for data in datasets:
        contenders: dict[str, Callable[[], object]] = {
            "plain": functools.partial(bare_plain, data),
            "fold": functools.partial(decode_fold, data),
            "floor": functools.partial(floor, data),
        }
        if data.lines is not None:
            contenders["same"] = functools.partial(bare_same, data)
            contenders["step"] = functools.partial(steps, data)
            contenders["tracker"] = functools.partial(tracked, data)
        times = rounds(contenders, rounds_for(data.events))
        n = data.events
        mb = data.size / 1e6
        plain, fold = median(times["plain"]), median(times["fold"])
        vs_plain = ratio(times["plain"], times["fold"])
        normalized[data.name] = 1 / vs_plain
        size = f"{data.name} ({n:,} events)"
        if "same" in times:
            same = median(times["same"])
            results += [
                Result(
                    group,
                    "bare msgspec, same Structs",
                    size,
                    f"{us(same, n)}/event, {mb / same:.0f} MB/s",
                ),
                Result(
                    group,
                    "decode + fold, share of bare (same Structs)",
                    size,
                    "",
                    ratio(times["same"], times["fold"]),
                ),
            ]
            for name, what, limit in (
                ("step", "decode + cardflow.step per event", STEP_LIMIT),
                ("tracker", "Tracker.ingest per body", TRACKER_LIMIT),
            ):
                cost = ratio(times[name], times["fold"])
                results.append(
                    Result(
                        group,
                        f"{what}, time vs decode + fold",
                        size,
                        f"{us(median(times[name]), n)}/event",
                        cost,
                        f"<= {limit:.2f}",
                        cost <= limit,
                    )
                )
        results += [
            Result(
                group,
                "bare msgspec, plain Structs",
                size,
                f"{us(plain, n)}/event, {mb / plain:.0f} MB/s",
            ),
            Result(
                group,
                "decode + fold, share of bare (plain Structs)",
                size,
                f"{us(fold, n)}/event, {n / fold / 1e6:.2f} M events/s",
                vs_plain,
                f">= {TARGET:.2f}",
                vs_plain >= TARGET,
            ),
        ]
        results.append(
            Result(
                group,
                "floor: strict decoding + reading what the join reads, no rule (share of bare)",
                size,
                f"{us(median(times['floor']), n)}/event",
                ratio(times["plain"], times["floor"]),
            )
        )
    if len(datasets) > 1:
        first = datasets[0].name
        for data in datasets[1:]:
            growth = normalized[data.name] / normalized[first]
            results.append(
                Result(
                    group,
                    f"cost per event (relative to plain Structs) vs {first}",
                    data.name,
                    "",
                    growth,
                    f"<= {FLAT:.2f} (flat)",
                    growth <= FLAT,
                )
            )
    return results
