"""Hypothesis strategies for D1 wire data, kept beside the tests so every module can reuse them.

Valid data: ``operation_dicts()`` draws one D1 operation object as plain JSON values
(realistic field values, every optional field absent, null or set, keys in any order),
``bodies()`` a whole ``{"operations": [...]}`` envelope, ``body_bytes()`` its JSON text,
``operations()`` a decoded ``cardflow.Operation``.

Invalid data: ``invalid_operations()`` draws an operation that no decoder may accept,
with the JSON path of the fault it was built with; ``mutated_bodies()`` breaks a valid
body the way a bad sender or a bad network would (truncation, wrong types, nulls, huge
numbers, deep nesting, invalid UTF-8, duplicate keys, missing fields).

``dump`` writes JSON and also understands ``RawJSON`` (text spliced in verbatim) and
``Pairs`` (an object with its keys in a given order, duplicates allowed).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

from hypothesis import strategies as st

import cardflow

__all__ = [
    "CARD_STATUSES",
    "JSON",
    "KNOWN_OPERATIONS",
    "OPERATION_STATUSES",
    "Pairs",
    "RawJSON",
    "aware_datetimes",
    "bodies",
    "body_bytes",
    "card_ids",
    "checkpoint_dicts",
    "details_dicts",
    "dump",
    "invalid_operations",
    "mutated_bodies",
    "open_strings",
    "operation_dicts",
    "operation_ids",
    "operations",
    "respell_timestamp",
    "shipment_dicts",
    "text",
    "timestamps",
    "tolerated_operation_dicts",
    "wire_timestamp",
]

JSON = Any
"""A JSON value as Python builds it (dict, list, str, int, float, bool, None)."""

KNOWN_OPERATIONS: Final = (
    "PRODUCE",
    "STANDALONE_TRACKING",
    "CREATE",
    "REGISTER",
    "ACTIVATE",
    "SUSPEND",
    "RESUME",
    "DELETE",
    "DIGITIZE",
    "RENEW",
    "REPLACE",
    "CLICK_TO_PAY_ENROLMENT",
)
OPERATION_STATUSES: Final = ("PENDING", "SUCCESSFUL", "FAILED")
CARD_STATUSES: Final = (
    "CARD_PROD_REQUESTED",
    "DATA_PREPARED",
    "DATA_EXCEPTION",
    "CARD_PROD_READY",
    "CARD_PROD_ONGOING",
    "CARD_PROD_DONE",
    "CARD_SHIPPED",
    "CARD_PROD_CANCELED",
    "CARD_PROD_EXCEPTION",
    "CARD_RETURNED",
)
SHIPMENT_STATUSES: Final = ("IN_TRANSIT", "InTransit", "Delivered", "OutForDelivery", "Exception")
CARRIERS: Final = ("fedex", "ups", "dhl", "la-poste-colissimo", "chronopost-france", "usps-iv-api")
ERROR_CODES: Final = ("FIELD_INVALID_FORMAT", "FIELD_MISSING", "INTERNAL_ERROR")

_OFFSETS: Final = (
    UTC,
    timezone(timedelta(hours=1)),
    timezone(timedelta(hours=2)),
    timezone(timedelta(hours=-5)),
    timezone(timedelta(hours=5, minutes=30)),
    timezone(timedelta(hours=-9, minutes=-30)),
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
)

text: Final = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
"""Any text JSON can carry (no lone surrogates), kept short."""


def open_strings(known: Sequence[str]) -> st.SearchStrategy[str]:
    """Mostly the values D1 documents, sometimes a value nobody has seen yet."""
    return st.one_of(st.sampled_from(known), st.sampled_from(known), text)


_AWARE_DATETIMES: Final = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from(_OFFSETS),
)


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """Datetimes of this century at one of a few real offsets (UTC, +05:30, -12:00...)."""
    return _AWARE_DATETIMES


def wire_timestamp(value: datetime, *, timespec: str = "auto", utc_as_z: bool = True) -> str:
    """``value`` in ISO 8601 with its offset; UTC as ``Z`` unless told otherwise."""
    spelled = value.isoformat(timespec=timespec)
    if utc_as_z and spelled.endswith("+00:00"):
        spelled = spelled[:-6] + "Z"
    return spelled


def respell_timestamp(spelled: str, offset: timezone) -> str:
    """The same instant as ``spelled``, written at another offset (all digits kept)."""
    return wire_timestamp(datetime.fromisoformat(spelled).astimezone(offset), utc_as_z=False)


_TIMESTAMPS: Final = st.builds(
    wire_timestamp,
    _AWARE_DATETIMES,
    timespec=st.sampled_from(["auto", "seconds", "milliseconds", "microseconds"]),
    utc_as_z=st.booleans(),
)


def timestamps() -> st.SearchStrategy[str]:
    """ISO 8601 timestamps with an offset, spelled the ways D1 or a peer might."""
    return _TIMESTAMPS


_ID_ALPHABET: Final = "abcdefABCDEF0123456789_-xyzXYZ"
operation_ids: Final = st.one_of(
    st.uuids().map(str),
    st.text(st.sampled_from(_ID_ALPHABET), min_size=1, max_size=64),
)
card_ids: Final = st.one_of(
    st.lists(st.text("0123456789abcdef", min_size=4, max_size=4), min_size=4, max_size=4).map(
        "-".join
    ),
    text,
)
dates: Final = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31)).map(
    date.isoformat
)


def _nullable(values: st.SearchStrategy[JSON]) -> st.SearchStrategy[JSON]:
    """For an optional field that is present: mostly a value, sometimes null."""
    return st.one_of(values, values, values, st.none())


@functools.cache
def _orders(n: int) -> st.SearchStrategy[list[int]]:
    return st.permutations(range(n))


@st.composite
def _in_any_order(draw: st.DrawFn, objects: st.SearchStrategy[dict[str, JSON]]) -> dict[str, JSON]:
    """The drawn object with its keys in a drawn order (JSON field order means nothing)."""
    items = list(draw(objects).items())
    return dict(items[i] for i in draw(_orders(len(items))))


def _object(
    required: dict[str, st.SearchStrategy[JSON]], optional: dict[str, st.SearchStrategy[JSON]]
) -> st.SearchStrategy[dict[str, JSON]]:
    """Required keys always, each optional key absent, null or set; keys in any order."""
    nullable = {key: _nullable(values) for key, values in optional.items()}
    return _in_any_order(st.fixed_dictionaries(required, optional=nullable))


_CHECKPOINTS: Final = _object(
    {},
    {
        "checkpointTime": _TIMESTAMPS,
        "city": st.sampled_from(["Paris", "Gemenos", "Memphis"]) | text,
        "countryName": st.sampled_from(["France", "USA"]) | text,
        "message": text,
    },
)
_SHIPMENTS: Final = _object(
    {},
    {
        "carrier": open_strings(CARRIERS),
        "trackingNumber": st.text("0123456789", min_size=1, max_size=12),
        "status": open_strings(SHIPMENT_STATUSES),
        "message": text,
        "trackingUrl": text.map(lambda t: "https://track.example/" + t),
        "estimatedDeliveryDate": _TIMESTAMPS,
        "lastUpdatedAt": _TIMESTAMPS,
        "lastCheckpoint": _CHECKPOINTS,
    },
)
_DETAILS: Final = _object(
    {},
    {
        "status": open_strings(CARD_STATUSES),
        "reason": text,
        "consumerId": text,
        "dueDate": dates,
        "productionSite": st.sampled_from(["Gemenos", "Singapore"]) | text,
        "shipment": _SHIPMENTS,
        "inputFileName": text.map(lambda t: t + ".csv"),
        "issuerRequestId": text,
    },
)


def checkpoint_dicts() -> st.SearchStrategy[dict[str, JSON]]:
    """A ``shipment.lastCheckpoint`` object."""
    return _CHECKPOINTS


def shipment_dicts() -> st.SearchStrategy[dict[str, JSON]]:
    """A ``details.shipment`` object."""
    return _SHIPMENTS


def details_dicts() -> st.SearchStrategy[dict[str, JSON]]:
    """A ``details`` object of a PRODUCE operation."""
    return _DETAILS


_OPERATION_NAMES: Final = st.one_of(st.just(cardflow.PRODUCE), open_strings(KNOWN_OPERATIONS))


@functools.cache
def operation_dicts(operation: str | None = None) -> st.SearchStrategy[dict[str, JSON]]:
    """One valid D1 operation object (``operation`` forced when given)."""
    return _object(
        {
            "operationId": operation_ids,
            "operation": _OPERATION_NAMES if operation is None else st.just(operation),
            "status": open_strings(OPERATION_STATUSES),
            "startTime": _TIMESTAMPS,
            "cardId": card_ids,
        },
        {
            "endTime": _TIMESTAMPS,
            "details": _DETAILS,
            "errorCode": open_strings(ERROR_CODES),
            "error": text,
            "inputFileName": text,
            "issuerRequestId": text,
        },
    )


def bodies(
    ops: st.SearchStrategy[dict[str, JSON]] | None = None, *, min_size: int = 0, max_size: int = 4
) -> st.SearchStrategy[dict[str, JSON]]:
    """A D1 envelope ``{"operations": [...]}`` of valid operations."""
    return st.lists(
        ops if ops is not None else operation_dicts(), min_size=min_size, max_size=max_size
    ).map(lambda x: {"operations": x})


@st.composite
def body_bytes(draw: st.DrawFn) -> bytes:
    """A valid body as JSON text, compact or indented, ASCII-escaped or not."""
    value = draw(bodies(max_size=3))
    indent = draw(st.sampled_from([None, 0, 2]))
    return json.dumps(value, indent=indent, ensure_ascii=draw(st.booleans())).encode()


def operations() -> st.SearchStrategy[cardflow.Operation]:
    """A decoded operation (through ``cardflow.decode``, so it is what D1 can send)."""
    return operation_dicts().map(lambda d: cardflow.decode(json.dumps({"operations": [d]}))[0])


# Invalid data ---------------------------------------------------------------------

_REQUIRED: Final = ("operationId", "operation", "status", "startTime", "cardId")
_NAIVE_TIMES: Final = ("2025-01-17T06:28:02.492", "2025-01-17T06:28:02", "yesterday", "")
_WRONG_TYPES: Final = st.one_of(
    st.integers(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.fixed_dictionaries({"a": st.integers()}),
)
_BAD_IDS: Final = ("", "x" * 65, "has space", "dot.ted", "slash/", "é", "a\nb", "ab\n")
_BAD_PRODUCE_DETAILS: Final = (
    ("$.details", [1, 2]),
    ("$.details", "text"),
    ("$.details", 7),
    ("$.details.status", {"status": 7}),
    ("$.details.dueDate", {"dueDate": "soon"}),
    ("$.details.dueDate", {"dueDate": "2025-01-32"}),
    ("$.details.productionSite", {"productionSite": ["Gemenos"]}),
    ("$.details.reason", {"reason": {"text": "x"}, "shipment": {"carrier": 3}}),
)
"""Faults in the production fields of ``details``. Carrier fields of a shipment are
tolerated, never faults (kept as text: ``tests/test_wire.py``)."""


_INVALID_KINDS: Final = st.sampled_from(
    ["missing", "wrong_type", "null", "naive_time", "bad_id", "not_object", "details"]
)
_NOT_OBJECTS: Final = st.one_of(st.integers(), text, st.none(), st.lists(st.integers()))
_PRODUCE_DICTS: Final = operation_dicts(cardflow.PRODUCE)
_BAD_DETAILS: Final = st.sampled_from(_BAD_PRODUCE_DETAILS)
_TIME_KEYS: Final = st.sampled_from(["startTime", "endTime"])
_REQUIRED_KEYS: Final = st.sampled_from(_REQUIRED)
_TYPED_KEYS: Final = st.sampled_from([*_REQUIRED, "endTime", "errorCode", "error"])
_NON_PRODUCE: Final = st.sampled_from(KNOWN_OPERATIONS[1:]) | text.filter(
    lambda t: t != cardflow.PRODUCE
)


@st.composite
def invalid_operations(draw: st.DrawFn) -> tuple[JSON, str]:
    """An operation no decoder may accept, and the path of its fault below the op (``$...``).

    Each drawn value has exactly one fault, so the path is the one strict decoding names.
    """
    kind = draw(_INVALID_KINDS)
    if kind == "not_object":
        return draw(_NOT_OBJECTS), "$"
    if kind == "details":
        obj = draw(_PRODUCE_DICTS)
        path, bad = draw(_BAD_DETAILS)
        obj["details"] = copy.deepcopy(bad)
        return obj, path
    obj = draw(operation_dicts())
    if kind == "bad_id":
        obj["operationId"] = draw(st.sampled_from(_BAD_IDS))
        return obj, "$.operationId"
    if kind == "naive_time":
        key = draw(_TIME_KEYS)
        obj[key] = draw(st.sampled_from(_NAIVE_TIMES))
        return obj, f"$.{key}"
    key = draw(_REQUIRED_KEYS)
    if kind == "missing":
        del obj[key]
    elif kind == "null":
        obj[key] = None
    else:
        key = draw(_TYPED_KEYS)
        obj[key] = draw(_WRONG_TYPES)
    return obj, f"$.{key}"


@st.composite
def tolerated_operation_dicts(draw: st.DrawFn) -> dict[str, JSON]:
    """A non-PRODUCE operation whose ``details`` do not fit: it decodes all the same."""
    obj = draw(operation_dicts())
    obj["operation"] = draw(_NON_PRODUCE)
    _, bad = draw(_BAD_DETAILS)
    obj["details"] = copy.deepcopy(bad)
    return obj


class RawJSON:
    """JSON text (or any bytes) that ``dump`` writes verbatim."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"RawJSON({self.text[:40]!r}{'...' if len(self.text) > 40 else ''})"


