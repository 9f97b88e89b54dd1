"""The outbox in one process, on each engine, with a clock the test moves."""

from __future__ import annotations

import collections
import time
from datetime import UTC, datetime, timedelta

import pytest

import cardflow
import cardflow.store

from . import logs

T0 = datetime(2025, 6, 1, tzinfo=UTC)
REACTIONS = {cardflow.ChangeKind.STATUS.value, cardflow.ChangeKind.SHIPMENT.value}


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """Reacts to every status and to shipment data; fails for the keys in ``failing``."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.seen: list[cardflow.Change] = []
        self.failing = failing

    def _react(self, change: cardflow.Change) -> None:
        self.seen.append(change)
        if change.key in self.failing:
            raise RuntimeError(f"no luck with {change.key}")

    def __getattr__(self, name: str) -> object:
        if name.startswith("on_enter_") or name == "on_shipment":
            return self._react
        raise AttributeError(name)


def _filled(url: str, cards: int = 12) -> tuple[cardflow.store.Store, list[cardflow.Change]]:
    store = cardflow.store.open(url)
    changes: list[cardflow.Change] = []
    for line in logs.log(cards=cards, seed=3):
        if not line.startswith(b"@"):
            changes += [c for c in store.ingest(line).changes if c.kind in REACTIONS]
    return store, changes


def test_each_reaction_gets_the_change_it_was_made_from(store_url: str) -> None:
    store, changes = _filled(store_url)
    with store:
        recorder = Recorder()
        clock = Clock()
        assert store.dispatch(recorder, limit=10_000, now=clock) == len(changes)
        by_key = {c.key: c for c in changes}
        assert len(by_key) == len(changes)
        known = [c for c in changes if c.kind == "SHIPMENT" or store.lifecycle.is_known(c.status)]
        assert sorted(c.key for c in recorder.seen) == sorted(c.key for c in known)
        for change in recorder.seen:
            assert change == by_key[change.key]
        assert store.outbox_counts() == {"done": len(changes)}
        assert store.dispatch(recorder, now=clock) == 0


def test_a_failing_reaction_backs_off_then_dies_then_is_requeued(store_url: str) -> None:
    store, changes = _filled(store_url, cards=3)
    with store:
        victim = changes[0].key
        recorder = Recorder(failing=frozenset({victim}))
        clock = Clock()

        def backoff(attempts: int) -> timedelta:
            return timedelta(minutes=attempts)

        done = store.dispatch(recorder, limit=1000, now=clock, max_attempts=3, backoff=backoff)
        assert done == len(changes) - 1
        assert store.outbox_counts() == {"done": done, "pending": 1}
        # Not due before its backoff ends (1 minute after the first attempt).
        clock.now += timedelta(seconds=59)
        assert store.dispatch(recorder, now=clock, max_attempts=3, backoff=backoff) == 0
        assert [c.key for c in recorder.seen].count(victim) == 1
        clock.now += timedelta(seconds=1)
        store.dispatch(recorder, now=clock, max_attempts=3, backoff=backoff)
        assert [c.key for c in recorder.seen].count(victim) == 2
        clock.now += timedelta(minutes=2)
        store.dispatch(recorder, now=clock, max_attempts=3, backoff=backoff)
        assert [c.key for c in recorder.seen].count(victim) == 3
        [dead] = store.dead()
        assert (dead.key, dead.attempts, dead.parked_at) == (victim, 3, clock.now)
        assert "RuntimeError: no luck with" in dead.error
        clock.now += timedelta(days=1)
        assert store.dispatch(recorder, now=clock) == 0  # dead rows stay parked
        recorder.failing = frozenset()
        assert store.requeue([dead.id, 10**9]) == 1
        assert store.requeue([dead.id]) == 0
        assert store.dispatch(recorder, now=clock.now) == 1
        assert store.dead() == []
        assert store.outbox_counts() == {"done": len(changes)}


def test_a_held_lease_keeps_other_dispatchers_off(store_url: str) -> None:
    store, changes = _filled(store_url, cards=4)
    other = cardflow.store.open(store_url)
    clock = Clock()
    lease = timedelta(seconds=30)
    ran: list[str] = []
    inside: list[int] = []

    class Intruding(Recorder):
        """While running its first row, another dispatcher tries the same rows."""

        def _react(self, change: cardflow.Change) -> None:
            ran.append(change.key)
            if len(ran) == 1:
                # Within the lease: nothing for the other dispatcher.
                inside.append(other.dispatch(Recorder(), limit=1000, now=clock, lease=lease))
                # The lease is over: the other takes every row not done, this one too.
                clock.now += lease
                inside.append(other.dispatch(Recorder(), limit=1000, now=clock, lease=lease))

    with store, other:
        first = store.dispatch(Intruding(), limit=1000, now=clock, lease=lease)
        # The owner ran the first row only; the others, which the other dispatcher
        # claimed once their claim's lease ended, it left alone. The first outlived its
        # lease with no renewal (the clock jumped, as for a dispatcher frozen that
        # long): the other ran it again (the idempotency key is how a reaction
        # tells), and only the other marked it.
        assert first == 0
        assert inside == [0, len(changes)]
        assert ran == [ran[0]]
        assert store.outbox_counts() == {"done": len(changes)}


def test_a_row_whose_dispatcher_stopped_is_taken_again_then_parked(store_url: str) -> None:
    store, _ = _filled(store_url, cards=1)
    clock = Clock()
    stopped: list[str] = []

    class Stop(BaseException):
        """A dispatcher that stops while it holds a row (as if killed)."""

    class Stopping:
        def __getattr__(self, name: str) -> object:
            def stop(change: cardflow.Change) -> None:
                stopped.append(change.key)
                raise Stop

            return stop

    with store:
        for _ in range(2):
            with pytest.raises(Stop):
                store.dispatch(Stopping(), limit=1, now=clock, max_attempts=2)
            # Claimed, and the lease holds: the others go, not this one.
            recorder = Recorder()
            store.dispatch(recorder, limit=1000, now=clock, max_attempts=2)
            assert stopped[-1] not in [c.key for c in recorder.seen]
            clock.now += timedelta(minutes=1)
        assert stopped == [stopped[0]] * 2
        # Both attempts used up by stopped dispatchers: parked, not run a third time.
        recorder = Recorder()
        assert store.dispatch(recorder, limit=1000, now=clock, max_attempts=2) == 0
        assert recorder.seen == []
        [dead] = store.dead()
        assert dead.key == stopped[0]
        assert "dispatcher stopped" in dead.error


def test_a_row_failed_under_a_higher_max_attempts_is_parked_with_its_last_error(
    store_url: str,
) -> None:
    store, changes = _filled(store_url, cards=1)
    victim = changes[0].key
    clock = Clock()
    with store:
        # Two failures under a dispatcher that allows three attempts: retried twice.
        for _ in range(2):
            store.dispatch(Recorder(failing=frozenset({victim})), now=clock, max_attempts=3)
            clock.now += timedelta(hours=1)
        # A dispatcher allowing two finds none left: parked, without running it, and the
        # reason says so and keeps the failure, not a stopped dispatcher alone.
        recorder = Recorder()
        store.dispatch(recorder, now=clock, max_attempts=2)
        assert victim not in [c.key for c in recorder.seen]
        [dead] = store.dead()
        assert dead.key == victim
        assert "2 made, at most 2 allowed" in dead.error
        assert dead.error.rstrip().endswith(f"RuntimeError: no luck with {victim}")


def test_reactions_slower_than_the_lease_shared_by_the_claim_are_never_parked(
    store_url: str,
) -> None:
    store, changes = _filled(store_url, cards=12)
    other = cardflow.store.open(store_url)
    clock = Clock()
    lease = timedelta(seconds=10)
    ran: collections.Counter[str] = collections.Counter()
    taken: list[int] = []

    class Slow(Recorder):
        """Each reaction takes 2 s of the clock: more than the lease over the batch."""

        def _react(self, change: cardflow.Change) -> None:
            ran[change.key] += 1
            clock.now += timedelta(seconds=2)
            if ran.total() == 8:
                # Meanwhile another dispatcher claims the rows whose claim has lapsed.
                fast = Recorder()
                taken.append(other.dispatch(fast, limit=5, now=clock, lease=lease, max_attempts=2))
                ran.update(c.key for c in fast.seen)

    with store, other:
        for _ in range(20):
            store.dispatch(Slow(), limit=50, now=clock, lease=lease, max_attempts=2)
            if "pending" not in store.outbox_counts():
                break
        assert [row.error for row in store.dead()] == []
        known = [c for c in changes if c.kind == "SHIPMENT" or store.lifecycle.is_known(c.status)]
        # Every reaction ran once: none was parked unrun, none ran in both dispatchers.
        assert ran == collections.Counter(c.key for c in known)
        assert taken == [5]
        assert store.outbox_counts() == {"done": len(changes)}


def test_the_lease_of_a_running_reaction_is_renewed_while_it_runs(store_url: str) -> None:
    store, _ = _filled(store_url, cards=1)
    other = cardflow.store.open(store_url)
    lease = timedelta(seconds=0.3)
    ran: list[str] = []
    meanwhile: list[int] = []

    class Slow(Recorder):
        """The first reaction outlives its lease twice over; then another dispatcher
        tries every row (on the system clock, as the store's)."""

        def _react(self, change: cardflow.Change) -> None:
            ran.append(change.key)
            if len(ran) == 1:
                time.sleep(0.6)
                seen = Recorder()
                meanwhile.append(other.dispatch(seen, limit=1, lease=lease))
                ran.extend(c.key for c in seen.seen)

    with store, other:
        store.dispatch(Slow(), limit=1, lease=lease)
        # The other took the next row, not the one still running.
        assert meanwhile == [1]
        assert len(ran) == len(set(ran))
        # The thread that renewed the lease closed its connection as it ended: a
        # dispatcher that runs for months opens no connection per call.
        assert len(store._connections) == 1
