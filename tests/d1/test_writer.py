"""The receiver's group writer in one process: groups bounded by count, each body's own
outcome, and a store without ``ingest_each`` served one body at a time."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

import cardflow
import cardflow.store
from cardflow.d1._writer import GroupWriter, Stored, Written

from .test_receiver import body, op


def test_groups_are_bounded_and_each_body_gets_its_own_outcome(tmp_path: Path) -> None:
    db = tmp_path / "cards.db"
    good = [body(op(f"w-{n}", "DATA_PREPARED")) for n in range(10)]
    with cardflow.store.open(f"sqlite:///{db}?synchronous=normal") as store:
        writer = GroupWriter(store, max_bodies=4, max_wait=0.001)

        async def send() -> list[Written]:
            return await asyncio.gather(*(writer.write(b) for b in [*good, b"[]", good[0]]))

        try:
            first = asyncio.run(send())
            again = asyncio.run(send())
        finally:
            writer.close()
    assert [w.outcome for w in first] == [Stored.STORED] * 10 + [
        Stored.REJECTED,
        Stored.DUPLICATE,
    ]
    assert "Expected `object`" in first[10].detail
    assert [w.outcome for w in again] == [Stored.DUPLICATE] * 10 + [
        Stored.REJECTED,
        Stored.DUPLICATE,
    ]
    with sqlite3.connect(db) as connection:
        (commits,) = connection.execute("SELECT COUNT(DISTINCT stored_at) FROM events").fetchone()
    assert 3 <= commits < 10  # at most 4 bodies a transaction, and groups were formed


class TrackerStore:
    """A store of one's own (``ReceiverStore``): a Tracker, refusing non-envelopes."""

    def __init__(self) -> None:
        self.tracker = cardflow.Tracker()

    def ingest(self, sent: bytes) -> object:
        if any(r.index is None for r in cardflow.decode_lenient(sent).rejects):
            raise cardflow.InvalidNotification("not a D1 envelope", "$")
        return self.tracker.ingest(sent)

    def get(self, card_id: str) -> cardflow.CardState | None:
        return self.tracker.get(card_id)


def test_a_store_without_ingest_each_is_served_body_by_body() -> None:
    store = TrackerStore()
    writer = GroupWriter(store)

    async def send() -> list[Written]:
        sent = [body(op("t-1", "DATA_PREPARED")), b"not json", body(op("t-2", "CARD_SHIPPED"))]
        return await asyncio.gather(*(writer.write(b) for b in sent))

    try:
        outcomes = [w.outcome for w in asyncio.run(send())]
    finally:
        writer.close()
    assert outcomes == [Stored.STORED, Stored.REJECTED, Stored.STORED]
    assert store.get("t-2") is not None


@pytest.mark.parametrize(("count", "wait"), [(0, 0.002), (4, -1.0), (4, 5.0)])
def test_bounds_out_of_range_are_refused(count: int, wait: float) -> None:
    with pytest.raises(ValueError, match="max_"):
        GroupWriter(TrackerStore(), max_bodies=count, max_wait=wait)


class BrokenStore(TrackerStore):
    """A store whose group call fails in a way of its own."""

    def ingest_each(self, bodies: list[bytes]) -> list[object]:
        raise RuntimeError("secret: /var/lib/cards.db is on fire")


def test_a_store_that_fails_its_own_way_answers_each_body_unavailable() -> None:
    writer = GroupWriter(BrokenStore())

    async def send() -> list[Written]:
        return await asyncio.gather(
            *(writer.write(body(op(f"b-{n}", "DATA_PREPARED"))) for n in range(3))
        )

    try:
        written = asyncio.run(send())
    finally:
        writer.close()
    assert [w.outcome for w in written] == [Stored.UNAVAILABLE] * 3
    assert all("secret" not in w.detail and "RuntimeError" in w.detail for w in written)