class Pairs:
    """A JSON object written with these pairs, in this order, duplicate keys included."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, JSON]]) -> None:
        self.pairs = pairs

    def __repr__(self) -> str:
        return f"Pairs({self.pairs!r})"


def dump(value: JSON) -> bytes:
    """JSON text of ``value``; ``RawJSON`` spliced in verbatim, ``Pairs`` as an object."""
    if isinstance(value, RawJSON):
        return value.text
    if isinstance(value, Pairs | dict):
        items = value.pairs if isinstance(value, Pairs) else list(value.items())
        inner = b",".join(json.dumps(k).encode() + b":" + dump(v) for k, v in items)
        return b"{" + inner + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(dump(v) for v in value) + b"]"
    return json.dumps(value).encode()


def _nodes(value: JSON, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path of every value below ``value`` (dicts and lists only, not ``Pairs``)."""
    found: list[tuple[str | int, ...]] = []
    children: list[tuple[str | int, JSON]] = []
    if isinstance(value, dict):
        children = list(value.items())
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        found.append((*path, key))
        found.extend(_nodes(child, (*path, key)))
    return found


def _parent(root: JSON, path: tuple[str | int, ...]) -> Any:
    node = root
    for key in path[:-1]:
        node = node[key]
    return node


_HOSTILE: Final = st.one_of(
    st.none(),
    _WRONG_TYPES,
    text,
    st.floats(allow_nan=False),
    st.just(RawJSON(b"1" + b"0" * 400)),  # 10**400
    st.just(RawJSON(b"-1e400")),
    st.integers(1000, 5000).map(lambda n: RawJSON(b"[" * n + b"]" * n)),
    st.integers(1000, 3000).map(lambda n: RawJSON(b'{"a":' * n + b"1" + b"}" * n)),
    st.just(RawJSON(b'"\xff\xfe"')),
    st.just(RawJSON(b'"\xed\xa0\x80"')),  # a surrogate, UTF-8 encoded: invalid UTF-8
    st.just(RawJSON(b'"\\ud800"')),
    st.just(RawJSON(b'"2025-01-17T06:28:02"')),
    st.just(RawJSON(b"")),
    st.just(RawJSON(b"nul")),
)
"""Values a hostile or broken sender puts where a good value belongs."""


