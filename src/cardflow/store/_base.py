"""What both engines share: the store's interface and every algorithm over it.

An engine (``_sqlite.py``, ``_postgres.py``) provides connections, transactions and
a few spellings, kept by ``Engine`` (``_engine.py``, with the schema's upgrades);
everything else is written once, with SQL that is the same text on both: the reads
and the entry points here, a body's transaction in ``_ingest.py``, rebuild in
``_rebuild.py``, the dispatch loop in ``_dispatch.py``, the outbox's statements in
``_outbox.py``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from .._cardstate import CardState
from .._decode import Body, Decoded, Reject
from .._errors import InvalidNotification, NewerStateError, StoreUnavailable
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from .._reconcile import (
    DEFAULT_OVERDUE_MARGIN,
    DEFAULT_SILENCE,
    needs_reconcile,
)
from .._tables import tables_for
from .._wire import Operation
from . import _dispatch, _outbox
from ._engine import Engine
from ._history import HistoryEvent, history
from ._ingest import Conflict, Ingested, Prepared, commit, prepare
from ._outbox import DeadRow, micros
from ._rebuild import DEFAULT_BATCH, Rebuilder, RebuildResult
from ._states import Known
from ._unreadable import Unreadable, log, read_or_derive, read_state

__all__ = ["Store", "StoredEvent"]

_TRIES: Final = 200
_PAGE: Final = 1000
_operation_decoder: Final = msgspec.msgpack.Decoder(Operation)


def _now() -> datetime:
    return datetime.now(UTC)


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    """An event as the store keeps it: its number in the order events were stored, the
    operation, and the time it was read from D1's on-demand status (None for a
    notification)."""

    id: int
    operation: Operation
    read_at: datetime | None


class Store(Engine):
    """A durable store of card states, events, reactions and rejects (``docs/store.md``).

    Open one with :func:`cardflow.store.open`. Safe from several threads (each uses a
    connection of its own) and several processes (the database arbitrates); a process
    that forks opens new connections. ``passed``: reactions as ``Tracker(passed=True)``
    computes them; every process writing to one database must agree on it.
    """

    skip_locked: str = ""
    """What a claim's inner select adds to pass rows another claim holds."""

    def __init__(self, url: str, *, lifecycle: Lifecycle = D1_LIFECYCLE, passed: bool = False):
        self.lifecycle = lifecycle
        self.passed = passed
        self._known = Known()
        self._tables = tables_for(lifecycle).session()
        super().__init__(url)

    # -- ingestion -----------------------------------------------------------------------

    def ingest(self, body: Body) -> Ingested:
        """Store one D1 notification body, in one transaction; what it changed.

        Bad operations are kept as rejects and cost nothing to the good ones; a body
        that is not a D1 envelope commits nothing and raises ``InvalidNotification``.
        ``StoreUnavailable`` when the database fails: nothing was committed.
        """
        return self._ingest(body, None)

    def reconcile(self, body: Body, at: datetime, *, card_id: str | None = None) -> Ingested:
        """Store D1's on-demand status of a card (a productionstatus response) read at
        ``at``: an authoritative reading that also confirms its operation
        (``docs/semantics.md``). Otherwise as ``ingest``.

        ``card_id``: the card that was asked about. An operation of any other card in
        the answer is recorded as a reject with the reason, never applied nor
        confirmed: an answer about one card is no evidence about another.
        """
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError("Store.reconcile: `at` must be timezone-aware")
        return self._commit([prepare(body, at.astimezone(UTC), card_id)])[0]

    def ingest_many(
        self, bodies: Iterable[Body | Decoded | tuple[Body | Decoded, datetime]]
    ) -> list[Ingested]:
        """Store many bodies in one transaction (each a body, or a pair of an on-demand
        status and the time it was read): all or none, and the same result as storing
        them one by one in their order. Much faster than one transaction per body where
        a caller has many at hand (``cardflow fold --db``). A body may come already
        decoded (``cardflow.decode_lenient``, ``decode_reading``). A body that is not a
        D1 envelope raises ``InvalidNotification`` before anything is written."""
        prepared = []
        for item in bodies:
            if isinstance(item, tuple):
                body, at = item
                if at.tzinfo is None or at.utcoffset() is None:
                    raise ValueError("Store.ingest_many: reading times must be timezone-aware")
                prepared.append(prepare(body, at.astimezone(UTC)))
            else:
                prepared.append(prepare(item, None))
        return self._commit(prepared)

    def ingest_each(
        self, bodies: Sequence[Body]
    ) -> list[Ingested | InvalidNotification | StoreUnavailable]:
        """Store bodies that arrived together, each on its own: what each did, or the
        error it alone met (``InvalidNotification`` for a body that is not a D1
        envelope, ``StoreUnavailable``), in their order.

        The good bodies share one transaction, with the result of storing them one by
        one; should it fail, each is tried alone, so that a body never fails the others
        (once two in a row fail alone too, the database is taken to be down and the rest
        fail with them). Nothing is returned for a body before its transaction committed.
        """
        out: list[Ingested | InvalidNotification | StoreUnavailable] = []
        good: list[int] = []
        prepared: list[Prepared] = []
        for index, body in enumerate(bodies):
            try:
                prepared.append(prepare(body, None))
            except InvalidNotification as exc:
                out.append(exc)
                continue
            out.append(StoreUnavailable(f"{self._where()}: not stored"))
            good.append(index)
        if not prepared:
            return out
        try:
            for index, done in zip(good, self._commit(prepared), strict=True):
                out[index] = done
            return out
        except StoreUnavailable as exc:
            if len(prepared) == 1:
                out[good[0]] = exc
                return out
            failed = exc
        down = 0
        for index, one in zip(good, prepared, strict=True):
            if down >= 2:
                out[index] = failed
                continue
            try:
                out[index] = self._commit([one])[0]
                down = 0
            except StoreUnavailable as exc:
                out[index] = failed = exc
                down += 1
        return out

    def _ingest(self, body: Body, at: datetime | None) -> Ingested:
        return self._commit([prepare(body, at)])[0]

    def _commit(self, prepared: list[Prepared]) -> list[Ingested]:
        for attempt in range(_TRIES):
            try:
                with self._transaction() as tx:
                    done = commit(
                        tx,
                        prepared,
                        now=micros(_now()),
                        lifecycle=self.lifecycle,
                        passed=self.passed,
                        decode=lambda card, blob: read_state(card, blob, self.lifecycle),
                        known=self._known,
                        tables=self._tables,
                    )
            except Conflict:
                time.sleep(random.uniform(0, 0.0005 * min(attempt + 1, 40)))
                continue
            except Unreadable as exc:
                # A stored state this version cannot read: derive it from its events,
                # then store the bodies on it.
                self._rebuilder().repair(exc.card_id, exc.reason, micros(_now()))
                continue
            return [
                Ingested(
                    changes=found,
                    rejects=one.rejects,
                    passed_over=one.passed_over,
                    new=new,
                    duplicates=one.produce - new,
                )
                for one, (found, new) in zip(prepared, done, strict=True)
            ]
        raise StoreUnavailable(
            f"{self._where()}: the transaction met a concurrent change {_TRIES} times"
        )

    def _rebuilder(self) -> Rebuilder:
        return Rebuilder(
            self._transaction, self._hold_events, self.lifecycle, self.passed, self._read_in_bulk
        )

    # -- the event log -------------------------------------------------------------------

    def rebuild(
        self,
        cards: Iterable[str] | None = None,
        *,
        dry_run: bool = False,
        outbox: bool = True,
        batch: int = DEFAULT_BATCH,
        on_batch: Callable[[int, int], None] | None = None,
        on_change: Callable[[str, str], None] | None = None,
    ) -> RebuildResult:
        """Derive every card's state (or those of ``cards``) again from its stored events
        under this store's rules, ``batch`` cards at a time (``docs/store.md``). Safe
        beside writers. ``outbox``: queue the changes from each stored state to its
        rebuilt one under their keys; ``dry_run``: write nothing, count what would
        change; ``on_batch(done, total)`` after each batch, ``on_change(card_id, what)``
        for each changed card."""
        return self._rebuilder().run(
            cards,
            dry_run=dry_run,
            outbox=outbox,
            now=lambda: micros(_now()),
            batch=batch,
            on_batch=on_batch,
            on_change=on_change,
        )

    def history(self, card_id: str) -> list[HistoryEvent]:
        """A card's stored events in the order they were stored, each with when it was
        stored, whether it was a notification or an on-demand reading, and the changes it
        makes when they are replayed in that order: why the card is in its state."""
        with self._transaction(write=False) as tx:
            return history(tx, card_id, self.lifecycle, self.passed)

    # -- reading -------------------------------------------------------------------------

    def get(self, card_id: str) -> CardState | None:
        """The stored state of a card, or None when the store has no event of it."""
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT state FROM states WHERE card_id = ?", (card_id,))
        if not rows:
            return None
        return read_or_derive(self._transaction, self.lifecycle, card_id, bytes(rows[0][0]))

    def states(
        self,
        status: str | Iterable[str] | None = None,
        needs_reconcile_at: datetime | None = None,
    ) -> Iterator[CardState]:
        """The stored states, by card id: only those with ``status`` (one or several)
        and, with ``needs_reconcile_at``, only those that ``needs_reconcile`` at that
        time (default margins). Read a page at a time from the states table."""
        wanted = [status] if isinstance(status, str) else None if status is None else [*status]
        where: list[str] = []
        params: list[object] = []
        if wanted is not None:
            if not wanted:
                return
            where.append(f"status IN ({','.join('?' * len(wanted))})")
            params += wanted
        if needs_reconcile_at is not None:
            now = needs_reconcile_at
            if now.tzinfo is None or now.utcoffset() is None:
                raise ValueError("Store.states: `needs_reconcile_at` must be timezone-aware")
            where.append(
                "(flagged = 1 OR (settled = 0 AND ((due_day IS NOT NULL AND due_day < ?)"
                " OR last_heard < ?)))"
            )
            params += [
                now.date().toordinal() - DEFAULT_OVERDUE_MARGIN.days,
                micros(now - DEFAULT_SILENCE),
            ]
        # The first page has no lower bound: an empty card id ("" is a card id D1's
        # wire allows) sorts first and must not be passed over.
        page = f"SELECT card_id, state FROM states WHERE {{}} ORDER BY card_id LIMIT {_PAGE}"
        sql = page.format(" AND ".join(where) or "TRUE")
        following = page.format(" AND ".join(["card_id > ?", *where]))
        bound: list[object] = []
        while True:
            with self._transaction(write=False) as tx:
                rows = tx.rows(sql, [*bound, *params])
            for card, blob in rows:
                try:
                    state = read_or_derive(self._transaction, self.lifecycle, card, bytes(blob))
                except NewerStateError as exc:
                    log.error("Store.states: card %r passed over: %s", card, exc)
                    continue
                if state is None:
                    continue
                if needs_reconcile_at is None or needs_reconcile(
                    state, needs_reconcile_at, lifecycle=self.lifecycle
                ):
                    yield state
            if len(rows) < _PAGE:
                return
            sql, bound = following, [rows[-1][0]]

    def counts(self) -> dict[str, int]:
        """The number of cards by current status."""
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT status, COUNT(*) FROM states GROUP BY status ORDER BY status")
        return {status: int(n) for status, n in rows}

    def events(self, card_id: str) -> list[StoredEvent]:
        """A card's stored events, in the order they were stored."""
        with self._transaction(write=False) as tx:
            rows = tx.rows(
                "SELECT id, event, read_at FROM events WHERE card_id = ? ORDER BY id", (card_id,)
            )
        return [self._event(card_id, int(i), bytes(e), r) for i, e, r in rows]

    def _event(self, card: str, id_: int, blob: bytes, read_at: int | None) -> StoredEvent:
        try:
            operation = _operation_decoder.decode(blob)
        except (msgspec.DecodeError, ValueError) as exc:
            raise StoreUnavailable(
                f"{self._where()}: events row {id_} (card {card!r}) does not decode: {exc};"
                " the database is damaged: restore it from a backup"
            ) from exc
        return StoredEvent(
            id=id_, operation=operation, read_at=None if read_at is None else _outbox.when(read_at)
        )

    def event_count(self) -> int:
        """How many distinct events the store holds."""
        with self._transaction(write=False) as tx:
            return int(tx.rows("SELECT COUNT(*) FROM events")[0][0])

    def rejects(self) -> list[Reject]:
        """The rejected operations kept, oldest first."""
        with self._transaction(write=False) as tx:
            rows = tx.rows("SELECT idx, path, reason, raw FROM rejects ORDER BY id")
        return [Reject(index=i, path=p, reason=r, raw=bytes(raw)) for i, p, r, raw in rows]

    # -- the outbox ----------------------------------------------------------------------

    def dispatch(
        self,
        reactions: object,
        *,
        limit: int = 100,
        lease: timedelta = timedelta(seconds=30),
        max_attempts: int = 5,
        now: Callable[[], datetime] | datetime | None = None,
        backoff: Callable[[int], timedelta] = _outbox.backoff,
        stop: threading.Event | None = None,
    ) -> int:
        """Claim up to ``limit`` due outbox rows and run their reactions; how many were done.

        A row is done only after its reaction returned. An attempt is counted when a
        reaction starts; a reaction that raises is due again after ``backoff(attempts)``,
        and parked as dead after ``max_attempts``. Rows are claimed for ``lease``, and the
        lease of the row being run is renewed while it runs: no other dispatcher runs a
        row this one holds. A row that does not decode is parked with the reason.
        ``stop``: when set, return before starting another row, giving back the rows
        claimed and not started. ``now``: the clock (a callable, or a fixed time); the
        default reads the system clock. Failures are logged (``cardflow.dispatch``).
        """
        clock: Callable[[], datetime]
        if now is None:
            clock = _now
        elif isinstance(now, datetime):
            fixed = now
            clock = lambda: fixed  # noqa: E731
        else:
            clock = now
        return _dispatch.dispatch(
            self._transaction,
            self._release,
            self.skip_locked,
            self.lifecycle,
            reactions,
            limit=limit,
            lease=lease,
            max_attempts=max_attempts,
            clock=clock,
            backoff=backoff,
            stop=stop,
        )

    def dead(self) -> list[DeadRow]:
        """The outbox rows parked as dead, with their error and attempts, oldest first."""
        with self._transaction(write=False) as tx:
            return _outbox.dead_rows(tx)

    def requeue(self, ids: Iterable[int]) -> int:
        """Put dead rows back to pending, due at once with a fresh attempt count; how many
        were dead."""
        with self._transaction() as tx:
            return _outbox.requeue(tx, sorted(set(ids)))

    def outbox_counts(self) -> dict[str, int]:
        """Outbox rows by stage: pending, done, dead."""
        with self._transaction(write=False) as tx:
            return _outbox.stage_counts(tx)

    def outbox_keys(self) -> list[tuple[str, str]]:
        """Every outbox row's (idempotency key, stage), oldest first."""
        with self._transaction(write=False) as tx:
            return [(k, s) for k, s in tx.rows("SELECT key, stage FROM outbox ORDER BY id")]
