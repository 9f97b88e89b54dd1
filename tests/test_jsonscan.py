"""The recursion-free scanner agrees with msgspec wherever msgspec can parse."""

from __future__ import annotations

import json
from typing import Any

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from cardflow._jsonscan import operation_spans
from strategies import body_bytes, mutated_bodies


class _Raw(msgspec.Struct):
    operations: list[msgspec.Raw]


def msgspec_elements(body: bytes) -> list[bytes] | None:
    """The elements' exact text, as msgspec finds it (None where it cannot parse)."""
    try:
        raws = msgspec.json.decode(body, type=_Raw).operations
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    return [bytes(r) for r in raws]


def scanned_elements(body: bytes) -> list[bytes] | None:
    spans = operation_spans(body)
    if spans is None:
        return None
    return [body[a:b] for a, b in spans]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(body_bytes())
def test_valid_bodies_split_like_msgspec(body: bytes) -> None:
    assert scanned_elements(body) == msgspec_elements(body)


@given(st.lists(json_values, max_size=5), st.dictionaries(st.text(), json_values, max_size=3))
def test_any_elements_and_other_members(elements: list[Any], others: dict[str, Any]) -> None:
    others.pop("operations", None)
    body = json.dumps({**others, "operations": elements}, indent=1).encode()
    found = scanned_elements(body)
    assert found is not None
    assert [json.loads(e) for e in found] == elements


@given(mutated_bodies())
def test_where_msgspec_parses_the_scanner_agrees(body: bytes) -> None:
    expected = msgspec_elements(body)
    if expected is not None:
        assert scanned_elements(body) == expected


def test_deep_nesting_in_one_element_keeps_the_others() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    body = b'{"operations": [{"a": 1}, {"x": ' + deep + b'}, {"b": 2}]}'
    spans = operation_spans(body)
    assert spans is not None
    assert [body[a:b][:8] for a, b in spans] == [b'{"a": 1}', b'{"x": [[', b'{"b": 2}']


def test_not_a_body() -> None:
    for text in [b"", b"[]", b'{"operations": 3}', b'{"operations": [', b'{"x": [1]}', b"{]"]:
        assert operation_spans(text) is None, text


def test_last_duplicate_key_counts() -> None:
    assert operation_spans(b'{"operations": [1], "operations": [2, 3]}') == [(35, 36), (38, 39)]
