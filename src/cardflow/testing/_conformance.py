"""The conformance check: does a receiver's view of each card match the truth?

The receiver may be written in any language: all it has to offer is a view of each
card as JSON in the shape of :func:`cardflow.json_view` (``GET /cards/{cardId}``
answering it, 404 for an unknown card), or a cardflow store. The check recomputes
the fake D1's traffic from its seed (:func:`~cardflow.testing.fake_traffic`), asks
the oracle (:func:`~cardflow.testing.expected_state`) what each card must show, and
lists every field where the receiver differs.

The oracle is independent of cardflow's fold: it reads the true history in true
order. Only the fields the oracle determines are compared (not ``anomalies``, not
``confirmedAt``); lists whose order is a presentation choice (``observed``,
``gaps``...) are compared as sets; times as instants, whatever their spelling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Protocol
from urllib.parse import quote

import httpx
import msgspec

from .._cardstate import CardState
from .._model import Expected
from .._traffic import FakeTraffic
from .._view import json_view
from .._wire import Shipment

__all__ = [
    "Conformance",
    "Difference",
    "ViewSource",
    "check_conformance",
    "compare_view",
    "http_views",
    "served_cards",
    "store_views",
]

ViewSource = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""The receiver's view of a card (a ``json_view``-shaped mapping), or None when the
receiver does not know it."""

_SCALARS: Final = (
    ("operationId", "operation_id"),
    ("status", "status"),
    ("operationStatus", "operation_status"),
    ("errorCode", "error_code"),
    ("error", "error"),
    ("reason", "reason"),
    ("productionSite", "production_site"),
    ("issuerRequestId", "issuer_request_id"),
    ("inputFileName", "input_file_name"),
)
_SETS: Final = (
    ("observed", "observed"),
    ("gaps", "gaps"),
    ("unknownStatuses", "unknown_statuses"),
    ("operationIds", "operation_ids"),
)
_MISSING: Final = "<missing>"


@dataclass(frozen=True)
class Difference:
    """One field of one card where the receiver's view differs from the truth.

    ``field`` is the view's key; ``card`` when the receiver knows a card it should
    not, or does not know one it should; ``view`` when the view could not be read.
    """

    card_id: str
    field: str
    expected: object
    actual: object

    def __str__(self) -> str:
        return f"{self.card_id}: {self.field}: expected {self.expected!r}, got {self.actual!r}"


@dataclass(frozen=True)
class Conformance:
    """The outcome of a check: how many cards, and every difference."""

    cards: int
    differences: tuple[Difference, ...]

    @property
    def ok(self) -> bool:
        """True when the receiver agrees with the truth on every card."""
        return not self.differences

    @property
    def cards_differing(self) -> int:
        """How many cards have at least one difference."""
        return len({d.card_id for d in self.differences})


def _instant(value: object) -> object:
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _day(value: object) -> object:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    return value


def _shipment(value: object) -> object:
    if value is None:
        return None
    try:
        return msgspec.json.decode(msgspec.json.encode(value), type=Shipment)
    except (msgspec.DecodeError, TypeError):
        return value


def compare_view(
    card_id: str, expected: Expected | None, view: Mapping[str, Any] | None
) -> list[Difference]:
    """Every difference between the oracle's ``expected`` and a receiver's ``view``."""
    if expected is None or view is None:
        if expected is None and view is None:
            return []
        return [
            Difference(
                card_id,
                "card",
                "unknown" if expected is None else "known",
                "unknown" if view is None else "known",
            )
        ]
    out: list[Difference] = []

    def check(key: str, want: object, got: object) -> None:
        if want != got:
            out.append(Difference(card_id, key, want, view.get(key, _MISSING)))

    check("cardId", card_id, view.get("cardId", _MISSING))
    for key, attr in _SCALARS:
        check(key, getattr(expected, attr), view.get(key, _MISSING))
    check("endTime", expected.end_time, _instant(view.get("endTime", _MISSING)))
    check("dueDate", expected.due_date, _day(view.get("dueDate", _MISSING)))
    check("shipment", expected.shipment, _shipment(view.get("shipment", _MISSING)))
    for key, attr in _SETS:
        got = view.get(key, _MISSING)
        check(key, set(getattr(expected, attr)), set(got) if isinstance(got, list) else got)
    return out


def http_views(client: httpx.AsyncClient, template: str) -> ViewSource:
    """Views read over HTTP: ``template`` with ``{cardId}`` in it, such as
    ``http://localhost:8000/cards/{cardId}``; 404 means an unknown card."""
    if "{cardId}" not in template:
        raise ValueError(f"the view URL template has no {{cardId}}: {template!r}")

    async def view(card_id: str) -> Mapping[str, Any] | None:
        response = await client.get(template.replace("{cardId}", quote(card_id, safe="")))
        if response.status_code == 404:
            return None
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError(f"the view of {card_id!r} is not a JSON object")
        return answer

    return view


class _States(Protocol):
    def get(self, card_id: str, /) -> CardState | None: ...


def store_views(store: _States) -> ViewSource:
    """Views read from a cardflow store (``cardflow.store.Store``, or anything whose
    ``get`` gives a card's state), as the receiver's ``GET /cards`` answers them."""

    async def view(card_id: str) -> Mapping[str, Any] | None:
        state = store.get(card_id)
        return None if state is None else json_view(state)

    return view


async def served_cards(client: httpx.AsyncClient, fake_d1: str) -> list[str]:
    """The cards whose on-demand status the fake D1 at ``fake_d1`` (its base URL)
    answered well: a conformance check counts their latest event as delivered.
    ``httpx.HTTPError`` or ``ValueError`` when it cannot be asked."""
    response = await client.get(fake_d1.rstrip("/") + "/fake/served")
    response.raise_for_status()
    served = response.json()
    if not isinstance(served, list) or not all(isinstance(card, str) for card in served):
        raise ValueError(f"{fake_d1}/fake/served: not a JSON list of card ids")
    return served


async def check_conformance(
    traffic: FakeTraffic,
    views: ViewSource,
    *,
    served: Collection[str] = (),
    cards: Iterable[str] | None = None,
    concurrency: int = 8,
) -> Conformance:
    """Compare the receiver's view of every card of ``traffic`` with the truth.

    ``served``: the cards whose on-demand status the receiver was given (their
    latest event then counts as delivered). A view that cannot be read (an error
    status, not JSON) is a difference of field ``view``, never an exception.
    """
    ids = list(traffic.cards if cards is None else cards)
    served_set = set(served)
    limit = asyncio.Semaphore(concurrency)

    async def one(card_id: str) -> list[Difference]:
        expected = traffic.expected(card_id, served=card_id in served_set)
        async with limit:
            try:
                view = await views(card_id)
            except (httpx.HTTPError, ValueError) as exc:
                return [Difference(card_id, "view", "a readable view", f"{exc}")]
        return compare_view(card_id, expected, view)

    found = await asyncio.gather(*(one(card_id) for card_id in ids))
    return Conformance(len(ids), tuple(d for card in found for d in card))
