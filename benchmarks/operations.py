"""merge, the tracker's ingest, lenient decoding: each against its reference, side by side."""

from __future__ import annotations

import collections
from typing import Final

import cardflow
from cardflow._lifecycle import D1_LIFECYCLE
from cardflow._summary import Summary
from cardflow._tables import tables_for
from cardflow._times import utc

from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us
from .throughput import decode_fold

MERGE_LIMIT: Final = 2.0
"""merge at most this many times the cost of apply."""
TRACKER_LIMIT: Final = 1.3
LENIENT_LIMIT: Final = 1.2
WARM_PAIRS: Final = 1000
WARM_PASSES: Final = 5
MERGE_ROUNDS: Final = 21


def _halves(
    data: Dataset,
) -> tuple[
    list[tuple[cardflow.CardState, cardflow.CardState]],
    list[tuple[cardflow.CardState, cardflow.Operation]],
]:
    """Two partial states per card (the fold of every other event, and of the rest), and
    the first state with one event of the rest."""
    ops = [op for body in data.stream() for op in cardflow.decode(body)]
    first, second = cardflow.fold(ops[0::2]), cardflow.fold(ops[1::2])
    pairs = [(state, second[card]) for card, state in first.items() if card in second]
    one: dict[str, cardflow.Operation] = {}
    for op in ops[1::2]:
        if op.operation == cardflow.PRODUCE:
            one.setdefault(op.card_id, op)
    events = [(state, one[card]) for card, state in first.items() if card in one]
    return pairs, events


def ingest(data: Dataset) -> cardflow.Tracker:
    tracker = cardflow.Tracker()
    collections.deque(map(tracker.ingest, data.stream()), maxlen=0)
    return tracker


def state_per_change(data: Dataset) -> int:
    """The floor of any tracker: decode + fold as ``Tracker.ingest`` does (a body at a
    time, the fast path), and the card's new state made each time an event changed it,
    which every change carries. No change is computed, no ``Ingested`` made."""
    tables = tables_for(D1_LIFECYCLE).session()
    summaries: dict[str, Summary] = {}
    states: dict[str, cardflow.CardState] = {}
    for body in data.stream():
        for op in cardflow.decode(body):
            card = op.card_id
            summary = summaries.get(card)
            if summary is None:
                summary = summaries[card] = Summary(card, utc(op.start_time), op.operation_id)
            if summary.add(op, tables):
                states[card] = summary.freeze(tables)
    return len(states)


def _merges(pairs: list[tuple[cardflow.CardState, cardflow.CardState]], passes: int) -> None:
    merge = cardflow.merge
    for _ in range(passes):
        for a, b in pairs:
            merge(a, b)


def _applies(events: list[tuple[cardflow.CardState, cardflow.Operation]], passes: int) -> None:
    apply = cardflow.apply
    for _ in range(passes):
        for state, op in events:
            apply(state, op)


def run(data: Dataset, count: int) -> list[Result]:
    size = f"{data.name} ({data.events:,} events)"
    pairs, events = _halves(data)
    warm = pairs[:WARM_PAIRS]
    warm_events = events[:WARM_PAIRS]

    # Merging is quick: more rounds of it, for a median that the noise moves less.
    times = rounds(
        {
            "merge": lambda: _merges(warm, WARM_PASSES),
            "apply": lambda: _applies(warm_events, WARM_PASSES),
        },
        MERGE_ROUNDS,
    )
    times |= rounds(
        {
            "merge, cold": lambda: _merges(pairs, 1),
            "fold": lambda: decode_fold(data),
            "ingest": lambda: ingest(data),
            "state per change": lambda: state_per_change(data),
            "strict": lambda: collections.deque(map(cardflow.decode, data.stream()), maxlen=0),
            "lenient": lambda: collections.deque(
                map(cardflow.decode_lenient, data.stream()), maxlen=0
            ),
        },
        count,
    )
    merge_us = median(times["merge"]) / (len(warm) * WARM_PASSES) * 1e6
    apply_us = median(times["apply"]) / (len(warm_events) * WARM_PASSES) * 1e6
    merge_vs_apply = ratio(
        [t / len(warm) for t in times["merge"]], [t / len(warm_events) for t in times["apply"]]
    )
    cold_us = median(times["merge, cold"]) / len(pairs) * 1e6
    tracker = ratio(times["ingest"], times["fold"])
    lenient = ratio(times["lenient"], times["strict"])
    n = data.events
    return [
        Result(
            "operations",
            f"apply an event to a state ({len(warm_events):,} pairs, {WARM_PASSES} passes)",
            size,
            f"{apply_us:.2f} µs",
        ),
        Result(
            "operations",
            f"merge of two states ({len(warm):,} pairs, {WARM_PASSES} passes: in cache),"
            " time vs apply",
            size,
            f"{merge_us:.2f} µs",
            merge_vs_apply,
            f"<= {MERGE_LIMIT:.1f}",
            merge_vs_apply <= MERGE_LIMIT,
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
            "floor of a tracker: decode + fold + a state per change, no change computed,"
            " time vs decode + fold",
            size,
            f"{us(median(times['state per change']), n)}/event",
            ratio(times["state per change"], times["fold"]),
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
