"""The store in one process, on each engine: what a body does, reading, schema, errors."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

import cardflow
import cardflow.store

from . import logs

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _op(card: str, status: str, minute: int, operation: str = "op-1") -> dict[str, object]:
    return {
        "operationId": operation,
        "operation": "PRODUCE",
        "status": "IN_PROGRESS",
        "startTime": "2025-01-01T00:00:00Z",
        "cardId": card,
        "details": {
            "status": status,
            "dueDate": "2025-01-20",
            "productionSite": "SITE-A",
        },
        "endTime": f"2025-01-01T00:{minute:02d}:00Z",
    }


def _body(*ops: object) -> bytes:
    return msgspec.json.encode({"operations": list(ops)})


def test_a_log_ends_in_its_fold_and_again_changes_nothing(store_url: str) -> None:
    lines = [line for line in logs.log(cards=60, seed=1) if not line.startswith(b"@")]
    with cardflow.store.open(store_url) as store:
        first = [store.ingest(line) for line in lines]
        assert logs.stored(store) == logs.fold(lines)
        assert sum(r.new for r in first) == len(
            {
                cardflow.fingerprint(op)
                for line in lines
                for op in cardflow.decode_lenient(line).operations
                if op.operation == cardflow.PRODUCE
            }
        )
        rows = store.outbox_keys()
        again = [store.ingest(line) for line in lines]
        assert all(not r.changes and r.new == 0 for r in again)
        assert sum(r.duplicates for r in again) == sum(r.new + r.duplicates for r in first)
        assert store.outbox_keys() == rows
        # What a Tracker reports from the same bodies in the same order, the store reports.
        tracker = cardflow.Tracker()
        for line, result in zip(lines, first, strict=True):
            assert [c.key for c in tracker.ingest(line).changes] == [c.key for c in result.changes]
            assert result.passed_over == sum(
                op.operation != cardflow.PRODUCE for op in cardflow.decode_lenient(line).operations
            )


def test_reading_and_filters_come_from_the_states_table(store_url: str) -> None:
    lines = [line for line in logs.log(cards=80, seed=4) if not line.startswith(b"@")]
    folded = {c: cardflow.decode_state(b) for c, b in logs.fold(lines).items()}
    with cardflow.store.open(store_url) as store:
        for line in lines:
            store.ingest(line)
        some = sorted(folded)[3]
        assert store.get(some) == folded[some]
        assert store.get("no such card") is None
        statuses = {s.status for s in folded.values()}
        for status in statuses:
            assert [s.card_id for s in store.states(status=status)] == sorted(
                c for c, s in folded.items() if s.status == status
            )
        pair = sorted(statuses)[:2]
        assert {s.card_id for s in store.states(status=pair)} == {
            c for c, s in folded.items() if s.status in pair
        }
        for now in (datetime(2025, 1, 2, tzinfo=UTC), NOW, datetime(2030, 1, 1, tzinfo=UTC)):
            assert [s.card_id for s in store.states(needs_reconcile_at=now)] == sorted(
                c for c, s in folded.items() if cardflow.needs_reconcile(s, now)
            )
        counts: dict[str, int] = {}
        for state in folded.values():
            counts[state.status] = counts.get(state.status, 0) + 1
        assert store.counts() == counts


def test_every_card_id_is_listed_the_empty_one_and_past_a_page(store_url: str) -> None:
    """D1's wire allows an empty cardId: it sorts first, and paging must not skip it."""
    cards = ["", *(f"card-{n:05d}" for n in range(2_001))]  # pages of 1,000 rows
    with cardflow.store.open(store_url) as store:
        store.ingest_many([_body(_op(card, "CARD_PROD_DONE", 1)) for card in cards])
        assert [s.card_id for s in store.states()] == cards
        assert [s.card_id for s in store.states(status="CARD_PROD_DONE")] == cards
        assert store.get("") is not None


def test_a_reconcile_confirms_as_the_tracker_does(store_url: str) -> None:
    notified = _body(_op("c1", "CARD_PROD_ONGOING", 1))
    reading = _body(_op("c1", "CARD_PROD_DONE", 2))
    tracker = cardflow.Tracker()
    tracker.ingest(notified)
    expected = tracker.reconcile(reading, NOW)
    with cardflow.store.open(store_url) as store:
        store.ingest(notified)
        result = store.reconcile(reading, at=NOW)
        assert [c.key for c in result.changes] == [c.key for c in expected.changes]
        assert store.get("c1") == tracker["c1"]
        assert store.get("c1").confirmed_at == NOW  # type: ignore[union-attr]
        # Read again later: a new event (a later confirmation), not a duplicate.
        later = store.reconcile(reading, at=NOW + timedelta(hours=1))
        assert later.new == 1
        assert store.reconcile(reading, at=NOW + timedelta(hours=1)).new == 0
        with pytest.raises(ValueError, match="timezone-aware"):
            store.reconcile(reading, at=datetime(2025, 1, 1))


