"""Bounded tallies: a count with its few smallest card ids, and long tails in one row.

Sites, carriers, shipment statuses, operation statuses and unknown statuses are
open-ended strings: a log could bring one per card. The page names the ``NAMED``
largest of each (and every status the lifecycle knows) and counts the rest together
under one label, such as ``(other sites)``. Examples are the ``EXAMPLES`` smallest
card ids, whatever the number of cards.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection, Mapping
from typing import Final, TypeVar

__all__ = [
    "EXAMPLES",
    "NAMED",
    "Backwards",
    "Kept",
    "keep_example",
    "merge_kept",
    "merge_rows",
    "merge_tables",
    "named",
    "relabel",
]

EXAMPLES: Final = 5
"""Example card ids kept per anomaly, gap and unknown status (the smallest ids)."""
NAMED: Final = 25
"""Values of an open-ended field the page names, at most; the rest share one row."""

_K = TypeVar("_K")


def named(sizes: Mapping[str, int], always: Collection[str] = ()) -> frozenset[str]:
    """The names shown by name: those in ``always``, and the ``NAMED`` largest others
    (ties by name)."""
    others = sorted((name for name in sizes if name not in always), key=lambda n: (-sizes[n], n))
    return frozenset(name for name in sizes if name in always) | frozenset(others[:NAMED])


def relabel(counts: Mapping[str, int], keep: Collection[str], other: str) -> Counter[str]:
    """``counts`` with every name not in ``keep`` counted under ``other``."""
    out: Counter[str] = Counter()
    for name, n in counts.items():
        out[name if name in keep else other] += n
    return out


def merge_tables(
    tables: Mapping[str, Counter[_K]], keep: Collection[str], other: str
) -> dict[str, Counter[_K]]:
    """Counters by name, those of the names not in ``keep`` added up under ``other``."""
    out: dict[str, Counter[_K]] = {}
    for name, counts in tables.items():
        key = name if name in keep else other
        mine = out.get(key)
        if mine is None:
            out[key] = Counter(counts)
        else:
            mine.update(counts)
    return out


class Kept:
    """A count and the smallest few card ids, kept in a bounded max-heap."""

    __slots__ = ("cards", "heap")

    def __init__(self) -> None:
        self.cards = 0
        self.heap: list[Backwards] = []

    def add(self, card_id: str) -> None:
        self.cards += 1
        self.offer(card_id)

    def offer(self, card_id: str) -> None:
        """Keep ``card_id`` as an example if it is among the smallest (no count)."""
        if len(self.heap) < EXAMPLES:
            heapq.heappush(self.heap, Backwards(card_id))
        elif card_id < self.heap[0].value:
            heapq.heapreplace(self.heap, Backwards(card_id))

    def examples(self) -> tuple[str, ...]:
        """The kept card ids, smallest first."""
        return tuple(sorted(r.value for r in self.heap))


class Backwards:
    """A string ordered backwards, so that heapq's min-heap keeps the smallest ids."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: Backwards) -> bool:
        return self.value > other.value


def merge_kept(table: dict[str, Kept], keep: frozenset[str], other: str) -> dict[str, Kept]:
    out: dict[str, Kept] = {}
    for name, kept in table.items():
        if name in keep:
            out[name] = kept
            continue
        merged = out.setdefault(other, Kept())
        merged.cards += kept.cards
        for card in kept.heap:
            merged.offer(card.value)
    return out


def merge_rows(
    table: dict[str, list[int]], keep: frozenset[str], other: str
) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for name, row in table.items():
        key = name if name in keep else other
        mine = out.get(key)
        if mine is None:
            out[key] = list(row)
        else:
            mine[:] = [a + b for a, b in zip(mine, row, strict=True)]
    return out


def keep_example(table: dict[str, Kept], name: str, card_id: str) -> None:
    kept = table.get(name)
    if kept is None:
        kept = table[name] = Kept()
    kept.add(card_id)
