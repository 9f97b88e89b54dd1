"""The state format: ``encode_state`` and ``decode_state``, compact and versioned.

A state travels between processes (``--jobs``, Dask) and lives in database rows
(the store), so it needs a byte form that is small, fast, checked, and stable
across releases. ``docs/state-format.md`` documents it:

    b"CFS" | version (1 byte) | CRC-32 of the payload (4 bytes, big-endian) | payload

The payload is msgpack: the :class:`CardState` as a map of its field names (the
private summaries included: ``merge`` needs them), absent optional fields omitted,
times as msgpack timestamps. A corrupt or truncated value, one written by a later
version, or one that breaks an invariant of a state, raises :class:`StateFormatError`;
it never decodes into a wrong state.
"""

from __future__ import annotations

import zlib
from typing import Final

import msgspec

from ._errors import StateFormatError
from ._lifecycle import D1_LIFECYCLE, Lifecycle
from ._state import CardState
from ._statecheck import state_fault
from ._tables import D1_TABLES, tables_for

__all__ = ["STATE_FORMAT_VERSION", "decode_state", "encode_state", "state_format_version"]

STATE_FORMAT_VERSION: Final = 1
"""The version ``encode_state`` writes; ``decode_state`` reads it and every earlier one."""

_MAGIC: Final = b"CFS"
_HEADER: Final = len(_MAGIC) + 1 + 4
_PREFIX: Final = _MAGIC + bytes((STATE_FORMAT_VERSION,))
_encoder: Final = msgspec.msgpack.Encoder()
_decoder: Final = msgspec.msgpack.Decoder(CardState)


def encode_state(state: CardState) -> bytes:
    """The state as bytes in the current format (see ``docs/state-format.md``)."""
    payload = _encoder.encode(state)
    return b"".join((_PREFIX, zlib.crc32(payload).to_bytes(4, "big"), payload))


def decode_state(
    data: bytes | bytearray | memoryview, *, lifecycle: Lifecycle = D1_LIFECYCLE
) -> CardState:
    """The state that ``encode_state`` wrote, from this version or an earlier one.

    Raises ``StateFormatError`` naming the fault for anything else: another kind of
    data, a format from a later version, a checksum that does not match, a payload
    that is not a state, or one that no fold under ``lifecycle`` (the one the state
    was folded under) could give: the checksum is no signature, so every invariant
    that ``merge`` and ``step`` rely on is checked here (``_statecheck.py``).
    """
    raw = data if isinstance(data, bytes) else bytes(memoryview(data).cast("B"))
    if len(raw) < _HEADER or raw[: len(_MAGIC)] != _MAGIC:
        raise StateFormatError("not a cardflow state: the data does not start with b'CFS'")
    version = raw[len(_MAGIC)]
    if version > STATE_FORMAT_VERSION:
        raise StateFormatError(
            f"state format version {version} is newer than this cardflow reads"
            f" (up to {STATE_FORMAT_VERSION}): upgrade cardflow to read it"
        )
    if version < 1:
        raise StateFormatError(f"state format version {version} does not exist")
    payload = memoryview(raw)[_HEADER:]  # no copy
    expected = int.from_bytes(raw[len(_MAGIC) + 1 : _HEADER], "big")
    if zlib.crc32(payload) != expected:
        raise StateFormatError("corrupt state: the checksum of its payload does not match")
    try:
        state = _decoder.decode(payload)
    except msgspec.DecodeError as exc:
        raise StateFormatError(f"corrupt state: {exc}") from None
    except RecursionError:
        raise StateFormatError("corrupt state: nested too deeply to be a state") from None
    tables = D1_TABLES if lifecycle is D1_LIFECYCLE else tables_for(lifecycle)
    fault = state_fault(state, tables)
    if fault is not None:
        raise StateFormatError(f"not a state a fold gives: card {state.card_id!r}: {fault}")
    return state


def state_format_version(data: bytes | bytearray | memoryview) -> int | None:
    """The format version that bytes claim to be a state in, None when they do not start
    as a state does: what tells a state from a later version from a corrupt one."""
    raw = bytes(data[: len(_MAGIC) + 1])
    if len(raw) <= len(_MAGIC) or raw[: len(_MAGIC)] != _MAGIC:
        return None
    return raw[len(_MAGIC)]
