"""The streaming fold behind ``cardflow fold``: ``Folder`` agrees with ``fold`` at every step."""

from __future__ import annotations

from hypothesis import given, settings

from cardflow import CardState, Folder, Operation, apply, decode_lenient, fold
from cardflow.testing import Traffic, traffic


def _operations(t: Traffic) -> list[Operation]:
    return [op for body in t.bodies for op in decode_lenient(body).operations]


@settings(max_examples=60, deadline=None)
@given(traffic(max_cards=4, lose=True, unknown_statuses=True, other_operations=True))
def test_folder_gives_what_fold_gives(t: Traffic) -> None:
    ops = _operations(t)
    folded = fold(ops)
    folder = Folder(ops)
    assert folder.states() == folded
    assert folder.passed_over == folded.passed_over
    # A Folded compares as the mapping it is: its count is checked on its own.
    assert folder.states().passed_over == folded.passed_over
    assert dict(folder) == dict(folded)
    assert len(folder) == len(folded)
    assert set(folder) == set(folded)


@settings(max_examples=40, deadline=None)
@given(traffic(max_cards=3, unknown_statuses=True, other_operations=True))
def test_states_can_be_read_at_any_point(t: Traffic) -> None:
    folder = Folder()
    expected: dict[str, CardState] = {}
    for op in _operations(t):
        folded = folder.add(op)
        assert folded == (op.operation == "PRODUCE")
        if folded:
            expected[op.card_id] = apply(expected.get(op.card_id), op)
            assert folder[op.card_id] == expected[op.card_id]
        else:
            assert op.card_id not in expected or folder[op.card_id] == expected[op.card_id]
    assert dict(folder) == expected


def test_an_empty_folder_and_lookups() -> None:
    folder = Folder()
    assert len(folder) == 0
    assert folder.get("nope") is None
    assert "nope" not in folder
    assert folder.states() == {}
    assert folder.states().passed_over == 0


def test_other_operations_are_counted_not_folded() -> None:
    body = (
        b'{"operations":[{"operationId":"a","operation":"ACTIVATE","status":"SUCCESSFUL",'
        b'"startTime":"2025-01-01T00:00:00Z","cardId":"c1"}]}'
    )
    (op,) = decode_lenient(body).operations
    folder = Folder([op, op])
    assert folder.passed_over == 2
    assert len(folder) == 0
    assert folder.states() == {}


def test_states_count_what_was_passed_over() -> None:
    produce, other = _body_ops()
    folder = Folder([other, produce, other])
    assert (folder.states().passed_over, fold([other, produce, other]).passed_over) == (2, 2)


def _body_ops() -> tuple[Operation, Operation]:
    """A PRODUCE event and one of another operation type, of one card."""
    body = (
        b'{"operations":[{"operationId":"op-1","operation":"PRODUCE","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-1","details":{"status":"DATA_PREPARED"}},'
        b'{"operationId":"op-2","operation":"STANDALONE_TRACKING","status":"PENDING",'
        b'"startTime":"2025-01-17T06:28:02Z","cardId":"c-1"}]}'
    )
    produce, other = decode_lenient(body).operations
    return produce, other


@settings(max_examples=40, deadline=None)
@given(traffic(max_cards=4, lose=True, unknown_statuses=True, other_operations=True))
def test_finish_gives_the_states_and_leaves_the_folder_as_new(t: Traffic) -> None:
    ops = _operations(t)
    half = len(ops) // 2
    folder = Folder(ops)
    expected = folder.states()
    finished = folder.finish()
    assert finished == expected
    assert finished.passed_over == expected.passed_over
    assert len(folder) == 0
    assert folder.passed_over == 0
    assert folder.states() == {}
    # Still usable: what it folds next is a fold of its own.
    folder.update(ops[half:])
    again = fold(ops[half:])
    last = folder.finish()
    assert last == again
    assert last.passed_over == again.passed_over
