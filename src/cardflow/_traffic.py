"""What a fake D1 sends, planned in advance: the truth, the bodies, what got through.

A pure function of its options (:func:`fake_traffic`), so that the fake D1 that sends
it and the conformance check that judges the receiver agree on it without talking:
the check recomputes the same plan from the same seed. Each aspect draws from its own
seeded stream, so that which notifications are lost depends only on the seed, the
number of cards and the loss rate, not on duplicates or body sizes.

Seeded like the simulator, and beside it: ``cardflow.testing`` re-exports it, but the
harness's own modules leave every choice to Hypothesis and never import ``random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ._lifecycle import D1_LIFECYCLE
from ._model import CardHistory, Expected, TrueOperation, expected_state, render
from ._simulate import simulate_plans
from ._wire import Operation, encode

__all__ = ["DEFAULT_ISSUER", "FakeTraffic", "fake_traffic"]

DEFAULT_ISSUER: Final = "ISSUER0001"
"""An issuerId of D1's shape (exactly 10 characters)."""


@dataclass(frozen=True)
class FakeTraffic:
    """The true histories of some cards and how a fake D1 delivers them.

    ``bodies`` are the notification bodies in the order they are first sent
    (duplicates, reordering, several operations per body, mixing cards);
    ``delivered`` the notifications in at least one body (every other one is lost).
    """

    issuer_id: str
    cards: dict[str, CardHistory]
    bodies: tuple[bytes, ...]
    delivered: frozenset[Operation]
    notifications: int
    """How many notifications the truth holds (delivered or lost)."""

    def latest(self, card_id: str) -> Operation | None:
        """The card's latest true event: what D1's on-demand status answers; None for a
        card D1 does not know."""
        card = self.cards.get(card_id)
        return None if card is None else card.current.notifications[-1]

    def expected(self, card_id: str, *, served: bool = False) -> Expected | None:
        """What a correct receiver reports for the card once every delivered body
        arrived and, with ``served``, once it took the on-demand status too."""
        card = self.cards[card_id]
        arrived = [n for o in card.operations for n in o.notifications if n in self.delivered]
        if served:
            arrived.append(card.current.notifications[-1])
        return expected_state(card, arrived, D1_LIFECYCLE)

    @property
    def lost(self) -> int:
        """How many notifications were never sent."""
        return self.notifications - len(self.delivered)


def _histories(cards: int, seed: int) -> dict[str, CardHistory]:
    grouped: dict[str, list[TrueOperation]] = {}
    for plan in simulate_plans(cards, seed):
        true = TrueOperation(plan, render(plan, D1_LIFECYCLE))
        grouped.setdefault(plan.card_id, []).append(true)
    return {card: CardHistory(card, tuple(ops)) for card, ops in grouped.items()}


def _chunks(items: list[Operation], bulk: int, rng: random.Random) -> Iterator[list[Operation]]:
    at = 0
    while at < len(items):
        size = rng.randint(1, bulk)
        yield items[at : at + size]
        at += size


def fake_traffic(
    cards: int,
    seed: int,
    *,
    lose: float = 0.0,
    duplicates: float = 0.0,
    bulk: int = 10,
    issuer_id: str = DEFAULT_ISSUER,
) -> FakeTraffic:
    """Plan the traffic of ``cards`` simulated cards (the simulator's truth model).

    Each notification is lost with chance ``lose``, else sent, and sent once more with
    chance ``duplicates`` (again and again: geometric); everything is shuffled and cut
    into bodies of 1 to ``bulk`` operations. The same arguments give the same plan.
    """
    for name, value in (("lose", lose), ("duplicates", duplicates)):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name} must be at least 0 and below 1, got {value}")
    if bulk < 1:
        raise ValueError(f"bulk must be at least 1, got {bulk}")
    histories = _histories(cards, seed)
    losing = random.Random(f"{seed}:lose")
    copying = random.Random(f"{seed}:duplicates")
    ordering = random.Random(f"{seed}:order")
    delivered: set[Operation] = set()
    sent: list[Operation] = []
    total = 0
    for card in histories.values():
        for operation in card.operations:
            for note in operation.notifications:
                total += 1
                if lose and losing.random() < lose:
                    continue
                delivered.add(note)
                sent.append(note)
                while duplicates and copying.random() < duplicates:
                    sent.append(note)
    ordering.shuffle(sent)
    bodies = tuple(encode(chunk) for chunk in _chunks(sent, bulk, ordering))
    return FakeTraffic(issuer_id, histories, bodies, frozenset(delivered), total)
