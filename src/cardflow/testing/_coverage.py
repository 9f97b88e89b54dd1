"""Lifecycle coverage: which edges and statuses a set of generated histories went through.

Model-based testing measures its inputs against the model they were drawn from
(XState's ``@xstate/test`` reports state and transition coverage the same way): a
property that never saw a card come back to the sender says nothing about returns.
:func:`edge_coverage` counts, per edge of a lifecycle, how many true walks took it.

Pure: it reads plans and histories, so it needs no Hypothesis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from types import MappingProxyType
from typing import Protocol

from .._lifecycle import D1_LIFECYCLE, Edge, Lifecycle
from .._model import CardHistory, History, Plan, TrueOperation

__all__ = ["Coverage", "edge_coverage"]


@dataclass(frozen=True)
class Coverage:
    """How often each edge and status of ``lifecycle`` occurred in some walks.

    ``edges`` and ``statuses`` hold every edge and status of the lifecycle, with 0
    for those no walk reached. Edges joining the same two statuses under different
    triggers cannot be told apart in a walk: a step between them counts for each.
    """

    lifecycle: Lifecycle
    edges: Mapping[Edge, int]
    statuses: Mapping[str, int]
    walks: int

    @property
    def covered(self) -> tuple[Edge, ...]:
        """The edges taken at least once, in the lifecycle's order."""
        return tuple(e for e, n in self.edges.items() if n)

    @property
    def missed(self) -> tuple[Edge, ...]:
        """The edges no walk took, in the lifecycle's order."""
        return tuple(e for e, n in self.edges.items() if not n)

    @property
    def missed_statuses(self) -> tuple[str, ...]:
        """The statuses no walk reached, in precedence order."""
        return tuple(s for s, n in self.statuses.items() if not n)

    @property
    def complete(self) -> bool:
        """Whether every edge (and so every status) was exercised."""
        return not self.missed

    def summary(self) -> str:
        """A readable report: the totals, then each edge with its count."""
        total = len(self.edges)
        lines = [
            f"edge coverage of {self.lifecycle.name}: {len(self.covered)}/{total} edges, "
            f"{total and 100 * len(self.covered) // total}%, over {self.walks} walks"
        ]
        width = max((len(e.trigger) for e in self.edges), default=0)
        for edge, count in self.edges.items():
            mark = f"{count:6d}" if count else "MISSED"
            lines.append(f"  {mark}  {edge.trigger:<{width}}  {edge.source} -> {edge.dest}")
        if self.missed_statuses:
            lines.append(f"  statuses never reached: {', '.join(self.missed_statuses)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


class _HasHistory(Protocol):
    """A :class:`~cardflow.testing.Traffic`, or anything else that carries a history."""

    @property
    def history(self) -> History: ...


Walked = History | CardHistory | TrueOperation | Plan | _HasHistory | Iterable[str]
"""What :func:`edge_coverage` reads: histories, plans, traffic, or walks (status sequences)."""


def _walks(item: object) -> Iterable[tuple[str, ...]]:
    """The walks in ``item``; a Traffic (or anything with a ``history``) gives its history's."""
    history = getattr(item, "history", None)
    if isinstance(history, History):
        item = history
    if isinstance(item, History):
        for card in item.cards:
            yield from _walks(card)
    elif isinstance(item, CardHistory):
        for operation in item.operations:
            yield operation.plan.walk
    elif isinstance(item, TrueOperation):
        yield item.plan.walk
    elif isinstance(item, Plan):
        yield item.walk
    elif isinstance(item, Iterable) and not isinstance(item, str | bytes):
        walk = tuple(item)
        if not all(isinstance(s, str) for s in walk):
            raise TypeError(f"a walk is a sequence of statuses, got {item!r}")
        yield walk
    else:
        raise TypeError(
            "edge_coverage reads histories, card histories, true operations, plans, "
            f"traffic or walks, got {item!r}"
        )


def edge_coverage(items: Iterable[Walked], lifecycle: Lifecycle = D1_LIFECYCLE) -> Coverage:
    """Count the edges and statuses of ``lifecycle`` that the walks in ``items`` took.

    ``items`` may mix :class:`~cardflow.testing.History`, ``CardHistory``,
    ``TrueOperation``, ``Plan``, ``Traffic`` and plain walks. A walk that leaves the
    lifecycle (a step that is no edge of it, or an unknown status) raises
    ``ValueError``: it was drawn from another lifecycle.
    """
    if not isinstance(lifecycle, Lifecycle):
        raise TypeError(f"lifecycle must be a Lifecycle, got {lifecycle!r}")
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise TypeError(f"items must be an iterable of histories, plans or walks, got {items!r}")
    by_step: dict[tuple[str, str], list[Edge]] = {}
    for edge in lifecycle.edges:
        by_step.setdefault((edge.source, edge.dest), []).append(edge)
    edges = dict.fromkeys(lifecycle.edges, 0)
    statuses = dict.fromkeys(lifecycle.statuses, 0)
    walks = 0
    for item in items:
        for walk in _walks(item):
            walks += 1
            for status in walk:
                if status not in statuses:
                    raise ValueError(
                        f"walk {' -> '.join(walk)}: {status!r} is no status of {lifecycle.name}"
                    )
                statuses[status] += 1
            for step in pairwise(walk):
                found = by_step.get(step)
                if found is None:
                    raise ValueError(
                        f"walk {' -> '.join(walk)}: {step[0]} -> {step[1]} is no edge of "
                        f"{lifecycle.name}"
                    )
                for edge in found:
                    edges[edge] += 1
    return Coverage(
        lifecycle=lifecycle,
        edges=MappingProxyType(edges),
        statuses=MappingProxyType(statuses),
        walks=walks,
    )
