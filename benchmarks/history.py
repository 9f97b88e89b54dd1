"""Costs that once grew with history, as ratios to the common case, side by side.

- Many operations on one card: folding and tracking events of one card that carries
  thousands of operationIds, per event, against the simulator's traffic (most cards
  one operation), the events decoded beforehand on both sides.
- Adversarial multi-line documents: the command line's reader on lines that each
  close a bracket of documents that never complete, per line against the reader on
  the simulator's JSON Lines, and per byte at 1 MiB against 128 KiB (linear: 1).
"""

from __future__ import annotations

import collections
import io
import itertools
from datetime import UTC, datetime, timedelta
from typing import Final

import cardflow
from cardflow.batch._inputs import Reader

from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us

OPERATIONS: Final = 20_000
"""operationIds on the one card, each with a few events."""
LIMIT: Final = 10.0
"""Per-event (per-line) cost at most this many times the common case: bounded, not flat
(an event of a new operation costs a state of that operation alone)."""
LINEAR: Final = 1.5
"""Per-byte cost of the adversarial input at eight times the size: at most this ratio."""


def _one_busy_card() -> list[cardflow.Operation]:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    codes = ("CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY")
    return [
        cardflow.Operation(
            operation_id=f"op-{n:06d}",
            operation=cardflow.PRODUCE,
            status="PENDING",
            start_time=start + timedelta(seconds=(n * 7919) % OPERATIONS),
            card_id="271b-6e47-8ec3-7f3f",
            details=cardflow.Details(status=code),
        )
        for n in range(OPERATIONS)
        for code in codes
    ]


def _track(ops: list[cardflow.Operation]) -> cardflow.Tracker:
    tracker = cardflow.Tracker()
    tracker.ingest_operations(ops)
    return tracker


def _adversarial(size: int) -> bytes:
    """A document that opens and never completes, then lines that each close a bracket."""
    lines = itertools.cycle((b"]\n", b"}\n"))
    head = b'{"operations": [\n'
    return head + b"".join(itertools.islice(lines, max(1, (size - len(head)) // 2)))


def _read(text: bytes) -> int:
    return len(collections.deque(Reader(io.BytesIO(text)), maxlen=0))


def _lines(text: bytes) -> int:
    return text.count(b"\n")


def run(data: Dataset, count: int) -> list[Result]:
    common = [op for body in data.stream() for op in cardflow.decode(body)]
    busy = _one_busy_card()
    jsonl = b"\n".join(data.stream()) + b"\n"
    hostile = _adversarial(1 << 20)
    small = _adversarial(1 << 17)
    times = rounds(
        {
            "fold, common": lambda: cardflow.fold(common),
            "fold, one busy card": lambda: cardflow.fold(busy),
            "tracker, common": lambda: _track(common),
            "tracker, one busy card": lambda: _track(busy),
            "reader, JSON Lines": lambda: _read(jsonl),
            "reader, adversarial": lambda: _read(hostile),
            "reader, adversarial, small": lambda: _read(small),
        },
        count,
    )
    n, m = len(common), len(busy)
    results = []
    for what in ("fold", "tracker"):
        per_event = ratio(
            [t / m for t in times[f"{what}, one busy card"]],
            [t / n for t in times[f"{what}, common"]],
        )
        results.append(
            Result(
                "history",
                f"{what}: {OPERATIONS:,} operations on one card, per event vs common traffic",
                f"{m:,} vs {n:,} events",
                f"{us(median(times[f'{what}, one busy card']), m)}/event",
                per_event,
                f"<= {LIMIT:.0f}",
                per_event <= LIMIT,
            )
        )
    per_line = ratio(
        [t / _lines(hostile) for t in times["reader, adversarial"]],
        [t / _lines(jsonl) for t in times["reader, JSON Lines"]],
    )
    results.append(
        Result(
            "history",
            "reader: lines closing unfinished documents, per line vs JSON Lines",
            f"{_lines(hostile):,} vs {_lines(jsonl):,} lines",
            f"{us(median(times['reader, adversarial']), _lines(hostile))}/line",
            per_line,
            f"<= {LIMIT:.0f}",
            per_line <= LIMIT,
        )
    )
    linear = ratio(
        [t / len(hostile) for t in times["reader, adversarial"]],
        [t / len(small) for t in times["reader, adversarial, small"]],
    )
    results.append(
        Result(
            "history",
            "reader: the same input, per byte at 1 MiB vs 128 KiB",
            f"{len(hostile):,} vs {len(small):,} bytes",
            f"{median(times['reader, adversarial']) / len(hostile) * 1e9:.0f} ns/byte",
            linear,
            f"<= {LINEAR}",
            linear <= LINEAR,
        )
    )
    return results
