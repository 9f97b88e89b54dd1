"""The lifecycle definition: the D1 default, validation, and the derived queries.

The derived queries (can_precede, on_one_path, gaps) are checked against a brute-force
oracle that enumerates every path of the graph, over random lifecycles and the D1 one.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transitions import Machine, MachineError

from cardflow._errors import LifecycleError
from cardflow._lifecycle import (
    D1_LIFECYCLE,
    STATUS_MEANINGS,
    Edge,
    Lifecycle,
    ProductionStatus,
)

S = ProductionStatus

# The D1 lifecycle as the spec states it, written out independently of the module.
D1_ORDER = (
    "CARD_PROD_REQUESTED",
    "DATA_PREPARED",
    "CARD_PROD_READY",
    "CARD_PROD_ONGOING",
    "CARD_PROD_EXCEPTION",
    "CARD_PROD_DONE",
    "DATA_EXCEPTION",
    "CARD_PROD_CANCELED",
    "CARD_SHIPPED",
    "CARD_RETURNED",
)
D1_FINALS = frozenset({"DATA_EXCEPTION", "CARD_PROD_CANCELED", "CARD_RETURNED"})
_BEFORE_SHIPMENT = (
    "CARD_PROD_REQUESTED",
    "DATA_PREPARED",
    "CARD_PROD_READY",
    "CARD_PROD_ONGOING",
    "CARD_PROD_EXCEPTION",
    "CARD_PROD_DONE",
)
D1_EDGES = frozenset(
    {
        ("CARD_PROD_REQUESTED", "DATA_PREPARED"),
        ("DATA_PREPARED", "CARD_PROD_READY"),
        ("CARD_PROD_READY", "CARD_PROD_ONGOING"),
        ("CARD_PROD_ONGOING", "CARD_PROD_DONE"),
        ("CARD_PROD_DONE", "CARD_SHIPPED"),
        ("CARD_SHIPPED", "CARD_RETURNED"),
        ("CARD_PROD_REQUESTED", "DATA_EXCEPTION"),
        ("DATA_PREPARED", "DATA_EXCEPTION"),
        ("CARD_PROD_ONGOING", "CARD_PROD_EXCEPTION"),
        ("CARD_PROD_EXCEPTION", "CARD_PROD_DONE"),
        *((s, "CARD_PROD_CANCELED") for s in _BEFORE_SHIPMENT),
    }
)


# --- the brute-force oracle -------------------------------------------------------------


@dataclass(frozen=True)
class Graph:
    """A lifecycle as plain data, for the oracle and for building Lifecycles."""

    order: tuple[str, ...]  # precedence, lowest first; order[0] is the initial state
    edges: frozenset[tuple[str, str]]
    finals: frozenset[str]

    def paths(self) -> list[tuple[str, ...]]:
        """Every path that starts at the initial state (the graph is a DAG)."""
        found: list[tuple[str, ...]] = []

        def walk(path: tuple[str, ...]) -> None:
            found.append(path)
            for source, dest in sorted(self.edges):
                if source == path[-1]:
                    walk((*path, dest))

        walk((self.order[0],))
        return found


def oracle_can_precede(paths: Sequence[tuple[str, ...]], a: str, b: str) -> bool:
    return any(a in p and b in p and p.index(a) < p.index(b) for p in paths)


def oracle_on_one_path(paths: Sequence[tuple[str, ...]], statuses: Iterable[str]) -> bool:
    known = set(chain.from_iterable(paths))
    wanted = {s for s in statuses if s in known}
    return any(wanted <= set(p) for p in paths)


def oracle_gaps(
    paths: Sequence[tuple[str, ...]], observed: Iterable[str], current: str
) -> frozenset[str]:
    to_current = [p for p in paths if p[-1] == current]
    if not to_current:
        return frozenset()
    known = set(chain.from_iterable(paths))
    seen = {s for s in observed if s in known}
    before = {s for s in seen if oracle_can_precede(paths, s, current)}
    through = [p for p in to_current if before <= set(p)] or to_current
    common = frozenset.intersection(*(frozenset(p) for p in through))
    return common - seen - {current}


def build(graph: Graph, *, shuffle_states: Sequence[int] | None = None) -> Lifecycle:
    """A Lifecycle of ``graph``; states listed in another order when asked, to test precedence."""
    listed = list(graph.order)
    if shuffle_states is not None:
        listed = [graph.order[i] for i in shuffle_states]
    states: list[Any] = [{"name": s, "final": True} if s in graph.finals else s for s in listed]
    transitions: list[Any] = []
    for i, (source, dest) in enumerate(sorted(graph.edges)):
        trigger = f"go_{dest.lower()}" if i % 2 else f"t{i % 3}"
        if i % 3:
            transitions.append([trigger, source, dest])
        else:
            transitions.append({"trigger": trigger, "source": source, "dest": dest})
    return Lifecycle(
        name="generated",
        states=states,
        transitions=transitions,
        initial=graph.order[0],
        precedence=graph.order,
    )


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    """Random valid lifecycles: upward edges, every state reachable, finals among sinks."""
    n = draw(st.integers(min_value=1, max_value=8))
    order = tuple(f"S{i}" for i in draw(st.permutations(range(n))))
    edges = {
        (order[i], order[j])
        for i, j in combinations(range(n), 2)
        if draw(st.booleans()) and draw(st.booleans())
    }
    for j in range(1, n):
        if not any(dest == order[j] for _, dest in edges):
            edges.add((order[draw(st.integers(min_value=0, max_value=j - 1))], order[j]))
    sinks = [s for s in order if not any(src == s for src, _ in edges)]
    finals = frozenset(s for s in sinks if draw(st.booleans()))
    return Graph(order, frozenset(edges), finals)


D1_GRAPH = Graph(D1_ORDER, D1_EDGES, D1_FINALS)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Graph, Lifecycle]:
    graph = draw(st.one_of(st.just(D1_GRAPH), graphs()))
    if graph is D1_GRAPH:
        return graph, D1_LIFECYCLE
    shuffle = draw(st.permutations(range(len(graph.order))))
    return graph, build(graph, shuffle_states=shuffle)


def statuses_of(graph: Graph) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(graph.order), st.sampled_from(["NOPE", "", "S99"]))


# --- the D1 default -----------------------------------------------------------------------


def test_d1_statuses_are_the_enum_in_precedence_order() -> None:
    assert tuple(S) == D1_ORDER
    assert all(member.value == member.name for member in S)
    assert D1_LIFECYCLE.statuses == D1_ORDER
    assert D1_LIFECYCLE.initial == "CARD_PROD_REQUESTED"
    assert [D1_LIFECYCLE.rank(s) for s in D1_ORDER] == list(range(10))
    assert dict(D1_LIFECYCLE.ranks) == {s: i for i, s in enumerate(D1_ORDER)}


def test_d1_exceptions_carry_an_error_and_a_return_is_a_success_of_its_operation() -> None:
    """The D1 lifecycle's tags: an exception reports its reason and error, a
    returned card's operation succeeded (a FAILED one contradicts it)."""
    for status in ("DATA_EXCEPTION", "CARD_PROD_EXCEPTION"):
        assert {"operation:FAILED", "carries:reason", "carries:error"} <= D1_LIFECYCLE.tags(status)
    assert "operation:SUCCESSFUL" in D1_LIFECYCLE.tags("CARD_RETURNED")


