"""The ``operationId`` check accepts exactly what D1's schema pattern accepts.

The oracle is the pattern as D1's schema states it and as cardflow first checked it,
applied with Python's ``re``: 1 to 64 characters, each of ``[A-Za-z0-9_-]``, nothing
after (not even the final newline that ``$`` alone would let through). Whatever way
the check is made cheaper, decoding must agree with it on every string.
"""

from __future__ import annotations

import re
from typing import Final

import msgspec
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import cardflow
from cardflow import InvalidNotification, decode, decode_lenient
from cardflow._wire import BAD_OPERATION_ID, valid_operation_id

ORACLE: Final = re.compile(r"^[A-Za-z0-9_-]+$(?!\n)")
ALLOWED: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
AWKWARD: Final = (
    "\n\r\t \x00.+/:@[`{~é"
    "\u0663"  # ARABIC-INDIC DIGIT THREE: a digit to \d, not to [0-9]
    "\u00b2"  # SUPERSCRIPT TWO
    "\uff11"  # FULLWIDTH DIGIT ONE
    "\u212a"  # KELVIN SIGN: K, case-insensitively
    "\u017f"  # LATIN SMALL LETTER LONG S: s, case-insensitively
    "\u0130"  # LATIN CAPITAL LETTER I WITH DOT ABOVE
    "\U0001f600"
)


def accepted_by_the_pattern(text: str) -> bool:
    return 1 <= len(text) <= 64 and ORACLE.search(text) is not None


def operation(operation_id: str, card_id: str = "271b-6e47-8ec3-7f3f") -> dict[str, object]:
    return {
        "operationId": operation_id,
        "operation": "PRODUCE",
        "status": "PENDING",
        "startTime": "2025-01-17T06:28:02.492Z",
        "cardId": card_id,
        "details": {"status": "DATA_PREPARED"},
    }


def body(*operation_ids: str) -> bytes:
    return msgspec.json.encode({"operations": [operation(i) for i in operation_ids]})


def accepted_by_decode(text: str) -> bool:
    """Whether ``decode`` takes the id; a refusal must name the field."""
    path = None
    try:
        decode(body(text))
    except InvalidNotification as exc:
        path = exc.path
    assert path in (None, "$.operations[0].operationId")
    return path is None


ids = st.one_of(
    st.text(alphabet=ALLOWED + AWKWARD, max_size=70),
    st.text(alphabet=ALLOWED, min_size=60, max_size=68),
    st.builds(
        lambda core, end: core + end, st.text(ALLOWED, max_size=64), st.sampled_from(AWKWARD)
    ),
    st.text(max_size=70),
    # Near misses: an allowed id with one character changed, inserted or appended.
    st.builds(
        lambda core, at, awkward, how: core[:at] + awkward + core[at + how :] if core else awkward,
        st.text(ALLOWED, min_size=1, max_size=65),
        st.integers(0, 65),
        st.sampled_from(AWKWARD),
        st.sampled_from([0, 1]),
    ),
)


@given(ids)
@example("")
@example("a")
@example("a" * 64)
@example("a" * 65)
@example("abc\n")
@example("abc\n\n")
@example("\n")
@example("ab\ncd")
@example("-_")
@example("\u0663")
@example("\uff11" * 3)
@example("\u212a")
def test_decode_accepts_exactly_what_the_pattern_accepts(text: str) -> None:
    assert accepted_by_decode(text) == accepted_by_the_pattern(text)


@pytest.mark.parametrize("text", ["abc\n", "a" * 65, "", "\u0663"])
def test_a_refused_id_is_a_reject_that_names_the_field(text: str) -> None:
    decoded = decode_lenient(body(text))
    assert decoded.operations == []
    (reject,) = decoded.rejects
    assert reject.path == "$.operations[0].operationId"


@given(ids)
@example("")
@example("a" * 64)
@example("a" * 65)
@example("abc\n")
@example("\u0663")
@example("\u212a")
def test_the_check_alone_accepts_exactly_what_the_pattern_accepts(text: str) -> None:
    # The check that replaced msgspec's pattern, against the pattern as D1 wrote it.
    assert (valid_operation_id(text) is not None) == accepted_by_the_pattern(text)


def test_a_refused_id_is_reported_as_msgspec_reported_its_pattern() -> None:
    with pytest.raises(InvalidNotification) as caught:
        decode(body("ok-1", "dot.ted"))
    assert caught.value.path == "$.operations[1].operationId"
    assert caught.value.index == 1
    assert caught.value.reason == BAD_OPERATION_ID
    assert BAD_OPERATION_ID == "Expected `str` matching regex '^[A-Za-z0-9_-]+$(?!\\\\n)'"


def test_lenient_decoding_loses_only_the_operation_with_a_refused_id() -> None:
    decoded = decode_lenient(body("first", "abc\n", "third"))
    assert [op.operation_id for op in decoded.operations] == ["first", "third"]
    (reject,) = decoded.rejects
    assert (reject.index, reject.path) == (1, "$.operations[1].operationId")
    assert reject.raw == msgspec.json.encode(operation("abc\n"))


def test_the_tracker_and_the_folder_refuse_the_id_too() -> None:
    tracker = cardflow.Tracker()
    ingested = tracker.ingest(body("good", "bad id"))
    assert [r.path for r in ingested.rejects] == ["$.operations[1].operationId"]
    assert [c.operation_id for c in ingested.changes] == ["good"]
    folder = cardflow.Folder()
    decoded = folder.ingest(body("bad id", "good"))
    assert [r.path for r in decoded.rejects] == ["$.operations[0].operationId"]
    assert folder["271b-6e47-8ec3-7f3f"].operation_id == "good"


@pytest.mark.parametrize(
    "change",
    [
        {"operation": "ACTIVATE", "details": [1, 2]},  # details that do not fit, excused
        {"details": {"status": "CARD_SHIPPED", "shipment": {"carrier": 3}}},  # carrier text
    ],
)
def test_the_tolerant_paths_still_check_the_id(change: dict[str, object]) -> None:
    op = operation("good-id") | change
    assert decode_lenient(msgspec.json.encode({"operations": [op]})).operations
    decoded = decode_lenient(msgspec.json.encode({"operations": [op | {"operationId": "x/"}]}))
    assert decoded.operations == []
    assert decoded.rejects[0].path == "$.operations[0].operationId"
