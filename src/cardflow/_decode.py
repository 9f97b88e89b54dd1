"""Decoding D1 bodies: strict (``decode``) and lenient (``decode_lenient``).

Decoding runs msgspec over the whole body first (the fast path). Only when that
fails does it look at the operations one by one, to name the fault precisely, to
keep the good operations beside a bad one (``decode_lenient``), to keep carrier
fields that do not parse as text, and to decode the ``details`` of a non-PRODUCE
operation as far as they fit instead of failing. ``reading_time`` tells a logged
on-demand response from a notification.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import msgspec

from ._errors import InvalidNotification
from ._jsonscan import operation_spans
from ._wire import (
    BAD_OPERATION_ID,
    DECODE_ERRORS,
    PRODUCE,
    UNPARSED,
    Checkpoint,
    Details,
    Operation,
    OperationId,
    Shipment,
    Timestamp,
    valid_operation_id,
)

__all__ = ["Decoded", "Reject", "decode", "decode_lenient", "decode_reading", "reading_time"]
# ``fast_operations`` and ``notified_operations`` are shared with the tracker, not public.


MAX_BODY: Final = 16 << 20
"""16 MiB: the most bytes of one D1 body cardflow takes by default, one number for
both ends: the receiver's body limit, and the longest line (or multi-line document)
that ``cardflow fold`` and ``cardflow report`` read, so that every body the receiver
took fits in one line of a log. D1's bodies hold at most the operations per body
agreed at onboarding, each well under a kilobyte."""


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


class _MaybeReadBody(msgspec.Struct, gc=False):
    """A body, and whether it holds a ``confirmedAt`` (a logged reading) at its top."""

    operations: list[Operation]
    confirmedAt: msgspec.Raw = msgspec.Raw()  # noqa: N815 (the wire's name)


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
_decode_maybe_read: Final = msgspec.json.Decoder(_MaybeReadBody).decode
_raw_body_decoder: Final = msgspec.json.Decoder(_RawBody)
_operation_decoder: Final = msgspec.json.Decoder(Operation)
_loose_decoder: Final = msgspec.json.Decoder(_LooseOperation)
_raw_object_decoder: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])

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


Body = bytes | bytearray | memoryview | str
"""What a body may be: text, or any bytes-like object (anything with the buffer protocol)."""
_BOM: Final = b"\xef\xbb\xbf"


def _valid_ids(operations: list[Operation]) -> list[Operation] | None:
    """``operations`` when every ``operationId`` has only the characters D1 sends (the
    one check msgspec leaves to the fast paths), else None: the slow path names it."""
    for op in operations:
        if valid_operation_id(op.operation_id) is None:
            return None
    return operations


def fast_operations(body: object) -> list[Operation] | None:
    """The operations of a body that decodes as a whole (the fast path), else None.

    msgspec checks every field but the characters of ``operationId``, checked here: a
    body with a refused one takes the slow path, which names it.
    """
    if type(body) is bytes or type(body) is str:
        try:
            operations = _decode_body(body).operations
        except DECODE_ERRORS:
            return None
        if type(body) is bytes and not body.isascii() and not _is_utf8(body):
            return None
        return _valid_ids(operations)
    return None


def notified_operations(body: object) -> list[Operation] | None:
    """The operations of a body that decodes as a whole and is a notification (its
    envelope holds no ``confirmedAt``: no logged reading), else None.

    As ``fast_operations``, and tells a reading apart in the same decoding: cheaper
    than looking for ``READING_MARK`` in the bytes first (a fifth of a microsecond a body).
    """
    if type(body) is bytes:
        return None if not body.isascii() and not _is_utf8(body) else _notified(body)
    return _notified(body) if type(body) is str else None


def notified_text_operations(body: object) -> list[Operation] | None:
    """As ``notified_operations``, for ``bytes`` its caller knows to be valid UTF-8 (a
    reader that checked a whole block of lines at once): no check of its own. Anything
    but ``bytes`` is None: the lenient path then checks it, and says what is wrong."""
    return _notified(body) if type(body) is bytes else None


def _notified(body: bytes | str) -> list[Operation] | None:
    try:
        decoded = _decode_maybe_read(body)
    except DECODE_ERRORS:
        return None
    return None if decoded.confirmedAt else _valid_ids(decoded.operations)


def decode(body: Body) -> list[Operation]:
    """Decode a webhook body or on-demand response into its operations, in body order.

    Strict: the first problem raises ``InvalidNotification`` naming its JSON path.
    No other exception escapes, whatever the input.
    """
    # The fast path, in line (this runs once per body): bytes first, the usual type.
    if type(body) is bytes or type(body) is str:
        try:
            operations = _decode_body(body).operations
        except DECODE_ERRORS:
            pass
        else:
            for op in operations:
                if valid_operation_id(op.operation_id) is None:
                    break
            else:
                if not isinstance(body, bytes) or body.isascii() or _is_utf8(body):
                    return operations
    decoded = _decode_slow(body)
    if decoded.rejects:
        raise decoded.rejects[0].error()
    return decoded.operations


def _is_utf8(raw: bytes) -> bool:
    """Whether ``raw`` is valid UTF-8. msgspec checks the strings it decodes, not those
    it skips (a field no Struct names): this check makes the rule the same for both."""
    try:
        raw.decode()
    except UnicodeDecodeError:
        return False
    return True


_ESCAPE: Final = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


def _string_fault(raw: bytes) -> str | None:
    """What makes a string in JSON text ``raw`` malformed, or None: a byte that is not
    UTF-8, or an escaped UTF-16 surrogate without its other half (``"\\ud800"``), which
    is no character at all. Names the byte (from 0, in ``raw``) where it starts."""
    try:
        raw.decode()
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.end].hex(" ")
        return f"text is not valid UTF-8 at byte {error.start} ({bad}: {error.reason})"
    if b"\\u" not in raw:
        return None
    high: re.Match[bytes] | None = None
    for escape in _ESCAPE.finditer(raw):
        code = int(escape[1], 16) if escape[1] is not None else -1
        if high is not None:
            if 0xDC00 <= code <= 0xDFFF and escape.start() == high.end():
                high = None
                continue
            return _lone(high)
        if 0xD800 <= code <= 0xDBFF:
            high = escape
        elif 0xDC00 <= code <= 0xDFFF:
            return _lone(escape)
    return None if high is None else _lone(high)


def _lone(escape: re.Match[bytes]) -> str:
    text = escape[0].decode("ascii")
    return (
        f"text is not valid Unicode at byte {escape.start()}: {text} is a lone UTF-16"
        " surrogate (half of a pair, without the other half), not a character"
    )


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
    except DECODE_ERRORS as exc:
        return exc
    return None


def _decode_slow(body: object) -> Decoded:
    raw_body = _as_bytes(body)
    if raw_body is None:
        reason = f"expected bytes or str, got {type(body).__name__}"
        return Decoded(
            operations=[], rejects=[Reject(index=None, path="$", reason=reason, raw=b"")]
        )
    whole = fast_operations(raw_body)
    if whole is not None:
        return Decoded(operations=whole, rejects=[])
    items: Sequence[msgspec.Raw | bytes]
    try:
        items = _raw_body_decoder.decode(raw_body).operations
    except DECODE_ERRORS as exc:
        # Bad JSON text somewhere, or nesting too deep for msgspec: find the operations
        # without parsing them, and decode each alone, so that a fault inside one costs
        # only that one. A fault outside them is the body's.
        spans = operation_spans(raw_body)
        fault = exc if spans is None else _envelope_error(raw_body, spans)
        if spans is None or fault is not None:
            reason, path = _split_error(fault or exc)
            malformed = _string_fault(raw_body)
            if malformed is not None and _truncation(reason):
                reason = malformed
            return Decoded(
                operations=[],
                rejects=[Reject(index=None, path=path, reason=reason, raw=raw_body)],
            )
        items = [raw_body[start:end] for start, end in spans]
    operations: list[Operation] = []
    rejects: list[Reject] = []
    bad_text = False
    for index, raw in enumerate(items):
        prefix = f"$.operations[{index}]"
        found = _decode_operation(raw)
        malformed = _string_fault(bytes(raw))
        if malformed is not None:
            bad_text = True
            rejects.append(Reject(index=index, path=prefix, reason=malformed, raw=bytes(raw)))
        elif not isinstance(found, Operation):
            reason, path = _split_error(found)
            rejects.append(
                Reject(index=index, path=prefix + path[1:], reason=reason, raw=bytes(raw))
            )
        elif valid_operation_id(found.operation_id) is None:
            path = prefix + ".operationId"
            rejects.append(Reject(index=index, path=path, reason=BAD_OPERATION_ID, raw=bytes(raw)))
        else:
            operations.append(found)
    if not bad_text and not _is_utf8(raw_body):
        # Every operation is good text: the bad byte lies outside them, in the envelope.
        reason = _string_fault(raw_body) or "text is not valid UTF-8"
        return Decoded(
            operations=[], rejects=[Reject(index=None, path="$", reason=reason, raw=raw_body)]
        )
    return Decoded(operations=operations, rejects=rejects)


def _truncation(reason: str) -> bool:
    """msgspec's reason for a string it could not end: what a lone surrogate gives."""
    return reason == "Input data was truncated" or "surrogate" in reason


