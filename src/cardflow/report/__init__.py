"""The HTML report of a card fleet: one static, self-contained page for operations.

An adapter over the public core: :func:`aggregate` counts any iterable of
:class:`cardflow.CardState` (a fold, a store's cursor) at a given ``now`` into a small
:class:`Fleet`; :func:`render` draws it as one HTML page whose charts are hand-written
SVG and whose only script (sorting and filtering a table) is inline. It needs nothing
beyond cardflow's own dependencies (the ``cardflow[report]`` extra is empty).
"""

from ._aggregate import (
    COLUMNS,
    LATE_BINS,
    OTHER_CARRIERS,
    OTHER_OPERATION_STATUSES,
    OTHER_SHIPMENT_STATUSES,
    OTHER_SITES,
    OTHER_STATUSES,
    PERIODS,
    TOP,
    Candidate,
    CarrierRow,
    Examples,
    Fleet,
    LateBin,
    SiteRow,
    Spread,
    aggregate,
    is_settled,
    period_start,
    slot,
)
from ._render import render
from ._tally import EXAMPLES, NAMED

__all__ = [
    "COLUMNS",
    "EXAMPLES",
    "LATE_BINS",
    "NAMED",
    "OTHER_CARRIERS",
    "OTHER_OPERATION_STATUSES",
    "OTHER_SHIPMENT_STATUSES",
    "OTHER_SITES",
    "OTHER_STATUSES",
    "PERIODS",
    "TOP",
    "Candidate",
    "CarrierRow",
    "Examples",
    "Fleet",
    "LateBin",
    "SiteRow",
    "Spread",
    "aggregate",
    "is_settled",
    "period_start",
    "render",
    "slot",
]