# Each D1 status's traits, written out: the top-level operation statuses D1 may send
# with it, the fields its events carry, whether it means production succeeded.
D1_TRAITS = {
    "CARD_PROD_REQUESTED": ({"PENDING"}, set(), False),
    "DATA_PREPARED": ({"PENDING"}, {"due_date", "production_site"}, False),
    "CARD_PROD_READY": ({"PENDING"}, set(), False),
    "CARD_PROD_ONGOING": ({"PENDING"}, set(), False),
    "CARD_PROD_EXCEPTION": ({"PENDING", "FAILED"}, {"reason", "error"}, False),
    "CARD_PROD_DONE": ({"PENDING"}, set(), False),
    "DATA_EXCEPTION": ({"FAILED"}, {"reason", "error"}, False),
    "CARD_PROD_CANCELED": ({"FAILED", "SUCCESSFUL"}, set(), False),
    "CARD_SHIPPED": ({"SUCCESSFUL"}, {"shipment"}, True),
    "CARD_RETURNED": ({"SUCCESSFUL"}, {"shipment"}, False),
}


def test_d1_traits_of_every_status() -> None:
    assert set(D1_TRAITS) == set(D1_ORDER)
    for status, (operation_statuses, carried, success) in D1_TRAITS.items():
        assert D1_LIFECYCLE.operation_statuses(status) == operation_statuses, status
        assert D1_LIFECYCLE.carries(status) == carried, status
        assert D1_LIFECYCLE.is_success(status) is success, status


