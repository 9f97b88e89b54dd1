"""``decode_state`` never returns a non-state: the checksum is not a signature.

Every payload here carries a valid header and CRC, so only the payload's content can
refuse it. Each either raises ``StateFormatError`` or gives a state on which the
laws of the join hold (idempotent, commutative, associative with states a fold
made, ``step`` equal to merging the event's own state, a round trip): the laws are
the oracle, not the decoder. Then the faults the issue found, one by one.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

import msgspec
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import cardflow
from cardflow import (
    CardState,
    StateFormatError,
    decode_state,
    encode_state,
    fold,
    merge,
    state_of,
    step,
)
from cardflow.testing import histories
from strategies import operations

_HEADER: Final = b"CFS\x01"


def framed(value: Any) -> bytes:
    """``value`` as msgpack under a valid header and checksum."""
    payload = msgspec.msgpack.encode(value)
    return _HEADER + zlib.crc32(payload).to_bytes(4, "big") + payload


def payload_of(state: CardState) -> dict[str, Any]:
    """The state's payload as plain values (a map of its fields), to be tampered with."""
    value: dict[str, Any] = msgspec.msgpack.decode(encode_state(state)[8:])
    return value


def a_state() -> CardState:
    body = (
        b'{"operations": [{"operationId": "op-2", "operation": "PRODUCE", "status": "PENDING",'
        b' "startTime": "2025-01-17T06:28:02Z", "cardId": "c1", "details": {"status":'
        b' "CARD_PROD_DONE", "productionSite": "Gemenos", "dueDate": "2025-02-01"}},'
        b' {"operationId": "op-1", "operation": "PRODUCE", "status": "PENDING",'
        b' "startTime": "2025-01-10T06:28:02Z", "cardId": "c1", "details": {"status":'
        b' "DATA_PREPARED"}}]}'
    )
    return fold(cardflow.decode(body))["c1"]


_HOSTILE: Final = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.sampled_from([-1, 0, 1, 2, 3, 15, 16, 255, 1 << 12, -3, -2]),
    st.text(max_size=8),
    st.sampled_from(["", "CARD_SHIPPED", "DATA_PREPARED", "CARD_PROD_DONE", "op-1", "c1"]),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5))])),
    st.none(),
    st.booleans(),
    st.lists(st.integers(-5, 20), max_size=9),
    st.lists(st.text(max_size=4), max_size=3),
)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += _paths(inner, (*path, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            found += _paths(inner, (*path, i))
    return found


@st.composite
def tampered(draw: st.DrawFn) -> tuple[CardState, Any]:
    """A fold's state, and its payload with one to three values replaced or removed."""
    history = draw(histories(max_cards=1, max_operations=3, unknown_statuses=True))
    state = next(iter(fold(history.notifications()).values()))
    value = payload_of(state)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(value)[1:]))
        parent = value
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and draw(st.booleans()) and path[-1] not in ("cardId",):
            parent.pop(path[-1], None)
        elif isinstance(parent, list) and draw(st.booleans()):
            parent.append(draw(_HOSTILE) if draw(st.booleans()) else parent[path[-1]])
        else:
            parent[path[-1]] = draw(_HOSTILE)
    return state, value


def _laws(state: CardState, others: list[CardState], op: cardflow.Operation) -> None:
    assert merge(state, state) == state
    assert decode_state(encode_state(state)) == state
    for other in others:
        joined = merge(state, other)
        assert joined == merge(other, state)
        assert merge(joined, other) == joined
        assert merge(joined, state) == joined
    if len(others) >= 2:
        a, b = others[:2]
        assert merge(merge(state, a), b) == merge(state, merge(a, b))
    mine = msgspec.structs.replace(op, card_id=state.card_id, operation=cardflow.PRODUCE)
    after, _ = step(state, mine)
    assert after == merge(state, state_of(mine))


@settings(max_examples=150)
@given(tampered(), st.lists(operations(), min_size=2, max_size=2), operations())
def test_a_tampered_payload_is_refused_or_obeys_the_laws(
    made: tuple[CardState, Any], events: list[cardflow.Operation], op: cardflow.Operation
) -> None:
    original, value = made
    try:
        state = decode_state(framed(value))
    except StateFormatError:
        event("refused")
        return
    event("decoded")
    others = [
        state_of(msgspec.structs.replace(e, card_id=state.card_id, operation=cardflow.PRODUCE))
        for e in events
    ]
    others.append(original) if original.card_id == state.card_id else None
    _laws(state, others, op)


