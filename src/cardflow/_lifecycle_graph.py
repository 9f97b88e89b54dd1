"""A lifecycle's graph, read back from its machine, checked, and the tables it answers from.

:class:`Graph` reads the edges of a built ``transitions`` machine, checks that they make
a production lifecycle (a DAG going up the precedence order, final states without
exits, every state reachable from the initial one) and derives once what
:class:`~cardflow.Lifecycle`'s queries ask: ranks, reachability, and the statuses that
lie on every path between two (must-pass sets), from which gaps follow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import NamedTuple

from transitions import Machine

from cardflow._lifecycle_definition import fail, state_name

# What cardflow's API borrows from here (tests/test_exports.py); Graph is _lifecycle's.
__all__ = ["Edge"]


class Edge(NamedTuple):
    """One transition of a lifecycle: ``trigger`` moves a card from ``source`` to ``dest``."""

    trigger: str
    source: str
    dest: str


def _find_cycle(statuses: Sequence[str], succ: Mapping[str, Sequence[str]]) -> list[str] | None:
    """One cycle of the graph as a closed walk ``[a, ..., a]``, or None when it is acyclic."""
    colour = dict.fromkeys(statuses, 0)  # 0 unseen, 1 on the stack, 2 done
    for root in statuses:
        if colour[root]:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        colour[root] = 1
        while stack:
            node, i = stack[-1]
            nexts = succ[node]
            if i == len(nexts):
                colour[node] = 2
                stack.pop()
                continue
            stack[-1] = (node, i + 1)
            child = nexts[i]
            if colour[child] == 1:
                path = [n for n, _ in stack]
                return [*path[path.index(child) :], child]
            if colour[child] == 0:
                colour[child] = 1
                stack.append((child, 0))
    return None


def _machine_edges(machine: Machine) -> tuple[Edge, ...]:
    """The machine's edges, each once, in the order of its events and their sources."""
    found: dict[Edge, None] = {}
    for trigger, event in machine.events.items():
        for source, moves in event.transitions.items():
            for move in moves:
                if move.dest is None:  # pragma: no cover - refused by normalize
                    fail(f"cycle: edge {trigger!r} from {source} stays in its state")
                found[Edge(trigger, source, move.dest)] = None
    return tuple(found)


def _precedence(names: Sequence[str], precedence: Sequence[str] | None) -> tuple[str, ...]:
    """The statuses lowest first: ``precedence`` if given (a permutation of ``names``)."""
    order = tuple(
        names if precedence is None else (state_name(s, "precedence") for s in precedence)
    )
    unknown = [s for s in order if s not in names]
    if unknown:
        fail(f"precedence names unknown state(s): {', '.join(unknown)}")
    if len(set(order)) != len(order) or set(order) != set(names):
        repeated = sorted({s for s in order if order.count(s) > 1})
        missing = [s for s in names if s not in order]
        fail(
            "precedence is not a permutation of the states: "
            f"missing {', '.join(missing) or '-'}; repeated {', '.join(repeated) or '-'}"
        )
    return order


def _check_edges(
    order: Sequence[str], ranks: Mapping[str, int], finals: frozenset[str], found: Sequence[Edge]
) -> dict[str, list[str]]:
    """Each status's successors, once the edges are checked: no cycle, none going down
    the precedence, none leaving a final state."""
    succ: dict[str, list[str]] = {s: [] for s in order}
    for edge in found:
        if edge.dest not in succ[edge.source]:
            succ[edge.source].append(edge.dest)
    cycle = _find_cycle(order, succ)
    if cycle is not None:
        fail(f"cycle: {' -> '.join(cycle)}")
    for edge in found:
        if ranks[edge.dest] < ranks[edge.source]:
            fail(
                f"edge {edge.trigger!r} {edge.source} -> {edge.dest} goes down the "
                f"precedence (rank {ranks[edge.source]} -> {ranks[edge.dest]})"
            )
    for edge in found:
        if edge.source in finals:
            fail(
                f"final state {edge.source} has an exit: "
                f"edge {edge.trigger!r} {edge.source} -> {edge.dest}"
            )
    return succ