def test_d1_finals_and_edges_match_the_spec() -> None:
    assert D1_LIFECYCLE.finals == D1_FINALS
    assert "CARD_SHIPPED" not in D1_LIFECYCLE.finals
    assert {(e.source, e.dest) for e in D1_LIFECYCLE.edges} == D1_EDGES
    assert len(D1_LIFECYCLE.edges) == len(D1_EDGES) == 16
    assert all(D1_LIFECYCLE.rank(e.source) < D1_LIFECYCLE.rank(e.dest) for e in D1_LIFECYCLE.edges)
    assert {e.trigger for e in D1_LIFECYCLE.edges if e.dest == "CARD_PROD_CANCELED"} == {"cancel"}
    assert all(isinstance(e, Edge) for e in D1_LIFECYCLE.edges)
    assert repr(D1_LIFECYCLE) == "<Lifecycle 'd1-central-issuance': 10 statuses, 16 edges>"


def test_d1_models_no_on_hold_status() -> None:
    assert not any("HOLD" in s for s in D1_LIFECYCLE.statuses)
    assert D1_LIFECYCLE.successors("CARD_PROD_EXCEPTION") == (
        "CARD_PROD_DONE",
        "CARD_PROD_CANCELED",
    )


def test_d1_documents_every_status_and_trigger() -> None:
    for status in D1_ORDER:
        assert D1_LIFECYCLE.describe(status) == STATUS_MEANINGS[status]
        assert D1_LIFECYCLE.source(status)
    assert "instant issuance" in D1_LIFECYCLE.source("CARD_PROD_EXCEPTION")
    assert "tracking hub" in D1_LIFECYCLE.source("CARD_RETURNED")
    for trigger in D1_LIFECYCLE.triggers:
        assert trigger.isidentifier()
        assert D1_LIFECYCLE.trigger_source(trigger).startswith("our reading")
    assert D1_LIFECYCLE.describe("NOPE") == D1_LIFECYCLE.source("NOPE") == ""


@pytest.mark.parametrize(
    ("observed", "current", "expected"),
    [
        (
            {"CARD_SHIPPED"},
            "CARD_SHIPPED",
            set(_BEFORE_SHIPMENT) - {"CARD_PROD_EXCEPTION"},
        ),
        (
            {"CARD_PROD_EXCEPTION", "CARD_SHIPPED"},
            "CARD_SHIPPED",
            set(_BEFORE_SHIPMENT) - {"CARD_PROD_EXCEPTION"},
        ),
        ({"CARD_PROD_CANCELED"}, "CARD_PROD_CANCELED", {"CARD_PROD_REQUESTED"}),
        ({"CARD_PROD_REQUESTED"}, "CARD_PROD_REQUESTED", set()),
        (set(), "SOMETHING_NEW", set()),
        (
            {"DATA_EXCEPTION", "CARD_PROD_READY"},
            "CARD_PROD_READY",
            {"CARD_PROD_REQUESTED", "DATA_PREPARED"},
        ),
    ],
)
def test_d1_gap_examples(observed: set[str], current: str, expected: set[str]) -> None:
    assert D1_LIFECYCLE.gaps(observed, current) == expected


def test_d1_queries_on_unknown_statuses() -> None:
    assert D1_LIFECYCLE.rank("CARD_PROD_ON_HOLD") == -1
    assert not D1_LIFECYCLE.is_known("CARD_PROD_ON_HOLD")
    assert not D1_LIFECYCLE.is_final("CARD_PROD_ON_HOLD")
    assert not D1_LIFECYCLE.can_precede("CARD_PROD_ON_HOLD", "CARD_SHIPPED")
    assert not D1_LIFECYCLE.can_precede("CARD_PROD_REQUESTED", "CARD_PROD_ON_HOLD")
    assert D1_LIFECYCLE.on_one_path(["CARD_PROD_ON_HOLD", "CARD_SHIPPED"])
    assert D1_LIFECYCLE.successors("CARD_PROD_ON_HOLD") == ()
    assert D1_LIFECYCLE.edges_from("CARD_PROD_ON_HOLD") == ()


