"""``check_handler``: a conformance check that users point at their own D1 consumer.

Like ``trio.testing.check_one_way_stream``, it takes a factory of the thing under
test and puts fresh instances through generated situations. Here a situation is a
true history of some cards delivered the way D1 delivers (copies, any order, bulk
bodies, optionally losses repaired on demand); after every body, the handler must
agree with the oracle (:func:`~cardflow.testing.expected_state`) on every card. The
search is Hypothesis's own, run inside the call, so a plain test function is enough;
on failure Hypothesis shrinks the situation and the check raises
:class:`HandlerMismatchError`, which shows the minimal delivery body by body.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import hypothesis
from hypothesis import HealthCheck, Phase, given

from .._errors import CardflowError
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._model import CardHistory, Expected, History
from .._wire import Operation
from ._coverage import Coverage, edge_coverage
from ._delivery import Traffic, describe_bodies, traffic
from ._draws import check_count, check_lifecycle

__all__ = ["Compare", "Handler", "HandlerMismatchError", "check_handler"]


class Handler(Protocol):
    """What ``check_handler`` drives: a consumer of D1 bodies that answers per card.

    ``handle`` gets one body exactly as D1 posts it (``{"operations": [...]}``);
    ``status`` answers with the ``details.status`` code the handler believes current
    for the card, or None for a card it never heard of. A handler may also define
    ``operation_id(card_id) -> str | None`` (the current operation) and
    ``shipment(card_id) -> cardflow.Shipment | None`` (the newest shipment data);
    when present, they are checked too.
    """

    def handle(self, body: bytes, /) -> None:
        """Take one D1 body."""

    def status(self, card_id: str, /) -> str | None:
        """The status believed current for ``card_id``, or None when unknown."""


Compare = Callable[[Any, str, Expected | None], None]
"""An extra comparison: ``compare(handler, card_id, expected)`` raises AssertionError
when the handler disagrees with ``expected`` (None: nothing of the card arrived yet)."""

OPTIONAL_CHECKS: tuple[str, ...] = ("operation_id", "shipment")
"""Methods that a handler may define and that are then compared with the oracle."""


@dataclass(frozen=True)
class _Wrong:
    """One disagreement: which answer, what the oracle says, what the handler said."""

    what: str
    expected: object
    actual: object
    detail: str = ""


class HandlerMismatchError(CardflowError, AssertionError):
    """A handler disagreed with the oracle (or raised) after some delivered bodies.

    ``bodies`` are the bodies delivered up to and including the one after which the
    disagreement showed (after shrinking: a minimal delivery that fails); ``card_id``
    the card asked about (None when ``handle`` raised); ``what`` the answer that was
    wrong (``"status"``, ``"operation_id"``, ``"shipment"``, ``"compare"``) or the
    method that raised (``"handle"``, ``"status"``, ...), with ``raised`` set;
    ``expected`` and ``actual`` the two answers (for a raise, the exception's text).
    ``history`` is the true history behind the delivery.
    """

    def __init__(
        self,
        *,
        what: str,
        card_id: str | None,
        expected: object,
        actual: object,
        bodies: Sequence[bytes],
        history: History,
        delivered: Collection[Operation],
        raised: bool = False,
        detail: str = "",
    ) -> None:
        self.what = what
        self.card_id = card_id
        self.expected = expected
        self.actual = actual
        self.bodies: tuple[bytes, ...] = tuple(bodies)
        self.history = history
        self.raised = raised
        self.detail = detail
        self._delivered = frozenset(delivered)
        super().__init__(self._message())

    @classmethod
    def handle_raised(
        cls,
        exc: BaseException,
        *,
        bodies: Sequence[bytes],
        history: History,
        delivered: Collection[Operation],
    ) -> HandlerMismatchError:
        """The error for a handler whose ``handle(body)`` raised ``exc``."""
        return cls(
            what="handle",
            card_id=None,
            expected=None,
            actual=f"{type(exc).__name__}: {exc}",
            bodies=bodies,
            history=history,
            delivered=delivered,
            raised=True,
        )

    def _message(self) -> str:
        where = f"after body {len(self.bodies)}"
        if self.raised:
            call = "handle(body)" if self.card_id is None else f"{self.what}({self.card_id!r})"
            lines = [f"the handler raised in {call} {where}: {self.actual}"]
        else:
            lines = [
                f"the handler disagrees with the oracle on card {self.card_id} {where}:",
                f"  {self.what}: expected {self.expected!r}, got {self.actual!r}",
            ]
        if self.detail:
            lines.append(f"  {self.detail}")
        for card in self.history.cards:
            if self.card_id is None or card.card_id == self.card_id:
                lines.extend(_story(card, self._delivered))
        lines.append(f"bodies delivered, in arrival order ({len(self.bodies)}):")
        lines.append(describe_bodies(self.bodies))
        return "\n".join(lines)


def _story(card: CardHistory, delivered: Collection[Operation]) -> list[str]:
    """What really happened to ``card``, marking the notifications not delivered yet."""
    lines = [f"what really happened to card {card.card_id} (true order; * = not delivered):"]
    for operation in sorted(card.operations, key=lambda o: o.key):
        steps = []
        for note in operation.notifications:
            status = note.details.status if note.details is not None else None
            steps.append(f"{status}{'' if note in delivered else '*'}")
        start = operation.plan.start_time.isoformat().replace("+00:00", "Z")
        lines.append(
            f"  operation {operation.plan.operation_id} (started {start}): {' -> '.join(steps)}"
        )
    return lines


def _acceptable(expected: Expected | None, lifecycle: Lifecycle) -> tuple[object, ...]:
    """The status answers that are right: one, except when only unknown statuses arrived.

    A status the lifecycle does not know never replaces a known one; when only
    unknown statuses arrived for the current operation, nothing ranks them, so any of
    them is a right answer.
    """
    if expected is None:
        return (None,)
    if lifecycle.is_known(expected.status) or not expected.unknown_statuses:
        return (expected.status,)
    return tuple(sorted(expected.unknown_statuses))


class RaisedError(Exception):
    """A handler method (or ``compare``) raised while being asked about a card."""

    def __init__(self, what: str, error: Exception) -> None:
        super().__init__(what)
        self.what = what
        self.error = error


def _ask(what: str, call: Callable[[], object]) -> object:
    try:
        return call()
    except Exception as exc:
        raise RaisedError(what, exc) from exc


def compare_with_oracle(
    handler: Any,
    card_id: str,
    expected: Expected | None,
    lifecycle: Lifecycle,
    compare: Compare | None = None,
) -> _Wrong | None:
    """The first answer of ``handler`` about ``card_id`` that disagrees with the oracle.

    Raises ``RaisedError`` when one of the handler's methods (or ``compare``, with
    anything but an AssertionError) raises.
    """
    right = _acceptable(expected, lifecycle)
    status = _ask("status", lambda: handler.status(card_id))
    if status not in right:
        return _Wrong("status", right[0] if len(right) == 1 else right, status)
    for name in OPTIONAL_CHECKS:
        method = getattr(handler, name, None)
        if callable(method):
            want = None if expected is None else getattr(expected, name)
            got = _ask(name, lambda m=method: m(card_id))  # type: ignore[misc]
            if got != want:
                return _Wrong(name, want, got)
    if compare is not None:
        try:
            _ask("compare", lambda: compare(handler, card_id, expected))
        except RaisedError as raised:
            if not isinstance(raised.error, AssertionError):
                raise
            return _Wrong("compare", expected, status, str(raised.error) or repr(raised.error))
    return None


def drive(handler: Any, case: Traffic, compare: Compare | None = None) -> None:
    """Feed ``case`` to ``handler`` body by body; after each, compare every card.

    Raises :class:`HandlerMismatchError` at the first wrong answer or exception.
    """
    __tracebackhide__ = True  # pytest shows the message, not this function's source
    history = case.history
    arrived: set[Operation] = set()
    for count, body in enumerate(case.bodies, 1):
        arrived.update(case.delivery.contents[count - 1])
        bodies = case.bodies[:count]
        try:
            handler.handle(body)
        except Exception as exc:
            raise HandlerMismatchError.handle_raised(
                exc, bodies=bodies, history=history, delivered=arrived
            ) from exc
        for card_id, expected in case.expected_after(count).items():
            try:
                wrong = compare_with_oracle(handler, card_id, expected, case.lifecycle, compare)
            except RaisedError as raised:
                error = raised.error
                raise HandlerMismatchError(
                    what=raised.what,
                    card_id=card_id,
                    expected=expected,
                    actual=f"{type(error).__name__}: {error}",
                    bodies=bodies,
                    history=history,
                    delivered=arrived,
                    raised=True,
                ) from error
            if wrong is not None:
                raise HandlerMismatchError(
                    what=wrong.what,
                    card_id=card_id,
                    expected=wrong.expected,
                    actual=wrong.actual,
                    bodies=bodies,
                    history=history,
                    delivered=arrived,
                    detail=wrong.detail,
                )


class _Case:
    """One generated situation, with a short repr: the failure message shows the rest."""

    __slots__ = ("traffic",)

    def __init__(self, traffic: Traffic) -> None:
        self.traffic = traffic

    def __repr__(self) -> str:
        bodies, cards = len(self.traffic.bodies), len(self.traffic.history.cards)
        return (
            f"<{bodies} bod{'y' if bodies == 1 else 'ies'} for {cards} "
            f"card{'' if cards == 1 else 's'}: see the message above>"
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis prints a failing case with this (and not field by field)."""
        printer.text(repr(self))