def test_bad_operations_are_kept_and_the_good_ones_committed(store_url: str) -> None:
    bad = {"operationId": "op-x", "operation": "PRODUCE", "cardId": "c2"}
    body = _body(_op("c1", "CARD_PROD_ONGOING", 1), bad, _op("c3", "CARD_PROD_DONE", 1))
    with cardflow.store.open(store_url) as store:
        result = store.ingest(body)
        assert [r.index for r in result.rejects] == [1]
        assert {c.card_id for c in result.changes} == {"c1", "c3"}
        assert store.get("c1") is not None
        assert store.get("c3") is not None
        assert store.get("c2") is None
        kept = store.rejects()
        assert [(r.index, r.path, r.reason) for r in kept] == [
            (r.index, r.path, r.reason) for r in result.rejects
        ]
        assert msgspec.json.decode(kept[0].raw) == bad
        store.ingest(body)  # delivered again: the reject is kept once
        assert len(store.rejects()) == 1


def test_a_body_that_is_not_an_envelope_commits_nothing(store_url: str) -> None:
    with cardflow.store.open(store_url) as store:
        for body in (b"not json", b'{"operations": 3}', b"[]"):
            with pytest.raises(cardflow.InvalidNotification):
                store.ingest(body)
        assert store.counts() == {}
        assert store.rejects() == []


def test_threads_share_one_store(store_url: str) -> None:
    lines = [line for line in logs.log(cards=40, seed=9) if not line.startswith(b"@")]
    errors: list[BaseException] = []
    with cardflow.store.open(store_url) as store:

        def work(seed: int) -> None:
            try:
                for line in logs.shuffled(lines, seed):
                    store.ingest(line)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert logs.stored(store) == logs.fold(lines)


def test_a_state_another_writer_changed_is_read_from_its_row(store_url: str) -> None:
    """A store reads back the states it wrote without decoding them only while their
    rows hold the bytes it wrote: a row another writer changed since is read as it is."""
    with cardflow.store.open(store_url) as first, cardflow.store.open(store_url) as second:
        first.ingest(_body(_op("c1", "DATA_PREPARED", 1)))
        second.ingest(_body(_op("c1", "CARD_PROD_ONGOING", 2)))
        first.ingest(_body(_op("c1", "CARD_PROD_REQUESTED", 3)))
        state = first.get("c1")
        assert state is not None
        assert set(state.observed) == {"DATA_PREPARED", "CARD_PROD_REQUESTED", "CARD_PROD_ONGOING"}
        assert state == second.get("c1")


def test_a_newer_schema_is_refused_saying_what_to_do(store_url: str) -> None:
    cardflow.store.open(store_url).close()
    _execute(store_url, "UPDATE schema_version SET version = 99")
    with pytest.raises(cardflow.store.StoreSchemaError, match=r"version 99.*upgrade cardflow"):
        cardflow.store.open(store_url)


def test_tables_without_a_schema_version_are_not_a_store(store_url: str) -> None:
    cardflow.store.open(store_url).close()
    _execute(store_url, "DROP TABLE schema_version")
    with pytest.raises(cardflow.store.StoreSchemaError, match="not a cardflow store"):
        cardflow.store.open(store_url)


def _execute(url: str, sql: str) -> None:
    """Change a database behind the store's back, with the engine's own driver."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.removeprefix("sqlite:///").partition("?")[0]
        with sqlite3.connect(path) as connection:
            connection.execute(sql)
        connection.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as pg:
            pg.execute(sql.encode())


def test_a_database_that_cannot_be_reached_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(cardflow.store.StoreUnavailable, match="cannot open"):
        cardflow.store.open(f"sqlite:///{tmp_path}/no/such/folder/store.db")
    pytest.importorskip("psycopg")
    with pytest.raises(cardflow.store.StoreUnavailable, match="cannot connect"):
        cardflow.store.open(f"postgresql://nobody@/db?host={tmp_path}&port=1")
    assert issubclass(cardflow.store.StoreUnavailable, cardflow.CardflowError)


def test_a_closed_store_is_unavailable(tmp_path: Path) -> None:
    store = cardflow.store.open(f"sqlite:///{tmp_path}/store.db")
    store.close()
    with pytest.raises(cardflow.store.StoreUnavailable, match="closed"):
        store.counts()


def test_urls_that_are_not_stores_are_refused(tmp_path: Path) -> None:
    for url in ("mysql://x/y", "sqlite://", "sqlite:///:memory:", f"sqlite:///{tmp_path}/a?x=1"):
        with pytest.raises(ValueError, match="URL"):
            cardflow.store.open(url)


def test_imports_stay_light() -> None:
    code = (
        "import sys, cardflow; assert 'cardflow.store' not in sys.modules;"
        " import cardflow.store; assert 'psycopg' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_store_api_is_its_sorted_all() -> None:
    names = cardflow.store.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    for name in names:
        assert getattr(cardflow.store, name) is not None
    assert cardflow.store.StoreUnavailable is cardflow.StoreUnavailable
    for name in ("open", "Store", "Ingested", "StoreUnavailable", "DeadRow"):
        assert name in names