def test_d1_machine_drives_a_model_without_registering_it() -> None:
    machine = D1_LIFECYCLE.machine
    assert isinstance(machine, Machine)
    assert machine.models == []
    assert {n for n, s in machine.states.items() if s.final} == D1_FINALS

    class Card:
        state = "CARD_PROD_REQUESTED"

    card = Card()
    assert machine.events["prepare_data"].trigger(card)
    assert card.state == "DATA_PREPARED"
    with pytest.raises(MachineError):
        machine.events["ship"].trigger(card)
    assert machine.models == []


def test_graph_machine_is_fresh_each_time() -> None:
    first = D1_LIFECYCLE.graph_machine(graph_engine="mermaid")
    second = D1_LIFECYCLE.graph_machine(graph_engine="mermaid")
    assert first is not second
    assert first is not D1_LIFECYCLE.machine
    assert list(first.states) == list(D1_ORDER)


def test_lifecycle_is_immutable_and_hashable_by_identity() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        D1_LIFECYCLE.name = "other"
    with pytest.raises(AttributeError, match="immutable"):
        del D1_LIFECYCLE.initial
    twin = build(D1_GRAPH)
    assert twin != D1_LIFECYCLE
    assert len({D1_LIFECYCLE, twin, D1_LIFECYCLE}) == 2


def test_construction_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        build(D1_GRAPH)
    assert caplog.records == []


def test_enum_members_stand_for_their_values() -> None:
    class Step(enum.Enum):
        FIRST = "first-code"
        LAST = "last-code"

    lifecycle = Lifecycle(
        name="enum",
        states=[Step.FIRST, {"name": Step.LAST, "final": True}],
        transitions=[["finish", Step.FIRST, Step.LAST]],
        initial=Step.FIRST,
    )
    assert lifecycle.statuses == ("first-code", "last-code")
    assert lifecycle.finals == {"last-code"}
    assert lifecycle.edges == (Edge("finish", "first-code", "last-code"),)


def test_wildcard_source_and_explicit_precedence() -> None:
    lifecycle = Lifecycle(
        name="wild",
        states=["B", "A", {"name": "Z", "final": True}],
        transitions=[{"trigger": "go", "source": "A", "dest": "B"}, ["stop", ["A", "B"], "Z"]],
        initial="A",
        precedence=["A", "B", "Z"],
    )
    assert lifecycle.statuses == ("A", "B", "Z")
    assert lifecycle.successors("A") == ("B", "Z")
    assert lifecycle.edges_from("A") == (Edge("go", "A", "B"), Edge("stop", "A", "Z"))
    # The graph's states come in precedence order, not in the order they were declared.
    assert list(lifecycle.graph_machine().states) == ["A", "B", "Z"]


# --- validation: one test per fault --------------------------------------------------------


def make(
    states: Sequence[Any] = ("A", "B", {"name": "C", "final": True}),
    transitions: Sequence[Any] = (["go", "A", "B"], ["stop", "B", "C"]),
    initial: Any = "A",
    **kwargs: Any,
) -> Lifecycle:
    return Lifecycle(name="t", states=states, transitions=transitions, initial=initial, **kwargs)


def test_the_valid_base_case_builds() -> None:
    assert make().statuses == ("A", "B", "C")


def test_unreachable_state() -> None:
    with pytest.raises(LifecycleError, match=r"unreachable from the initial state A: D"):
        make(states=["A", "B", "C", "D"], transitions=[["go", "A", "B"], ["go", "B", "C"]])


def test_cycle() -> None:
    with pytest.raises(LifecycleError, match=r"cycle: B -> C -> B"):
        make(
            transitions=[["go", "A", "B"], ["go", "B", "C"], ["back", "C", "B"]],
            states=["A", "B", "C"],
        )


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(LifecycleError, match=r"cycle: edge 'stay' from B"):
        make(transitions=[["go", "A", "B"], ["stay", "B", "="], ["stop", "B", "C"]])
    with pytest.raises(LifecycleError, match=r"cycle: B -> B"):
        make(
            states=["A", "B", "C"],
            transitions=[["go", "A", "B"], ["again", "B", "B"], ["x", "B", "C"]],
        )


