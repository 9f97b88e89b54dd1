"""The receiver's metrics, in Prometheus' text format (``prometheus-client``).

Counters and a histogram count what the receiver did with each body; gauges read the
store (outbox rows by stage, cards that need a reconcile, by reason), at most once
per ``ttl`` seconds, so that a scrape never scans a large store twice in a row.

Under ``cardflow serve`` the workers are separate processes: ``serve`` gives them a
directory in ``PROMETHEUS_MULTIPROC_DIR``, each writes its counts there (client's
multiprocess mode), and ``/metrics``, whichever worker answers it, sums them all. A
receiver mounted in a process of its own keeps its counts in a registry of its own.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Final, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from .._cardstate import CardState
from .._errors import StoreUnavailable
from .._reconcile import ReconcileReason, needs_reconcile

__all__ = [
    "BODY_OUTCOMES",
    "CONTENT_TYPE",
    "OPERATION_OUTCOMES",
    "GaugeStore",
    "ReceiverMetrics",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR: Final = "PROMETHEUS_MULTIPROC_DIR"

BODY_OUTCOMES: Final = (
    "stored",
    "duplicate",
    "rejected",
    "too_large",
    "too_slow",
    "unavailable",
    "unauthorized",
    "unknown_issuer",
)
"""``cardflow_bodies_total{outcome}``: stored (something new committed), duplicate
(committed, every operation already stored), rejected (400: not a D1 envelope),
too_large (413), too_slow (408), unavailable (503: the store failed), unauthorized
(401), unknown_issuer (404)."""

OPERATION_OUTCOMES: Final = ("stored", "duplicate", "rejected", "passed_over")
"""``cardflow_operations_total{outcome}``, over the committed bodies: PRODUCE events
stored now, already stored, operations rejected (kept in the rejects table), and
operations of other types (passed over)."""

_STAGES: Final = ("pending", "done", "dead")
_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@runtime_checkable
class GaugeStore(Protocol):
    """What the gauges read of a store (:class:`cardflow.store.Store` has it)."""

    def outbox_counts(self) -> dict[str, int]:
        """Outbox rows by stage."""

    def states(
        self,
        status: str | None = None,
        needs_reconcile_at: datetime | None = None,
    ) -> Iterator[CardState]:
        """The stored states that need a reconcile at ``needs_reconcile_at``."""


class _StoreGauges:
    """A collector of the store's gauges, from a reading at most ``ttl`` seconds old."""

    def __init__(self, store: GaugeStore, ttl: float, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._read_at = -float("inf")
        self._families: list[Metric] = []

    def refresh(self) -> None:
        """Read the store again if the last reading is older than ``ttl`` (blocking)."""
        with self._lock:
            if time.monotonic() - self._read_at < self._ttl:
                return
            self._families = self._read()
            self._read_at = time.monotonic()

    def _read(self) -> list[Metric]:
        up = GaugeMetricFamily("cardflow_store_up", "Whether the store answered the last reading.")
        try:
            stages = dict.fromkeys(_STAGES, 0) | self._store.outbox_counts()
            reasons: dict[str, int] = dict.fromkeys((r.value for r in ReconcileReason), 0)
            now = self._clock()
            for state in self._store.states(needs_reconcile_at=now):
                for reason in needs_reconcile(state, now):
                    reasons[reason.value] += 1
        except StoreUnavailable:
            up.add_metric([], 0)
            return [up]
        up.add_metric([], 1)
        outbox = GaugeMetricFamily(
            "cardflow_outbox_rows", "Outbox rows (reactions) by stage.", labels=["stage"]
        )
        for stage, n in sorted(stages.items()):
            outbox.add_metric([stage], n)
        cards = GaugeMetricFamily(
            "cardflow_cards",
            "Stored cards that need a reconcile, by reason (a card may have several).",
            labels=["reason"],
        )
        for name, n in sorted(reasons.items()):
            cards.add_metric([name], n)
        return [up, outbox, cards]

    def collect(self) -> list[Metric]:
        return list(self._families)


class ReceiverMetrics:
    """The receiver's counters and histogram, and the exposition of them (and of the
    store's gauges, when the store has them)."""

    def __init__(
        self,
        store: object,
        *,
        ttl: float = 5.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # Shared only if prometheus-client was first imported with the directory named
        # (it picks how values are kept then); else this process counts on its own.
        shared = bool(os.environ.get(MULTIPROCESS_DIR)) and values.ValueClass is not (
            values.MutexValue
        )
        own = CollectorRegistry()
        where = None if shared else own
        self.bodies = Counter(
            "cardflow_bodies", "Notification bodies, by outcome.", ["outcome"], registry=where
        )
        self.operations = Counter(
            "cardflow_operations",
            "Operations of committed bodies, by outcome.",
            ["outcome"],
            registry=where,
        )
        self.ingest_seconds = Histogram(
            "cardflow_ingest_seconds",
            "Seconds from a body received whole to its commit.",
            buckets=_BUCKETS,
            registry=where,
        )
        for outcome in BODY_OUTCOMES:  # every series from the start, at 0
            self.bodies.labels(outcome)
        for outcome in OPERATION_OUTCOMES:
            self.operations.labels(outcome)
        if shared:
            MultiProcessCollector(own)  # type: ignore[no-untyped-call]
        self._registry = own
        self._gauges = None
        if isinstance(store, GaugeStore):
            self._gauges = _StoreGauges(store, ttl, clock)
            own.register(self._gauges)

    def refresh(self) -> None:
        """Read the store's gauges if they are stale (blocking: run it in a thread)."""
        if self._gauges is not None:
            self._gauges.refresh()

    def exposition(self) -> bytes:
        """Every metric, in Prometheus' text format (summed over the workers)."""
        return generate_latest(self._registry)
