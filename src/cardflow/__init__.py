"""cardflow: fold Thales D1 card production notifications into one correct state per card.

Everything public is re-exported here from private modules; ``__all__`` is the API.
The test harness lives in :mod:`cardflow.testing` (it needs Hypothesis).
"""

from ._codec import STATE_FORMAT_VERSION, decode_state, encode_state, state_format_version
from ._decode import Decoded, Reject, decode, decode_lenient, decode_reading, reading_time
from ._errors import (
    CardflowError,
    CardMismatchError,
    FoldClosedError,
    InvalidNotification,
    LifecycleError,
    NewerStateError,
    NotProduceError,
    ReactionError,
    StateFormatError,
    StoreSchemaError,
    StoreUnavailable,
)
from ._lifecycle import D1_LIFECYCLE, STATUS_MEANINGS, Edge, Lifecycle, ProductionStatus
from ._reconcile import ReconcileReason, is_settled, last_heard, needs_reconcile
from ._state import (
    MAX_OPERATIONS,
    Anomaly,
    CardState,
    Folded,
    Folder,
    apply,
    fold,
    merge,
    state_of,
)
from ._step import Change, ChangeKind, Observation, changes, step
from ._tracker import Ingested, Tracker
from ._version import __version__
from ._view import json_view
from ._wire import (
    PRODUCE,
    UNPARSED,
    Checkpoint,
    Details,
    Operation,
    OperationStatus,
    Shipment,
    encode,
    fingerprint,
)

__all__ = [
    "D1_LIFECYCLE",
    "MAX_OPERATIONS",
    "PRODUCE",
    "STATE_FORMAT_VERSION",
    "STATUS_MEANINGS",
    "UNPARSED",
    "Anomaly",
    "CardMismatchError",
    "CardState",
    "CardflowError",
    "Change",
    "ChangeKind",
    "Checkpoint",
    "Decoded",
    "Details",
    "Edge",
    "FoldClosedError",
    "Folded",
    "Folder",
    "Ingested",
    "InvalidNotification",
    "Lifecycle",
    "LifecycleError",
    "NewerStateError",
    "NotProduceError",
    "Observation",
    "Operation",
    "OperationStatus",
    "ProductionStatus",
    "ReactionError",
    "ReconcileReason",
    "Reject",
    "Shipment",
    "StateFormatError",
    "StoreSchemaError",
    "StoreUnavailable",
    "Tracker",
    "__version__",
    "apply",
    "changes",
    "decode",
    "decode_lenient",
    "decode_reading",
    "decode_state",
    "encode",
    "encode_state",
    "fingerprint",
    "fold",
    "is_settled",
    "json_view",
    "last_heard",
    "merge",
    "needs_reconcile",
    "reading_time",
    "state_format_version",
    "state_of",
    "step",
]
