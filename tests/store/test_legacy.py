"""A store written by schema 1 (``tests/data/make_legacy_store.py`` made it with that
release) opened by this version: its migrations keep what it holds.

Not its bytes (later schemas add what they need), but what it means: the same cards,
each readable and equal to the fold of its events; the same events; the outbox rows
with their stage, and keys that still name the reactions this version computes for
them (so that no reaction already queued or run is ever queued again); the rejects.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import cardflow
import cardflow.store

from . import rawsql

DATA = Path(__file__).parent.parent / "data"
REACTIONS = ("STATUS", "SHIPMENT")


@pytest.fixture
def legacy(tmp_path: Path) -> tuple[str, dict[str, Any]]:
    path = tmp_path / "legacy.db"
    shutil.copyfile(DATA / "legacy-store-v1.db", path)
    made = json.loads((DATA / "legacy-store-v1.json").read_text())
    return f"sqlite:///{path}", made


def test_a_store_made_by_schema_1_opens_with_its_meaning_kept(
    legacy: tuple[str, dict[str, Any]],
) -> None:
    url, made = legacy
    assert made["schema_version"] == 1
    with cardflow.store.open(url) as store:
        assert store.schema_version() == cardflow.store.SCHEMA_VERSION >= 1
        assert store.event_count() == made["event_count"]
        assert store.counts() == made["counts"]
        cards = made["cards"]
        assert sorted(s.card_id for s in store.states()) == sorted(cards)
        for card, was in cards.items():
            events = store.events(card)
            assert [
                [
                    e.id,
                    hashlib.sha256(cardflow.encode([e.operation])).hexdigest()[:16],
                    None if e.read_at is None else e.read_at.isoformat(),
                ]
                for e in events
            ] == was["events"]
            state = store.get(card)
            assert state is not None
            assert state.status == was["status"]
        # Every state is the fold of its events under this version's rules: after a
        # rebuild, whatever the rules changed since.
        store.rebuild()
        for card in cards:
            folder = cardflow.Folder()
            for e in store.events(card):
                folder.add(e.operation, at=e.read_at)
            rebuilt = store.get(card)
            assert rebuilt is not None
            assert cardflow.encode_state(rebuilt) == cardflow.encode_state(folder[card])
        if made["state_format_version"] == cardflow.STATE_FORMAT_VERSION:
            # The same rules and format: the rows themselves were kept, byte for byte.
            assert rawsql.state_rows(url) == {
                c: bytes.fromhex(w["state"]) for c, w in cards.items()
            }
        assert [
            {"index": r.index, "path": r.path, "reason": r.reason, "raw": r.raw.decode()}
            for r in store.rejects()
        ] == made["rejects"]
        assert store.outbox_counts() == made["outbox_counts"]
        assert len(store.dead()) == made["outbox_counts"]["dead"]


def test_a_legacy_outbox_row_keeps_its_key_meaning(legacy: tuple[str, dict[str, Any]]) -> None:
    url, made = legacy
    with cardflow.store.open(url) as store:
        rows = rawsql.run(
            url,
            "SELECT id, key, kind, card_id, operation_id, status, stage, attempts"
            " FROM outbox ORDER BY id",
        )
        was = {row["id"]: row for row in made["outbox"]}
        assert [r[0] for r in rows] == sorted(was)
        for id_, _key, kind, card, operation, status, stage, attempts in rows:
            old = was[id_]
            assert (kind, card, operation, status, stage, attempts) == (
                old["kind"],
                old["card_id"],
                old["operation_id"],
                old["status"],
                old["stage"],
                old["attempts"],
            )
        # Its keys name the reactions this version computes: the changes each card's
        # state reports from nothing are all queued already, so delivering its events
        # again, or rebuilding, queues nothing (no reaction runs twice).
        keys = Counter(key for key, _ in store.outbox_keys())
        assert max(keys.values()) == 1
        for state in store.states():
            owed = cardflow.changes(None, state)
            for change in owed:
                if change.kind in REACTIONS:
                    assert change.key in keys, (change.kind, change.card_id, change.status)
        before = store.outbox_counts()
        for card in made["cards"]:
            rawsql.run(url, "DELETE FROM states WHERE card_id = ?", (card,))
        result = store.rebuild()
        assert result.changed == len(made["cards"])
        assert result.queued == 0
        assert store.outbox_counts() == before
