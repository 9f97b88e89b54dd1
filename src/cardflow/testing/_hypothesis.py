"""Hypothesis's entry point: realistic strategies for cardflow's wire types.

Hypothesis imports this module when it starts (``[project.entry-points.hypothesis]``
in pyproject) and calls :func:`_hypothesis_setup_hook`; after that,
``st.from_type(cardflow.Operation)`` (and ``Details``, ``Shipment``, ``Checkpoint``)
draws values from true histories instead of random field values that no D1 would
send. Importing the module does nothing: registration happens in the hook only.

The hook runs while ``hypothesis`` itself finishes importing, perhaps because
:mod:`cardflow.testing` is being imported: so it imports no strategies of ours,
and registers resolvers that import them when a type is first resolved.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__: list[str] = []


def _resolve(cls: type) -> Any:
    """The strategy for one of the wire types (imported when first needed)."""
    from cardflow._wire import Checkpoint, Details, Operation, Shipment

    from . import _strategies

    builders: dict[type, Callable[[], Any]] = {
        Operation: _strategies.operations,
        Details: _strategies.details,
        Shipment: _strategies.shipments,
        Checkpoint: _strategies.checkpoints,
    }
    return builders[cls]()


def _hypothesis_setup_hook() -> None:
    """Register the strategies of :data:`cardflow.Operation` and its parts."""
    from hypothesis import strategies as st

    from cardflow._wire import Checkpoint, Details, Operation, Shipment

    for cls in (Operation, Details, Shipment, Checkpoint):
        st.register_type_strategy(cls, _resolve)
