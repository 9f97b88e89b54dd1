"""cardflow.testing: realistic D1 traffic and checks for code that consumes it.

Hypothesis strategies that generate true card histories (walks on a lifecycle),
their at-least-once delivery and the state a correct consumer must reach, plus
``check_handler``, a conformance check to point at your own webhook handler.
Needs Hypothesis (``pip install 'cardflow[testing]'``).
"""

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
from ._strategies import (
    Delivery,
    Traffic,
    card_ids,
    deliveries,
    histories,
    operation_ids,
    plans,
    traffic,
    walks,
)

__all__ = [
    "CardHistory",
    "Delivery",
    "Expected",
    "History",
    "Plan",
    "Traffic",
    "TrueOperation",
    "card_ids",
    "deliveries",
    "expected_state",
    "histories",
    "must_pass",
    "operation_ids",
    "plans",
    "render",
    "traffic",
    "walks",
]