def test_downward_edge() -> None:
    with pytest.raises(LifecycleError, match=r"edge 'go' A -> B goes down the precedence"):
        make(precedence=["B", "A", "C"])


def test_final_state_with_an_exit() -> None:
    with pytest.raises(LifecycleError, match=r"final state B has an exit: edge 'stop' B -> C"):
        make(states=["A", {"name": "B", "final": True}, "C"])


def test_unknown_state_in_an_edge() -> None:
    with pytest.raises(LifecycleError, match=r"edge 'go' A -> Q: unknown state 'Q'"):
        make(transitions=[["go", "A", "Q"]])
    with pytest.raises(LifecycleError, match=r"edge 'go' Q -> B: unknown state 'Q'"):
        make(transitions=[["go", "Q", "B"]])


def test_unknown_initial_state() -> None:
    with pytest.raises(LifecycleError, match=r"initial state 'Q' is not one of the states"):
        make(initial="Q")


def test_unknown_state_in_precedence() -> None:
    with pytest.raises(LifecycleError, match=r"precedence names unknown state\(s\): Q"):
        make(precedence=["A", "B", "Q"])


def test_precedence_not_a_permutation() -> None:
    with pytest.raises(LifecycleError, match=r"not a permutation of the states: missing C"):
        make(precedence=["A", "B"])
    with pytest.raises(LifecycleError, match=r"not a permutation.*repeated B"):
        make(precedence=["A", "B", "B", "C"])


def test_two_initial_states() -> None:
    with pytest.raises(LifecycleError, match=r"more than one initial state: A, B"):
        make(initial=["A", "B"])


def test_missing_initial_state() -> None:
    initials: tuple[Any, ...] = (None, "", [])
    for initial in initials:
        with pytest.raises(LifecycleError, match=r"missing initial state|initial state: \(none\)"):
            make(initial=initial)


def test_duplicate_state() -> None:
    with pytest.raises(LifecycleError, match=r"duplicate state 'B'"):
        make(states=["A", "B", "B", "C"])


def test_unknown_documentation_keys() -> None:
    with pytest.raises(LifecycleError, match=r"descriptions name unknown key\(s\): Q"):
        make(descriptions={"Q": "?"})
    with pytest.raises(LifecycleError, match=r"trigger_sources name unknown key\(s\): jump"):
        make(trigger_sources={"jump": "?"})


def test_malformed_definitions() -> None:
    with pytest.raises(LifecycleError, match=r"trigger must be an identifier"):
        make(transitions=[["not a trigger", "A", "B"]])
    with pytest.raises(LifecycleError, match=r"expected a dict or \[trigger, source, dest\]"):
        make(transitions=[["go", "A"]])
    with pytest.raises(LifecycleError, match=r"without a 'name'"):
        make(states=["A", {"final": True}])
    with pytest.raises(LifecycleError, match=r"non-empty string"):
        make(states=["A", 3])


def test_lifecycle_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="duplicate state"):
        make(states=["A", "A"])


# --- derived queries against the oracle ------------------------------------------------------


@settings(deadline=None)
@given(cases())
def test_structure_matches_the_definition(case: tuple[Graph, Lifecycle]) -> None:
    graph, lifecycle = case
    assert lifecycle.statuses == graph.order
    assert lifecycle.initial == graph.order[0]
    assert lifecycle.finals == graph.finals
    assert {(e.source, e.dest) for e in lifecycle.edges} == graph.edges
    for status in graph.order:
        dests = {d for s, d in graph.edges if s == status}
        assert set(lifecycle.successors(status)) == dests
        assert list(lifecycle.successors(status)) == sorted(dests, key=graph.order.index)
        assert {(e.source, e.dest) for e in lifecycle.edges_from(status)} == {
            (status, d) for d in dests
        }
        assert lifecycle.rank(status) == graph.order.index(status)
        assert lifecycle.is_final(status) == (status in graph.finals)


@settings(deadline=None)
@given(cases(), st.data())
def test_can_precede_matches_the_oracle(case: tuple[Graph, Lifecycle], data: st.DataObject) -> None:
    graph, lifecycle = case
    paths = graph.paths()
    for _ in range(10):
        a = data.draw(statuses_of(graph))
        b = data.draw(statuses_of(graph))
        assert lifecycle.can_precede(a, b) == oracle_can_precede(paths, a, b), (a, b)


