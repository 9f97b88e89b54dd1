"""The PostgreSQL engine: psycopg 3 (``pip install 'cardflow[postgres]'``).

Transactions at READ COMMITTED; a card's state is written only if its version is
still the one read (compare-and-swap), so concurrent bodies on one card take turns
and none loses another's change. Cards are written in card order, after the events
(``_ingest.py``); should the server report a deadlock or a serialization failure, the
body's transaction starts again. A claim of outbox rows skips the rows another claim
holds (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import chain
from typing import Any, Final

import psycopg
import psycopg.errors

from .._errors import StoreUnavailable
from ._base import Store
from ._schema import Dialect, Tx
from ._states import chunks

__all__ = ["PostgresStore"]

_SCHEMA_LOCK: Final = 0x63617264666C6F77  # "cardflow": one advisory lock for migrations
CONNECT_TIMEOUT: Final = 10
"""Seconds to wait for the server when connecting."""


class _Tx:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: psycopg.RawCursor[tuple[Any, ...]]) -> None:
        self._cursor = cursor

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        cursor = self._cursor.execute(_native(sql), params)
        return cursor.fetchall() if cursor.description is not None else []

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._cursor.execute(_native(sql), params).rowcount

    def insert(
        self,
        table: str,
        columns: str,
        rows: Sequence[Sequence[object]],
        unique: str,
        *,
        returning: bool = False,
    ) -> set[Any]:
        out: set[Any] = set()
        if not rows:
            return out
        width = len(rows[0])
        mark = "(" + ",".join("?" * width) + ")"
        tail = f" ON CONFLICT ({unique}) DO NOTHING"
        if returning:
            tail += f" RETURNING {unique}"
        for chunk in chunks(list(rows), width):
            sql = f"INSERT INTO {table} ({columns}) VALUES {','.join([mark] * len(chunk))}{tail}"
            cursor = self._cursor.execute(_native(sql), [*chain.from_iterable(chunk)])
            if returning:
                out.update(row[0] for row in cursor.fetchall())
        return out

    def upsert(self, table: str, columns: str, rows: Sequence[Sequence[object]], tail: str) -> int:
        written = 0
        if not rows:
            return written
        width = len(rows[0])
        mark = "(" + ",".join("?" * width) + ")"
        for chunk in chunks(list(rows), width):
            sql = f"INSERT INTO {table} ({columns}) VALUES {','.join([mark] * len(chunk))} {tail}"
            written += self._cursor.execute(_native(sql), [*chain.from_iterable(chunk)]).rowcount
        return written


_spelled: dict[str, Any] = {}


def _native(sql: str) -> Any:
    """The statement with the server's own ``$1, $2, ...`` placeholders (the store writes
    ``?``), sent as it is (a raw cursor): a multi-row statement's thousands of
    parameters cost psycopg no parsing."""
    native = _spelled.get(sql)
    if native is None:
        parts = sql.split("?")
        native = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], 1))
        if len(_spelled) < 4096 and len(sql) < 4096:
            _spelled[sql] = native
    return native


class PostgresStore(Store):
    """A store in a PostgreSQL database (``postgresql://user@host:port/dbname``)."""

    dialect = Dialect(blob="BYTEA", serial="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY")
    skip_locked = "FOR UPDATE SKIP LOCKED"
    failures = (psycopg.Error,)
    conflicts = (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            raise StoreUnavailable(f"postgres store: cannot connect: {exc}") from exc

    def _close(self, connection: psycopg.Connection[tuple[Any, ...]]) -> None:
        with suppress(psycopg.Error):
            connection.close()

    @contextmanager
    def _begin(self, connection: psycopg.Connection[tuple[Any, ...]], write: bool) -> Iterator[Tx]:
        with connection.transaction(), psycopg.RawCursor(connection) as cursor:
            yield _Tx(cursor)

    def _usable(self, connection: psycopg.Connection[tuple[Any, ...]]) -> bool:
        return not (connection.closed or connection.broken)

    def _lock_schema(self, tx: Tx) -> None:
        tx.rows("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def _hold_events(self, tx: Tx) -> None:
        # SHARE conflicts with the ROW EXCLUSIVE lock of every INSERT: it waits for the
        # writers in flight to commit, and holds new events back until this one ends.
        tx.run("LOCK TABLE events IN SHARE MODE")

    def _has_table(self, tx: Tx, name: str) -> bool:
        return bool(
            tx.rows(
                "SELECT 1 FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_name = ?",
                (name,),
            )
        )
