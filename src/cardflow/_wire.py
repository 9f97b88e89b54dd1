"""D1's operation object as frozen msgspec Structs; strict and lenient decoding, encoding.

The same object arrives by webhook (``POST .../notifications/d1/v2/issuers/{id}/cards``)
and by the on-demand ``GET .../physicalcards/{cardId}/productionstatus``: a body
``{"operations": [...]}``. Following D1's change policy, unknown fields are ignored
and every status-like field stays an open string, so a new code flows through.

Decoding runs msgspec over the whole body first (the fast path). Only when that
fails does it look at the operations one by one, to name the fault precisely, to
keep the good operations beside a bad one (``decode_lenient``), and to decode the
``details`` of a non-PRODUCE operation as far as they fit instead of failing.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Annotated, Any, Final

import msgspec

from ._errors import InvalidNotification
from ._jsonscan import operation_spans

__all__ = [
    "PRODUCE",
    "UNPARSED",
    "Checkpoint",
    "Decoded",
    "Details",
    "Operation",
    "OperationStatus",
    "Reject",
    "Shipment",
    "decode",
    "decode_lenient",
    "encode",
    "fingerprint",
    "reading_time",
]

PRODUCE: Final = "PRODUCE"
"""The ``operation`` value of physical card production events."""

UNPARSED: Final = "cardflow:unparsed"
"""The key under which a shipment keeps carrier fields that did not parse (never D1's)."""

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
"""An ISO 8601 timestamp that must carry an offset: ordering never guesses a zone."""

OperationId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$(?!\n)")
]
"""D1's schema: 1 to 64 characters of ``[A-Za-z0-9_-]``.

msgspec searches with Python's ``re``, where ``$`` also matches before a final newline:
``(?!\n)`` refuses ``"abc\n"`` (and means nothing to an ECMA regex in a JSON Schema).
"""


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


class Reject(msgspec.Struct, frozen=True, kw_only=True):
    """An input that did not decode: where, why, and its text, verbatim.

    ``index`` is the operation's position in the body, or None when the body as
    a whole is unreadable (then ``raw`` is the whole body).
    """

    index: int | None
    path: str
    reason: str
    raw: bytes

    def error(self) -> InvalidNotification:
        """This reject as the exception that strict decoding raises."""
        return InvalidNotification(self.reason, self.path, index=self.index)


class Decoded(msgspec.Struct, frozen=True, kw_only=True):
    """What ``decode_lenient`` recovered: the good operations and the rejects."""

    operations: list[Operation]
    rejects: list[Reject]

    @property
    def ok(self) -> bool:
        """True when nothing was rejected."""
        return not self.rejects


class _Body(msgspec.Struct, gc=False):
    operations: list[Operation]


class _RawBody(msgspec.Struct, gc=False):
    operations: list[msgspec.Raw]


class _LooseOperation(msgspec.Struct, kw_only=True, rename="camel"):
    """An operation whose ``details`` are left as raw JSON text, whatever it holds."""

    operation_id: OperationId
    operation: str
    status: str
    start_time: Timestamp
    card_id: str
    end_time: Timestamp | None = None
    details: msgspec.Raw = msgspec.Raw()
    error_code: str | None = None
    error: str | None = None
    input_file_name: str | None = None
    issuer_request_id: str | None = None


_body_decoder: Final = msgspec.json.Decoder(_Body)
_decode_body: Final = _body_decoder.decode
_raw_body_decoder: Final = msgspec.json.Decoder(_RawBody)
_operation_decoder: Final = msgspec.json.Decoder(Operation)
_loose_decoder: Final = msgspec.json.Decoder(_LooseOperation)
_raw_object_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_json_encoder: Final = msgspec.json.Encoder()
_any_json_decoder: Final = msgspec.json.Decoder()
_msgpack_encoder: Final = msgspec.msgpack.Encoder()

_DETAIL_FIELDS: Final = msgspec.structs.fields(Details)
_DETAIL_DECODERS: Final[dict[str, tuple[str, msgspec.json.Decoder[Any]]]] = {
    f.encode_name: (f.name, msgspec.json.Decoder(f.type)) for f in _DETAIL_FIELDS
}

