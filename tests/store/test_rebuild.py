"""``Store.rebuild`` and ``cardflow rebuild``: every state derived again from the events,
after damage and after a change of rule, beside a writer, on each engine."""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cardflow
import cardflow.store
from cardflow import D1_LIFECYCLE, Lifecycle

from . import logs, rawsql
from .test_cli_db import cli

WORKER = str(Path(__file__).with_name("worker.py"))


def _store(store: cardflow.store.Store, lines: Sequence[bytes], batch: int = 50) -> None:
    """Store the log's lines (``@<time> <body>``: a reading), ``batch`` per transaction."""
    items: list[Any] = []
    for line in lines:
        body, at = logs.parsed(line)
        items.append(body if at is None else (body, at))
    for start in range(0, len(items), batch):
        store.ingest_many(items[start : start + batch])


def _damage(url: str) -> set[str]:
    """Rows deleted, rows overwritten with another card's state, rows of garbage, a row
    of a format version that never existed: the cards damaged."""
    rows = rawsql.state_rows(url)
    cards = sorted(rows)
    deleted, swapped, garbage, zero = cards[0:15], cards[15:30], cards[30:45], cards[45]
    damage: list[tuple[str, Sequence[object]]] = [
        ("DELETE FROM states WHERE card_id = ?", (card,)) for card in deleted
    ]
    for n, card in enumerate(swapped):
        damage.append(
            ("UPDATE states SET state = ? WHERE card_id = ?", (rows[cards[-1 - n]], card))
        )
    for n, card in enumerate(garbage):
        junk = bytes((n * 37 + i) % 256 for i in range(20 + n))
        if n % 3 == 0:
            junk = b"CFS\x01" + junk  # a state's header, a bad checksum
        damage.append(("UPDATE states SET state = ? WHERE card_id = ?", (junk, card)))
    older = b"CFS\x00" + rows[zero][4:]
    damage.append(("UPDATE states SET state = ? WHERE card_id = ?", (older, zero)))
    rawsql.run_all(url, damage)
    return {*deleted, *swapped, *garbage, zero}


def test_rebuild_restores_a_damaged_states_table_byte_for_byte(store_url: str) -> None:
    lines = logs.log(cards=250, seed=21)
    expected = logs.fold(lines)
    with cardflow.store.open(store_url) as store:
        _store(store, lines)
    assert rawsql.state_rows(store_url) == expected
    damaged = _damage(store_url)
    before = rawsql.state_rows(store_url)
    outbox = rawsql.run(store_url, "SELECT COUNT(*) FROM outbox")

    dry = cli("rebuild", "--db", store_url, "--dry-run", "--verbose", "--batch", "64")
    assert dry.code == 0, dry.err
    assert dry.out.decode().splitlines()[-1] == (
        f"{len(expected)} cards read, {len(damaged)} states would change"
        " (dry run: nothing was written)"
    )
    listed = {line.split(": ")[0] for line in dry.out.decode().splitlines()[:-1]}
    assert listed == damaged
    assert rawsql.state_rows(store_url) == before
    assert rawsql.run(store_url, "SELECT COUNT(*) FROM outbox") == outbox

    done = cli("rebuild", "--db", store_url, "--batch", "64")
    assert done.code == 0, done.err
    assert done.out.decode().startswith(
        f"{len(expected)} cards read, {len(damaged)} states changed"
    )
    assert rawsql.state_rows(store_url) == expected
    # Every reaction the damaged cards owe was queued when their events were stored.
    assert done.out.decode().endswith(", 0 reactions queued\n")
    again = cli("rebuild", "--db", store_url)
    assert again.out.decode().startswith(f"{len(expected)} cards read, 0 states changed")
    with cardflow.store.open(store_url) as store:
        assert logs.stored(store) == expected
        # The filter columns were written with the states: reads by status agree.
        counts = collections.Counter(cardflow.decode_state(b).status for b in expected.values())
        assert store.counts() == dict(sorted(counts.items()))


