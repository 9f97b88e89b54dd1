"""D1's operation object as frozen msgspec Structs, and how cardflow writes it back.

The same object arrives by webhook (``POST .../notifications/d1/v2/issuers/{id}/cards``)
and by the on-demand ``GET .../physicalcards/{cardId}/productionstatus``: a body
``{"operations": [...]}``. Following D1's change policy, unknown fields are ignored
and every status-like field stays an open string, so a new code flows through.
Decoding lives in ``_decode.py``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Final

import msgspec

__all__ = [
    "PRODUCE",
    "UNPARSED",
    "Checkpoint",
    "Details",
    "Operation",
    "OperationStatus",
    "Shipment",
    "encode",
    "fingerprint",
]

PRODUCE: Final = "PRODUCE"
"""The ``operation`` value of physical card production events."""

UNPARSED: Final = "cardflow:unparsed"
"""The key under which a shipment keeps carrier fields that did not parse (never D1's)."""

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""An ISO 8601 timestamp that must carry an offset: ordering never guesses a zone."""

OPERATION_ID_PATTERN: Final = r"^[A-Za-z0-9_-]+$(?!\n)"
"""D1's schema for ``operationId`` (with its length bounds, 1 to 64): ASCII letters,
digits, ``_`` and ``-``. ``(?!\n)`` refuses the final newline that Python's ``$`` lets
through (and means nothing to an ECMA regex in a JSON Schema)."""

OperationId = Annotated[
    str,
    msgspec.Meta(min_length=1, max_length=64, extra_json_schema={"pattern": OPERATION_ID_PATTERN}),
]
"""D1's schema: 1 to 64 characters of ``[A-Za-z0-9_-]``.

msgspec checks the length bounds; the characters are checked after decoding
(``valid_operation_id``), which costs about a third of a msgspec ``pattern`` (msgspec
calls Python's ``re`` for each string, and that call is the cost). Every decoding path
in ``_decode.py`` checks it; the JSON Schema still states the pattern.
"""

valid_operation_id: Final = re.compile(r"[A-Za-z0-9_-]{1,64}").fullmatch
"""A match when a string is an ``operationId`` D1's schema allows, else None (the length
bounds included, so that the check stands alone)."""

BAD_OPERATION_ID: Final = f"Expected `str` matching regex {OPERATION_ID_PATTERN!r}"
"""The reason a refused ``operationId`` is rejected with (as msgspec words a pattern)."""


class OperationStatus(enum.StrEnum):
    """The top-level ``status`` of an operation (kept as an open string on the wire)."""

    PENDING = "PENDING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


class _Wire(
    msgspec.Struct, frozen=True, kw_only=True, rename="camel", omit_defaults=True, gc=False
):
    """Shared configuration: immutable, camelCase on the wire, absent fields omitted.

    ``gc=False``: these values hold no reference cycles, and keeping the collector
    off them matters when millions are alive at once.
    """


class Checkpoint(_Wire, frozen=True):
    """The carrier's last scan of the parcel."""

    checkpoint_time: Timestamp | None = None
    city: str | None = None
    country_name: str | None = None
    message: str | None = None


class Shipment(_Wire, frozen=True):
    """Carrier tracking data; every field depends on the carrier integration.

    D1 relays these fields from carriers, whose data is not always well formed (a
    time without an offset, a date alone, a number where text belongs). Such a field
    never costs the operation its production status: decoding keeps it verbatim in
    ``unparsed`` as (its path under the shipment, its JSON text), sorted, and leaves
    the typed field empty. ``encode`` writes it back where it came from.
    """

    carrier: str | None = None
    tracking_number: str | None = None
    status: str | None = None
    message: str | None = None
    tracking_url: str | None = None
    estimated_delivery_date: Timestamp | None = None
    last_updated_at: Timestamp | None = None
    last_checkpoint: Checkpoint | None = None
    unparsed: tuple[tuple[str, str], ...] = msgspec.field(default=(), name=UNPARSED)


class Details(_Wire, frozen=True):
    """The issuance payload of a PRODUCE operation.

    ``consumer_id`` is deprecated by D1 ("do not use"): it is decoded and kept so
    that nothing is lost, but cardflow never reads it and neither should you.
    """

    status: str | None = None
    reason: str | None = None
    consumer_id: str | None = None
    due_date: date | None = None
    production_site: str | None = None
    shipment: Shipment | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None


class Operation(_Wire, frozen=True):
    """One operation event, as D1 sends it. Equal values are the same event."""

    operation_id: OperationId
    operation: str
    status: str
    start_time: Timestamp
    card_id: str
    end_time: Timestamp | None = None
    details: Details | None = None
    error_code: str | None = None
    error: str | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None


_json_encoder: Final = msgspec.json.Encoder()
_any_json_decoder: Final = msgspec.json.Decoder()
_msgpack_encoder: Final = msgspec.msgpack.Encoder()
DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError, UnicodeError, BufferError)
"""What msgspec raises on bad input: errors, too-deep nesting, a str with lone surrogates,
a memoryview that is not contiguous."""


