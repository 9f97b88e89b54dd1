"""The state format: round trips, merge after decoding, and every kind of bad data."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import cardflow
from cardflow import CardState, StateFormatError, decode_state, encode_state, fold, merge
from cardflow.testing import histories


@given(histories())
def test_round_trip_gives_an_equal_state(history: object) -> None:
    states = fold(history.notifications())  # type: ignore[attr-defined]
    for state in states.values():
        data = encode_state(state)
        back = decode_state(data)
        assert back == state
        assert encode_state(back) == data
        assert decode_state(bytearray(data)) == state
        assert decode_state(memoryview(data)) == state


@given(histories(), st.data())
def test_merge_works_on_decoded_states(history: object, data: st.DataObject) -> None:
    events = list(history.notifications())  # type: ignore[attr-defined]
    cut = data.draw(st.integers(0, len(events)))
    left, right = fold(events[:cut]), fold(events[cut:])
    whole = fold(events)
    for card_id, state in whole.items():
        parts = [decode_state(encode_state(s[card_id])) for s in (left, right) if card_id in s]
        joined = parts[0] if len(parts) == 1 else merge(parts[0], parts[1])
        assert joined == state


def _a_state() -> CardState:
    body = (Path(__file__).parent / "data/track_production/bulk.json").read_bytes()
    return next(iter(fold(cardflow.decode(body)).values()))


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "does not start"),
        (b"{}", "does not start"),
        (b"CFS", "does not start"),
        (b"CFS\x02\x00\x00\x00\x00", "newer than this cardflow reads"),
        (b"CFS\x00\x00\x00\x00\x00", "does not exist"),
    ],
)
def test_not_a_state(data: bytes, words: str) -> None:
    with pytest.raises(StateFormatError, match=words):
        decode_state(data)


def test_every_flipped_byte_is_refused() -> None:
    data = encode_state(_a_state())
    for at in range(len(data)):
        bad = bytearray(data)
        bad[at] ^= 0x41
        with pytest.raises(StateFormatError):
            decode_state(bytes(bad))


def test_every_truncation_is_refused() -> None:
    data = encode_state(_a_state())
    for size in range(len(data)):
        with pytest.raises(StateFormatError):
            decode_state(data[:size])


def test_a_payload_that_is_not_a_state_is_refused_even_with_a_good_checksum() -> None:
    payload = b"\x81\xa1a\x01"  # {"a": 1}
    data = b"CFS\x01" + zlib.crc32(payload).to_bytes(4, "big") + payload
    with pytest.raises(StateFormatError, match="corrupt state"):
        decode_state(data)
