"""How D1 delivers a history (copies, any order, bulk bodies, losses and on-demand
repairs), the bodies' text, and traffic: a history, its delivery and the oracle's states.

Timestamps are written as each operation's plan says (``Plan.time_digits``): D1's own
spelling, or padded to 3 or 6 fraction digits, in the offset they were drawn in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
from hypothesis import strategies as st

from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._model import Expected, History, expected_state
from .._wire import Operation, encode
from ._draws import check, check_count, check_lifecycle
from ._strategies import histories

__all__ = [
    "Delivery",
    "Traffic",
    "body_of",
    "deliveries",
    "describe_bodies",
    "op_json",
    "time_digits",
    "traffic",
]


@dataclass(frozen=True)
class Delivery:
    """How D1 delivered a history: the bodies in arrival order, and what they carried.

    ``contents[i]`` holds the PRODUCE notifications that body ``i`` carried (copies
    included, other operation types left out). ``delivered`` holds every PRODUCE
    notification that arrived at least once (on-demand responses included); ``lost``
    the ones that never did; ``repairs`` the on-demand responses appended after a
    loss, one per card that lost something.
    """

    bodies: tuple[bytes, ...]
    contents: tuple[tuple[Operation, ...], ...]
    delivered: frozenset[Operation]
    lost: tuple[Operation, ...]
    repairs: tuple[Operation, ...]

    def describe(self, upto: int | None = None) -> str:
        """The bodies (the first ``upto`` of them), one operation per line, for a person."""
        return describe_bodies(self.bodies[:upto])


def describe_bodies(bodies: Sequence[bytes]) -> str:
    """Bodies as text: a header per body, then each of its operations as one JSON line."""
    lines = []
    for number, body in enumerate(bodies, 1):
        try:
            items = msgspec.json.decode(body, type=dict[str, list[msgspec.Raw]])["operations"]
        except (msgspec.DecodeError, KeyError):
            lines.append(f"  body {number}: {body!r}")
            continue
        lines.append(f"  body {number} ({len(items)} operation{'s' * (len(items) != 1)}):")
        lines.extend(f"    {bytes(item).decode()}" for item in items)
    return "\n".join(lines)


def _spelled(value: datetime, digits: int | None) -> str:
    """``value`` in its own offset (UTC as ``Z``), with at least ``digits`` fraction digits."""
    needed = 0 if value.microsecond == 0 else 3 if value.microsecond % 1000 == 0 else 6
    width = max(needed, digits or 0)
    text = value.isoformat(timespec={0: "seconds", 3: "milliseconds", 6: "microseconds"}[width])
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _spell_times(value: Any, digits: int | None) -> Any:
    if isinstance(value, dict):
        return {k: _spell_times(v, digits) for k, v in value.items()}
    if isinstance(value, datetime):
        return _spelled(value, digits)
    return value


def op_json(op: Operation, digits: int | None = None) -> bytes:
    """One operation's JSON, its timestamps written with at least ``digits`` fraction
    digits (None: D1's own spelling, as ``cardflow.encode`` writes it)."""
    if digits is None:
        return encode([op])[len(b'{"operations":[') : -2]
    plain = msgspec.to_builtins(op, builtin_types=(datetime,))
    return msgspec.json.encode(_spell_times(plain, digits))


def time_digits(history: History) -> dict[Operation, int | None]:
    """How each notification of ``history`` writes its timestamps (its plan says)."""
    return {
        n: o.plan.time_digits for c in history.cards for o in c.operations for n in o.notifications
    }


def body_of(items: Sequence[bytes]) -> bytes:
    """A webhook body carrying the operations ``items`` (each one's JSON) in this order."""
    return b'{"operations":[' + b",".join(items) + b"]}"


@st.composite
def _delivery(
    draw: st.DrawFn, history: History, max_bulk: int, max_copies: int, lose: bool
) -> Delivery:
    sent: list[tuple[bytes, Operation | None]] = []
    delivered: set[Operation] = set()
    lost: list[Operation] = []
    digits = time_digits(history)
    for note in history.notifications():
        # The last choice loses: shrinking goes towards delivering everything.
        if lose and draw(st.integers(0, 4)) == 4:
            lost.append(note)
            continue
        delivered.add(note)
        sent.extend([(op_json(note, digits[note]), note)] * draw(st.integers(1, max_copies)))
    sent.extend((other, None) for other in history.others)
    order = draw(st.permutations(sent)) if sent else []
    bodies: list[bytes] = []
    contents: list[tuple[Operation, ...]] = []
    at = 0
    while at < len(order):
        # Shrinks towards full bodies: the fewest bodies to read in a failure.
        most = min(max_bulk, len(order) - at)
        size = most - draw(st.integers(0, most - 1))
        chunk = order[at : at + size]
        bodies.append(body_of([item for item, _ in chunk]))
        contents.append(tuple(note for _, note in chunk if note is not None))
        at += size
    repairs: list[Operation] = []
    lost_cards = {n.card_id for n in lost}
    for card in history.cards:
        if card.card_id in lost_cards:
            latest = card.current.notifications[-1]
            repairs.append(latest)
            delivered.add(latest)
            bodies.append(body_of([op_json(latest, digits[latest])]))
            contents.append((latest,))
    return Delivery(
        bodies=tuple(bodies),
        contents=tuple(contents),
        delivered=frozenset(delivered),
        lost=tuple(lost),
        repairs=tuple(repairs),
    )


def deliveries(
    history: History, *, max_bulk: int = 4, max_copies: int = 3, lose: bool = False
) -> st.SearchStrategy[Delivery]:
    """At-least-once delivery of ``history``: copies, any order, bulk bodies mixing cards.

    Every notification arrives one to ``max_copies`` times, in any order, in bodies of
    one to ``max_bulk`` operations. With ``lose``, some notifications never arrive;
    each card that lost one then gets an on-demand status response (its latest event).
    Shrinks towards no loss, single copies, true order and full bodies.
    """
    check(isinstance(history, History), f"history must be a History, got {history!r}")
    check_count("max_bulk", max_bulk, 1)
    check_count("max_copies", max_copies, 1)
    return _delivery(history, max_bulk, max_copies, bool(lose))


@dataclass(frozen=True)
class Traffic:
    """A true history, how it was delivered, and what a correct consumer must report."""

    history: History
    delivery: Delivery
    expected: dict[str, Expected]
    lifecycle: Lifecycle

    @property
    def bodies(self) -> tuple[bytes, ...]:
        """The bodies to feed a handler, in arrival order."""
        return self.delivery.bodies

    def expected_after(self, count: int) -> dict[str, Expected | None]:
        """What a correct consumer reports for every card once the first ``count`` bodies
        arrived (None for a card none of whose notifications arrived yet)."""
        arrived = {n for body in self.delivery.contents[:count] for n in body}
        return {
            card.card_id: expected_state(card, arrived, self.lifecycle)
            for card in self.history.cards
        }


def _expect(history: History, delivery: Delivery, lifecycle: Lifecycle) -> dict[str, Expected]:
    out: dict[str, Expected] = {}
    for card in history.cards:
        mine = [n for o in card.operations for n in o.notifications if n in delivery.delivered]
        found = expected_state(card, mine, lifecycle)
        if found is not None:
            out[card.card_id] = found
    return out


def traffic(
    lifecycle: Lifecycle = D1_LIFECYCLE,
    *,
    min_cards: int = 1,
    max_cards: int = 4,
    max_operations: int = 2,
    max_bulk: int = 4,
    max_copies: int = 3,
    lose: bool = False,
    unknown_statuses: bool = False,
    other_operations: bool = False,
) -> st.SearchStrategy[Traffic]:
    """Histories, their at-least-once delivery, and the oracle's expected states."""
    lifecycle = check_lifecycle(lifecycle)
    hist = histories(
        lifecycle,
        min_cards=min_cards,
        max_cards=max_cards,
        max_operations=max_operations,
        unknown_statuses=unknown_statuses,
        other_operations=other_operations,
    )
    check_count("max_bulk", max_bulk, 1)
    check_count("max_copies", max_copies, 1)
    return _traffic(hist, lifecycle, max_bulk, max_copies, bool(lose))


@st.composite
def _traffic(
    draw: st.DrawFn,
    hist: st.SearchStrategy[History],
    lifecycle: Lifecycle,
    max_bulk: int,
    max_copies: int,
    lose: bool,
) -> Traffic:
    history = draw(hist)
    delivery = draw(_delivery(history, max_bulk, max_copies, lose))
    return Traffic(history, delivery, _expect(history, delivery, lifecycle), lifecycle)
