"""The bare-SQL floor of the store: the same tables written from precomputed rows.

``precompute`` stores the bodies once (untimed) with ``ingest_many`` in commits of the
size measured, and reads back what each commit wrote: its events, outbox and rejects
rows (a commit's rows share its time), and the final row of each card it touched. The
floor then writes exactly those rows into a new database, one ``executemany`` per
table per commit (sqlite3's loop in C; psycopg 3's pipeline mode), with the same
durability as the store (SQLite: WAL and ``synchronous=full``; PostgreSQL: the
server's own): no decoding, no fold, no key, no read. What the store does beyond
that is the cost of its rules.

``python_floor`` is the other half: the least Python that computes those rows, with
no SQL at all (each body decoded, each event's key, a ``Tracker`` folding the bodies
with their changes, each reaction's key and state encoded, each card's final state
encoded with the columns reads filter on, once per commit). A store in Python pays
both, so ``floor / (floor + python_floor)`` is the share of the bare-SQL floor that
it can reach at best: what bounds ``ingest_many``'s ratio.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import cardflow
import cardflow.store
from cardflow import encode_state
from cardflow._wire import fingerprint
from cardflow.store._rows import REACTIONS, columns

_EVENTS: Final = "key, card_id, operation_id, read_at, event, stored_at"
_STATES: Final = (
    "card_id, version, operation_id, status, operation_status, flagged, settled, due_day,"
    " last_heard, state, updated_at"
)
_OUTBOX: Final = (
    "key, kind, card_id, operation_id, status, previous_status, skipped, observation,"
    " state, stage, attempts, next_at, created_at"
)
_REJECTS: Final = "key, idx, path, reason, raw, stored_at"


@dataclass(frozen=True)
class Commit:
    """The rows one commit wrote."""

    events: list[tuple[Any, ...]]
    states: list[tuple[Any, ...]]
    outbox: list[tuple[Any, ...]]
    rejects: list[tuple[Any, ...]]


def _grouped(rows: list[tuple[Any, ...]]) -> dict[int, list[tuple[Any, ...]]]:
    """Rows by their last column (the time of the commit that wrote them)."""
    out: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        out.setdefault(int(row[-1]), []).append(row)
    return out


def precompute(folder: Path, bodies: Sequence[bytes], per_commit: int) -> list[Commit]:
    """The rows each commit of ``per_commit`` bodies writes."""
    path = folder / "precomputed.db"
    with cardflow.store.open(f"sqlite:///{path}?synchronous=normal") as store:
        for start in range(0, len(bodies), per_commit):
            store.ingest_many(bodies[start : start + per_commit])
    with sqlite3.connect(path) as connection:
        events = _grouped(
            connection.execute(f"SELECT {_EVENTS} FROM events ORDER BY id").fetchall()
        )
        outbox = _grouped(
            connection.execute(f"SELECT {_OUTBOX} FROM outbox ORDER BY id").fetchall()
        )
        rejects = _grouped(
            connection.execute(f"SELECT {_REJECTS} FROM rejects ORDER BY id").fetchall()
        )
        states = {row[0]: row for row in connection.execute(f"SELECT {_STATES} FROM states")}
    path.unlink()
    commits = []
    for moment in sorted(events.keys() | outbox.keys() | rejects.keys()):
        mine = events.get(moment, [])
        cards = sorted({row[1] for row in mine})
        commits.append(
            Commit(
                events=mine,
                states=[states[card] for card in cards if card in states],
                outbox=outbox.get(moment, []),
                rejects=rejects.get(moment, []),
            )
        )
    return commits


def _statements(mark: str) -> list[tuple[str, str]]:
    def insert(table: str, columns: str, tail: str = "") -> str:
        width = len(columns.split(","))
        return f"INSERT INTO {table} ({columns}) VALUES ({','.join([mark] * width)}){tail}"

    update = ", ".join(f"{c} = excluded.{c}" for c in _STATES.split(", ")[1:])
    return [
        ("events", insert("events", _EVENTS)),
        ("states", insert("states", _STATES, f" ON CONFLICT (card_id) DO UPDATE SET {update}")),
        ("outbox", insert("outbox", _OUTBOX)),
        ("rejects", insert("rejects", _REJECTS)),
    ]


def write_sqlite(path: Path, commits: list[Commit]) -> None:
    """The floor on SQLite (the schema already made by ``cardflow.store.open``)."""
    statements = _statements("?")
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        for commit in commits:
            connection.execute("BEGIN IMMEDIATE")
            for table, sql in statements:
                rows = getattr(commit, table)
                if rows:
                    connection.executemany(sql, rows)
            connection.execute("COMMIT")
    finally:
        connection.close()


def write_postgres(url: str, commits: list[Commit]) -> None:
    """The floor on PostgreSQL (the schema already made by ``cardflow.store.open``)."""
    import psycopg

    statements = _statements("%s")
    with psycopg.connect(url, autocommit=True) as connection:
        for commit in commits:
            with connection.transaction(), connection.cursor() as cursor:
                for table, sql in statements:
                    rows = getattr(commit, table)
                    if rows:
                        cursor.executemany(sql.encode(), rows)


def python_floor(bodies: Sequence[bytes], per_commit: int) -> float:
    """Seconds that the least Python computing the rows of ``bodies`` takes (see the
    module), ``per_commit`` bodies a commit."""
    tracker = cardflow.Tracker()
    lifecycle = tracker.lifecycle
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for start in range(0, len(bodies), per_commit):
        final: dict[str, cardflow.CardState] = {}
        encoded: set[int] = set()
        for body in bodies[start : start + per_commit]:
            operations = cardflow.decode_lenient(body).operations
            for op in operations:
                sha256(fingerprint(op)).digest()
            for change in tracker.ingest_operations(operations):
                final[change.card_id] = change.state
                if change.kind in REACTIONS:
                    _ = change.key
                    if id(change.state) not in encoded:
                        encoded.add(id(change.state))
                        encode_state(change.state)
        for state in final.values():
            if id(state) not in encoded:
                encode_state(state)
            columns(state, lifecycle)
    return time.perf_counter() - started
