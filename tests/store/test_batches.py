"""Batched transactions: any split of the bodies into batches ends where ingesting them
one by one ends (states, events, outbox, rejects, and what each body reports), and the
states are the in-memory fold's. On each engine."""

from __future__ import annotations

import itertools
import random
from datetime import datetime
from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cardflow
import cardflow.store

from . import logs

_BAD: dict[str, object] = {"operationId": "op-x", "operation": "PRODUCE", "cardId": "bad"}


def _lines() -> list[bytes]:
    """A log delivered out of order with repeats, on-demand readings, and bodies that hold a
    bad operation beside good ones (kept as rejects)."""
    lines = logs.shuffled(logs.log(cards=14, seed=3), seed=5, again=0.3)
    rng = random.Random(11)
    out: list[bytes] = []
    for line in lines:
        if not line.startswith(b"@") and rng.random() < 0.1:
            ops = msgspec.json.decode(line)["operations"]
            line = msgspec.json.encode({"operations": [*ops, {**_BAD, "n": rng.randrange(3)}]})
        out.append(line)
    return out


LINES = _lines()


def _item(line: bytes) -> bytes | tuple[bytes, datetime]:
    if line.startswith(b"@"):
        stamp, _, body = line[1:].partition(b" ")
        return body, datetime.fromisoformat(stamp.decode())
    return line


def _one(store: cardflow.store.Store, line: bytes) -> cardflow.store.Ingested:
    item = _item(line)
    return store.reconcile(*item) if isinstance(item, tuple) else store.ingest(item)


def _contents(store: cardflow.store.Store, cards: list[str]) -> object:
    return (
        logs.stored(store),
        {card: [(e.operation, e.read_at) for e in store.events(card)] for card in cards},
        store.event_count(),
        store.outbox_keys(),
        [(r.index, r.path, r.reason, r.raw) for r in store.rejects()],
    )


def _report(result: cardflow.store.Ingested) -> object:
    return (
        [(c.key, c.kind, c.state) for c in result.changes],
        [r.index for r in result.rejects],
        result.passed_over,
        result.new,
        result.duplicates,
    )


def _empty(url: str) -> None:
    """Empty a PostgreSQL store between examples (a new database each is slow)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("TRUNCATE events, states, outbox, rejects")


def test_any_split_into_batches_ends_as_one_by_one(
    store_url: str, engine: str, tmp_path: Path
) -> None:
    fold = logs.fold(LINES)
    cards = sorted(fold)
    with cardflow.store.open(f"sqlite:///{tmp_path}/oracle.db?synchronous=normal") as oracle:
        expected = [_report(_one(oracle, line)) for line in LINES]
        wanted = _contents(oracle, cards)
    assert wanted[0] == fold  # type: ignore[index]
    count = iter(range(1_000_000))

    @settings(max_examples=12, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(st.integers(1, len(LINES)), max_size=8))
    def check(cuts: list[int]) -> None:
        if engine == "sqlite":
            url = f"sqlite:///{tmp_path}/split-{next(count)}.db?synchronous=normal"
        else:
            url = store_url
        bounds = [0, *sorted(set(cuts)), len(LINES)]
        with cardflow.store.open(url) as store:
            if engine != "sqlite":
                _empty(url)
            got = []
            for start, end in itertools.pairwise(bounds):
                got += store.ingest_many([_item(line) for line in LINES[start:end]])
            assert [_report(r) for r in got] == expected
            assert _contents(store, cards) == wanted

    check()


def _damage(url: str, card: str) -> None:
    """Leave a card's state row in a format from a later version: it fails to read."""
    newer = b"CFS\x63" + b"\x00" * 8
    if url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(url.removeprefix("sqlite:///").partition("?")[0]) as connection:
            connection.execute("UPDATE states SET state = ? WHERE card_id = ?", (newer, card))
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("UPDATE states SET state = %s WHERE card_id = %s", (newer, card))


def test_bodies_stored_together_fail_alone(store_url: str) -> None:
    first = logs.log(cards=3, seed=2)[0]
    broken = msgspec.json.decode(first)["operations"][0]["cardId"]
    with cardflow.store.open(store_url) as store:
        store.ingest(first)
        _damage(store_url, broken)
        later = {**msgspec.json.decode(first)["operations"][0], "operationId": "op-later"}
        bodies = [
            msgspec.json.encode({"operations": [later]}),
            b"not json",
            msgspec.json.encode({"operations": [{**later, "cardId": "other-1"}]}),
            first,
            msgspec.json.encode({"operations": [{**later, "cardId": "other-2"}]}),
        ]
        results = store.ingest_each(bodies)
        assert isinstance(results[0], cardflow.store.StoreUnavailable)  # that card alone
        assert [type(r).__name__ for r in results[1:]] == [
            "InvalidNotification",
            "Ingested",
            "Ingested",
            "Ingested",
        ]
        assert "newer" in str(results[0])
        assert [r.new for r in results[2:]] == [1, 0, 1]  # type: ignore[union-attr]
        assert store.get("other-1") is not None
        assert store.get("other-2") is not None
        # All well: one transaction, the result of one by one.
        again = store.ingest_each([bodies[2], b"[]", bodies[4]])
        assert [type(r).__name__ for r in again] == ["Ingested", "InvalidNotification", "Ingested"]
