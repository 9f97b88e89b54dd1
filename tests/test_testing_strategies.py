"""The strategies of cardflow.testing: realistic, eager about arguments, shrinking well.

Realism is checked against D1's facts as written here (not against the lifecycle's
tags that the renderer reads): which statuses carry which fields, when endTime
appears, and how shipment updates go.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

import cardflow
import cardflow.testing
from cardflow import Checkpoint, Details, Operation, Shipment
from cardflow.testing import (
    History,
    Traffic,
    card_ids,
    checkpoints,
    deliveries,
    details,
    histories,
    operation_ids,
    operations,
    plans,
    shipments,
    traffic,
    walks,
)

D1 = cardflow.D1_LIFECYCLE
PACKAGE = Path(cardflow.testing.__file__).parent
SHIPPING = {"CARD_SHIPPED", "CARD_RETURNED"}
EXCEPTIONS = {"DATA_EXCEPTION", "CARD_PROD_EXCEPTION"}
OPERATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
CARD_ID = re.compile(r"[0-9a-f]{4}(-[0-9a-f]{4}){3}")


# -- arguments are checked when the strategy is made --------------------------------------

BAD: list[tuple[Callable[[], object], type[Exception]]] = [
    (lambda: walks("D1"), ValueError),  # type: ignore[arg-type]
    (lambda: walks(max_length=0), ValueError),
    (lambda: plans(card_id=""), ValueError),
    (lambda: histories(min_cards=0), ValueError),
    (lambda: histories(min_cards=3, max_cards=2), ValueError),
    (lambda: histories(max_operations=0), ValueError),
    (lambda: histories(max_cards=True), TypeError),
    (lambda: deliveries("history"), ValueError),  # type: ignore[arg-type]
    (lambda: deliveries(History(()), max_bulk=0), ValueError),
    (lambda: deliveries(History(()), max_copies=0), ValueError),
    (lambda: traffic(max_bulk=0), ValueError),
    (lambda: traffic(max_copies=1.5), TypeError),  # type: ignore[arg-type]
    (lambda: operations(lifecycle=None), ValueError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("make", "error"), BAD)
def test_bad_arguments_fail_at_once(make: Callable[[], object], error: type[Exception]) -> None:
    with pytest.raises(error):
        make()


# -- true histories look like D1 ----------------------------------------------------------


def _status(op: Operation) -> str:
    assert op.details is not None
    assert op.details.status is not None
    return op.details.status


@settings(max_examples=150)
@given(histories(max_cards=4, max_operations=3, unknown_statuses=True))
def test_histories_are_consistent(history: History) -> None:
    op_ids = [o.plan.operation_id for c in history.cards for o in c.operations]
    assert len(set(op_ids)) == len(op_ids), "D1 never reuses an operationId"
    assert len({c.card_id for c in history.cards}) == len(history.cards)
    for card in history.cards:
        assert CARD_ID.fullmatch(card.card_id)
        starts = [o.plan.start_time for o in card.operations]
        assert starts == sorted(set(starts)), "a re-order starts later"
        for operation in card.operations:
            plan = operation.plan
            notes = operation.notifications
            assert OPERATION_ID.fullmatch(plan.operation_id)
            assert {(n.operation_id, n.start_time, n.card_id, n.operation) for n in notes} == {
                (plan.operation_id, plan.start_time, card.card_id, "PRODUCE")
            }
            known = [n for n in notes if D1.is_known(_status(n))]
            statuses = [_status(n) for n in known]
            walked = [s for i, s in enumerate(statuses) if i == 0 or s != statuses[i - 1]]
            assert walked == list(plan.walk), "the known statuses follow the walk, in order"
            planned = "DATA_PREPARED" in plan.walk
            for index, note in enumerate(known):
                status = _status(note)
                assert note.details is not None
                assert (note.status == "PENDING") == (note.end_time is None)
                after_prepared = planned and plan.walk.index(status) >= plan.walk.index(
                    "DATA_PREPARED"
                )
                assert (note.details.due_date is not None) == after_prepared
                assert (note.details.production_site is not None) == after_prepared
                assert (note.details.reason is not None) == (status in EXCEPTIONS)
                assert (note.error_code is not None) == (
                    status in EXCEPTIONS and note.status == "FAILED"
                )
                assert (note.details.shipment is not None) == (status in SHIPPING)
                if status == "DATA_EXCEPTION":
                    assert note.status == "FAILED"
                if status in SHIPPING:
                    assert note.status == "SUCCESSFUL"
                if status not in EXCEPTIONS | SHIPPING | {"CARD_PROD_CANCELED"}:
                    assert note.status == "PENDING"
                if index and known[index - 1].status != "PENDING":
                    assert note.status != "PENDING", "a completed operation stays completed"
            updates = [n.details.shipment for n in known if n.details and n.details.shipment]
            times = [s.last_updated_at for s in updates]
            if times:
                assert times[0] is None, "the first shipment data is an estimate"
                assert all(t is not None for t in times[1:])
                assert times[1:] == sorted(set(times[1:])), "updates come later and later"  # type: ignore[type-var]
            for note in notes:
                if not D1.is_known(_status(note)):
                    assert _status(note).startswith("FUTURE_STATUS_")


@settings(max_examples=100)
@given(histories(max_cards=2, other_operations=True))
def test_other_operations_only_when_asked(history: History) -> None:
    for note in history.notifications():
        assert D1.is_known(_status(note))
    ids = {c.card_id for c in history.cards}
    for raw in history.others:
        op = cardflow.decode_lenient(b'{"operations":[' + raw + b"]}").operations[0]
        assert op.operation != "PRODUCE"
        assert op.card_id in ids


@settings(max_examples=100)
@given(histories(max_cards=2))
def test_plain_histories_have_no_unknown_statuses_and_no_others(history: History) -> None:
    assert history.others == ()
    assert all(D1.is_known(_status(n)) for n in history.notifications())


# -- deliveries are at least once, in any order, in bounded bodies -----------------------


@settings(max_examples=150)
@given(traffic(max_cards=3, max_bulk=3, max_copies=2, lose=True, other_operations=True))
def test_deliveries_carry_every_notification_at_least_once_or_repair(t: Traffic) -> None:
    delivery = t.delivery
    notes = t.history.notifications()
    assert len(delivery.bodies) == len(delivery.contents)
    arrived: Counter[Operation] = Counter()
    for body, content in zip(delivery.bodies, delivery.contents, strict=True):
        ops = cardflow.decode_lenient(body).operations
        assert 1 <= len(ops) <= 3
        assert Counter(op for op in ops if op.operation == "PRODUCE") == Counter(content)
        arrived.update(content)
    repairs = list(delivery.repairs)
    assert list(delivery.contents[len(delivery.contents) - len(repairs) :]) == [
        (r,) for r in repairs
    ]
    lost = set(delivery.lost)
    assert {r.card_id for r in repairs} == {n.card_id for n in lost}
    for card in t.history.cards:
        if any(n.card_id == card.card_id for n in lost):
            assert card.current.notifications[-1] in repairs
    for note in notes:
        if note in lost:
            assert arrived[note] == repairs.count(note)
        else:
            assert 1 <= arrived[note] - repairs.count(note) <= 2
    assert delivery.delivered == frozenset(arrived)


@settings(max_examples=100)
@given(traffic(max_cards=3))
def test_without_loss_everything_arrives(t: Traffic) -> None:
    assert t.delivery.lost == ()
    assert t.delivery.repairs == ()
    assert t.delivery.delivered == frozenset(t.history.notifications())


@settings(max_examples=150)
@given(traffic(max_cards=3, lose=True, unknown_statuses=True))
def test_expected_states_are_the_oracles_after_every_body(t: Traffic) -> None:
    final = t.expected_after(len(t.bodies))
    assert {k: v for k, v in final.items() if v is not None} == t.expected
    assert all(v is None for v in t.expected_after(0).values())


# -- no random module, and shrinking goes to plain cases ----------------------------------


def test_no_module_of_the_harness_uses_random() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "random" for a in node.names), path
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "random", path


QUICK = settings(database=None, max_examples=1000, derandomize=True)


def test_walks_shrink_to_the_initial_status_and_along_the_main_path() -> None:
    assert find(walks(), lambda w: True, settings=QUICK) == ("CARD_PROD_REQUESTED",)
    assert find(walks(), lambda w: "CARD_SHIPPED" in w, settings=QUICK) == (
        "CARD_PROD_REQUESTED",
        "DATA_PREPARED",
        "CARD_PROD_READY",
        "CARD_PROD_ONGOING",
        "CARD_PROD_DONE",
        "CARD_SHIPPED",
    )


def test_histories_shrink_to_plain_cards() -> None:
    history = find(histories(), lambda h: len(h.cards) >= 2, settings=QUICK)
    assert [c.card_id for c in history.cards] == ["0000-0000-0000-0000", "0000-0000-0000-0001"]
    assert [len(c.operations) for c in history.cards] == [1, 1]
    assert [c.operations[0].plan.walk for c in history.cards] == [("CARD_PROD_REQUESTED",)] * 2


def test_deliveries_shrink_to_one_copy_in_order_in_full_bodies() -> None:
    t = find(
        traffic(max_cards=1, max_bulk=4),
        lambda t: len(t.history.notifications()) >= 2,
        settings=QUICK,
    )
    assert t.delivery.contents == (tuple(t.history.notifications()),)
    lossy = find(traffic(max_cards=1, lose=True), lambda t: bool(t.delivery.lost), settings=QUICK)
    assert len(lossy.delivery.lost) == 1


# -- the wire types, from_type and the entry point ------------------------------------------


@given(st.from_type(Operation))
def test_from_type_gives_realistic_operations(op: Operation) -> None:
    assert op.operation == "PRODUCE"
    assert OPERATION_ID.fullmatch(op.operation_id)
    assert CARD_ID.fullmatch(op.card_id)
    assert op.details is not None
    assert D1.is_known(_status(op))
    assert op.start_time.tzinfo is not None
    assert cardflow.decode(cardflow.encode([op])) == [op]


@settings(max_examples=100)
@given(st.from_type(Details), st.from_type(Shipment), st.from_type(Checkpoint))
def test_from_type_gives_realistic_parts(d: Details, s: Shipment, c: Checkpoint) -> None:
    assert d.status is not None
    assert D1.is_known(d.status)
    assert s.estimated_delivery_date is not None
    if s.last_updated_at is not None:
        assert s.carrier is not None
        assert s.tracking_number is not None
        assert s.last_checkpoint is not None
        assert s.last_checkpoint.checkpoint_time == s.last_updated_at
    assert c.checkpoint_time is not None
    assert c.city is not None


@settings(max_examples=100)
@given(
    st.tuples(operations(unknown_statuses=True), details(), shipments(), checkpoints()),
    card_ids(),
    operation_ids(),
)
def test_the_wire_strategies_draw_their_types(parts: tuple[Any, ...], card: str, op: str) -> None:
    assert [type(p) for p in parts] == [Operation, Details, Shipment, Checkpoint]
    assert CARD_ID.fullmatch(card)
    assert OPERATION_ID.fullmatch(op)


def _python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_hook_registers_and_importing_it_does_not() -> None:
    out = _python(
        """
        import importlib
        import hypothesis  # no plugins: the hook has not run
        from hypothesis.strategies._internal import types
        import cardflow
        import cardflow.testing._hypothesis as hook
        lookup = types._global_type_lookup
        before = [t in lookup for t in (cardflow.Operation, cardflow.Shipment)]
        hook._hypothesis_setup_hook()
        after = [t in lookup for t in (cardflow.Operation, cardflow.Details,
                                       cardflow.Shipment, cardflow.Checkpoint)]
        print(before, after)
        """,
        HYPOTHESIS_NO_PLUGINS="1",
    )
    assert out == "[False, False] [True, True, True, True]"


def test_the_entry_point_registers_when_hypothesis_starts() -> None:
    out = _python(
        """
        import sys
        from hypothesis import strategies as st
        import cardflow
        assert "cardflow.testing._strategies" not in sys.modules
        print(repr(st.from_type(cardflow.Operation)).split("(")[0])
        """
    )
    assert out == "_operation"


def test_importing_cardflow_and_its_harness_package_does_not_import_hypothesis() -> None:
    out = _python(
        """
        import sys
        import cardflow, cardflow.testing, cardflow.testing._plugin
        from cardflow.testing import edge_coverage, expected_state
        print(sorted(m for m in sys.modules if m.split(".")[0] == "hypothesis"))
        from cardflow.testing import check_handler
        print("hypothesis" in sys.modules)
        """
    )
    assert out.splitlines() == ["[]", "True"]


# -- the public API of cardflow.testing ---------------------------------------------------------


def test_all_is_sorted_and_every_name_resolves() -> None:
    names = cardflow.testing.__all__
    assert len(set(names)) == len(names)
    kinds = [(0 if n.isupper() else 1 if n[0].isupper() else 2, n) for n in names]
    assert kinds == sorted(kinds)
    namespace: dict[str, object] = {}
    exec("from cardflow.testing import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(names)
    assert set(names) <= set(dir(cardflow.testing))
    with pytest.raises(AttributeError):
        cardflow.testing.no_such_name  # type: ignore[attr-defined]  # noqa: B018


@given(histories(max_cards=4, max_operations=3, other_operations=True))
def test_no_two_operations_of_a_history_share_an_id(history: History) -> None:
    """An operation is its operationId: a history never gives two of them one id."""
    ids = [o.plan.operation_id for c in history.cards for o in c.operations]
    ids += [msgspec.json.decode(other)["operationId"] for other in history.others]
    assert len(ids) == len(set(ids))
