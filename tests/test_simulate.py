"""The seeded simulator: deterministic bytes, D1's delivery habits, and the truth preserved.

``simulate`` draws plans from the harness's model and delivers them as D1 does; what
it sends must decode strictly, and folding it must give the oracle's states.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from cardflow import (
    D1_LIFECYCLE,
    PRODUCE,
    Folder,
    ReconcileReason,
    decode,
    encode,
    fold,
    needs_reconcile,
    reading_time,
)
from cardflow._model import CardHistory, TrueOperation, expected_state, plans_by_card, render
from cardflow._simulate import SimulationOptions, _op_json, simulate, simulate_plans
from cardflow._wire import wire_time


def _all(cards: int, seed: int, **options: object) -> list[bytes]:
    return list(simulate(cards, seed, SimulationOptions(**options)))  # type: ignore[arg-type]


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert _all(60, 7, bulk=3, lose=0.2, mix_other_ops=True) == _all(
        60, 7, bulk=3, lose=0.2, mix_other_ops=True
    )
    assert _all(60, 7) != _all(60, 8)


def test_every_body_decodes_strictly_and_is_encoded_as_d1_writes_it() -> None:
    readings = 0
    for body in _all(80, 3, bulk=4, lose=0.1, duplicates=0.3):
        ops = decode(body)
        assert 1 <= len(ops) <= 4
        at = reading_time(body)
        if at is None:
            assert encode(ops) == body  # the fast encoder writes encode's bytes
            continue
        readings += 1  # an on-demand answer: one event, alone, read after it happened
        assert len(ops) == 1
        assert at > ops[0].start_time
        assert body == b'{"confirmedAt":"%s",%s' % (wire_time(at).encode(), encode(ops)[1:])
    assert readings > 0


def test_lost_notifications_leave_no_card_flagged_for_gaps() -> None:
    folder = Folder()
    for body in _all(2000, 1, lose=0.05, bulk=3):
        assert not folder.ingest(body).rejects
    states = folder.finish()
    assert sum(bool(s.gaps) for s in states.values()) > 100  # notifications were lost
    later = datetime(2030, 1, 1, tzinfo=UTC)
    flagged = [c for c, s in states.items() if ReconcileReason.GAPS in needs_reconcile(s, later)]
    assert flagged == []


def test_fast_operation_encoding_matches_encode() -> None:
    for plan in itertools.islice(simulate_plans(200, 11), 200):
        for op in render(plan, D1_LIFECYCLE):
            assert _op_json(op) == encode([op])[len(b'{"operations":[') : -2]


def test_without_loss_the_fold_gives_the_oracles_states() -> None:
    plans = list(simulate_plans(150, 5))
    bodies = _all(150, 5, duplicates=0.3, bulk=3, window=50)
    states = fold(op for body in bodies for op in decode(body))
    by_card = plans_by_card(plans)
    assert set(states) == set(by_card)
    for card_id, card_plans in by_card.items():
        history = CardHistory(
            card_id, tuple(TrueOperation(p, render(p, D1_LIFECYCLE)) for p in card_plans)
        )
        delivered = [n for o in history.operations for n in o.notifications]
        expected = expected_state(history, delivered, D1_LIFECYCLE)
        assert expected is not None
        state = states[card_id]
        assert state.status == expected.status
        assert state.operation_id == expected.operation_id
        assert state.operation_status == expected.operation_status
        assert set(state.gaps) == expected.gaps == set()
        assert state.shipment == expected.shipment
        assert state.anomalies == ()


def test_a_lost_notification_is_repaired_by_an_on_demand_response() -> None:
    plans = list(simulate_plans(200, 9))
    bodies = _all(200, 9, lose=0.3)
    delivered = [op for body in bodies for op in decode(body)]
    states = fold(delivered)
    assert any(s.gaps for s in states.values())  # notifications were lost
    for card_id, card_plans in plans_by_card(plans).items():
        current = max(card_plans, key=lambda p: (p.start_time, p.operation_id))
        last = render(current, D1_LIFECYCLE)[-1]
        assert last in delivered
        assert states[card_id].status == last.details.status  # type: ignore[union-attr]


def test_duplicates_reordering_and_bulk() -> None:
    plans = list(simulate_plans(100, 4))
    truth = [op for p in plans for op in render(p, D1_LIFECYCLE)]
    plain = [op for b in _all(100, 4, duplicates=0.0, reorder=False) for op in decode(b)]
    assert plain == truth
    doubled = [op for b in _all(100, 4, duplicates=0.5) for op in decode(b)]
    assert len(doubled) > len(truth) * 1.5
    assert doubled != truth
    assert set(doubled) == set(truth)
    sizes = {len(decode(b)) for b in _all(100, 4, bulk=5)}
    assert max(sizes) == 5
    assert min(sizes) >= 1


def test_other_operations_are_mixed_in_when_asked() -> None:
    ops = [op for b in _all(200, 2, mix_other_ops=True) for op in decode(b)]
    others = [op for op in ops if op.operation != PRODUCE]
    assert others
    assert fold(ops).passed_over == len(others)
    assert all(op.operation == PRODUCE for b in _all(200, 2) for op in decode(b))


def test_traffic_looks_real() -> None:
    states = fold(op for b in _all(1000, 1) for op in decode(b))
    assert len(states) == 1000
    shipped = sum(s.status == "CARD_SHIPPED" for s in states.values())
    assert 0.8 < shipped / 1000 < 0.97
    assert len({s.status for s in states.values()}) >= 8


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"duplicates": 1.0}, "duplicates must be in [0, 1)"),
        ({"lose": -0.1}, "lose must be in [0, 1)"),
        ({"bulk": 0}, "bulk must be at least 1"),
        ({"window": 0}, "window must be at least 1"),
    ],
)
def test_options_are_checked(options: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace(")", r"\)")):
        SimulationOptions(**options)  # type: ignore[arg-type]


def test_cards_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="cards must be >= 0"):
        next(simulate(-1, 0))
    assert list(simulate(0, 0)) == []