_SHIPMENT_DECODERS: Final[dict[str, tuple[str, msgspec.json.Decoder[Any]]]] = {
    f.encode_name: (f.name, msgspec.json.Decoder(f.type))
    for f in msgspec.structs.fields(Shipment)
    if f.encode_name != UNPARSED
}
_CHECKPOINT_DECODERS: Final[dict[str, tuple[str, msgspec.json.Decoder[Any]]]] = {
    f.encode_name: (f.name, msgspec.json.Decoder(f.type))
    for f in msgspec.structs.fields(Checkpoint)
}
_LAST_CHECKPOINT: Final = "lastCheckpoint"


class _DetailsRawShipment(Details, frozen=True):
    """``details`` whose shipment is left as raw JSON text, to be decoded field by field."""

    shipment: msgspec.Raw = msgspec.Raw()  # type: ignore[assignment]


_details_raw_shipment_decoder: Final = msgspec.json.Decoder(_DetailsRawShipment)

_DECODE_ERRORS: Final = (msgspec.DecodeError, RecursionError, UnicodeError, BufferError)
"""What msgspec raises on bad input: errors, too-deep nesting, a str with lone surrogates,
a memoryview that is not contiguous."""

Body = bytes | bytearray | memoryview | str
"""What a body may be: text, or any bytes-like object (anything with the buffer protocol)."""
_BOM: Final = b"\xef\xbb\xbf"


def fast_operations(body: object) -> list[Operation] | None:
    """The operations of a body that decodes as a whole (the fast path), else None."""
    if type(body) is bytes or type(body) is str:
        try:
            return _decode_body(body).operations
        except _DECODE_ERRORS:
            pass
    return None


def decode(body: Body) -> list[Operation]:
    """Decode a webhook body or on-demand response into its operations, in body order.

    Strict: the first problem raises ``InvalidNotification`` naming its JSON path.
    No other exception escapes, whatever the input.
    """
    # The fast path, in line (this runs once per body): bytes first, the usual type.
    if type(body) is bytes or type(body) is str:
        try:
            return _decode_body(body).operations
        except _DECODE_ERRORS:
            pass
    decoded = _decode_slow(body)
    if decoded.rejects:
        raise decoded.rejects[0].error()
    return decoded.operations


def decode_lenient(body: Body) -> Decoded:
    """Decode what can be decoded; describe each operation that cannot.

    A webhook handler can acknowledge the body, keep ``operations`` and dead-letter
    ``rejects`` (each with its index, JSON path, reason and raw JSON text): one bad
    operation, whatever its fault (a wrong field, bad JSON text inside it, nesting too
    deep to parse), never costs the good ones beside it. Never raises.
    """
    operations = fast_operations(body)
    if operations is not None:
        return Decoded(operations=operations, rejects=[])
    return _decode_slow(body)


_MISSING_FIELD: Final = "Object missing required field `"


def _split_error(exc: BaseException) -> tuple[str, str]:
    """msgspec's ``"reason - at `$.a.b`"`` as (reason, path).

    msgspec places a missing field at the object that lacks it; the path names the
    field itself (``$.operations[0].cardId``), which is where a reader looks.
    """
    text = str(exc)
    reason, sep, where = text.rpartition(" - at `")
    if sep and where.endswith("`"):
        path = where[:-1]
    elif isinstance(exc, RecursionError):
        return "JSON nested too deeply", "$"
    elif isinstance(exc, UnicodeError):
        return f"text is not valid Unicode: {getattr(exc, 'reason', exc)}", "$"
    else:
        reason, path = text, "$"
    if reason.startswith(_MISSING_FIELD) and reason.endswith("`"):
        path = f"{path}.{reason[len(_MISSING_FIELD) : -1]}"
    return reason, path