_ANY: Final = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.text(max_size=6)
    | st.binary(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=12,
)


@settings(max_examples=100)
@given(_ANY)
def test_arbitrary_msgpack_is_refused_or_a_state(value: Any) -> None:
    try:
        state = decode_state(framed(value))
    except StateFormatError:
        return
    assert merge(state, state) == state


# The faults found, each on its own -----------------------------------------------------


def refused(value: dict[str, Any], words: str) -> None:
    with pytest.raises(StateFormatError, match=words):
        decode_state(framed(value))


def test_a_valid_state_still_decodes() -> None:
    state = a_state()
    assert decode_state(framed(payload_of(state))) == state
    assert len(state._older) == 1


@pytest.mark.parametrize(
    "start",
    ["2025-01-17T06:28:02", "2025-01-17T11:28:02+05:00", datetime(2025, 1, 17, 6, 28, 2)],
    ids=["naive-text", "offset-text", "naive-timestamp"],
)
def test_a_start_time_not_in_utc_is_refused(start: Any) -> None:
    value = payload_of(a_state())
    value["start_time"] = start
    refused(value, "start_time .* is not in UTC")


@pytest.mark.parametrize(
    ("index", "number", "words"),
    [
        (1, 255, "anomaly flags 255"),
        (1, 4, "anomaly flags 4"),  # the conflict bit is derived, never stored
        (0, -1, "observed statuses"),
        (0, 1 << 40, "observed statuses"),
        (2, 99, "reason is absent but ranked 99"),
        (4, 0, "production_site is ranked 0, which no observed event has"),
    ],
)
def test_a_summary_that_no_fold_gives_is_refused(index: int, number: int, words: str) -> None:
    value = payload_of(a_state())
    value["_summary"][index] = number
    refused(value, words)


def test_a_status_that_contradicts_the_observed_statuses_is_refused() -> None:
    value = payload_of(a_state())
    value["status"] = "CARD_SHIPPED"  # observed: up to CARD_PROD_DONE
    refused(value, "status 'CARD_SHIPPED' is not the highest status it observed")


def test_derived_fields_that_do_not_follow_are_refused() -> None:
    value = payload_of(a_state())
    value["gaps"] = []
    refused(value, "derived fields")


def test_older_operations_nested_1000_deep_are_refused() -> None:
    value = payload_of(a_state())
    alone = value["_older"][0]
    inner = msgspec.Raw(msgspec.msgpack.encode(alone))
    for _ in range(1000):  # encoded a level at a time: the encoder has its own depth limit
        inner = msgspec.Raw(msgspec.msgpack.encode(dict(alone, _older=[inner])))
    value["_older"] = [inner]
    refused(value, "nested too deeply|holds older operations of its own")


def test_older_operations_must_be_older_few_and_of_the_card() -> None:
    state = a_state()
    value = payload_of(state)
    value["_older"][0]["card_id"] = "c2"
    refused(value, "of another card")
    value = payload_of(state)
    value["_older"] = value["_older"] * 2
    refused(value, "there twice")
    value = payload_of(state)
    value["_older"][0]["start_time"] = datetime(2026, 1, 1, tzinfo=UTC)
    refused(value, "not older than the current operation")
    value = payload_of(state)
    value["_older"] = [dict(value["_older"][0], operation_id=f"o{i}") for i in range(16)]
    refused(value, "16 older operations")


def test_a_state_of_another_lifecycle_is_judged_by_its_own() -> None:
    lifecycle = cardflow.Lifecycle(
        name="two",
        states=["A", "B"],
        transitions=[["go", "A", "B"]],
        initial="A",
        precedence=["A", "B"],
    )
    body = (
        b'{"operations": [{"operationId": "op-1", "operation": "PRODUCE", "status": "PENDING",'
        b' "startTime": "2025-01-17T06:28:02Z", "cardId": "c1", "details": {"status": "B"}}]}'
    )
    state = fold(cardflow.decode(body), lifecycle=lifecycle)["c1"]
    assert decode_state(encode_state(state), lifecycle=lifecycle) == state
    with pytest.raises(StateFormatError):
        decode_state(encode_state(state))  # under D1's lifecycle, B is no status
