"""The HTML report: counting the states and drawing the page, against the fold before it.

``cardflow report`` folds its input (as ``cardflow fold`` does), then aggregates the
states and renders the page. The report's own part should stay a small share of the
fold's time, and the page's size must not follow the number of cards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from cardflow.report import aggregate, render

from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us
from .throughput import decode_fold

SHARE: Final = 0.25
"""Aggregate + render take at most this share of decode + fold's time."""
PAGE_LIMIT: Final = 2_000_000
"""Bytes of the page, at most, at any size (issue 16: 2 MB for a million cards)."""
NOW: Final = datetime(2026, 3, 1, tzinfo=UTC)
"""After the simulated year: every unsettled card is late (the most work per card)."""


def run(data: Dataset, count: int) -> list[Result]:
    size = f"{data.name} ({data.cards:,} cards)"
    states = list(decode_fold(data).values())
    page = render(aggregate(states, NOW)).encode()
    times = rounds(
        {
            "fold": lambda: decode_fold(data),
            "report": lambda: render(aggregate(states, NOW)),
        },
        count,
    )
    share = ratio(times["report"], times["fold"])
    return [
        Result(
            "report",
            "aggregate + render, time vs decode + fold",
            size,
            f"{us(median(times['report']), data.cards)}/card",
            share,
            f"<= {SHARE:.2f}",
            share <= SHARE,
        ),
        Result(
            "report",
            "page size (bounded: days, statuses, sites, carriers, 1,000 rows)",
            size,
            f"{len(page):,} bytes",
            None,
            f"<= {PAGE_LIMIT:,} bytes",
            len(page) <= PAGE_LIMIT,
        ),
    ]