@settings(deadline=None)
@given(cases(), st.data())
def test_on_one_path_matches_the_oracle(case: tuple[Graph, Lifecycle], data: st.DataObject) -> None:
    graph, lifecycle = case
    paths = graph.paths()
    for _ in range(10):
        statuses = data.draw(st.lists(statuses_of(graph), max_size=5))
        assert lifecycle.on_one_path(statuses) == oracle_on_one_path(paths, statuses), statuses


@settings(deadline=None)
@given(cases(), st.data())
def test_gaps_match_the_oracle(case: tuple[Graph, Lifecycle], data: st.DataObject) -> None:
    graph, lifecycle = case
    paths = graph.paths()
    for _ in range(10):
        observed = data.draw(st.frozensets(statuses_of(graph), max_size=6))
        current = data.draw(statuses_of(graph))
        expected = oracle_gaps(paths, observed, current)
        assert lifecycle.gaps(observed, current) == expected, (sorted(observed), current)


def _subsets(items: Sequence[str]) -> Iterable[tuple[str, ...]]:
    return chain.from_iterable(combinations(items, k) for k in range(len(items) + 1))


def test_d1_queries_match_the_oracle_exhaustively() -> None:
    paths = D1_GRAPH.paths()
    for observed in _subsets(D1_ORDER):
        assert D1_LIFECYCLE.on_one_path(observed) == oracle_on_one_path(paths, observed)
        for current in D1_ORDER:
            assert D1_LIFECYCLE.gaps(observed, current) == oracle_gaps(paths, observed, current)


def test_contradicting_evidence_falls_back_to_every_path() -> None:
    # A diamond: B and C both precede D, but no card passes both.
    diamond = Lifecycle(
        name="diamond",
        states=["A", "B", "C", "D", {"name": "E", "final": True}],
        transitions=[["b", "A", "B"], ["c", "A", "C"], ["d", ["B", "C"], "D"], ["e", "D", "E"]],
        initial="A",
    )
    assert not diamond.on_one_path({"B", "C"})
    assert diamond.gaps({"B", "C"}, "E") == {"A", "D"}
    assert diamond.gaps({"B"}, "E") == {"A", "D"}
    assert diamond.gaps(set(), "E") == {"A", "D"}
    assert diamond.gaps(set(), "B") == {"A"}
    assert not D1_LIFECYCLE.on_one_path({"DATA_EXCEPTION", "CARD_PROD_READY"})


def test_ranks_mapping_serves_the_hot_path() -> None:
    ranks: Mapping[str, int] = D1_LIFECYCLE.ranks
    assert ranks.get("CARD_SHIPPED", -1) == 8
    assert ranks.get("UNKNOWN", -1) == -1


# -- traits: transitions' Tags state feature -----------------------------------------


def test_d1_traits() -> None:
    assert D1_LIFECYCLE.operation_statuses("CARD_SHIPPED") == {"SUCCESSFUL"}
    assert D1_LIFECYCLE.operation_statuses("CARD_PROD_EXCEPTION") == {"PENDING", "FAILED"}
    assert D1_LIFECYCLE.operation_statuses("DATA_EXCEPTION") == {"FAILED"}
    assert [s for s in D1_LIFECYCLE.statuses if D1_LIFECYCLE.is_success(s)] == ["CARD_SHIPPED"]
    assert D1_LIFECYCLE.carries("DATA_PREPARED") == {"due_date", "production_site"}
    assert D1_LIFECYCLE.carries("CARD_SHIPPED") == {"shipment"}
    assert D1_LIFECYCLE.tags("NOT_A_STATUS") == frozenset()


def test_untagged_statuses_allow_every_operation_status() -> None:
    lifecycle = make()
    assert lifecycle.operation_statuses(lifecycle.initial) == {"PENDING", "SUCCESSFUL", "FAILED"}
    assert not lifecycle.is_success(lifecycle.initial)
    assert lifecycle.carries(lifecycle.initial) == frozenset()


