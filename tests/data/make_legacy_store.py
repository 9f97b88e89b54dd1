"""Make ``legacy-store-v1.db``: a small SQLite store written by cardflow's schema 1.

Run once, with the release whose schema is 1, and committed with its output, so that
every later version's tests open a database that an older release really wrote
(tests/store/test_legacy.py): its migrations must keep what it holds. Never run it
again with a later version (that would test nothing); a new schema version gets a
file of its own, made by the release before it.

``python tests/data/make_legacy_store.py``: writes ``legacy-store-v1.db`` (8
cards of simulated D1 traffic, some of it read as on-demand statuses, one body with a
rejected operation, outbox rows done, pending and dead) and ``legacy-store-v1.json``,
what the release read back from it: the tests compare a later version's view with it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cardflow
import cardflow.store
from cardflow._simulate import simulate

HERE = Path(__file__).parent
DB = HERE / "legacy-store-v1.db"
SIDECAR = HERE / "legacy-store-v1.json"
READ_AT = datetime(2025, 3, 1, tzinfo=UTC)
DISPATCHED_AT = datetime(2025, 3, 2, tzinfo=UTC)
BAD = b"""{"operations": [{"operationId": "op-bad", "operation": "PRODUCE",
  "status": "PENDING", "startTime": "not a time", "cardId": "c-bad",
  "details": {"status": "CARD_PROD_READY"}}]}"""


class Reactions:
    """Succeeds, except for the shipment reactions of one card: parked dead."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    def on_enter_CARD_SHIPPED(self, change: cardflow.Change) -> None:  # noqa: N802
        if change.card_id == self.failing:
            raise RuntimeError(f"the carrier refused card {change.card_id}")

    def on_shipment(self, change: cardflow.Change) -> None:
        self.on_enter_CARD_SHIPPED(change)


def make() -> None:
    for path in (DB, Path(f"{DB}-wal"), Path(f"{DB}-shm")):
        path.unlink(missing_ok=True)
    bodies = list(simulate(8, 4))
    with cardflow.store.open(f"sqlite:///{DB}") as store:
        assert store.schema_version() == 1, "run this with the release whose schema is 1"
        cut = 2 * len(bodies) // 3
        for index, body in enumerate(bodies):
            if index == cut:
                # What the dispatcher did so far: done rows and one card's parked dead;
                # the rest of the bodies leave pending rows.
                failing = sorted(s.card_id for s in store.states(status="CARD_SHIPPED"))[0]
                store.dispatch(Reactions(failing), limit=1000, max_attempts=1, now=DISPATCHED_AT)
            store.ingest(body)
            if index % 9 == 4:
                store.reconcile(body, READ_AT + timedelta(minutes=index))
        store.ingest(BAD)
        names = ("id", "key", "kind", "card_id", "operation_id", "status", "stage", "attempts")
        reader = sqlite3.connect(DB)
        rows = reader.execute(f"SELECT {', '.join(names)} FROM outbox ORDER BY id").fetchall()
        reader.close()
        outbox = [dict(zip(names, row, strict=True)) for row in rows]
        cards = {}
        for state in store.states():
            events = store.events(state.card_id)
            cards[state.card_id] = {
                "state": cardflow.encode_state(state).hex(),
                "status": state.status,
                "events": [
                    [
                        e.id,
                        hashlib.sha256(cardflow.encode([e.operation])).hexdigest()[:16],
                        None if e.read_at is None else e.read_at.isoformat(),
                    ]
                    for e in events
                ],
            }
        rejects = [
            {"index": r.index, "path": r.path, "reason": r.reason, "raw": r.raw.decode()}
            for r in store.rejects()
        ]
        summary = {
            "made_by": cardflow.__version__,
            "schema_version": store.schema_version(),
            "state_format_version": cardflow.STATE_FORMAT_VERSION,
            "event_count": store.event_count(),
            "counts": store.counts(),
            "outbox_counts": store.outbox_counts(),
            "outbox": outbox,
            "rejects": rejects,
            "cards": cards,
        }
    # One self-contained file: no -wal beside it, no free pages.
    connection = sqlite3.connect(DB, isolation_level=None)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("PRAGMA page_size=1024")
    connection.execute("VACUUM")
    connection.close()
    SIDECAR.write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    print(f"{DB}: {DB.stat().st_size} bytes, {summary['event_count']} events", file=sys.stderr)


if __name__ == "__main__":
    make()
