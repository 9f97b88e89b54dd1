"""merge, the tracker's ingest, lenient decoding: each against its reference, side by side."""

from __future__ import annotations

import collections
from typing import Final

import cardflow

from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us
from .throughput import decode_fold

MERGE_LIMIT_US: Final = 2.0
TRACKER_LIMIT: Final = 1.5
LENIENT_LIMIT: Final = 1.2
WARM_PAIRS: Final = 1000
WARM_PASSES: Final = 5
MERGE_ROUNDS: Final = 21


def _halves(data: Dataset) -> list[tuple[cardflow.CardState, cardflow.CardState]]:
    """Two partial states per card: the fold of every other event, and of the rest."""
    ops = [op for body in data.stream() for op in cardflow.decode(body)]
    first, second = cardflow.fold(ops[0::2]), cardflow.fold(ops[1::2])
    return [(state, second[card]) for card, state in first.items() if card in second]


def ingest(data: Dataset) -> cardflow.Tracker:
    tracker = cardflow.Tracker()
    collections.deque(map(tracker.ingest, data.stream()), maxlen=0)
    return tracker


def _merges(pairs: list[tuple[cardflow.CardState, cardflow.CardState]], passes: int) -> None:
    merge = cardflow.merge
    for _ in range(passes):
        for a, b in pairs:
            merge(a, b)


def run(data: Dataset, count: int) -> list[Result]:
    size = f"{data.name} ({data.events:,} events)"
    pairs = _halves(data)
    warm = pairs[:WARM_PAIRS]

    # Merging is quick: more rounds of it, for a median that the noise moves less.
    times = rounds({"merge": lambda: _merges(warm, WARM_PASSES)}, MERGE_ROUNDS)
    times |= rounds(
        {
            "merge, cold": lambda: _merges(pairs, 1),
            "fold": lambda: decode_fold(data),
            "ingest": lambda: ingest(data),
            "strict": lambda: collections.deque(map(cardflow.decode, data.stream()), maxlen=0),
            "lenient": lambda: collections.deque(
                map(cardflow.decode_lenient, data.stream()), maxlen=0
            ),
        },
        count,
    )
    merge_us = median(times["merge"]) / (len(warm) * WARM_PASSES) * 1e6
    cold_us = median(times["merge, cold"]) / len(pairs) * 1e6
    tracker = ratio(times["ingest"], times["fold"])
    lenient = ratio(times["lenient"], times["strict"])
    n = data.events
    return [
        Result(
            "operations",
            f"merge of two states ({len(warm):,} pairs, {WARM_PASSES} passes: in cache)",
            size,
            f"{merge_us:.2f} µs",
            None,
            f"< {MERGE_LIMIT_US:.1f} µs",
            merge_us < MERGE_LIMIT_US,
        ),
        Result(
            "operations",
            f"merge of two states ({len(pairs):,} pairs, once each: out of cache)",
            size,
            f"{cold_us:.2f} µs",
        ),
        Result(
            "operations",
            "Tracker.ingest (change detection), time vs decode + fold",
            size,
            f"{us(median(times['ingest']), n)}/event",
            tracker,
            f"<= {TRACKER_LIMIT:.1f}",
            tracker <= TRACKER_LIMIT,
        ),
        Result(
            "operations",
            "decode_lenient, time vs decode (valid input)",
            size,
            f"{us(median(times['lenient']), n)}/event",
            lenient,
            f"<= {LENIENT_LIMIT:.1f}",
            lenient <= LENIENT_LIMIT,
        ),
    ]
