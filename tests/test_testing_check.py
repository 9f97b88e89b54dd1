"""check_handler: cardflow's own Tracker passes it; naive handlers fail it, minimally."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import cardflow
from cardflow import Lifecycle, Shipment
from cardflow.testing import Expected, HandlerMismatchError, check_handler
from test_testing_handlers import (
    DeduplicateByOperationId,
    EveryOperationIsProduce,
    HighestPrecedenceEver,
    LastReceivedWins,
    StrictStateMachine,
    TrackerHandler,
)

TESTS = Path(__file__).parent

# -- the dogfood ---------------------------------------------------------------------


def test_the_tracker_conforms_with_the_default_options() -> None:
    coverage = check_handler(TrackerHandler)
    assert coverage.walks >= settings().max_examples


@pytest.mark.parametrize(
    "options",
    [
        {"lose": True},
        {"unknown_statuses": True},
        {"other_operations": True},
        {"lose": True, "unknown_statuses": True, "other_operations": True, "max_cards": 4},
        {"max_operations": 3, "max_copies": 1, "max_bulk": 1},
    ],
    ids=["lose", "unknown", "others", "everything", "three-operations"],
)
def test_the_tracker_conforms_with_options(options: dict[str, Any]) -> None:
    check_handler(TrackerHandler, max_examples=100, **options)


def _small_lifecycle() -> Lifecycle:
    states: list[dict[str, Any]] = [
        {"name": "ORDERED", "tags": ["operation:PENDING"]},
        {"name": "PRINTED", "tags": ["operation:PENDING"]},
        {"name": "SENT", "tags": ["operation:SUCCESSFUL", "success", "carries:shipment"]},
        {"name": "VOID", "final": True, "tags": ["operation:FAILED", "carries:reason"]},
    ]
    transitions: list[list[Any]] = [
        ["print_card", "ORDERED", "PRINTED"],
        ["send", "PRINTED", "SENT"],
        ["void", ["ORDERED", "PRINTED"], "VOID"],
    ]
    return Lifecycle(name="small", states=states, transitions=transitions, initial="ORDERED")


def test_the_tracker_conforms_on_a_lifecycle_of_its_own() -> None:
    small = _small_lifecycle()
    coverage = check_handler(
        lambda: TrackerHandler(small),
        lifecycle=small,
        lose=True,
        unknown_statuses=True,
        max_examples=100,
        settings=settings(derandomize=True, database=None),
    )
    assert coverage.lifecycle is small
    assert coverage.complete, coverage.summary()


# -- it can fail: naive handlers, small counterexamples ---------------------------------


def _failure(make: Any, **options: Any) -> HandlerMismatchError:
    with pytest.raises(HandlerMismatchError) as caught:
        check_handler(make, max_examples=200, **options)
    return caught.value


def _operations_in(bodies: tuple[bytes, ...]) -> list[dict[str, Any]]:
    return [op for body in bodies for op in json.loads(body)["operations"]]


@pytest.mark.parametrize(
    ("make", "options"),
    [
        (LastReceivedWins, {}),
        (DeduplicateByOperationId, {}),
        (HighestPrecedenceEver, {}),
        (EveryOperationIsProduce, {"other_operations": True}),
        (StrictStateMachine, {}),
    ],
    ids=[
        "last-received-wins",
        "deduplicate-by-operation-id",
        "highest-ever",
        "all-produce",
        "strict",
    ],
)
def test_naive_handlers_are_caught_with_a_small_delivery(
    make: Any, options: dict[str, Any]
) -> None:
    error = _failure(make, **options)
    assert len(error.bodies) <= 3, str(error)
    assert len(_operations_in(error.bodies)) <= 4, str(error)
    assert error.what == "status"
    assert error.card_id is not None
    assert not error.raised
    text = str(error)
    assert f"expected {error.expected!r}, got {error.actual!r}" in text
    for body in error.bodies:
        for op in json.loads(body)["operations"]:
            assert json.dumps(op, separators=(",", ":")) in text
    assert f"what really happened to card {error.card_id}" in text


def test_the_deduplicator_fails_on_one_operation_in_true_order() -> None:
    """D1 reuses the operationId for every event of a production: no reordering needed."""
    error = _failure(DeduplicateByOperationId, max_cards=1, max_operations=1, max_copies=1)
    ops = _operations_in(error.bodies)
    assert len({op["operationId"] for op in ops}) == 1
    assert [op["details"]["status"] for op in ops] == ["CARD_PROD_REQUESTED", "DATA_PREPARED"]
    assert (error.expected, error.actual) == ("DATA_PREPARED", "CARD_PROD_REQUESTED")


def test_highest_precedence_ever_needs_two_operations_to_fail() -> None:
    check_handler(HighestPrecedenceEver, max_examples=100, max_operations=1)
    error = _failure(HighestPrecedenceEver, max_cards=1)
    assert len({op["operationId"] for op in _operations_in(error.bodies)}) == 2


def test_every_operation_is_produce_passes_until_other_operations_come() -> None:
    check_handler(EveryOperationIsProduce, max_examples=100, unknown_statuses=True)
    error = _failure(EveryOperationIsProduce, other_operations=True)
    assert any(op["operation"] != "PRODUCE" for op in _operations_in(error.bodies))


class UnknownStatusWins(TrackerHandler):
    """Lets a status it does not know replace the current one (D1 may add statuses)."""

    def __init__(self) -> None:
        super().__init__()
        self.latest: dict[str, str] = {}

    def handle(self, body: bytes) -> None:
        super().handle(body)
        for op in cardflow.decode_lenient(body).operations:
            status = op.details.status if op.details is not None else None
            if op.operation == "PRODUCE" and status and not cardflow.D1_LIFECYCLE.is_known(status):
                self.latest[op.card_id] = status

    def status(self, card_id: str) -> str | None:
        return self.latest.get(card_id) or super().status(card_id)


class AnyUnknownWhenOnlyUnknown(TrackerHandler):
    """When only unknown statuses arrived, answers the smallest (the Tracker: the largest)."""

    def status(self, card_id: str) -> str | None:
        state = self.tracker.get(card_id)
        if state is not None and not cardflow.D1_LIFECYCLE.is_known(state.status):
            return min(state.unknown_statuses)
        return super().status(card_id)


def test_an_unknown_status_must_not_replace_a_known_one() -> None:
    error = _failure(UnknownStatusWins, unknown_statuses=True)
    assert len(error.bodies) <= 3
    assert isinstance(error.actual, str)
    assert error.actual.startswith("FUTURE_STATUS")


def test_any_unknown_status_is_right_when_nothing_known_arrived() -> None:
    check_handler(AnyUnknownWhenOnlyUnknown, max_examples=100, unknown_statuses=True, lose=True)


# -- optional answers and compare --------------------------------------------------------


class FirstShipmentWins(TrackerHandler):
    """Keeps the first shipment data it received, not the newest."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[str, Shipment] = {}

    def handle(self, body: bytes) -> None:
        super().handle(body)
        for op in cardflow.decode_lenient(body).operations:
            if op.details is not None and op.details.shipment is not None:
                self.first.setdefault(op.card_id, op.details.shipment)

    def shipment(self, card_id: str) -> Shipment | None:
        return self.first.get(card_id)