def _as_bytes(body: object) -> bytes | None:
    """A body as UTF-8 bytes without a byte order mark; None when it is not text or bytes.

    A ``str`` (a subclass too) is encoded keeping lone surrogates as they are, so that
    the one operation holding one is rejected, not the body; any other object with the
    buffer protocol gives its bytes.
    """
    if isinstance(body, str):
        raw = str.encode(body, "utf-8", "surrogatepass")
    elif isinstance(body, bytes):
        raw = bytes(body)
    else:
        try:
            with memoryview(body) as view:  # type: ignore[arg-type]
                raw = view.tobytes()
        except TypeError:
            return None
    return raw[len(_BOM) :] if raw.startswith(_BOM) else raw


def _envelope_error(body: bytes, spans: list[tuple[int, int]]) -> BaseException | None:
    """What is wrong with the body outside its operations, if anything.

    Each operation's text is replaced by ``0``; the rest must be a D1 envelope. Nesting
    too deep for msgspec outside the operations is not a fault of the body.
    """
    parts: list[bytes] = []
    at = 0
    for start, end in spans:
        parts.append(body[at:start])
        parts.append(b"0")
        at = end
    parts.append(body[at:])
    try:
        _raw_body_decoder.decode(b"".join(parts))
    except RecursionError:
        return None
    except _DECODE_ERRORS as exc:
        return exc
    return None


def _decode_slow(body: object) -> Decoded:
    raw_body = _as_bytes(body)
    if raw_body is None:
        reason = f"expected bytes or str, got {type(body).__name__}"
        return Decoded(
            operations=[], rejects=[Reject(index=None, path="$", reason=reason, raw=b"")]
        )
    try:
        return Decoded(operations=_decode_body(raw_body).operations, rejects=[])
    except _DECODE_ERRORS:
        pass
    items: Sequence[msgspec.Raw | bytes]
    try:
        items = _raw_body_decoder.decode(raw_body).operations
    except _DECODE_ERRORS as exc:
        # Bad JSON text somewhere, or nesting too deep for msgspec: find the operations
        # without parsing them, and decode each alone, so that a fault inside one costs
        # only that one. A fault outside them is the body's.
        spans = operation_spans(raw_body)
        fault = exc if spans is None else _envelope_error(raw_body, spans)
        if spans is None or fault is not None:
            reason, path = _split_error(fault or exc)
            return Decoded(
                operations=[],
                rejects=[Reject(index=None, path=path, reason=reason, raw=raw_body)],
            )
        items = [raw_body[start:end] for start, end in spans]
    operations: list[Operation] = []
    rejects: list[Reject] = []
    for index, raw in enumerate(items):
        error: BaseException
        try:
            operations.append(_operation_decoder.decode(raw))
            continue
        except _DECODE_ERRORS as exc:
            error = exc
        try:
            loose = _loose_decoder.decode(raw)
        except _DECODE_ERRORS as exc:
            # A fault outside ``details``: it stands whatever the operation, so name
            # it rather than a ``details`` fault that a non-PRODUCE op would be excused.
            error = exc
        else:
            if loose.operation != PRODUCE:
                operations.append(_tolerate_details(loose))
                continue
            tolerated = _tolerate_shipment(loose)
            if tolerated is not None:
                operations.append(tolerated)
                continue
        reason, path = _split_error(error)
        prefix = f"$.operations[{index}]"
        rejects.append(Reject(index=index, path=prefix + path[1:], reason=reason, raw=bytes(raw)))
    return Decoded(operations=operations, rejects=rejects)


def _decode_members(
    raw: msgspec.Raw | bytes, decoders: dict[str, tuple[str, msgspec.json.Decoder[Any]]]
) -> tuple[dict[str, Any], dict[str, msgspec.Raw]] | None:
    """The known members of a JSON object, each decoded alone: (those that fit their
    type by field name, the text of those that do not by key); None when not an object."""
    try:
        members = _raw_object_decoder.decode(raw)
    except _DECODE_ERRORS:
        return None
    kept: dict[str, Any] = {}
    failed: dict[str, msgspec.Raw] = {}
    for key, value in members.items():
        target = decoders.get(key)
        if target is None:
            continue
        name, decoder = target
        try:
            kept[name] = decoder.decode(value)
        except _DECODE_ERRORS:
            failed[key] = value
    return kept, failed