@pytest.mark.parametrize(
    ("tag", "message"),
    [("operation:DONE", "names no operation status"), ("carries:pan", "names no field")],
)
def test_unknown_trait_tags_are_refused(tag: str, message: str) -> None:
    with pytest.raises(LifecycleError, match=message):
        Lifecycle(
            name="t",
            states=[{"name": "A", "tags": [tag]}, {"name": "B", "final": True}],
            transitions=[["go", "A", "B"]],
            initial="A",
        )


def test_own_tags_pass_through() -> None:
    lifecycle = Lifecycle(
        name="t",
        states=[{"name": "A", "tags": ["mine"]}, {"name": "B", "final": True}],
        transitions=[["go", "A", "B"]],
        initial="A",
    )
    assert lifecycle.tags("A") == {"mine"}


def test_memo_builds_once_per_lifecycle() -> None:
    calls: list[Lifecycle] = []

    def build(lifecycle: Lifecycle) -> int:
        calls.append(lifecycle)
        return len(calls)

    lifecycle = make()
    assert lifecycle.memo("test.key", build) == 1
    assert lifecycle.memo("test.key", build) == 1
    assert calls == [lifecycle]


# Found by mutation testing (docs/proof.md): what a lifecycle says of itself.


def test_a_lifecycle_says_its_name_triggers_and_sources() -> None:
    lifecycle = make(trigger_sources={"go": "the spec"})
    assert (lifecycle.name, lifecycle.triggers) == ("t", ("go", "stop"))
    assert (lifecycle.trigger_source("go"), lifecycle.trigger_source("stop")) == ("the spec", "")
    assert lifecycle.trigger_source("never") == ""


def test_states_given_as_one_string_are_refused() -> None:
    with pytest.raises(LifecycleError, match="states must be a sequence of state definitions"):
        make(states="ABC")


def test_unknown_keys_are_listed_comma_separated() -> None:
    with pytest.raises(LifecycleError, match=r"descriptions name unknown key\(s\): P, Q$"):
        make(descriptions={"P": "?", "Q": "?"})


def test_an_initial_state_given_as_a_list_of_one() -> None:
    assert make(initial=["A"]).initial == "A"


def test_malformed_states_are_named_where_they_were_found() -> None:
    with pytest.raises(LifecycleError, match=r"^initial: a state must be a non-empty string"):
        make(initial=5)
    with pytest.raises(LifecycleError, match=r"^edge 'go': a state must be a non-empty string"):
        make(transitions=(["go", 5, "B"], ["stop", "B", "C"]))


def test_a_definition_transitions_refuses_is_named_with_its_reason() -> None:
    with pytest.raises(LifecycleError, match=r"transitions refused the definition: .*'bogus'"):
        Lifecycle(
            name="refused",
            states=[{"name": "A", "bogus": 1}, "B"],
            transitions=[["go", "A", "B"]],
            initial="A",
        )


# Found by the full mutation run of the lifecycle's modules (docs/proof.md): errors say
# exactly what was wrong and where, and what a definition may leave out.


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"states": ["A", 3]}, "states: a state must be a non-empty string, got 3"),
        ({"states": ["A", {"name": ""}]}, "states: a state must be a non-empty string, got ''"),
        ({"initial": [5]}, "initial: a state must be a non-empty string, got 5"),
        ({"initial": None}, "missing initial state"),
        (
            {"transitions": [["go", "A", 5]]},
            "edge 'go': a state must be a non-empty string, got 5",
        ),
        (
            {"transitions": [["go", ["A", 5], "B"]]},
            "edge 'go': a state must be a non-empty string, got 5",
        ),
        (
            {"transitions": [["go", ["A", "B"], "="]]},
            "cycle: edge 'go' from A, B stays in its state (internal or reflexive transition)",
        ),
        ({"transitions": [["go", ["A", "B"], "Q"]]}, "edge 'go' A | B -> Q: unknown state 'Q'"),
        ({"precedence": ["A", 5, "C"]}, "precedence: a state must be a non-empty string, got 5"),
        ({"precedence": ["A", "P", "Q"]}, "precedence names unknown state(s): P, Q"),
        (
            {"precedence": ["A"]},
            "precedence is not a permutation of the states: missing B, C; repeated -",
        ),
        (
            {"precedence": ["A", "A", "B", "B", "C"]},
            "precedence is not a permutation of the states: missing -; repeated A, B",
        ),
        (
            {"states": ["A", "B", "C", "D", "E"]},
            "unreachable from the initial state A: D, E",
        ),
        ({"sources": {"Q": "?"}}, "sources name unknown key(s): Q"),
        (
            {"states": [{"name": "A", "tags": ["operation:DONE"]}, "B", "C"]},
            "state A: tag 'operation:DONE' names no operation status"
            " (one of PENDING, SUCCESSFUL, FAILED)",
        ),
        (
            {"states": [{"name": "A", "tags": ["carries:due_date:x"]}, "B", "C"]},
            "state A: tag 'carries:due_date:x' names no field"
            " (one of due_date, production_site, shipment, reason, error)",
        ),
    ],
)
def test_a_refused_definition_is_told_what_and_where(
    definition: dict[str, Any], message: str
) -> None:
    with pytest.raises(LifecycleError, match=f"^{re.escape(message)}$"):
        make(**definition)


