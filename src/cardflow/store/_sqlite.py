"""The SQLite engine: the standard library's ``sqlite3``, one file, many processes.

WAL (readers never wait for the writer), a busy timeout (a writer waits for another
instead of failing), ``synchronous=FULL`` (a commit survives a power cut, not only a
crash; ``?synchronous=normal`` in the URL trades that for speed: a commit then
survives a crash of any process, not a power cut), and ``BEGIN IMMEDIATE`` for every
write: the database's one write lock is taken first, so a body's transaction never
reads a state that another changes before it commits.
Writers therefore take turns; readers never wait.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, Final
from urllib.parse import parse_qsl

from .._errors import StoreUnavailable
from ._base import Store
from ._schema import Dialect, Tx

__all__ = ["SQLiteStore"]

BUSY_TIMEOUT: Final = 60.0
"""Seconds a writer waits for the write lock before the store reports it unavailable."""
MMAP_SIZE: Final = 1 << 28
"""Bytes of the file a rebuild's connection reads through a memory map (SQLite's
``mmap_size``): a batch's events lie apart in the table, and a page read from the map
costs no system call nor copy (about half of SQLite's share of a batch's read). For
the rebuild alone, not each batch (a map dropped after a batch is faulted in again
for the next): the connection is then left as it was (no map, by default)."""


class _Tx:
    __slots__ = ("_connection",)

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._connection.execute(sql, params).fetchall()

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        return self._connection.execute(sql, params).rowcount

    def insert(
        self,
        table: str,
        columns: str,
        rows: Sequence[Sequence[object]],
        unique: str,
        *,
        returning: bool = False,
    ) -> set[Any]:
        if not rows:
            return set()
        connection = self._connection
        sql = (
            f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * len(rows[0]))})"
            f" ON CONFLICT ({unique}) DO NOTHING"
        )
        if not returning:
            connection.executemany(sql, rows)
            return set()
        # One statement compiled once and run for each row in C; the rows it inserted
        # are told by the count of changes (all of them, usually), else by their rowids:
        # a write transaction holds the database's write lock, and SQLite numbers a new
        # row past the largest rowid the table has.
        top = connection.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0]
        before = connection.total_changes
        connection.executemany(sql, rows)
        added = connection.total_changes - before
        if added == len(rows):
            return {row[0] for row in rows}
        if added == 0:
            return set()
        return {
            row[0]
            for row in connection.execute(
                f"SELECT {unique} FROM {table} WHERE rowid > ?", (top or 0,)
            )
        }

    def upsert(self, table: str, columns: str, rows: Sequence[Sequence[object]], tail: str) -> int:
        if not rows:
            return 0
        connection = self._connection
        before = connection.total_changes
        connection.executemany(
            f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * len(rows[0]))}) {tail}",
            rows,
        )
        return connection.total_changes - before


class SQLiteStore(Store):
    """A store in one SQLite file (``sqlite:///relative/path.db``, ``sqlite:////abs.db``)."""

    dialect = Dialect(blob="BLOB", serial="INTEGER PRIMARY KEY")
    failures = (sqlite3.Error,)

    def __init__(self, url: str, **options: Any) -> None:
        rest, _, query = url.partition("?")
        path = rest.removeprefix("sqlite:///")
        settings = dict(parse_qsl(query, keep_blank_values=True))
        self.synchronous = settings.pop("synchronous", "full").upper()
        if self.synchronous not in ("FULL", "NORMAL", "EXTRA") or settings:
            raise ValueError(
                f"SQLite store URL {url!r}: the only option is synchronous=full|normal|extra"
            )
        if not path or path == rest or path.startswith(":memory:"):
            raise ValueError(
                f"not a SQLite store URL: {url!r} (expected sqlite:///path/to/file.db;"
                " an in-memory database cannot be shared by processes)"
            )
        self.path = path
        super().__init__(url, **options)

    def _connect(self) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"sqlite store: cannot open {self.path!r}: {exc}") from exc
        return connection

    def _close(self, connection: sqlite3.Connection) -> None:
        with suppress(sqlite3.Error):
            connection.close()

    @contextmanager
    def _begin(self, connection: sqlite3.Connection, write: bool) -> Iterator[Tx]:
        connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            yield _Tx(connection)
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    @contextmanager
    def _read_in_bulk(self) -> Iterator[None]:
        with self._transaction(write=False) as tx:
            before = int(tx.rows("PRAGMA mmap_size")[0][0])
            tx.rows(f"PRAGMA mmap_size = {max(before, MMAP_SIZE)}")
        try:
            yield
        finally:
            with suppress(StoreUnavailable), self._transaction(write=False) as tx:
                tx.rows(f"PRAGMA mmap_size = {before}")  # as it was for other reads

    def _has_table(self, tx: Tx, name: str) -> bool:
        return bool(
            tx.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    def integrity_check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``: ``["ok"]`` for a sound file."""
        with self._transaction(write=False) as tx:
            return [str(row[0]) for row in tx.rows("PRAGMA integrity_check")]