def wire_time(value: datetime) -> str:
    """D1's spelling: whole seconds, milliseconds or microseconds as needed; UTC as Z."""
    if value.microsecond == 0:
        spec = "seconds"
    elif value.microsecond % 1000 == 0:
        spec = "milliseconds"
    else:
        spec = "microseconds"
    text = value.isoformat(timespec=spec)
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _json_value(text: str) -> Any:
    """The JSON value a kept text spells, or the text itself where it spells none."""
    try:
        return _any_json_decoder.decode(text)
    except DECODE_ERRORS:
        return text


def _restore_unparsed(plain: dict[str, Any], unparsed: list[list[str]]) -> Any:
    """A shipment's builtins with its unparsed fields back where they came from."""
    for path, text in unparsed:
        if not path:
            return _json_value(text)
        where = plain
        *parents, last = path.split(".")
        for parent in parents:
            inner = where.get(parent)
            if not isinstance(inner, dict):
                inner = where[parent] = {}
            where = inner
        where[last] = _json_value(text)
    return plain


def with_wire_times(value: Any) -> Any:
    """Builtins as D1 writes them: times in D1's spelling, unparsed carrier fields restored."""
    if isinstance(value, dict):
        plain = {k: with_wire_times(v) for k, v in value.items()}
        unparsed = plain.pop(UNPARSED, None)
        return plain if unparsed is None else _restore_unparsed(plain, unparsed)
    if isinstance(value, list):
        return [with_wire_times(v) for v in value]
    if isinstance(value, datetime):
        return wire_time(value)
    return value


def encode(operations: Iterable[Operation]) -> bytes:
    """Write operations as a D1 body ``{"operations": [...]}`` (camelCase, absent fields omitted).

    Timestamps are written the way D1 writes them, so that decoding then encoding a
    D1 body gives back the same JSON values.
    """
    plain = msgspec.to_builtins(list(operations), builtin_types=(datetime,))
    return _json_encoder.encode({"operations": with_wire_times(plain)})


def fingerprint(op: Operation) -> bytes:
    """The canonical identity of an event, as bytes: the operation as msgpack, which
    decodes back into an equal operation.

    Equal for the same event however its JSON was spelled (key order, white space,
    the offset a timestamp was written in, unknown fields), different when any
    field differs. Also a fixed total order for breaking ties between events.

    A time is written as its instant, in UTC; one that UTC cannot spell (an offset
    takes it past year 9999 or before year 1) is written as text, in the offset
    nearest to UTC that can spell every such instant (``-23:59`` past the end,
    ``+23:59`` before the start): still one spelling per instant, and never an error.
    """
    try:
        return _msgpack_encoder.encode(op)
    except OverflowError:
        plain = msgspec.to_builtins(op, builtin_types=(datetime,))
        return _msgpack_encoder.encode(_beyond_utc(plain))


_PAST_THE_END: Final = timezone(-timedelta(hours=23, minutes=59))
_BEFORE_THE_START: Final = timezone(timedelta(hours=23, minutes=59))


def _beyond_utc(value: Any) -> Any:
    """Builtins with each time that UTC cannot spell written as text (``fingerprint``)."""
    if isinstance(value, dict):
        return {key: _beyond_utc(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_beyond_utc(item) for item in value]
    if isinstance(value, datetime):
        try:
            _msgpack_encoder.encode(value)
        except OverflowError:
            return _spelled_beyond_utc(value)
    return value


def _spelled_beyond_utc(value: datetime) -> str:
    """An instant that UTC cannot spell, in the one offset kept for its end of time."""
    zone = _PAST_THE_END if value.year > 5000 else _BEFORE_THE_START
    shift = zone.utcoffset(None) - (value.utcoffset() or timedelta())
    try:
        local = value.replace(tzinfo=None) + shift
    except OverflowError:  # an offset past D1's (+-23:59), from Python: the nearest time
        local = datetime.max if value.year > 5000 else datetime.min
    return local.replace(tzinfo=zone).isoformat()