def _decode_operation(raw: msgspec.Raw | bytes) -> Operation | BaseException:
    """One operation's JSON text decoded (its ``operationId`` characters not yet checked),
    tolerating what may be tolerated, or the error that rejects it."""
    try:
        return _operation_decoder.decode(raw)
    except DECODE_ERRORS as exc:
        error: BaseException = exc
    try:
        loose = _loose_decoder.decode(raw)
    except DECODE_ERRORS as exc:
        # A fault outside ``details``: it stands whatever the operation, so name it
        # rather than a ``details`` fault that a non-PRODUCE op would be excused.
        return exc
    if loose.operation != PRODUCE:
        return _tolerate_details(loose)
    tolerated = _tolerate_shipment(loose)
    return error if tolerated is None else tolerated


def _decode_members(
    raw: msgspec.Raw | bytes, decoders: dict[str, tuple[str, msgspec.json.Decoder[Any]]]
) -> tuple[dict[str, Any], dict[str, msgspec.Raw]] | None:
    """The known members of a JSON object, each decoded alone: (those that fit their
    type by field name, the text of those that do not by key); None when not an object."""
    try:
        members = _raw_object_decoder.decode(raw)
    except DECODE_ERRORS:
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
        except DECODE_ERRORS:
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
    except DECODE_ERRORS:
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
    except DECODE_ERRORS as exc:
        reason, path = _split_error(exc)
        if path.startswith("$." + CONFIRMED_AT):
            raise InvalidNotification(reason, path) from None
        return None  # the body itself is bad: decoding it says so


def decode_reading(body: Body) -> tuple[Decoded, datetime | None]:
    """``decode_lenient``, and when the body is a logged on-demand response, the time it
    was read (``reading_time``). A ``confirmedAt`` that is not a time rejects the body
    as a whole: folding its events as notifications would lose the confirmation without
    a word. Never raises on bad input."""
    decoded = decode_lenient(body)
    try:
        return decoded, reading_time(body)
    except InvalidNotification as error:
        raw = _as_bytes(body) or b""
        reject = Reject(index=None, path=error.path, reason=error.reason, raw=raw)
        return Decoded(operations=[], rejects=[reject]), None
