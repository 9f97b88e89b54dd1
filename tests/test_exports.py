"""The public API of ``cardflow`` is exactly ``cardflow.__all__``, and this file pins it.

Adding or removing a public name is an API change: update ``PUBLIC`` below in the
same commit, so the change is visible in review.
"""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Final

import cardflow

PUBLIC: Final = [
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


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps ``__all__`` in: CONSTANTS, then Classes, then the rest."""
    if name.isupper():
        return 0, name
    if name[:1].isupper():
        return 1, name
    return 2, name


def defined_here(obj: object) -> bool:
    """Classes and functions: the objects that carry a ``__module__`` of their own."""
    return inspect.isclass(obj) or inspect.isfunction(obj) or inspect.isbuiltin(obj)


def test_all_is_pinned() -> None:
    assert cardflow.__all__ == PUBLIC


def test_all_is_sorted_without_duplicates() -> None:
    assert cardflow.__all__ == sorted(cardflow.__all__, key=isort_key)
    assert len(set(cardflow.__all__)) == len(cardflow.__all__)


def test_every_name_in_all_is_defined() -> None:
    namespace: dict[str, object] = {}
    exec("from cardflow import *", namespace)
    del namespace["__builtins__"]
    assert sorted(namespace) == sorted(cardflow.__all__)
    for name in cardflow.__all__:
        assert getattr(cardflow, name) is namespace[name]
        assert namespace[name] is not None


def test_no_public_name_outside_all_except_submodules() -> None:
    importlib.import_module("cardflow.testing")  # a public submodule is not an export
    stray = [
        name
        for name, value in vars(cardflow).items()
        if not name.startswith("_")
        and name not in cardflow.__all__
        and not isinstance(value, types.ModuleType)
    ]
    assert stray == []


def test_public_objects_come_from_cardflow() -> None:
    for name in cardflow.__all__:
        obj = getattr(cardflow, name)
        if not defined_here(obj):
            continue
        module = obj.__module__
        assert module == "cardflow" or module.startswith("cardflow._"), (name, module)
        assert getattr(importlib.import_module(module), obj.__name__) is obj, name


def test_modules_that_export_are_exported_in_full() -> None:
    # A private module that lends the API one name lends it all of its __all__: a name
    # added there and forgotten in cardflow/__init__.py fails here.
    lenders = {
        getattr(cardflow, name).__module__
        for name in cardflow.__all__
        if defined_here(getattr(cardflow, name))
    }
    assert "cardflow._wire" in lenders
    assert "cardflow._errors" in lenders
    for module_name in sorted(lenders - {"cardflow"}):
        module = importlib.import_module(module_name)
        missing = sorted(set(getattr(module, "__all__", ())) - set(cardflow.__all__))
        assert missing == [], module_name


def test_version_is_a_string() -> None:
    assert isinstance(cardflow.__version__, str)
    assert cardflow.__version__
