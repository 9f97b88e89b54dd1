"""edge_coverage counts what walks took; the default strategies reach every edge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, seed, settings
from hypothesis.strategies import SearchStrategy

import cardflow
from cardflow import Edge, Lifecycle
from cardflow.testing import (
    CardHistory,
    History,
    Plan,
    TrueOperation,
    check_handler,
    edge_coverage,
    histories,
    render,
    traffic,
    walks,
)
from test_testing_handlers import TrackerHandler

D1 = cardflow.D1_LIFECYCLE
REQ, DP, READY, DE = "CARD_PROD_REQUESTED", "DATA_PREPARED", "CARD_PROD_READY", "DATA_EXCEPTION"


def _edge(source: str, dest: str) -> Edge:
    (edge,) = [e for e in D1.edges if (e.source, e.dest) == (source, dest)]
    return edge


def test_counts_each_step_of_each_walk() -> None:
    coverage = edge_coverage([(REQ, DP), (REQ, DP, READY), (REQ,), [REQ, DE]])
    assert coverage.walks == 4
    assert coverage.edges[_edge(REQ, DP)] == 2
    assert coverage.edges[_edge(DP, READY)] == 1
    assert coverage.edges[_edge(REQ, DE)] == 1
    assert sum(coverage.edges.values()) == 4
    assert coverage.covered == (_edge(REQ, DP), _edge(REQ, DE), _edge(DP, READY))
    assert len(coverage.missed) == len(D1.edges) - 3
    assert not coverage.complete
    assert coverage.statuses[REQ] == 4
    assert coverage.statuses[DP] == 2
    assert "CARD_RETURNED" in coverage.missed_statuses


def test_the_summary_names_the_missed_edges() -> None:
    coverage = edge_coverage([(REQ, DP)])
    text = coverage.summary()
    assert text == str(coverage)
    first, *rows = text.splitlines()
    assert first == "edge coverage of d1-central-issuance: 1/16 edges, 6%, over 1 walks"
    assert rows[0].split() == ["1", "prepare_data", REQ, "->", DP]
    assert rows[1].split() == ["MISSED", "reject_data", REQ, "->", DE]
    assert rows[-1].startswith("  statuses never reached: CARD_PROD_READY")


def test_reads_plans_histories_and_traffic() -> None:
    plan = Plan(
        card_id="c1",
        operation_id="op1",
        start_time=datetime(2025, 1, 1, tzinfo=UTC),
        walk=(REQ, DP, READY),
    )
    operation = TrueOperation(plan, render(plan, D1))
    card = CardHistory("c1", (operation,))
    history = History((card,))

    class Traffic:  # anything with a ``history``, as cardflow.testing.Traffic
        def __init__(self, history: History) -> None:
            self.history = history

    for item in (plan, operation, card, history, Traffic(history)):
        coverage = edge_coverage([item])
        assert coverage.walks == 1
        assert coverage.covered == (_edge(REQ, DP), _edge(DP, READY))


def test_two_triggers_between_the_same_statuses_are_counted_together() -> None:
    twin = Lifecycle(
        name="twin",
        states=["A", "B"],
        transitions=[["go", "A", "B"], ["jump", "A", "B"]],
        initial="A",
    )
    coverage = edge_coverage([("A", "B")], twin)
    assert coverage.complete
    assert sorted(e.trigger for e in coverage.covered) == ["go", "jump"]


@pytest.mark.parametrize(
    ("walk", "message"),
    [((REQ, "ON_HOLD"), "'ON_HOLD' is no status"), ((REQ, READY), "is no edge")],
)
def test_a_walk_off_the_lifecycle_is_refused(walk: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        edge_coverage([walk])


def test_arguments_are_checked() -> None:
    with pytest.raises(TypeError):
        edge_coverage("CARD_PROD_REQUESTED")
    with pytest.raises(TypeError):
        edge_coverage([42])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        edge_coverage([[1, 2]])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        edge_coverage([], "D1")  # type: ignore[arg-type]


# -- the default strategies reach every edge within CI's budget ----------------------------


def _drawn(strategy: SearchStrategy[Any], examples: int, *, number: int | None = None) -> list[Any]:
    """What ``examples`` examples of ``strategy`` draw, as a test would see them.

    Derandomized, as in CI, unless a seed ``number`` is given.
    """
    seen: list[Any] = []

    @settings(max_examples=examples, derandomize=number is None, database=None, deadline=None)
    @given(strategy)
    def collect(value: Any) -> None:
        seen.append(value)

    if number is not None:
        collect = seed(number)(collect)
    collect()
    return seen


def test_hypothesis_default_budget_reaches_every_edge() -> None:
    """100 examples (Hypothesis's default; CI runs 300), derandomized as in CI."""
    for strategy in (histories(), traffic(max_cards=3)):
        coverage = edge_coverage(_drawn(strategy, 100))
        assert coverage.complete, coverage.summary()


@pytest.mark.parametrize("number", [1, 2])
def test_ci_budget_reaches_every_edge_with_other_seeds(number: int) -> None:
    coverage = edge_coverage(_drawn(histories(), 300, number=number))
    assert coverage.complete, coverage.summary()
    assert min(coverage.edges.values()) >= 5, coverage.summary()


def test_check_handler_reports_complete_coverage_at_the_default_budget() -> None:
    coverage = check_handler(
        TrackerHandler, max_examples=100, settings=settings(derandomize=True, database=None)
    )
    assert coverage.complete, coverage.summary()


@given(walks(max_length=3))
def test_a_short_limit_is_kept(walk: tuple[str, ...]) -> None:
    assert 1 <= len(walk) <= 3
    assert walk[0] == REQ


def test_a_short_limit_still_reaches_the_edges_that_fit() -> None:
    coverage = edge_coverage(_drawn(walks(max_length=3), 100))
    fits = {e for e in D1.edges if e.source in (REQ, DP)}
    assert set(coverage.covered) == fits