def _text(raw: msgspec.Raw | bytes) -> str:
    return bytes(raw).decode("utf-8", "replace")


def _tolerant_shipment(raw: msgspec.Raw) -> Shipment | None:
    """A shipment decoded field by field: the fields that do not parse kept as text."""
    if not raw or bytes(raw).strip() == b"null":
        return None
    members = _decode_members(raw, _SHIPMENT_DECODERS)
    if members is None:
        return Shipment(unparsed=(("", _text(raw)),))
    fields, failed = members
    unparsed = [(key, _text(value)) for key, value in failed.items() if key != _LAST_CHECKPOINT]
    scan = failed.get(_LAST_CHECKPOINT)
    if scan is not None:
        inner = _decode_members(scan, _CHECKPOINT_DECODERS)
        if inner is None:
            unparsed.append((_LAST_CHECKPOINT, _text(scan)))
        else:
            fields["last_checkpoint"] = Checkpoint(**inner[0])
            unparsed.extend((f"{_LAST_CHECKPOINT}.{k}", _text(v)) for k, v in inner[1].items())
    return Shipment(**fields, unparsed=tuple(sorted(unparsed)))


def _tolerate_shipment(loose: _LooseOperation) -> Operation | None:
    """A PRODUCE operation whose only faults are carrier fields of its shipment, or None.

    The production fields stay strict: a fault anywhere else in ``details`` keeps the
    operation rejected.
    """
    try:
        details = _details_raw_shipment_decoder.decode(loose.details)
    except _DECODE_ERRORS:
        return None
    fields = msgspec.structs.asdict(details)
    shipment = _tolerant_shipment(fields.pop("shipment"))
    operation = msgspec.structs.asdict(loose)
    operation["details"] = Details(**fields, shipment=shipment)
    return Operation(**operation)


def _tolerate_details(loose: _LooseOperation) -> Operation:
    """A non-PRODUCE operation whose details do not fit, decoded as far as they fit.

    Each known ``details`` field is decoded from its own JSON text: the fields that
    fit are kept, the others dropped; ``details`` that are not an object become None.
    """
    members = _decode_members(loose.details, _DETAIL_DECODERS)
    fields = msgspec.structs.asdict(loose)
    fields["details"] = None if members is None else Details(**members[0])
    return Operation(**fields)


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
    except _DECODE_ERRORS:
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
    """The canonical identity of an event, as bytes.

    Equal for the same event however its JSON was spelled (key order, white space,
    the offset a timestamp was written in, unknown fields), different when any
    field differs. Also a fixed total order for breaking ties between events.
    """
    return _msgpack_encoder.encode(op)


CONFIRMED_AT: Final = "confirmedAt"
"""The envelope key that marks a body as D1's on-demand status, read at that time."""
READING_MARK: Final = b'"confirmedAt"'
"""Bytes that only a logged on-demand response holds (a quick test before decoding)."""


class _Reading(msgspec.Struct):
    confirmedAt: Timestamp | None = None  # noqa: N815 (the wire's name)


_reading_decoder: Final = msgspec.json.Decoder(_Reading)


def reading_time(body: Body) -> datetime | None:
    """When a logged body was read from D1's on-demand status, or None for a notification.

    A log keeps an on-demand response as its envelope with one more key,
    ``{"confirmedAt": "2025-02-01T00:00:00Z", "operations": [...]}``: the time it was
    read, which confirms what it reports (``docs/semantics.md``). D1 sends no such key,
    so a notification reads as None. Raises ``InvalidNotification`` for a
    ``confirmedAt`` that is not a timestamp with an offset.
    """
    raw = _as_bytes(body)
    if raw is None or READING_MARK not in raw:
        return None
    try:
        return _reading_decoder.decode(raw).confirmedAt
    except _DECODE_ERRORS as exc:
        reason, path = _split_error(exc)
        if path.startswith("$." + CONFIRMED_AT):
            raise InvalidNotification(reason, path) from None
        return None  # the body itself is bad: decoding it says so
