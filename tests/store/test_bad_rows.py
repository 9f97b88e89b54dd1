"""What the store does with rows it did not write as they are: keys of an older
schema, a damaged schema version, events and outbox rows that do not decode."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import cardflow
import cardflow.store

from .test_outbox import Recorder
from .test_store import _body, _execute, _op

T0 = datetime(2025, 6, 1, tzinfo=UTC)


def _shipped(card: str, operation: str) -> dict[str, object]:
    op = _op(card, "CARD_SHIPPED", 5, operation)
    details = op["details"]
    assert isinstance(details, dict)
    details["shipment"] = {"carrier": "dhl", "lastUpdatedAt": "2025-01-02T10:00:00Z"}
    return op


def _old_key(change: cardflow.Change) -> str:
    """A key as schema 1 wrote it: the parts joined with / as they were."""
    what = change.key.rsplit("/", 1)[1] if change.kind == "SHIPMENT" else change.status
    return f"{change.card_id}/{change.operation_id}/{what}"


def test_migration_2_gives_old_keys_their_unambiguous_spelling(store_url: str) -> None:
    bodies = [
        _body(_shipped("c-1", "op-1")),  # plain ids: keys unchanged
        _body(_shipped("c/1", "o%2F")),  # a / and a % in the ids
        _body(_op("c", "FUTURE:X@Y/Z", 1, "op:2")),  # an unknown status with all four
    ]
    with cardflow.store.open(store_url) as store:
        changes = [c for body in bodies for c in store.ingest(body).changes]
        rows = dict(store.outbox_keys())
    reactions = [c for c in changes if c.kind in ("STATUS", "SHIPMENT")]
    assert sorted(rows) == sorted(c.key for c in reactions)
    # The database as schema 1 left it: the old keys, version 1.
    for change in reactions:
        old = _old_key(change).replace("'", "''")
        _execute(store_url, f"UPDATE outbox SET key = '{old}' WHERE key = '{change.key}'")
    _execute(store_url, "UPDATE schema_version SET version = 1")
    with cardflow.store.open(store_url) as store:
        assert store.schema_version() == cardflow.store.SCHEMA_VERSION == 2
        keys = [key for key, _ in store.outbox_keys()]
        assert sorted(keys) == sorted(c.key for c in reactions)
        plain = [c.key for c in reactions if c.card_id == "c-1"]
        assert plain[0] == "c-1/op-1/CARD_SHIPPED"
        assert plain[0] in keys
        # A key the migration wrote is the one a new change gets: never a second row.
        for body in bodies:
            assert store.ingest(body).changes == []
        assert [key for key, _ in store.outbox_keys()] == keys


@pytest.mark.parametrize("garbage", ["'two'", "-1", "1.5"])
def test_a_damaged_schema_version_is_a_schema_error(store_url: str, garbage: str) -> None:
    cardflow.store.open(store_url).close()
    if store_url.startswith("postgresql"):
        _execute(store_url, "ALTER TABLE schema_version ALTER COLUMN version TYPE TEXT")
    _execute(store_url, f"UPDATE schema_version SET version = {garbage}")
    with pytest.raises(cardflow.store.StoreSchemaError, match="schema_version holds"):
        cardflow.store.open(store_url)


def _garbage(url: str) -> str:
    """Bytes that are no state and no event, spelled for the engine."""
    return "X'00ff00'" if url.startswith("sqlite") else "'\\x00ff00'::bytea"


def test_an_undecodable_outbox_row_is_parked_and_every_other_dispatched(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bodies = [_body(_op(f"c-{n}", "CARD_SHIPPED", 1)) for n in range(6)]
    with cardflow.store.open(store_url) as store:
        for body in bodies:
            store.ingest(body)
    _execute(store_url, f"UPDATE outbox SET state = {_garbage(store_url)} WHERE card_id = 'c-2'")
    _execute(store_url, "UPDATE outbox SET skipped = 'not json' WHERE card_id = 'c-4'")
    with cardflow.store.open(store_url) as store:
        recorder = Recorder()
        with caplog.at_level("ERROR", logger="cardflow.dispatch"):
            assert store.dispatch(recorder, now=T0) == 4
        assert sorted(c.card_id for c in recorder.seen) == ["c-0", "c-1", "c-3", "c-5"]
        dead = store.dead()
        assert [row.card_id for row in dead] == ["c-2", "c-4"]
        for row in dead:
            assert row.error.startswith(f"outbox row {row.id} ({row.key}) does not decode: ")
            assert row.attempts == 0
        assert "state" in dead[0].error.lower()
        assert [r.row for r in caplog.records] == [row.id for row in dead]  # type: ignore[attr-defined]
        assert store.outbox_counts() == {"dead": 2, "done": 4}


def test_a_corrupt_event_is_a_store_error_naming_its_row(store_url: str) -> None:
    with cardflow.store.open(store_url) as store:
        store.ingest(_body(_op("c-1", "CARD_PROD_READY", 1), _op("c-1", "CARD_SHIPPED", 2)))
        [_first, second] = store.events("c-1")
    _execute(store_url, f"UPDATE events SET event = {_garbage(store_url)} WHERE id = {second.id}")
    with cardflow.store.open(store_url) as store:
        with pytest.raises(cardflow.store.StoreUnavailable, match=f"events row {second.id} "):
            store.events("c-1")
        assert store.get("c-1") is not None  # the state still reads
