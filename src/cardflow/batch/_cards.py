"""Card states as JSON objects, the way the machine formats write them, fast.

Every public field of :class:`~cardflow.CardState`, in order, under its camelCase
name; never the ``_``-prefixed internals; times spelled the way D1 spells them.
msgspec encodes the cards a chunk at a time, and the few bytes where its spelling
of a time differs from D1's are fixed in bulk (see :func:`_d1_times`).
"""

from __future__ import annotations

import operator
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Final

import msgspec

from .._reconcile import ReconcileReason
from .._state import CardState
from .._view import VIEW_FIELDS, json_view
from .._wire import UNPARSED

__all__ = ["CHUNK", "card_object", "csv_columns", "encoded_cards", "public_row"]

CHUNK: Final = 1000
"""Cards encoded at once."""


_encoder: Final = msgspec.json.Encoder()

_PUBLIC: Final = VIEW_FIELDS
"""CardState's public fields, with their camelCase names (``cardflow.json_view``'s)."""


def _struct_in(tp: object) -> type[msgspec.Struct] | None:
    for arg in (tp, *typing.get_args(tp)):
        if isinstance(arg, type) and issubclass(arg, msgspec.Struct):
            return arg
    return None


def _kinds(tp: object) -> set[type]:
    """The types a field's annotation admits (``Timestamp | None``: datetime, NoneType)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _kinds(typing.get_args(tp)[0])
    if origin is typing.Union or origin is types.UnionType:
        return set().union(*(_kinds(arg) for arg in typing.get_args(tp)))
    return {tp} if isinstance(tp, type) else set()


def _keys(fields: Iterable[tuple[str, object]]) -> Iterator[tuple[str, bool]]:
    """Every key of a card object, nested ones included, and whether it holds a time."""
    for key, tp in fields:
        yield key, datetime in _kinds(tp)
        inner = _struct_in(tp)
        if inner is not None:
            yield from _keys((f.encode_name, f.type) for f in msgspec.structs.fields(inner))


def _time_keys() -> list[str]:
    """The keys of a card object that hold times, and only times, at any depth."""
    types_of = {f.name: f.type for f in msgspec.structs.fields(CardState)}
    keys = list(_keys((camel, types_of[name]) for name, camel in _PUBLIC))
    times = sorted({key for key, is_time in keys if is_time})
    others = {key for key, is_time in keys if not is_time} | {"reconcile"}
    if others & set(times):  # pragma: no cover (a guard on the model's field names)
        raise TypeError(f"keys that hold times and other values: {sorted(others & set(times))}")
    return times


_OPENINGS: Final = tuple(b'"%s":"' % key.encode() for key in _time_keys())
"""How a time value opens in compact JSON: its key, then the value's opening quote."""
_WHOLE_MILLISECONDS: Final = re.compile(
    rb'000(?=Z"|[+-]\d\d:\d\d")(?:%s)'
    % b"|".join(
        rb"(?<=%s\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}000)" % re.escape(opening)
        for opening in _OPENINGS
    )
)
"""Three zeros that end the microseconds of a time of whole milliseconds, just before
its ``Z`` or offset, where the time is the value of a key that holds times: one
look-behind per key (each of fixed width), after the literal ``000`` that lets the
regular expression engine skip ahead."""


def _d1_times(encoded: bytes) -> bytes:
    """Compact JSON from msgspec, with every time spelled the way D1 spells it.

    msgspec writes a datetime as D1 does (``Z`` for UTC, the offset otherwise, no
    fraction for whole seconds, six digits for microseconds) except when the
    microseconds are whole milliseconds, where D1 writes three digits: those three
    zeros go, in one pass over the text. Only a time is touched: the text before the
    zeros must open a value of a key that holds times, and only a bare ``"`` (never
    one inside a string) delimits a key, so a string that merely looks like a time
    stays as it is. Offsets with seconds, which msgspec would round, never come out
    of a decoded RFC 3339 time.
    """
    return _WHOLE_MILLISECONDS.sub(b"", encoded)


_NAMES: Final = tuple(name for name, _ in _PUBLIC)
_public_values: Final = operator.attrgetter(*_NAMES)
_Card: Final = msgspec.defstruct("_Card", [(camel, object) for _, camel in _PUBLIC], gc=False)
"""A card object to encode: the public fields in order, under their camelCase names."""
_CardToReconcile: Final = msgspec.defstruct(
    "_CardToReconcile",
    [*((camel, object) for _, camel in _PUBLIC), ("reconcile", object)],
    gc=False,
)
"""The same, with the reasons to reconcile."""


_SHIPMENT_AT: Final = _NAMES.index("shipment")


def _values(state: CardState) -> tuple[object, ...]:
    """The public values, a shipment with carrier text kept unparsed as the view shows it
    (written back where it came from: rare, and then slower)."""
    values: tuple[object, ...] = _public_values(state)
    ship = state.shipment
    if ship is not None and ship.unparsed:
        listed = list(values)
        listed[_SHIPMENT_AT] = json_view(state)["shipment"]
        values = tuple(listed)
    return values


def public_row(state: CardState) -> msgspec.Struct:
    """A card's public fields as the Struct that the machine formats encode (its times
    as msgspec spells them: ``encoded_cards`` fixes them in bulk)."""
    return _Card(*_values(state))


def _row(state: CardState, reasons: Sequence[ReconcileReason] | None) -> msgspec.Struct:
    if reasons is None:
        return _Card(*_values(state))
    return _CardToReconcile(*_values(state), [str(r) for r in reasons])


def card_object(
    state: CardState, reasons: Sequence[ReconcileReason] | None = None
) -> dict[str, object]:
    """One card as a JSON object: ``cardflow.json_view``; ``reconcile`` when given.

    The same object as a line of ``--format jsonl`` (which is encoded in bulk, faster).
    """
    value = json_view(state)
    if reasons is not None:
        value["reconcile"] = [str(r) for r in reasons]
    return value


def csv_columns() -> list[tuple[str, ...]]:
    """The CSV columns, as paths into a card object: nested structs flattened."""
    columns: list[tuple[str, ...]] = []
    types_of = {f.name: f.type for f in msgspec.structs.fields(CardState)}
    for name, camel in _PUBLIC:
        inner = _struct_in(types_of[name])
        columns += [(camel,)] if inner is None else [(camel, *p) for p in _nested(inner)]
    return columns


def _nested(struct: type[msgspec.Struct]) -> Iterator[tuple[str, ...]]:
    for f in msgspec.structs.fields(struct):
        if f.encode_name == UNPARSED:
            continue  # the view writes such text back in the field it came from
        inner = _struct_in(f.type)
        if inner is None:
            yield (f.encode_name,)
        else:
            yield from ((f.encode_name, *path) for path in _nested(inner))


def encoded_cards(
    states: Sequence[CardState],
    reasons: Mapping[str, tuple[ReconcileReason, ...]] | None,
    *,
    lines: bool,
) -> Iterator[bytes]:
    """The cards as compact JSON, ``CHUNK`` at a time: JSON lines (each line ending in a
    newline) with ``lines``, else a JSON array. Each card has its ``reconcile``
    reasons when ``reasons`` is given (none for a card it lacks)."""
    encode = _encoder.encode_lines if lines else _encoder.encode
    values = _values
    for start in range(0, len(states), CHUNK):
        chunk = states[start : start + CHUNK]
        if reasons is None:
            rows = [_Card(*values(state)) for state in chunk]
        else:
            rows = [_row(state, reasons.get(state.card_id, ())) for state in chunk]
        yield _d1_times(encode(rows))
