"""The public API's types, pinned: ``mypy --strict`` checks this file, nothing runs it.

Each ``assert_type`` fails the type check when a signature changes what it promises
to callers (a return type widened to ``Any``, a list turned into a tuple...). Each
``# type: ignore[code]`` pins a call that must stay a type error: ``mypy --strict``
warns about an ignore that is no longer needed, so loosening a parameter fails too.
The functions are never called; the file is not a test module (pytest collects
``test_*.py``), and importing it only defines them.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any, assert_type

from hypothesis import strategies as st

import cardflow
import cardflow.batch
from cardflow import (
    CardState,
    Change,
    Decoded,
    Folded,
    Folder,
    Ingested,
    Operation,
    ReconcileReason,
    Reject,
    Shipment,
    Tracker,
)
from cardflow import testing as cft


def decoding(body: bytes, text: str, buffer: memoryview) -> None:
    assert_type(cardflow.decode(body), list[Operation])
    assert_type(cardflow.decode(text), list[Operation])
    assert_type(cardflow.decode(buffer), list[Operation])
    decoded = cardflow.decode_lenient(body)
    assert_type(decoded, Decoded)
    assert_type(decoded.operations, list[Operation])
    assert_type(decoded.rejects, list[Reject])
    assert_type(decoded.ok, bool)
    reject = decoded.rejects[0]
    assert_type(reject.index, int | None)
    assert_type(reject.raw, bytes)
    assert_type(reject.error(), cardflow.InvalidNotification)
    assert_type(cardflow.encode(decoded.operations), bytes)
    assert_type(cardflow.fingerprint(decoded.operations[0]), bytes)
    cardflow.decode(123)  # type: ignore[arg-type]
    cardflow.decode_lenient(None)  # type: ignore[arg-type]


def operations(op: Operation) -> None:
    assert_type(op.operation_id, str)
    assert_type(op.start_time, datetime)
    assert_type(op.end_time, datetime | None)
    assert op.details is not None
    assert_type(op.details.status, str | None)
    assert_type(op.details.due_date, date | None)
    assert_type(op.details.shipment, Shipment | None)
    op.status = "FAILED"  # type: ignore[misc]


def folding(ops: list[Operation], op: Operation, lifecycle: cardflow.Lifecycle) -> None:
    folded = cardflow.fold(ops)
    assert_type(folded, Folded)
    assert_type(folded["card"], CardState)
    assert_type(cardflow.fold(iter(ops), lifecycle=lifecycle), Folded)
    folder = Folder(ops, lifecycle=lifecycle)
    assert_type(folder.add(op), bool)
    assert_type(folder.update(ops), None)
    assert_type(folder["card"], CardState)
    assert_type(folder.get("card"), CardState | None)
    assert_type(folder.states(), Folded)
    cardflow.fold(op)  # type: ignore[arg-type]


def states(a: CardState, b: CardState, op: Operation) -> None:
    assert_type(cardflow.merge(a, b), CardState)
    assert_type(cardflow.apply(a, op), CardState)
    assert_type(cardflow.apply(None, op), CardState)
    assert_type(cardflow.state_of(op), CardState)
    assert_type(a.status, str)
    assert_type(a.observed, tuple[str, ...])
    assert_type(a.operation_ids, tuple[str, ...])
    assert_type(a.current_operation, tuple[datetime, str])
    assert_type(cardflow.encode_state(a), bytes)
    assert_type(cardflow.decode_state(b"..."), CardState)
    assert_type(cardflow.decode_state(bytearray()), CardState)
    cardflow.merge(a, op)  # type: ignore[arg-type]
    cardflow.encode_state(op)  # type: ignore[arg-type]


def reconciling(state: CardState) -> None:
    now = datetime.now(UTC)
    reasons = cardflow.needs_reconcile(state, now)
    assert_type(reasons, tuple[ReconcileReason, ...])
    assert_type(cardflow.last_heard(state), datetime)
    cardflow.needs_reconcile(state)  # type: ignore[call-arg]


def tracking(body: bytes, op: Operation) -> None:
    tracker = Tracker()
    ingested = tracker.ingest(body)
    assert_type(ingested, Ingested)
    assert_type(ingested.changes, list[Change])
    assert_type(ingested.rejects, list[Reject])
    assert_type(ingested.passed_over, int)
    assert_type(tracker.ingest_operations([op]), list[Change])
    assert_type(tracker.apply(op), list[Change])
    assert_type(tracker.reconcile(body, at=datetime(2025, 1, 1, tzinfo=UTC)), Ingested)
    assert_type(tracker.pending, list[Change])
    new, changes = cardflow.step(None, op)
    assert_type(new, CardState)
    assert_type(changes, list[Change])
    assert_type(cardflow.json_view(new), dict[str, Any])
    assert_type(cardflow.reading_time(body), datetime | None)
    assert_type(tracker.get("card"), CardState | None)
    assert_type(tracker["card"], CardState)
    assert_type(Tracker(states=tracker).lifecycle, cardflow.Lifecycle)
    tracker.ingest(42)  # type: ignore[arg-type]


class StatusHandler:
    """The least a handler must define for check_handler."""

    def __init__(self) -> None:
        self.tracker = Tracker()

    def handle(self, body: bytes, /) -> None:
        self.tracker.ingest(body)

    def status(self, card_id: str, /) -> str | None:
        state = self.tracker.get(card_id)
        return None if state is None else state.status


def harness() -> None:
    assert_type(cft.histories(), st.SearchStrategy[cft.History])
    assert_type(cft.traffic(max_cards=2, lose=True), st.SearchStrategy[cft.Traffic])
    assert_type(cft.walks(), st.SearchStrategy[tuple[str, ...]])
    assert_type(cft.plans(card_id="c-1"), st.SearchStrategy[cft.Plan])
    assert_type(cft.operations(), st.SearchStrategy[Operation])
    assert_type(cft.details(), st.SearchStrategy[cardflow.Details])
    assert_type(cft.shipments(), st.SearchStrategy[Shipment])
    assert_type(cft.checkpoints(), st.SearchStrategy[cardflow.Checkpoint])
    assert_type(cft.card_ids(), st.SearchStrategy[str])
    assert_type(cft.operation_ids(), st.SearchStrategy[str])
    assert_type(cft.describe_bodies([b"{}"]), str)
    assert_type(cft.check_handler(StatusHandler), cft.Coverage)
    cft.check_handler(Tracker)  # type: ignore[arg-type]  # no status(): not a Handler
    cft.histories(max_cards="3")  # type: ignore[arg-type]


def harness_values(history: cft.History, traffic: cft.Traffic, plan: cft.Plan) -> None:
    assert_type(cft.deliveries(history), st.SearchStrategy[cft.Delivery])
    assert_type(traffic.bodies, tuple[bytes, ...])
    assert_type(traffic.expected_after(1), dict[str, cft.Expected | None])
    assert_type(plan.start_time, datetime)
    assert_type(plan.time_digits, int | None)
    card = history.cards[0]
    assert_type(card.current, cft.TrueOperation)
    assert_type(cft.render(plan, cardflow.D1_LIFECYCLE), tuple[Operation, ...])
    assert_type(
        cft.expected_state(card, card.current.notifications, cardflow.D1_LIFECYCLE),
        cft.Expected | None,
    )
    assert_type(cft.edge_coverage([history]), cft.Coverage)


def batch_api(out: io.BytesIO) -> None:
    folded = cardflow.batch.fold_files(["logs/"], jobs=2, progress=lambda b, n, c: None)
    assert_type(folded, cardflow.batch.FoldedFiles)
    assert_type(folded.states(), Iterator[tuple[str, CardState]])
    assert_type(folded.rejects, list[cardflow.batch.Rejected])
    assert_type(folded.rejects[0].raw, bytes)
    assert_type(folded.totals, cardflow.batch.Totals)
    assert_type(folded.totals.cards, int)
    cardflow.batch.write_jsonl((s for _, s in folded.states()), out)
    cardflow.batch.fold_files(["logs/"], jobs="2")  # type: ignore[arg-type]
    cardflow.batch.fold_files(["logs/"], progress=abs)  # type: ignore[arg-type]