def test_rebuild_of_named_cards_only(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = logs.log(cards=40, seed=5)
    expected = logs.fold(lines)
    with cardflow.store.open(url) as store:
        _store(store, lines)
    cards = sorted(expected)
    for card in cards[:4]:
        rawsql.run(url, "DELETE FROM states WHERE card_id = ?", (card,))
    done = cli("rebuild", "--db", url, "--card", cards[0], "--card", cards[2], "--verbose")
    assert done.code == 0, done.err
    assert done.out.decode() == (
        f"{cards[0]}: no state row\n{cards[2]}: no state row\n"
        "2 cards read, 2 states changed, 0 reactions queued\n"
    )
    assert set(rawsql.state_rows(url)) == set(cards) - {cards[1], cards[3]}
    missing = cli("rebuild", "--db", url, "--card", "no-such-card")
    assert missing.code == 4
    assert "card no-such-card: no event in the store" in missing.err
    assert cli("rebuild", "--db", url, "--batch", "0").code == 2
    assert cli("rebuild", "--db", url, "--batch", "10001").code == 2


def _without_shipping() -> Lifecycle:
    """An older rule: D1's lifecycle before it knew CARD_SHIPPED and CARD_RETURNED."""
    gone = {"CARD_SHIPPED", "CARD_RETURNED"}
    states = [
        {
            "name": s,
            "final": s in D1_LIFECYCLE.finals,
            "tags": sorted(t for t in D1_LIFECYCLE.tags(s) if t != "success"),
        }
        for s in D1_LIFECYCLE.statuses
        if s not in gone
    ]
    transitions = [
        [e.trigger, e.source, e.dest]
        for e in D1_LIFECYCLE.edges
        if e.source not in gone and e.dest not in gone
    ]
    return Lifecycle(
        name="d1-before-shipping",
        states=states,
        transitions=transitions,
        initial=D1_LIFECYCLE.initial,
    )


def test_rebuild_after_a_rule_change_queues_each_owed_reaction_once(store_url: str) -> None:
    lines = logs.log(cards=150, seed=9)
    expected = logs.fold(lines)  # under D1's lifecycle, the new rule
    old_rule = _without_shipping()
    with cardflow.store.open(store_url, lifecycle=old_rule) as store:
        _store(store, lines)
        old_keys = {key for key, _ in store.outbox_keys()}
        old_states = {s.card_id: s for s in store.states()}
    assert rawsql.state_rows(store_url) != expected
    with cardflow.store.open(store_url) as store:
        result = store.rebuild(batch=40)
        assert rawsql.state_rows(store_url) == expected
        assert result.cards == len(expected)
        changed = {
            c for c, blob in expected.items() if cardflow.encode_state(old_states[c]) != blob
        }
        assert result.changed == len(changed) > 0
        keys = [key for key, _ in store.outbox_keys()]
        new = set(keys) - old_keys
        assert len(keys) == len(set(keys))
        assert result.queued == len(new)
        # Owed under the new rule: each card's current status (and shipment), once.
        shipped = {
            c
            for c, blob in expected.items()
            if cardflow.decode_state(blob).status == "CARD_SHIPPED"
        }
        assert shipped
        assert shipped <= changed
        owed = {
            f"{card}/{cardflow.decode_state(expected[card]).operation_id}/CARD_SHIPPED"
            for card in shipped
        }
        assert owed <= set(keys)
        # Queued now: those owed that no row had (an unknown status that was current
        # for a while under the old rule had its row already: it is not queued again).
        assert {k for k in new if k.endswith("/CARD_SHIPPED")} == owed - old_keys != set()
        # Nothing a store under the new rule from the start would not have queued.
        tracker_keys: set[str] = set()
        tracker = cardflow.Tracker()
        for line in lines:
            body, at = logs.parsed(line)
            found = (tracker.ingest(body) if at is None else tracker.reconcile(body, at)).changes
            tracker_keys.update(c.key for c in found if c.kind in ("STATUS", "SHIPMENT"))
        assert new <= tracker_keys
        again = store.rebuild()
        assert (again.changed, again.queued) == (0, 0)
        assert len(store.outbox_keys()) == len(keys)


def test_rebuild_no_outbox_queues_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = logs.log(cards=30, seed=4)
    with cardflow.store.open(url, lifecycle=_without_shipping()) as store:
        _store(store, lines)
        rows = len(store.outbox_keys())
    done = cli("rebuild", "--db", url, "--no-outbox")
    assert done.code == 0, done.err
    assert done.out.decode().endswith(" states changed\n")
    assert rawsql.state_rows(url) == logs.fold(lines)
    with cardflow.store.open(url) as store:
        assert len(store.outbox_keys()) == rows


def test_rebuild_beside_a_writer_process_ends_in_the_fold(store_url: str, tmp_path: Path) -> None:
    """An upgrade in progress: states stored under an old rule, a writer of the new
    version storing the rest of the log (one body per transaction) while one rebuild
    runs beside it, in one batch: the writer changes cards between the rebuild's read
    and its write. Every card ends in the fold of all its events, with no rebuild after
    the writer stopped."""
    lines = logs.log(cards=150, seed=13)
    half = len(lines) // 2
    with cardflow.store.open(store_url, lifecycle=_without_shipping()) as store:
        _store(store, lines[:half])
    rest = logs.write(tmp_path / "rest", logs.shuffled(lines[half // 3 :], seed=3, again=0.5))
    writer = subprocess.Popen(
        [
            sys.executable,
            WORKER,
            "ingest",
            store_url,
            str(rest),
            str(tmp_path / "keys"),
            "progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"ready\n"
    assert writer.stdout.read(20) == b"." * 20  # it is writing
    with cardflow.store.open(store_url) as store:
        result = store.rebuild(batch=1000)
        beside = writer.poll() is None
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err.decode()[-2000:]
    assert beside, "the writer finished before the rebuild: nothing was tested"
    assert result.changed > 0
    assert rawsql.state_rows(store_url) == logs.fold(lines)


def test_rebuild_reads_a_card_whose_id_is_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    body = (
        b'{"operations": [{"operationId": "op-1", "operation": "PRODUCE", "status": "PENDING",'
        b' "startTime": "2025-01-17T06:28:02Z", "cardId": "", "details": {"status":'
        b' "CARD_PROD_READY"}}]}'
    )
    with cardflow.store.open(url) as store:
        store.ingest(body)
        rawsql.run(url, "DELETE FROM states")
        result = store.rebuild(batch=1)
        assert (result.cards, result.changed) == (1, 1)
        assert store.get("") is not None


def test_rebuild_writes_one_by_one_when_a_row_moved_without_an_event(tmp_path: Path) -> None:
    """A batch's rows are written in one statement; a row that moved after the read with
    no new event (another process's repair) fails it all, and the batch is written row
    by row: every other row at once, the moved one read and written again."""
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = logs.log(cards=20, seed=6)
    expected = logs.fold(lines)
    with cardflow.store.open(url) as store:
        _store(store, lines)
    cards = sorted(expected)
    rawsql.run(url, "DELETE FROM outbox")
    rawsql.run(url, "UPDATE states SET state = ? WHERE card_id IN (?, ?, ?)", (b"junk", *cards[:3]))
    moved = cards[1]
    holds: list[dict[str, bytes]] = []
    with cardflow.store.open(url) as store:

        def hold(tx: Any) -> None:
            sql = "SELECT card_id, state FROM states WHERE card_id IN (?, ?, ?)"
            holds.append({str(card): bytes(blob) for card, blob in tx.rows(sql, cards[:3])})
            if len(holds) <= 2:  # in the batch's write, then in its row-by-row write
                tx.run("UPDATE states SET version = version + 1 WHERE card_id = ?", (moved,))

        store._hold_events = hold  # type: ignore[method-assign]
        result = store.rebuild()
        keys = [key for key, _ in store.outbox_keys()]
    assert len(holds) == 3  # together (rolled back), one by one, the moved row again
    assert set(holds[1].values()) == {b"junk"}
    assert holds[2] == {**{c: expected[c] for c in cards[:3]}, moved: b"junk"}
    assert (result.cards, result.changed) == (len(expected), 3)
    assert rawsql.state_rows(url) == expected
    assert len(keys) == len(set(keys)) == result.queued > 0
    assert {key.split("/")[0] for key in keys} == set(cards[:3])


def test_rebuild_reads_sqlite_through_a_map_and_leaves_its_connection_as_it_was(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = logs.log(cards=10, seed=2)
    with cardflow.store.open(url) as store:
        _store(store, lines)
        rawsql.run(url, "DELETE FROM states")
        sizes: list[int] = []

        def mapped(card: str, why: str) -> None:
            with store._transaction(write=False) as tx:
                sizes.append(int(tx.rows("PRAGMA mmap_size")[0][0]))

        result = store.rebuild(on_change=mapped)
        with store._transaction(write=False) as tx:
            after = int(tx.rows("PRAGMA mmap_size")[0][0])
    assert result.changed == len(sizes) == len(logs.fold(lines))
    assert set(sizes) == {1 << 28}
    assert after == 0
    assert rawsql.state_rows(url) == logs.fold(lines)