def test_a_transition_dict_without_a_trigger_source_or_dest_is_refused() -> None:
    with pytest.raises(LifecycleError, match=r"the trigger must be an identifier, got None$"):
        make(transitions=[{"source": "A", "dest": "B"}])
    with pytest.raises(LifecycleError, match=r"^edge 'go': a state must be a non-empty string"):
        make(transitions=[{"trigger": "go", "dest": "B"}])
    with pytest.raises(LifecycleError, match=r"^cycle: edge 'go' from A stays in its state"):
        make(transitions=[{"trigger": "go", "source": "A"}])


def test_a_wildcard_source_includes_the_destination_itself() -> None:
    with pytest.raises(LifecycleError, match=r"^cycle: C -> C$"):
        make(transitions=[["go", "A", "B"], ["stop", "*", "C"]])


def test_a_transition_list_may_give_every_field_and_no_more() -> None:
    full = ["go", "A", "B", [], [], [], [], []]
    lifecycle = make(transitions=[full, ["stop", "B", "C"]])
    assert lifecycle.edges == (Edge("go", "A", "B"), Edge("stop", "B", "C"))
    with pytest.raises(LifecycleError, match=r"expected a dict or \[trigger, source, dest\]"):
        make(transitions=[[*full, []], ["stop", "B", "C"]])


@pytest.mark.parametrize(
    ("transitions", "cycle"),
    [
        # Through the first status of the precedence.
        ([["go", "A", "B"], ["back", "B", "A"], ["stop", "B", "C"]], "A -> B -> A"),
        # Out of reach from the statuses searched first.
        ([["go", "A", "B"], ["x", "C", "D"], ["y", "D", "C"]], "C -> D -> C"),
    ],
)
def test_a_cycle_is_named_wherever_it_lies(transitions: list[list[str]], cycle: str) -> None:
    with pytest.raises(LifecycleError, match=f"^cycle: {cycle}$"):
        make(states=["A", "B", "C", "D"], transitions=transitions)


def test_edges_come_in_precedence_order_whatever_the_definition_order() -> None:
    lifecycle = make(
        transitions=[["z", "B", "C"], ["y", "A", "B"], ["b", "A", "C"], ["a", "A", "C"]]
    )
    assert lifecycle.edges == (
        Edge("y", "A", "B"),
        Edge("a", "A", "C"),
        Edge("b", "A", "C"),
        Edge("z", "B", "C"),
    )


def test_a_lifecycle_says_where_its_statuses_come_from() -> None:
    lifecycle = make(sources={"A": "the spec"})
    assert (lifecycle.source("A"), lifecycle.source("B"), lifecycle.source("NOPE")) == (
        "the spec",
        "",
        "",
    )


def test_a_lifecycles_machine_starts_models_in_its_initial_state() -> None:
    lifecycle = make(initial="A")
    assert lifecycle.machine.initial == "A"

    class Card:
        state = "A"

    card = Card()
    assert lifecycle.machine.events["go"].trigger(card)
    assert card.state == "B"


def test_a_graph_machine_takes_its_options_and_is_its_own_model() -> None:
    lifecycle = make()
    titled = lifecycle.graph_machine(graph_engine="mermaid", title="Cards")
    assert titled.title == "Cards"
    assert titled.state == "A"
    assert titled.go()
    assert titled.state == "B"
    assert lifecycle.graph_machine(graph_engine="mermaid").title == "t"
