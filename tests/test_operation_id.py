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

from cardflow import InvalidNotification, decode, decode_lenient

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


def body(operation_id: str) -> bytes:
    return msgspec.json.encode(
        {
            "operations": [
                {
                    "operationId": operation_id,
                    "operation": "PRODUCE",
                    "status": "PENDING",
                    "startTime": "2025-01-17T06:28:02.492Z",
                    "cardId": "271b-6e47-8ec3-7f3f",
                    "details": {"status": "DATA_PREPARED"},
                }
            ]
        }
    )


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
