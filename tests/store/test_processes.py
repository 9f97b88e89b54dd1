"""Several processes at once on one store, on each engine; writers killed mid-way."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import cardflow
import cardflow.store

from . import logs

WORKER = str(Path(__file__).with_name("worker.py"))
REACTIONS = {cardflow.ChangeKind.STATUS.value, cardflow.ChangeKind.SHIPMENT.value}


def _start(*argv: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, WORKER, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if line != b"ready\n":
        process.kill()
        _, err = process.communicate()
        raise AssertionError(f"worker did not start: {line!r} {err.decode()[-2000:]}")
    return process


def _finish(process: subprocess.Popen[bytes]) -> None:
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()[-3000:]


def _replayed_keys(store: cardflow.store.Store) -> collections.Counter[str]:
    """The reactions a Tracker computes from the stored events, replayed in the order
    they were stored: the oracle of the outbox when one writer ran at a time."""
    tracker = cardflow.Tracker(passed=store.passed)
    keys: collections.Counter[str] = collections.Counter()
    cards = sorted(state.card_id for state in store.states())
    replay: list[tuple[int, cardflow.Operation, datetime | None]] = []
    for card in cards:
        replay += [(e.id, e.operation, e.read_at) for e in store.events(card)]
    for _, op, at in sorted(replay, key=lambda item: item[0]):
        found = (
            tracker.ingest_operations([op])
            if at is None
            else tracker.reconcile(cardflow.encode([op]), at).changes
        )
        keys.update(c.key for c in found if c.kind in REACTIONS)
    return keys


def test_four_writers_end_in_the_fold(store_url: str, tmp_path: Path) -> None:
    lines = logs.log(cards=120, seed=7)
    expected = logs.fold(lines)
    workers = []
    cardflow.store.open(store_url).close()  # the schema, before the race
    for n in range(4):
        bodies = logs.write(tmp_path / f"bodies{n}", logs.shuffled(lines, seed=n))
        workers.append(_start("ingest", store_url, str(bodies), str(tmp_path / f"keys{n}")))
    for worker in workers:
        _finish(worker)
    returned: collections.Counter[str] = collections.Counter()
    for n in range(4):
        returned.update((tmp_path / f"keys{n}").read_text().split())
    with cardflow.store.open(store_url) as store:
        assert logs.stored(store) == expected
        outbox = collections.Counter(key for key, _ in store.outbox_keys())
        # Each reaction was reported by exactly one writer, and has exactly one row.
        assert max(returned.values()) == 1
        assert outbox == returned
        # Every card's current status became current once: its row is there.
        for state in store.states():
            assert f"{state.card_id}/{state.operation_id}/{state.status}" in outbox
        if isinstance(store, cardflow.store.SQLiteStore):
            # Writers take turns on SQLite: the events table's order is the order the
            # events were applied in, and a Tracker replaying it reports the outbox.
            assert outbox == _replayed_keys(store)
        counts = collections.Counter(
            cardflow.decode_state(blob).status for blob in expected.values()
        )
        assert store.counts() == dict(counts)


def test_killed_writer_loses_and_doubles_nothing(store_url: str, tmp_path: Path) -> None:
    lines = logs.log(cards=100, seed=11)
    bodies = logs.write(tmp_path / "bodies", logs.shuffled(lines, seed=3))
    keys = str(tmp_path / "keys")
    cardflow.store.open(store_url).close()
    rng = random.Random(5)
    # Killed after a growing number of bodies, and a moment more: at several points,
    # some inside a transaction.
    for after in sorted(rng.sample(range(len(lines) * 3 // 4), 5)):
        worker = _start("ingest", store_url, str(bodies), keys, "progress")
        assert worker.stdout is not None
        assert len(worker.stdout.read(after)) == after
        time.sleep(rng.uniform(0, 0.003))
        os.kill(worker.pid, signal.SIGKILL)
        worker.communicate()
        assert worker.returncode == -signal.SIGKILL
    # Everything delivered again, from the start, to the end.
    _finish(_start("ingest", store_url, str(bodies), keys))
    with cardflow.store.open(store_url) as store:
        assert logs.stored(store) == logs.fold(lines)
        outbox = collections.Counter(key for key, _ in store.outbox_keys())
        assert outbox == _replayed_keys(store)
        if isinstance(store, cardflow.store.SQLiteStore):
            assert store.integrity_check() == ["ok"]


def test_two_dispatchers_deliver_each_row_once(store_url: str, tmp_path: Path) -> None:
    """1,000 rows, two dispatcher processes, claims of 100 under a lease of 0.2 s while
    reactions take a few milliseconds (so a claim's lease ends before its last rows'
    turn) and one in a hundred takes longer than the lease itself; a fifth fail."""
    max_attempts = 3
    with cardflow.store.open(store_url) as store:
        store.ingest_many(
            [
                cardflow.encode(
                    [
                        cardflow.Operation(
                            operation_id="op-1",
                            operation=cardflow.PRODUCE,
                            status="SUCCESSFUL",
                            start_time=datetime(2025, 1, 1, tzinfo=UTC),
                            card_id=f"card-{n:04d}",
                            details=cardflow.Details(status="CARD_SHIPPED"),
                        )
                    ]
                )
                for n in range(1000)
            ]
        )
        rows = {key for key, _ in store.outbox_keys()}
    assert len(rows) == 1000
    log = tmp_path / "deliveries"
    dispatchers = [
        _start("dispatch", store_url, str(log), str(max_attempts), "0.2", "100") for _ in range(2)
    ]
    for dispatcher in dispatchers:
        _finish(dispatcher)
    attempts: collections.Counter[str] = collections.Counter()
    delivered: collections.Counter[str] = collections.Counter()
    for entry in log.read_text().splitlines():
        what, key = entry.split(" ", 1)
        (attempts if what == "attempt" else delivered)[key] += 1
    with cardflow.store.open(store_url) as store:
        stages = dict(store.outbox_keys())
        dead = {row.key: row for row in store.dead()}
    assert set(stages) == rows
    assert set(stages.values()) <= {"done", "dead"}
    for key, stage in stages.items():
        if stage == "done":
            # Done exactly once, after fewer than max_attempts real failures.
            assert delivered[key] == 1, key
            assert 1 <= attempts[key] <= max_attempts, key
        else:
            # Dead only after max_attempts reactions that really ran and raised.
            assert delivered[key] == 0, key
            assert attempts[key] == max_attempts == dead[key].attempts, key
            assert "RuntimeError: the reaction to" in dead[key].error
    assert dead, "one key in twenty always fails: some rows must be dead"