def check_handler(
    make_handler: Callable[[], Handler],
    *,
    lifecycle: Lifecycle = D1_LIFECYCLE,
    max_examples: int | None = None,
    max_cards: int = 3,
    max_operations: int = 2,
    max_bulk: int = 4,
    max_copies: int = 3,
    lose: bool = False,
    unknown_statuses: bool = False,
    other_operations: bool = False,
    compare: Compare | None = None,
    settings: hypothesis.settings | None = None,
) -> Coverage:
    """Check that the handlers ``make_handler()`` returns follow D1 notifications right.

    Each example draws a true history of up to ``max_cards`` cards (each with up to
    ``max_operations`` PRODUCE operations, walks on ``lifecycle``), delivers it at
    least once (up to ``max_copies`` copies of each notification, any order, bodies
    of up to ``max_bulk`` operations) to a fresh handler, and after every body asks
    it about every card of the history. ``lose`` drops some notifications and then
    sends an on-demand status response for the card; ``unknown_statuses`` mixes in
    statuses the lifecycle does not know; ``other_operations`` mixes in operations
    other than PRODUCE. ``compare`` adds a check of your own (see :data:`Compare`).

    ``max_examples`` defaults to the current Hypothesis profile's; ``settings``, when
    given, is the base for the run's settings (deadline and the health checks about
    generation are turned off, and one failure is reported, not several).

    ``make_handler`` is called once per example, and twice before the run to check
    that it makes fresh handlers with ``handle`` and ``status``.

    Raises :class:`HandlerMismatchError` (an ``AssertionError``) on the first wrong answer,
    after shrinking. Returns the :class:`Coverage` of the lifecycle's edges by the
    histories it generated.
    """
    if not callable(make_handler):
        raise TypeError(f"make_handler must be callable, got {make_handler!r}")
    lifecycle = check_lifecycle(lifecycle)
    if max_examples is not None:
        check_count("max_examples", max_examples, 1)
    if settings is not None and not isinstance(settings, hypothesis.settings):
        raise TypeError(f"settings must be a hypothesis.settings, got {settings!r}")
    if compare is not None and not callable(compare):
        raise TypeError(f"compare must be callable, got {compare!r}")
    strategy = traffic(
        lifecycle,
        max_cards=max_cards,
        max_operations=max_operations,
        max_bulk=max_bulk,
        max_copies=max_copies,
        lose=lose,
        unknown_statuses=unknown_statuses,
        other_operations=other_operations,
    )
    first, second = make_handler(), make_handler()
    if first is second:
        raise ValueError("make_handler must return a fresh handler on every call")
    for name in ("handle", "status"):
        if not callable(getattr(first, name, None)):
            raise TypeError(f"the handler {first!r} has no method {name}()")

    seen: list[History] = []

    def conforms(case: _Case) -> None:
        seen.append(case.traffic.history)
        drive(make_handler(), case.traffic, compare)

    base = settings if settings is not None else hypothesis.settings()
    run_settings = hypothesis.settings(
        base,
        max_examples=base.max_examples if max_examples is None else max_examples,
        deadline=None,
        report_multiple_bugs=False,
        # The explain phase would point at lines of this module, not of the handler.
        phases=[p for p in base.phases if p is not Phase.explain],
        suppress_health_check=[
            *base.suppress_health_check,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )
    test = run_settings(given(strategy.map(_Case))(conforms))
    # The example database keys tests by their source; this one test runs for every
    # handler, so key it by the handler and the options too (Hypothesis's stateful
    # tests do the same). Without it, examples saved for one handler replay for another.
    key = repr(
        (
            getattr(make_handler, "__module__", ""),
            getattr(make_handler, "__qualname__", repr(type(make_handler))),
            lifecycle.name,
            max_cards,
            max_operations,
            max_bulk,
            max_copies,
            lose,
            unknown_statuses,
            other_operations,
        )
    )
    inner = getattr(getattr(test, "hypothesis", None), "inner_test", None)
    if inner is not None:
        inner._hypothesis_internal_add_digest = hashlib.sha256(key.encode()).digest()
    __tracebackhide__ = True
    test()
    return edge_coverage(seen, lifecycle)
