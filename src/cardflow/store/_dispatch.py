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
    keeper = _Keeper(transaction, release, owner, lease, clock)
    done = 0
    try:
        for row in _until(waiting, stop):
            done += _run(
                transaction,
                lifecycle,
                reactions,
                row,
                owner,
                keeper,
                lease,
                max_attempts,
                clock,
                backoff,
            )
    finally:
        keeper.close()
        rest = [row.id for row in waiting]
        if rest:
            # Nothing of these ran: give them back rather than leave them to their lease.
            with suppress(StoreUnavailable), transaction() as tx:
                _outbox.give_back(tx, rest, owner)
    return done


def _until(
    rows: Iterator[_outbox.Claimed], stop: threading.Event | None
) -> Iterator[_outbox.Claimed]:
    """The rows one by one, until ``stop`` is set (checked before each)."""
    while stop is None or not stop.is_set():
        row = next(rows, None)
        if row is None:
            return
        yield row


def _run(
    transaction: Transaction,
    lifecycle: Lifecycle,
    reactions: object,
    row: _outbox.Claimed,
    owner: str,
    keeper: _Keeper,
    lease: timedelta,
    max_attempts: int,
    clock: Callable[[], datetime],
    backoff: Callable[[int], timedelta],
) -> int:
    """Start one claimed row and run its reaction; 1 when it is done, else 0."""
    try:
        change = _outbox.change_of(row)
    except ValueError as exc:
        with transaction() as tx:
            parked = _outbox.park(tx, row.id, owner, f"{exc}", micros(clock()))
        if parked:
            _report(row, "dead", f"outbox row {row.id} ({row.key}) parked dead: {exc}")
        return 0
    with transaction() as tx:
        until = micros(clock() + lease)
        attempt = _outbox.start(tx, row.id, owner, until, max_attempts)
        if attempt is None:
            held = _outbox.hold(tx, row.id, owner, until)
            if held is None:
                return 0  # its claim's lease ended and another dispatcher took it
            error = (
                f"its dispatcher stopped during attempt {held} (the lease expired), and no"
                " attempt is left"
            )
            _outbox.park(tx, row.id, owner, error, micros(clock()))
    if attempt is None:
        _report(row, "dead", f"the reaction to {row.key} parked dead: {error}")
        return 0
    keeper.follow(row.id)
    try:
        _outbox.fire(reactions, change, lifecycle)
    except Exception as exc:
        keeper.follow(None)
        text = _outbox.error_text(exc)
        moment = clock()
        last = (text.strip().splitlines() or [""])[-1]
        with transaction() as tx:
            if attempt >= max_attempts:
                _outbox.park(tx, row.id, owner, text, micros(moment))
                outcome = "dead"
                what = "parked dead"
            else:
                later = moment + backoff(attempt)
                _outbox.retry(tx, row.id, owner, text, micros(later))
                outcome = "retried"
                what = f"due again at {later.isoformat()}"
        _report(
            row,
            outcome,
            f"the reaction to {row.key} failed (attempt {attempt} of {max_attempts}),"
            f" {what}: {last}",
        )
        return 0
    keeper.follow(None)
    with transaction() as tx:
        return 1 if _outbox.settle(tx, row.id, owner, micros(clock())) else 0


def _report(row: _outbox.Claimed, outcome: str, message: str) -> None:
    LOGGER.log(
        logging.ERROR if outcome == "dead" else logging.WARNING,
        "%s",
        message,
        extra={"outcome": outcome, "key": row.key, "row": row.id},
    )
