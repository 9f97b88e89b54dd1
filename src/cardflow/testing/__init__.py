"""cardflow.testing: realistic D1 traffic and checks for code that consumes it.

For testing your own D1 consumer (a webhook service, a reconciliation job):

- :func:`check_handler` drives fresh instances of your handler with generated
  at-least-once deliveries and fails with a minimal delivery when it goes wrong;
- :class:`HandlerStateMachine` is a Hypothesis state machine to subclass, which
  delivers, duplicates, reorders, loses and reconciles one step at a time;
- the strategies (:func:`histories`, :func:`deliveries`, :func:`traffic`, ...)
  generate true card histories, their delivery and the oracle's expected states;
- :func:`edge_coverage` reports which lifecycle edges some histories exercised;
- :class:`FakeD1` plays D1 over real HTTP (notifications delivered at least once to
  your receiver, the on-demand status served) from :func:`fake_traffic`'s plan, and
  :func:`check_conformance` compares your receiver's view of every card with the
  truth (``docs/d1.md``; needs ``cardflow[serve]``).

``docs/testing-guide.md`` walks through it. The strategies and checks need
Hypothesis (``pip install 'cardflow[testing]'``); they are imported on first use,
so that importing this package (as pytest does for the plugin) costs nothing.
The model and the oracle (:class:`Plan`, :func:`render`, :func:`expected_state`)
and the coverage report work without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from .._model import (
    CardHistory,
    Expected,
    History,
    Plan,
    TrueOperation,
    expected_state,
    must_pass,
    render,
)
from .._traffic import DEFAULT_ISSUER, FakeTraffic, fake_traffic
from ._coverage import Coverage, edge_coverage

if TYPE_CHECKING:
    from ._check import Compare, Handler, HandlerMismatchError, check_handler
    from ._conformance import (
        Conformance,
        Difference,
        ViewSource,
        check_conformance,
        compare_view,
        http_views,
        served_cards,
        store_views,
    )
    from ._delivery import Delivery, Traffic, deliveries, describe_bodies, traffic
    from ._draws import card_ids, operation_ids
    from ._fake_d1 import DeliveryReport, FakeD1, Fault, notification_url
    from ._stateful import HandlerStateMachine
    from ._strategies import (
        checkpoints,
        details,
        histories,
        operations,
        plans,
        shipments,
        walks,
    )

__all__ = [
    "DEFAULT_ISSUER",
    "CardHistory",
    "Compare",
    "Conformance",
    "Coverage",
    "Delivery",
    "DeliveryReport",
    "Difference",
    "Expected",
    "FakeD1",
    "FakeTraffic",
    "Fault",
    "Handler",
    "HandlerMismatchError",
    "HandlerStateMachine",
    "History",
    "Plan",
    "Traffic",
    "TrueOperation",
    "ViewSource",
    "card_ids",
    "check_conformance",
    "check_handler",
    "checkpoints",
    "compare_view",
    "deliveries",
    "describe_bodies",
    "details",
    "edge_coverage",
    "expected_state",
    "fake_traffic",
    "histories",
    "http_views",
    "must_pass",
    "notification_url",
    "operation_ids",
    "operations",
    "plans",
    "render",
    "served_cards",
    "shipments",
    "store_views",
    "traffic",
    "walks",
]

_LAZY: dict[str, str] = {
    **dict.fromkeys(("DeliveryReport", "FakeD1", "Fault", "notification_url"), "_fake_d1"),
    **dict.fromkeys(
        (
            "Conformance",
            "Difference",
            "ViewSource",
            "check_conformance",
            "compare_view",
            "http_views",
            "served_cards",
            "store_views",
        ),
        "_conformance",
    ),
    **dict.fromkeys(("Compare", "Handler", "HandlerMismatchError", "check_handler"), "_check"),
    "HandlerStateMachine": "_stateful",
    **dict.fromkeys(
        ("Delivery", "Traffic", "deliveries", "describe_bodies", "traffic"), "_delivery"
    ),
    **dict.fromkeys(("card_ids", "operation_ids"), "_draws"),
    **dict.fromkeys(
        ("checkpoints", "details", "histories", "operations", "plans", "shipments", "walks"),
        "_strategies",
    ),
}
"""The names that need Hypothesis, and the private module each comes from."""


if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        """Import a Hypothesis-based name on first use (PEP 562), then keep it here."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
