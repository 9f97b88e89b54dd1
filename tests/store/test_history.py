"""``Store.history`` and ``cardflow history``: a card's distinct stored events, in stored
order, with what each changed when replayed in that order."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import cardflow
import cardflow.store

from . import logs
from .test_cli_db import cli
from .test_rebuild import _store


def test_history_lists_exactly_the_distinct_stored_events(store_url: str) -> None:
    lines = logs.log(cards=20, seed=6)
    with cardflow.store.open(store_url) as store:
        _store(store, lines, batch=1)
        _store(store, lines[:40], batch=1)  # redelivered: nothing new
        for card in sorted(logs.fold(lines))[:5]:
            # The oracle: the card's distinct events in the log, a reading by its time.
            distinct: dict[tuple[bytes, datetime | None], None] = {}
            for line in lines:
                body, at = logs.parsed(line)
                for op in cardflow.decode_lenient(body).operations:
                    if op.card_id == card and op.operation == cardflow.PRODUCE:
                        distinct[(cardflow.fingerprint(op), at)] = None
            found = store.history(card)
            assert [(cardflow.fingerprint(e.operation), e.read_at) for e in found] == list(distinct)
            assert [e.id for e in found] == sorted(e.id for e in found)
            assert [e.source for e in found] == [
                "notification" if at is None else "on-demand" for _, at in distinct
            ]
            # The replay in stored order: what a Tracker computes on the same events.
            tracker = cardflow.Tracker()
            for event in found:
                if event.read_at is None:
                    expected = tracker.ingest_operations([event.operation])
                else:
                    body = cardflow.encode([event.operation])
                    expected = tracker.reconcile(body, event.read_at).changes
                assert event.changes == expected
            stored = store.get(card)
            assert stored is not None
            assert cardflow.encode_state(tracker[card]) == cardflow.encode_state(stored)
            assert all(e.stored_at.tzinfo is not None for e in found)


def test_history_on_the_command_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = logs.log(cards=10, seed=2)
    with cardflow.store.open(url) as store:
        _store(store, lines)
        card = next(c for c in sorted(logs.fold(lines)) if any(e.read_at for e in store.events(c)))
        events = store.history(card)
    as_json = cli("history", "--db", url, card, "--format", "jsonl")
    assert as_json.code == 0, as_json.err
    rows = [json.loads(line) for line in as_json.out.decode().splitlines()]
    assert [r["id"] for r in rows] == [e.id for e in events]
    assert {r["source"] for r in rows} == {"notification", "on-demand"}
    assert all((r["readAt"] is None) == (r["source"] == "notification") for r in rows)
    assert [cardflow.decode(json.dumps({"operations": [r["operation"]]})) for r in rows] == [
        [e.operation] for e in events
    ]
    assert [[c["key"] for c in r["changes"]] for r in rows] == [
        [c.key for c in e.changes] for e in events
    ]
    table = cli("history", "--db", url, card)
    assert table.code == 0, table.err
    text = table.out.decode().splitlines()
    assert text[0].split() == ["id", "stored", "at", "source", "operation", "reported", "changes"]
    assert len(text) == len(events) + 2
    assert text[-1].startswith(f"card {card}: {len(events)} stored events; now ")
    assert "on-demand @ " in table.out.decode()
    missing = cli("history", "--db", url, "no-such-card")
    assert (missing.code, missing.out) == (4, b"")
    assert "no event in the store" in missing.err


def test_history_escapes_control_characters_on_a_terminal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    body = (
        b'{"operations": [{"operationId": "op-1", "operation": "PRODUCE",'
        b' "status": "PENDING", "startTime": "2025-01-17T06:28:02Z", "cardId": "c\\u0007",'
        b' "details": {"status": "CARD_PROD_READY\\u001b]0;x"}}]}'
    )
    with cardflow.store.open(url) as store:
        store.ingest(body)
    table = cli("history", "--db", url, "c\x07")
    assert table.code == 0, table.err
    assert b"\x1b" not in table.out
    assert b"\x07" not in table.out
    assert b"CARD_PROD_READY\\x1b]0;x" in table.out
