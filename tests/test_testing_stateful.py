"""HandlerStateMachine: the Tracker survives it; naive handlers fail it in a few steps."""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from cardflow import Tracker
from cardflow.testing import Handler, HandlerMismatchError, HandlerStateMachine
from test_testing_handlers import (
    DeduplicateByOperationId,
    LastReceivedWins,
    StrictStateMachine,
    TrackerHandler,
)

FEW = settings(max_examples=40, stateful_step_count=25, deadline=None)
FAILING = settings(max_examples=200, stateful_step_count=8, deadline=None)


class TrackerMachine(HandlerStateMachine):
    """The dogfood: cardflow's Tracker behind the handler interface."""

    def make_handler(self) -> Handler:
        return TrackerHandler()


class TrackerMachineWithEverything(TrackerMachine):
    """Unknown statuses and other operations too, and more cards."""

    max_cards = 4
    unknown_statuses = True
    other_operations = True


class DirectTrackerMachine(HandlerStateMachine):
    """Talks to its system directly: overrides handle and status, makes no handler."""

    def __init__(self) -> None:
        super().__init__()
        self.tracker = Tracker()

    def handle(self, body: bytes) -> None:
        self.tracker.ingest(body)

    def status(self, card_id: str) -> str | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.status


TestTrackerMachine = TrackerMachine.TestCase
TestTrackerMachine.settings = FEW
TestTrackerMachineWithEverything = TrackerMachineWithEverything.TestCase
TestTrackerMachineWithEverything.settings = FEW
TestDirectTrackerMachine = DirectTrackerMachine.TestCase
TestDirectTrackerMachine.settings = settings(FEW, max_examples=20)


def test_the_direct_machine_makes_no_handler() -> None:
    machine = DirectTrackerMachine()
    assert machine.handler is None
    machine.tracker.ingest(b'{"operations": []}')
    assert machine.status("card") is None


class SmallMachine(HandlerStateMachine):
    """One card, one operation: a failing run shrinks in a moment."""

    max_cards = 1
    max_operations = 1


class LastWinsMachine(SmallMachine):
    def make_handler(self) -> Handler:
        return LastReceivedWins()


class DeduplicatingMachine(SmallMachine):
    def make_handler(self) -> Handler:
        return DeduplicateByOperationId()


class StrictMachine(SmallMachine):
    def make_handler(self) -> Handler:
        return StrictStateMachine()


@pytest.mark.parametrize(
    "machine",
    [LastWinsMachine, DeduplicatingMachine, StrictMachine],
    ids=["last-received-wins", "deduplicate-by-operation-id", "strict"],
)
def test_naive_handlers_fail_the_machine_in_a_few_bodies(
    machine: type[HandlerStateMachine],
) -> None:
    with pytest.raises(HandlerMismatchError) as caught:
        run_state_machine_as_test(machine, settings=FAILING)
    error = caught.value
    assert error.what == "status"
    assert 1 <= len(error.bodies) <= 3, str(error)
    assert f"what really happened to card {error.card_id}" in str(error)


class Crashes(TrackerHandler):
    def handle(self, body: bytes) -> None:
        if b"DATA_PREPARED" in body:
            raise ValueError("unexpected dueDate")
        super().handle(body)


class CrashingMachine(SmallMachine):
    def make_handler(self) -> Handler:
        return Crashes()


def test_a_handler_that_raises_fails_the_machine_with_the_bodies() -> None:
    with pytest.raises(HandlerMismatchError) as caught:
        run_state_machine_as_test(CrashingMachine, settings=FAILING)
    error = caught.value
    assert error.raised
    assert error.what == "handle"
    assert isinstance(error.__cause__, ValueError)
    assert b"DATA_PREPARED" in error.bodies[-1]


class Unfinished(HandlerStateMachine):
    """Neither makes a handler nor talks to a system."""


def test_a_machine_without_a_handler_says_what_is_missing() -> None:
    with pytest.raises(NotImplementedError, match="make_handler"):
        run_state_machine_as_test(
            Unfinished, settings=settings(FEW, max_examples=1, phases=[Phase.generate])
        )
