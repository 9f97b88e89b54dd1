"""The dispatch loop: claim due outbox rows, then run them one by one, each exactly once
unless its dispatcher dies while the reaction runs.

A claim takes up to ``limit`` rows under a lease and counts no attempt. A row's turn
starts with a transaction that counts the attempt and moves the lease to follow it
(``lease`` from now); while its reaction runs, a thread of this dispatcher renews that
lease every third of it, so that a reaction slower than the lease is never taken by
another dispatcher. A claimed row whose turn comes after its claim's lease ended is
still run if no other dispatcher took it meanwhile (its owner is still this one), and
left alone otherwise: neither costs an attempt. So an attempt is spent only by a
reaction that ran and raised, or by a dispatcher that died while running it (its
lease then expires and the next claim takes the row, which finds the attempt
counted); a row is parked dead after ``max_attempts`` of those. A row that does not
decode is parked at once with the reason, and costs the others nothing. Rows claimed
and not started are given back when the loop stops early (``stop``, or an exception).
A row's outcome (done, due again, dead) is written in the transaction that starts the
next row, so that a row costs one transaction, as many as before attempts were counted
at its start.

Each failure is logged to the ``cardflow.dispatch`` logger as it happens (WARNING for a
retry, ERROR for a row parked), with ``outcome`` (``"retried"`` or ``"dead"``), ``key``
and ``row`` among the record's attributes.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, suppress
from datetime import datetime, timedelta
from typing import Final

from .._errors import StoreUnavailable
from .._lifecycle import Lifecycle
from .._step import Change
from . import _outbox
from ._outbox import micros
from ._schema import Tx

__all__ = ["LOGGER", "dispatch"]

LOGGER: Final = logging.getLogger("cardflow.dispatch")
"""Where each failed reaction and each parked row is reported as it happens."""

Transaction = Callable[[], AbstractContextManager[Tx]]


class _Keeper:
    """A thread that renews the lease of the row being run, every third of the lease."""

    def __init__(
        self,
        transaction: Transaction,
        release: Callable[[], None],
        owner: str,
        lease: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self._transaction = transaction
        self._release = release
        self._owner = owner
        self._lease = lease
        self._clock = clock
        self._row: int | None = None
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def follow(self, row: int | None) -> None:
        """Renew ``row``'s lease from now on (None: no row)."""
        with self._lock:
            self._row = row
        if row is not None and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="cardflow-dispatch-lease", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        interval = max(self._lease.total_seconds() / 3, 0.001)
        try:
            while not self._stopped.wait(interval):
                with self._lock:
                    row = self._row
                if row is None:
                    continue
                # A renewal that fails is tried again at the next interval; the lease
                # holds until then.
                with suppress(Exception), self._transaction() as tx:
                    _outbox.hold(tx, row, self._owner, micros(self._clock() + self._lease))
        finally:
            self._release()  # this thread's connection, if it opened one

    def close(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()


def dispatch(
    transaction: Transaction,
    release: Callable[[], None],
    lock: str,
    lifecycle: Lifecycle,
    reactions: object,
    *,
    limit: int,
    lease: timedelta,
    max_attempts: int,
    clock: Callable[[], datetime],
    backoff: Callable[[int], timedelta],
    stop: threading.Event | None,
) -> int:
    """``Store.dispatch`` (see it), over the store's ``transaction`` (``release`` closes the
    calling thread's connection); how many were done."""
    if limit < 1 or max_attempts < 1 or lease <= timedelta(0):
        raise ValueError(
            f"Store.dispatch: limit ({limit}) and max_attempts ({max_attempts}) must be at"
            f" least 1 and the lease ({lease}) longer than nothing"
        )
    owner = uuid.uuid4().hex
    begun = clock()
    with transaction() as tx:
        claimed = _outbox.claim(tx, lock, owner, micros(begun), micros(begun + lease), limit)
    waiting = iter(claimed)
    run = _Run(transaction, owner, lease, max_attempts, clock, backoff)
    keeper = _Keeper(transaction, release, owner, lease, clock)
    try:
        for row in _until(waiting, stop):
            change = run.start(row, lifecycle)
            if change is None:
                continue
            keeper.follow(row.id)
            try:
                _outbox.fire(reactions, change, lifecycle)
            except Exception as exc:
                keeper.follow(None)
                run.failed(row, exc)
            else:
                keeper.follow(None)
                run.succeeded(row)
    finally:
        keeper.close()
        # The last row's outcome, and the rows not started given back (rather than
        # left to their lease).
        rest = [row.id for row in waiting]
        with suppress(StoreUnavailable), transaction() as tx:
            run.finish(tx)
            if rest:
                _outbox.give_back(tx, rest, owner)
    return run.done


def _until(
    rows: Iterator[_outbox.Claimed], stop: threading.Event | None
) -> Iterator[_outbox.Claimed]:
    """The rows one by one, until ``stop`` is set (checked before each)."""
    while stop is None or not stop.is_set():
        row = next(rows, None)
        if row is None:
            return
        yield row


class _Run:
    """One claim's rows, started one by one. A row's outcome (done, due again, dead) is
    written in the transaction that starts the next row (or the last one): one
    transaction per row."""

    def __init__(
        self,
        transaction: Transaction,
        owner: str,
        lease: timedelta,
        max_attempts: int,
        clock: Callable[[], datetime],
        backoff: Callable[[int], timedelta],
    ) -> None:
        self.transaction = transaction
        self.owner = owner
        self.lease = lease
        self.max_attempts = max_attempts
        self.clock = clock
        self.backoff = backoff
        self.done = 0
        self.attempt = 0
        self._outcome: Callable[[Tx], None] | None = None

    def finish(self, tx: Tx) -> None:
        """Write the outcome of the row run last, if not yet written."""
        outcome, self._outcome = self._outcome, None
        if outcome is not None:
            outcome(tx)

    def start(self, row: _outbox.Claimed, lifecycle: Lifecycle) -> Change | None:
        """Start a row: count its attempt and hold it for a lease; its change, or None
        when it is not to run (not this dispatcher's any more, no attempt left, or a
        row that does not decode: those two are parked)."""
        try:
            change = _outbox.change_of(row, lifecycle)
        except ValueError as exc:
            with self.transaction() as tx:
                self.finish(tx)
                parked = _outbox.park(tx, row.id, self.owner, f"{exc}", micros(self.clock()))
            if parked:
                _report(row, "dead", f"outbox row {row.id} ({row.key}) parked dead: {exc}")
            return None
        with self.transaction() as tx:
            self.finish(tx)
            until = micros(self.clock() + self.lease)
            attempt = _outbox.start(tx, row.id, self.owner, until, self.max_attempts)
            if attempt is None:
                held = _outbox.hold(tx, row.id, self.owner, until)
                if held is None:
                    return None  # its claim's lease ended and another dispatcher took it
                error = _no_attempt_left(held, self.max_attempts, _outbox.error_of(tx, row.id))
                _outbox.park(tx, row.id, self.owner, error, micros(self.clock()))
        if attempt is None:
            _report(row, "dead", f"the reaction to {row.key} parked dead: {error}")
            return None
        self.attempt = attempt
        return change

    def succeeded(self, row: _outbox.Claimed) -> None:
        moment = micros(self.clock())

        def settle(tx: Tx) -> None:
            if _outbox.settle(tx, row.id, self.owner, moment):
                self.done += 1

        self._outcome = settle

    def failed(self, row: _outbox.Claimed, exc: Exception) -> None:
        text = _outbox.error_text(exc)
        moment = self.clock()
        attempt = self.attempt
        last = (text.strip().splitlines() or [""])[-1]
        if attempt >= self.max_attempts:
            outcome, what = "dead", "parked dead"

            def write(tx: Tx) -> None:
                _outbox.park(tx, row.id, self.owner, text, micros(moment))
        else:
            later = moment + self.backoff(attempt)
            outcome, what = "retried", f"due again at {later.isoformat()}"

            def write(tx: Tx) -> None:
                _outbox.retry(tx, row.id, self.owner, text, micros(later))

        self._outcome = write
        _report(
            row,
            outcome,
            f"the reaction to {row.key} failed (attempt {attempt} of {self.max_attempts}),"
            f" {what}: {last}",
        )


def _no_attempt_left(made: int, allowed: int, last_error: str | None) -> str:
    """Why a row is parked before it runs: its attempts are used up, though the last
    one recorded no failure here. Either its dispatcher stopped in it (the lease
    expired), or dispatchers allowing more attempts than this one failed it before;
    the error they recorded, if any, is kept."""
    error = (
        f"no attempt is left ({made} made, at most {allowed} allowed by this dispatcher):"
        " the last one's dispatcher stopped before recording an outcome (its lease"
        " expired), or dispatchers allowing more attempts ran it"
    )
    return error if last_error is None else f"{error}; the last error recorded:\n{last_error}"


def _report(row: _outbox.Claimed, outcome: str, message: str) -> None:
    LOGGER.log(
        logging.ERROR if outcome == "dead" else logging.WARNING,
        "%s",
        message,
        extra={"outcome": outcome, "key": row.key, "row": row.id},
    )
