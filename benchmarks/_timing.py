"""Side-by-side timing and the results table.

The machine is shared and noisy, so contenders are timed in interleaved rounds (each
round runs every contender once, in turn) and a ratio is the median of the per-round
ratios: a slow spell hits both sides of a ratio, not one.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Result:
    """One line of the table."""

    group: str
    measure: str
    size: str
    figure: str
    """The absolute figure (noisy: compare the ratio)."""
    ratio: float | None = None
    target: str = ""
    """The target, in words (``>= 0.30``); empty for a line that only informs."""
    ok: bool | None = None


def rounds(contenders: Mapping[str, Callable[[], object]], count: int) -> dict[str, list[float]]:
    """Seconds per run of each contender, over ``count`` interleaved rounds.

    Each run's result is dropped, and the collector run, before the next run starts,
    so that no contender pays for another's garbage.
    """
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(count):
        for name, run in contenders.items():
            gc.collect()
            started = time.perf_counter()
            result = run()
            elapsed = time.perf_counter() - started
            del result
            times[name].append(elapsed)
    gc.collect()
    return times


def median(values: list[float]) -> float:
    return statistics.median(values)


def ratio(numerator: list[float], denominator: list[float]) -> float:
    """The median of the per-round ratios."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def us(seconds: float, per: int) -> str:
    """Microseconds per item, as a figure."""
    return f"{seconds / per * 1e6:.2f} µs"


def table(results: list[Result]) -> str:
    """The results as a Markdown table (readable in a terminal, pasteable in docs)."""
    head = ("group", "measure", "size", "figure", "ratio", "target", "met")
    rows = [head]
    for r in results:
        met = "" if r.ok is None else ("yes" if r.ok else "NO")
        shown = "" if r.ratio is None else f"{r.ratio:.3g}"
        rows.append((r.group, r.measure, r.size, r.figure, shown, r.target, met))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(rows[0]), rule, *(line(row) for row in rows[1:])])