def _reachable(
    order: Sequence[str], succ: Mapping[str, Sequence[str]]
) -> dict[str, frozenset[str]]:
    """What each status leads to (itself excluded), walking the topological ``order`` back."""
    reach: dict[str, frozenset[str]] = {}
    for s in reversed(order):
        below: set[str] = set()
        for d in succ[s]:
            below |= reach[d] | {d}
        reach[s] = frozenset(below)
    return reach


def _must_pass(
    order: Sequence[str], ranks: Mapping[str, int], succ: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, frozenset[str]]]:
    """``[a][b]``: the statuses on every path from a to b (both ends included)."""
    preds: dict[str, list[str]] = {s: [] for s in order}
    for s in order:
        for d in succ[s]:
            preds[d].append(s)
    must_pass: dict[str, dict[str, frozenset[str]]] = {}
    for a in order:
        row: dict[str, frozenset[str]] = {a: frozenset((a,))}
        for b in order[ranks[a] + 1 :]:
            via = [row[p] for p in preds[b] if p in row]
            if via:
                row[b] = frozenset.intersection(*via) | {b}
        must_pass[a] = row
    return must_pass


class Graph:
    """The checked graph of a lifecycle's machine and the tables its queries read.

    Raises :class:`~cardflow._errors.LifecycleError` when the machine's graph cannot be
    a production lifecycle (see :class:`~cardflow.Lifecycle`).
    """

    __slots__ = (
        "edges",
        "edges_from",
        "finals",
        "initial",
        "must_pass",
        "ranks",
        "reach",
        "statuses",
        "successors",
        "triggers",
    )

    statuses: tuple[str, ...]
    ranks: Mapping[str, int]
    initial: str
    finals: frozenset[str]
    edges: tuple[Edge, ...]
    triggers: tuple[str, ...]
    reach: Mapping[str, frozenset[str]]
    must_pass: Mapping[str, Mapping[str, frozenset[str]]]
    edges_from: Mapping[str, tuple[Edge, ...]]
    successors: Mapping[str, tuple[str, ...]]

    def __init__(self, machine: Machine, initial: str, precedence: Sequence[str] | None) -> None:
        names = tuple(machine.states)
        finals = frozenset(n for n, s in machine.states.items() if s.final)
        found = _machine_edges(machine)
        order = _precedence(names, precedence)
        ranks = {s: i for i, s in enumerate(order)}
        succ = _check_edges(order, ranks, finals, found)
        # Every edge goes up the precedence, which is thus a topological order.
        reach = _reachable(order, succ)
        unreachable = [s for s in order if s != initial and s not in reach[initial]]
        if unreachable:
            fail(f"unreachable from the initial state {initial}: {', '.join(unreachable)}")

        self.statuses = order
        self.ranks = ranks
        self.initial = initial
        self.finals = finals
        self.edges = tuple(sorted(found, key=lambda e: (ranks[e.source], ranks[e.dest], e.trigger)))
        self.triggers = tuple(dict.fromkeys(e.trigger for e in found))
        self.reach = reach
        self.must_pass = _must_pass(order, ranks, succ)
        self.edges_from = {s: tuple(e for e in self.edges if e.source == s) for s in order}
        self.successors = {s: tuple(sorted(set(succ[s]), key=ranks.__getitem__)) for s in order}

    def on_one_path(self, statuses: Iterable[str]) -> bool:
        """Whether the known ``statuses`` all lie on one path (see ``Lifecycle``)."""
        chain = sorted({s for s in statuses if s in self.ranks}, key=self.ranks.__getitem__)
        return all(b in self.reach[a] for a, b in pairwise(chain))

    def gaps(self, observed: Iterable[str], current: str) -> frozenset[str]:
        """The statuses a card in ``current`` must have passed unseen (see ``Lifecycle``)."""
        to_current = self.must_pass[self.initial].get(current)
        if to_current is None:
            return frozenset()
        seen = {s for s in observed if s in self.ranks}
        chain = sorted((s for s in seen if current in self.reach[s]), key=self.ranks.__getitem__)
        passed: frozenset[str] = to_current
        if self.on_one_path(chain):
            passed = frozenset()
            start = self.initial
            for step in (*chain, current):
                passed |= self.must_pass[start][step]
                start = step
        return passed - seen - {current}