_MUTATIONS: Final = ("replace", "replace", "replace", "delete", "duplicate", "duplicate", "root")


@st.composite
def mutated_bodies(draw: st.DrawFn) -> bytes:
    """A valid body broken in one to three places, then maybe truncated.

    Breaks land inside the operations (the envelope has its own ``"root"`` mutation).
    """
    body: JSON = copy.deepcopy(draw(bodies(operation_dicts(), min_size=1, max_size=3)))
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in _nodes(body) if len(p) > 1]
        kind = draw(st.sampled_from(_MUTATIONS))
        if kind == "root" or not paths:
            body = {"operations": draw(_HOSTILE)} if draw(st.booleans()) else draw(_HOSTILE)
            continue
        path = draw(st.sampled_from(paths))
        parent = _parent(body, path)
        key = path[-1]
        if kind == "replace":
            parent[key] = draw(_HOSTILE)
        elif kind == "delete":
            del parent[key]
        elif isinstance(parent, dict) and isinstance(key, str):
            # Duplicate: the key again, before or after, with another value.
            items = list(parent.items())
            at = draw(st.integers(0, len(items)))
            items.insert(at, (key, draw(_HOSTILE | st.just(parent[key]))))
            grand = _parent(body, path[:-1]) if len(path) > 1 else None
            replacement = Pairs(items)
            if grand is None:
                body = replacement
                break
            grand[path[-2]] = replacement
    text_ = dump(body)
    if draw(st.sampled_from(["whole", "whole", "whole", "truncated"])) == "truncated":
        text_ = text_[: draw(st.integers(1, max(1, len(text_) - 1)))]
    return text_