class FirstOperationWins(TrackerHandler):
    """Reports the first operation it heard of, not the newest."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[str, str] = {}

    def handle(self, body: bytes) -> None:
        super().handle(body)
        for op in cardflow.decode_lenient(body).operations:
            self.first.setdefault(op.card_id, op.operation_id)

    def operation_id(self, card_id: str) -> str | None:
        return self.first.get(card_id)


def test_the_shipment_answer_is_checked_when_the_handler_has_one() -> None:
    error = _failure(FirstShipmentWins, max_cards=1, max_operations=1)
    assert error.what == "shipment"
    assert isinstance(error.expected, Shipment)
    assert error.expected != error.actual


def test_the_operation_answer_is_checked_when_the_handler_has_one() -> None:
    error = _failure(FirstOperationWins)
    assert error.what == "operation_id"
    assert len(error.bodies) <= 3


class SiteHandler(TrackerHandler):
    def site(self, card_id: str) -> str | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.production_site


class ShoutingSiteHandler(SiteHandler):
    def site(self, card_id: str) -> str | None:
        site = super().site(card_id)
        return None if site is None else site.upper()


def same_site(handler: Any, card_id: str, expected: Expected | None) -> None:
    want = None if expected is None else expected.production_site
    got = handler.site(card_id)
    assert got == want, f"site: expected {want!r}, got {got!r}"


def test_compare_adds_a_check_of_ones_own() -> None:
    check_handler(SiteHandler, compare=same_site, max_examples=100)
    error = _failure(ShoutingSiteHandler, compare=same_site)
    assert error.what == "compare"
    assert "site: expected 'Gemenos', got 'GEMENOS'" in str(error)


# -- a handler that raises ------------------------------------------------------------------


class CrashesOnShipments(TrackerHandler):
    def handle(self, body: bytes) -> None:
        if b'"shipment"' in body:
            raise KeyError("carrier")
        super().handle(body)


class CrashesWhenAsked(TrackerHandler):
    def status(self, card_id: str) -> str | None:
        found = super().status(card_id)
        if found == "CARD_PROD_DONE":
            raise RuntimeError("no such column: done_at")
        return found


def test_a_handler_that_raises_in_handle_fails_with_the_body() -> None:
    error = _failure(CrashesOnShipments, max_cards=1, max_operations=1)
    assert error.raised
    assert error.what == "handle"
    assert error.card_id is None
    assert isinstance(error.__cause__, KeyError)
    assert b'"shipment"' in error.bodies[-1]
    assert str(error).startswith("the handler raised in handle(body) after body")


def test_a_handler_that_raises_when_asked_fails_with_the_card() -> None:
    error = _failure(CrashesWhenAsked, max_cards=1, max_operations=1)
    assert error.raised
    assert error.what == "status"
    assert isinstance(error.__cause__, RuntimeError)
    assert f"status({error.card_id!r})" in str(error)


# -- options and arguments ---------------------------------------------------------------


class Counting:
    """A factory of Tracker handlers that counts how many it made."""

    def __init__(self) -> None:
        self.made = 0

    def __call__(self) -> TrackerHandler:
        self.made += 1
        return TrackerHandler()


def test_max_examples_and_settings_set_the_number_of_runs() -> None:
    factory = Counting()
    check_handler(factory, max_examples=25, settings=settings(database=None))
    assert factory.made == 2 + 25  # two to check the factory, then one per example
    factory = Counting()
    check_handler(factory, settings=settings(max_examples=10, database=None))
    assert factory.made == 2 + 10


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_examples": 0}, ValueError),
        ({"max_cards": 0}, ValueError),
        ({"max_operations": 0}, ValueError),
        ({"max_bulk": 0}, ValueError),
        ({"max_copies": 0}, ValueError),
        ({"max_cards": 2.5}, TypeError),
        ({"lifecycle": "D1"}, ValueError),
        ({"settings": {"max_examples": 3}}, TypeError),
        ({"compare": "status"}, TypeError),
    ],
)
def test_arguments_are_checked_before_anything_runs(
    options: dict[str, Any], error: type[Exception]
) -> None:
    factory = Counting()
    with pytest.raises(error):
        check_handler(factory, **options)
    assert factory.made == 0


class OnlyHandles:
    def handle(self, body: bytes) -> None:
        """Takes bodies and answers nothing."""


def test_the_factory_must_make_fresh_handlers_with_both_methods() -> None:
    with pytest.raises(TypeError, match="callable"):
        check_handler(TrackerHandler())  # type: ignore[arg-type]
    shared = TrackerHandler()
    with pytest.raises(ValueError, match="fresh"):
        check_handler(lambda: shared)
    with pytest.raises(TypeError, match=r"no method handle\(\)"):
        check_handler(object)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"no method status\(\)"):
        check_handler(OnlyHandles)  # type: ignore[arg-type]


def test_it_runs_without_any_profile_loaded(tmp_path: Path) -> None:
    """A user's plain script: Hypothesis's own defaults, no conftest, no pytest."""
    script = tmp_path / "check.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            sys.path.insert(0, sys.argv[1])
            from hypothesis import settings
            from cardflow.testing import HandlerMismatchError, check_handler
            from test_testing_handlers import LastReceivedWins, TrackerHandler

            assert settings.default.max_examples == 100, settings.default
            coverage = check_handler(TrackerHandler, max_examples=50)
            assert coverage.walks >= 50, coverage.walks
            try:
                check_handler(LastReceivedWins, max_examples=50)
            except HandlerMismatchError as error:
                assert len(error.bodies) <= 3, error
                print("caught", len(error.bodies))
            else:
                raise SystemExit("LastReceivedWins passed")
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script), str(TESTS)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("caught ")
