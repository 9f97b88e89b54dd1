"""The harness's timestamps: ties, offsets other than Z, mixed precision on the wire.

A consumer must order operations by the instants their ``startTime`` names, ties
by operationId; the strategies must therefore generate timestamps whose text orders
unlike their instants, and operations of one card that start at the same instant.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import cardflow
from cardflow.testing import History, Traffic, histories, traffic

FRACTION = re.compile(r"T\d\d:\d\d:\d\d(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


T = TypeVar("T")


def _draw(strategy: st.SearchStrategy[T], count: int = 200) -> list[T]:
    """``count`` examples of ``strategy``, the same on every run (no shrinking: fast)."""
    out: list[T] = []
    run = settings(database=None, max_examples=count, derandomize=True, phases=[Phase.generate])

    def keep(value: T) -> None:
        out.append(value)

    run(given(strategy)(keep))()
    return out


def _wire_ops(t: Traffic) -> list[dict[str, Any]]:
    return [op for body in t.bodies for op in json.loads(body)["operations"]]


def _timestamps(value: object) -> list[str]:
    """Every timestamp text in a JSON value (dates such as dueDate are left out)."""
    if isinstance(value, dict):
        return [t for v in value.values() for t in _timestamps(v)]
    if isinstance(value, str) and FRACTION.search(value):
        return [value]
    return []


def _ties(history: History) -> list[tuple[str, str]]:
    """Pairs of operationIds of one card that started at the same instant."""
    return [
        (a.plan.operation_id, b.plan.operation_id)
        for card in history.cards
        for i, a in enumerate(card.operations)
        for b in card.operations[i + 1 :]
        if a.plan.start_time == b.plan.start_time
    ]


def test_operations_of_one_card_start_at_the_same_instant() -> None:
    drawn = _draw(histories(max_cards=1))
    tied = [h for h in drawn if _ties(h)]
    assert len(tied) >= len(drawn) // 20
    # Either operation of a tie can be current: the greater operationId is not always
    # the one that was rendered (and is delivered, unshuffled) last.
    assert any(a > b for h in tied for a, b in _ties(h))
    assert any(a < b for h in tied for a, b in _ties(h))


def test_start_times_come_in_offsets_other_than_z() -> None:
    drawn = _draw(traffic(max_cards=2))
    offsets = {op["startTime"][-6:] for t in drawn for op in _wire_ops(t)}
    assert {"+02:00", "-05:30", "+14:00", "-12:00", "+05:45"} <= offsets
    assert any(text.endswith("Z") for text in offsets)


def _digits(t: Traffic) -> set[int]:
    out = set()
    for op in _wire_ops(t):
        for text in _timestamps(op):
            match = FRACTION.search(text)
            assert match is not None
            out.add(len(match.group(1) or ""))
    return out


def test_bodies_mix_whole_seconds_milliseconds_and_microseconds() -> None:
    drawn = _draw(traffic(max_cards=2))
    assert any(_digits(t) == {0, 3, 6} for t in drawn)
    assert sum(len(_digits(t)) > 1 for t in drawn) >= len(drawn) // 10


def _misordered(t: Traffic, *, one_offset: bool) -> bool:
    """Two operations of one card whose startTime text orders unlike their instants
    (with ``one_offset``, written in the same offset: by precision alone)."""
    starts = {(op["cardId"], op["operationId"]): op["startTime"] for op in _wire_ops(t)}
    for (card, a), a_text in starts.items():
        for (other, b), b_text in starts.items():
            if card != other or a == b:
                continue
            if one_offset and FRACTION.search(a_text)[2] != FRACTION.search(b_text)[2]:  # type: ignore[index]
                continue
            by_instant = datetime.fromisoformat(a_text) < datetime.fromisoformat(b_text)
            if (a_text < b_text) != by_instant:
                return True
    return False


def test_the_text_of_start_times_orders_unlike_their_instants() -> None:
    drawn = _draw(traffic(max_cards=2), 500)
    assert sum(_misordered(t, one_offset=False) for t in drawn) >= len(drawn) // 10
    assert any(_misordered(t, one_offset=True) for t in drawn)


@settings(max_examples=100)
@given(traffic(max_cards=3, max_operations=3))
def test_spelling_changes_the_text_never_the_instants(t: Traffic) -> None:
    plans = {o.plan.operation_id: o.plan for c in t.history.cards for o in c.operations}
    for body, content in zip(t.bodies, t.delivery.contents, strict=True):
        assert cardflow.decode(body) == list(content)
        for op in json.loads(body)["operations"]:
            plan = plans[op["operationId"]]
            start = datetime.fromisoformat(op["startTime"])
            assert start == plan.start_time
            assert start.utcoffset() == plan.start_time.utcoffset()
            for text in _timestamps(op):
                match = FRACTION.search(text)
                assert match is not None
                assert len(match.group(1) or "") >= (plan.time_digits or 0)
                assert (match.group(2) == "Z") == (plan.start_time.utcoffset() == timedelta(0))
