"""The same events through the libraries one would otherwise reach for, written their way.

Every baseline decodes with ``cardflow.decode`` (so only what follows decoding
differs), keeps one object per card, and sends each PRODUCE event of a known status
to it. The state machines are given one event per status, ``to_<STATUS>``, allowed
from every status of lower precedence, so that the machine itself keeps a card moving
only upwards, as cardflow's fold does, whatever the order of arrival; an event that
would move a card down is refused and ignored. Each baseline does much less than the
fold (no gaps, no anomalies, no field joins), which favours the baselines:

- **transitions**, a model per card: one shared ``Machine`` and ``add_model`` for each
  new card (its documented way to drive many objects), ``ignore_invalid_triggers``
  and its logger at ERROR (otherwise every refused trigger builds a log record);
- **transitions, a machine per card**: ``Machine(model=card)``, its basic usage;
- **transitions, shared machine without models**: ``Machine(model=None)`` and
  ``machine.events[name].trigger(card)`` (what cardflow's tracker does for reactions);
- **python-statemachine**: a ``StateMachine`` instance per card, ``send("to_<STATUS>")``
  with ``allow_event_without_transition`` (a refused event is ignored);
- **eventsourcing**: an ``Aggregate`` per card in an ``Application`` with its default
  (in-memory) persistence, as its tutorial shows: each notification is get (which
  replays the card's events), command, save; and the same with the repository's
  aggregate cache on (``AGGREGATE_CACHE_MAXSIZE``), which skips the replay.

They need the ``bench`` extra; a missing library is reported, not fatal.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Final

import msgspec

import cardflow
from cardflow import D1_LIFECYCLE, PRODUCE, Operation

from ._data import Dataset
from ._timing import Result, median, ratio, rounds, us
from .throughput import decode_fold

TRANSITIONS_FACTOR: Final = 20.0
EVENTSOURCING_FACTOR: Final = 50.0
_RANKS: Final = dict(D1_LIFECYCLE.ranks)
_NAMESPACE: Final = uuid.UUID("6f1c3a52-8a5e-4d0c-9d63-4f1f6a0c2b11")


def _produce(data: Dataset) -> Iterator[tuple[Operation, str]]:
    """The PRODUCE events with a known status, decoded, in delivery order."""
    for body in data.stream():
        for op in cardflow.decode(body):
            if op.operation == PRODUCE and op.details is not None:
                status = op.details.status
                if status in _RANKS:
                    yield op, status


# -- transitions --------------------------------------------------------------------------


class _TransitionsCard:
    """The model of one card: transitions adds ``state`` and the trigger methods."""

    state: str

    def __init__(self) -> None:
        self.shipment: cardflow.Shipment | None = None


def _upwards() -> list[tuple[str, list[str], str]]:
    """(event, sources, destination): to each status from every status below it."""
    statuses = D1_LIFECYCLE.statuses
    return [(f"to_{dest}", list(statuses[:rank]), dest) for rank, dest in enumerate(statuses)][1:]


def _machine(model: object) -> Any:
    from transitions import Machine

    logging.getLogger("transitions").setLevel(logging.ERROR)
    return Machine(
        model=model,
        states=list(D1_LIFECYCLE.statuses),
        transitions=[list(move) for move in _upwards()],
        initial=D1_LIFECYCLE.initial,
        auto_transitions=False,
        ignore_invalid_triggers=True,
    )


def transitions_models(data: Dataset) -> dict[str, _TransitionsCard]:
    machine = _machine(None)
    cards: dict[str, _TransitionsCard] = {}
    for op, status in _produce(data):
        card = cards.get(op.card_id)
        if card is None:
            card = cards[op.card_id] = _TransitionsCard()
            machine.add_model(card)
        card.trigger(f"to_{status}")  # type: ignore[attr-defined]
        if op.details is not None and op.details.shipment is not None:
            card.shipment = op.details.shipment
    return cards


def transitions_machines(data: Dataset) -> dict[str, _TransitionsCard]:
    cards: dict[str, _TransitionsCard] = {}
    for op, status in _produce(data):
        card = cards.get(op.card_id)
        if card is None:
            card = cards[op.card_id] = _TransitionsCard()
            _machine(card)
        card.trigger(f"to_{status}")  # type: ignore[attr-defined]
        if op.details is not None and op.details.shipment is not None:
            card.shipment = op.details.shipment
    return cards


def transitions_shared(data: Dataset) -> dict[str, _TransitionsCard]:
    machine = _machine(None)
    events = machine.events
    initial = D1_LIFECYCLE.initial
    cards: dict[str, _TransitionsCard] = {}
    for op, status in _produce(data):
        card = cards.get(op.card_id)
        if card is None:
            card = cards[op.card_id] = _TransitionsCard()
            card.state = initial
        if status != initial:
            events[f"to_{status}"].trigger(card)
        if op.details is not None and op.details.shipment is not None:
            card.shipment = op.details.shipment
    return cards


# -- python-statemachine -------------------------------------------------------------------


def _statemachine_class() -> Any:
    from statemachine import State, StateMachine

    statuses = D1_LIFECYCLE.statuses
    states = {
        s: State(s, value=s, initial=s == statuses[0], final=s == statuses[-1]) for s in statuses
    }
    namespace: dict[str, Any] = dict(states)
    namespace["allow_event_without_transition"] = True
    for name, sources, dest in _upwards():
        moves = [states[source].to(states[dest]) for source in sources]
        event = moves[0]
        for move in moves[1:]:
            event = event | move
        namespace[name] = event
    return type("CardMachine", (StateMachine,), namespace)


def statemachine_per_card(data: Dataset) -> dict[str, Any]:
    machine_class = _statemachine_class()
    cards: dict[str, Any] = {}
    for op, status in _produce(data):
        card = cards.get(op.card_id)
        if card is None:
            card = cards[op.card_id] = machine_class()
        if status != D1_LIFECYCLE.initial:
            card.send(f"to_{status}")
    return cards


# -- eventsourcing ---------------------------------------------------------------------------


@functools.cache
def _eventsourcing_classes() -> Any:
    """The aggregate and application classes, defined once (eventsourcing registers each
    class under its name: a second definition is refused)."""
    from eventsourcing.application import AggregateNotFoundError, Application
    from eventsourcing.domain import Aggregate, event

    class Card(Aggregate):
        @event("Created")
        def __init__(self, card_id: str) -> None:
            self.card_id = card_id
            self.status = D1_LIFECYCLE.initial
            self.shipment: dict[str, Any] | None = None

        @staticmethod
        def create_id(card_id: str) -> uuid.UUID:
            return uuid.uuid5(_NAMESPACE, card_id)

        @event("Notified")
        def notify(self, status: str, shipment: dict[str, Any] | None) -> None:
            if _RANKS[status] > _RANKS[self.status]:
                self.status = status
            if shipment is not None:
                self.shipment = shipment

    class Cards(Application[uuid.UUID]):
        def handle(self, op: Operation, status: str) -> None:
            try:
                card: Card = self.repository.get(Card.create_id(op.card_id))
            except AggregateNotFoundError:
                card = Card(op.card_id)
            shipment = None
            if op.details is not None and op.details.shipment is not None:
                shipment = msgspec.to_builtins(op.details.shipment)
            card.notify(status, shipment)
            self.save(card)

    return Cards


def eventsourcing_per_card(data: Dataset) -> object:
    app = _eventsourcing_classes()()
    for op, status in _produce(data):
        app.handle(op, status)
    return app


def eventsourcing_cached(data: Dataset) -> object:
    app = _eventsourcing_classes()(env={"AGGREGATE_CACHE_MAXSIZE": "10000000"})
    for op, status in _produce(data):
        app.handle(op, status)
    return app


# -- the table ----------------------------------------------------------------------------------

ADD_MODEL: Final = "transitions, a model per card (add_model)"
_BASELINES: Final[dict[str, tuple[str, Callable[[Dataset], object], float | None]]] = {
    ADD_MODEL: (
        "transitions",
        transitions_models,
        TRANSITIONS_FACTOR,
    ),
    "transitions, a machine per card": ("transitions", transitions_machines, TRANSITIONS_FACTOR),
    "transitions, shared machine, model=None": ("transitions", transitions_shared, None),
    "python-statemachine, a machine per card": ("statemachine", statemachine_per_card, None),
    "eventsourcing, an aggregate per card (get, command, save)": (
        "eventsourcing",
        eventsourcing_per_card,
        EVENTSOURCING_FACTOR,
    ),
    "eventsourcing, the same with the aggregate cache on": (
        "eventsourcing",
        eventsourcing_cached,
        None,
    ),
}


def run(data: Dataset, count: int, only: tuple[str, ...] = ()) -> list[Result]:
    """The baselines (or ``only`` these) against cardflow, on ``data``."""
    size = f"{data.name} ({data.events:,} events)"
    contenders: dict[str, Callable[[], object]] = {"cardflow": lambda: decode_fold(data)}
    results: list[Result] = []
    for name, (module, baseline, _) in _BASELINES.items():
        if only and name not in only:
            continue
        if importlib.util.find_spec(module) is None:
            results.append(
                Result("baselines", name, size, "not installed: pip install -e '.[bench]'")
            )
            continue
        contenders[name] = functools.partial(baseline, data)
    times = rounds(contenders, count)
    for name, (_, _, factor) in _BASELINES.items():
        if name not in times:
            continue
        slower = ratio(times[name], times["cardflow"])
        results.append(
            Result(
                "baselines",
                f"{name}: time vs cardflow decode + fold",
                size,
                f"{us(median(times[name]), data.events)}/event",
                slower,
                "" if factor is None else f">= {factor:.0f}",
                None if factor is None else slower >= factor,
            )
        )
    return results
