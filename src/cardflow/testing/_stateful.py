"""A Hypothesis state machine that plays D1 against a user's handler, step by step.

:func:`~cardflow.testing.check_handler` draws a whole delivery up front; the state
machine instead lets Hypothesis choose the next network event one at a time
(deliver in order, deliver out of order, send a copy again, lose one, ask D1 on
demand), so that long and unusual runs are explored and the failing run shrinks to
its shortest sequence of events. After every step, the handler must agree with the
oracle on every card.

Subclass :class:`HandlerStateMachine`, implement ``make_handler()`` (or override
``handle`` and ``status``), and expose ``MyMachine.TestCase`` to pytest or unittest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._model import CardHistory, History, expected_state
from .._wire import Operation
from ._check import Compare, Handler, HandlerMismatchError, RaisedError, compare_with_oracle
from ._delivery import body_of, op_json, time_digits
from ._strategies import histories

__all__ = ["HandlerStateMachine"]


def _in_flight(machine: HandlerStateMachine) -> bool:
    return bool(machine.in_flight)


def _some_delivered(machine: HandlerStateMachine) -> bool:
    return bool(machine.delivered)


def _has_others(machine: HandlerStateMachine) -> bool:
    return machine.history is not None and bool(machine.history.others)


class HandlerStateMachine(RuleBasedStateMachine):
    """Drive a D1 consumer with one network event at a time; compare with the oracle.

    At the start, a true history is drawn (see :func:`~cardflow.testing.histories`,
    configured by the class attributes). Its notifications are all *in flight*. Each
    step is one of:

    - ``deliver``: the next notification (in true order) of one or more cards, in
      one body;
    - ``reorder``: some in-flight notifications in any order, overtaking earlier ones;
    - ``duplicate``: notifications already delivered, again;
    - ``lose``: an in-flight notification is dropped for good;
    - ``reconcile``: the on-demand status response for a card (its latest event);
    - ``deliver_other``: an operation other than PRODUCE (with ``other_operations``).

    After every step the invariant asks the handler about every card of the history
    and raises :class:`~cardflow.testing.HandlerMismatchError` on a wrong answer.

    Subclasses implement :meth:`make_handler`, or override :meth:`handle` and
    :meth:`status` to talk to their system directly (then ``operation_id`` and
    ``shipment`` methods on the machine are checked when defined). ``compare`` may
    be set to a :data:`~cardflow.testing.Compare` function.
    """

    lifecycle: ClassVar[Lifecycle] = D1_LIFECYCLE
    max_cards: ClassVar[int] = 3
    max_operations: ClassVar[int] = 2
    max_bulk: ClassVar[int] = 4
    unknown_statuses: ClassVar[bool] = False
    other_operations: ClassVar[bool] = False
    compare: ClassVar[Compare | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.history: History | None = None
        self.handler: Handler | None = None
        self.in_flight: list[Operation] = []
        self.delivered: list[Operation] = []
        self.lost: list[Operation] = []
        self.time_digits: dict[Operation, int | None] = {}
        self.bodies: list[bytes] = []

    # -- what subclasses provide ----------------------------------------------------

    def make_handler(self) -> Handler:
        """A fresh handler for this run. Implement it, or override handle and status."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement make_handler(), or override both "
            "handle() and status()"
        )

    def handle(self, body: bytes) -> None:
        """Give one D1 body to the system under test (by default, to the handler)."""
        self._handler().handle(body)

    def status(self, card_id: str) -> str | None:
        """The status the system under test believes current for ``card_id``."""
        return self._handler().status(card_id)

    def _handler(self) -> Handler:
        assert self.handler is not None, "the handler is made by the initialize step"
        return self.handler

    def _asked(self) -> Any:
        """Whom the invariant asks: the handler, unless ``status`` is overridden."""
        if type(self).status is HandlerStateMachine.status:
            return self._handler()
        return self

    # -- the steps ----------------------------------------------------------------------

    @initialize(data=st.data())
    def begin(self, data: st.DataObject) -> None:
        """Draw the truth: every notification of the history starts in flight."""
        cls = type(self)
        self.history = data.draw(
            histories(
                cls.lifecycle,
                max_cards=cls.max_cards,
                max_operations=cls.max_operations,
                unknown_statuses=cls.unknown_statuses,
                other_operations=cls.other_operations,
            ),
            label="history",
        )
        self.in_flight = self.history.notifications()
        self.time_digits = time_digits(self.history)
        base = HandlerStateMachine
        if cls.handle is base.handle or cls.status is base.status:
            self.handler = self.make_handler()

    def _send(self, notes: list[Operation]) -> None:
        body = body_of([op_json(n, self.time_digits.get(n)) for n in notes])
        self.bodies.append(body)
        for note in notes:
            if note in self.in_flight:
                self.in_flight.remove(note)
            if note not in self.delivered:
                self.delivered.append(note)
        self._handle(body)

    def _handle(self, body: bytes) -> None:
        try:
            self.handle(body)
        except Exception as exc:
            raise HandlerMismatchError.handle_raised(
                exc, bodies=self.bodies, history=self._history(), delivered=self.delivered
            ) from exc

    def _history(self) -> History:
        assert self.history is not None, "the history is drawn by the initialize step"
        return self.history

    @precondition(_in_flight)
    @rule(data=st.data())
    def deliver(self, data: st.DataObject) -> None:
        """The next notification, in true order, of one or more cards, in one body."""
        heads: dict[str, Operation] = {}
        for note in self.in_flight:
            heads.setdefault(note.card_id, note)
        cards = sorted(heads)
        chosen = data.draw(
            st.lists(
                st.sampled_from(cards),
                min_size=1,
                max_size=min(type(self).max_bulk, len(cards)),
                unique=True,
            ),
            label="cards",
        )
        self._send([heads[c] for c in chosen])

    @precondition(_in_flight)
    @rule(data=st.data())
    def reorder(self, data: st.DataObject) -> None:
        """In-flight notifications in any order: later ones may overtake earlier ones."""
        picks = data.draw(
            st.lists(
                st.sampled_from(range(len(self.in_flight))),
                min_size=1,
                max_size=type(self).max_bulk,
                unique=True,
            ),
            label="positions",
        )
        self._send([self.in_flight[i] for i in picks])

    @precondition(_some_delivered)
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        """Notifications that already arrived, sent again (D1 delivers at least once)."""
        picks = data.draw(
            st.lists(
                st.sampled_from(range(len(self.delivered))),
                min_size=1,
                max_size=type(self).max_bulk,
            ),
            label="positions",
        )
        self._send([self.delivered[i] for i in picks])

    @precondition(_in_flight)
    @rule(data=st.data())
    def lose(self, data: st.DataObject) -> None:
        """An in-flight notification never arrives."""
        at = data.draw(st.integers(0, len(self.in_flight) - 1), label="position")
        self.lost.append(self.in_flight.pop(at))

    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        """The on-demand status response for one card: the latest event of its current
        operation (D1 has done all of the history; its notifications may still be in
        flight)."""
        card: CardHistory = data.draw(st.sampled_from(self._history().cards), label="card")
        self._send([card.current.notifications[-1]])

    @precondition(_has_others)
    @rule(data=st.data())
    def deliver_other(self, data: st.DataObject) -> None:
        """An operation of another type for one of the cards, which must change nothing."""
        other = data.draw(st.sampled_from(self._history().others), label="operation")
        body = body_of([other])
        self.bodies.append(body)
        self._handle(body)

    # -- the invariant --------------------------------------------------------------------

    @invariant()
    def agrees_with_the_oracle(self) -> None:
        """Every card: the handler's answers are the oracle's, given what arrived."""
        if self.history is None:
            return
        arrived = set(self.delivered)
        target = self._asked()
        compare = type(self).compare
        for card in self.history.cards:
            expected = expected_state(card, arrived, type(self).lifecycle)
            try:
                wrong = compare_with_oracle(
                    target, card.card_id, expected, type(self).lifecycle, compare
                )
            except RaisedError as raised:
                raise HandlerMismatchError(
                    what=raised.what,
                    card_id=card.card_id,
                    expected=expected,
                    actual=f"{type(raised.error).__name__}: {raised.error}",
                    bodies=self.bodies,
                    history=self.history,
                    delivered=arrived,
                    raised=True,
                ) from raised.error
            if wrong is not None:
                raise HandlerMismatchError(
                    what=wrong.what,
                    card_id=card.card_id,
                    expected=wrong.expected,
                    actual=wrong.actual,
                    bodies=self.bodies,
                    history=self.history,
                    delivered=arrived,
                    detail=wrong.detail,
                )
