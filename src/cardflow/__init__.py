"""cardflow: fold Thales D1 card production notifications into one correct state per card.

Everything public is re-exported here from private modules; ``__all__`` is the API.
"""

from ._errors import CardflowError, CardMismatchError, InvalidNotification, LifecycleError
from ._version import __version__
from ._wire import (
    PRODUCE,
    Checkpoint,
    Decoded,
    Details,
    Operation,
    OperationStatus,
    Reject,
    Shipment,
    decode,
    decode_lenient,
    encode,
    fingerprint,
)

__all__ = [
    "PRODUCE",
    "CardMismatchError",
    "CardflowError",
    "Checkpoint",
    "Decoded",
    "Details",
    "InvalidNotification",
    "LifecycleError",
    "Operation",
    "OperationStatus",
    "Reject",
    "Shipment",
    "__version__",
    "decode",
    "decode_lenient",
    "encode",
    "fingerprint",
]
