"""What a store runs on: an engine's connections, its transactions, and its schema.

An engine (``_sqlite.py``, ``_postgres.py``) provides connections, transactions and a
few spellings (the abstract methods and hooks below); ``Engine`` keeps one connection
per thread and per process (a forked child opens its own), turns the driver's errors
into the store's (``StoreUnavailable``, or ``Conflict``: start again), and brings a
database to ``SCHEMA_VERSION`` when it is opened. The store's algorithms, written
once for both engines, are ``Store`` (``_base.py``) and the modules it calls.
"""

from __future__ import annotations

import abc
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Self

from .._errors import StoreSchemaError, StoreUnavailable
from ._schema import (
    MIGRATIONS,
    SCHEMA_VERSION,
    TABLES,
    Dialect,
    Tx,
    newer_message,
    read_version,
)
from ._states import Conflict

__all__ = ["Engine"]


class Engine(abc.ABC):
    """A database opened at ``url``: connections, transactions, the schema's version."""

    dialect: Dialect

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connections: list[Any] = []
        self._pid = os.getpid()
        self._closed = False
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    # -- what an engine provides ------------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> Any:
        """A new connection."""

    @abc.abstractmethod
    def _close(self, connection: Any) -> None:
        """Close a connection, quietly."""

    @abc.abstractmethod
    def _begin(self, connection: Any, write: bool) -> AbstractContextManager[Tx]:
        """A transaction that commits at the end of the block, rolls back on an error."""

    @abc.abstractmethod
    def _has_table(self, tx: Tx, name: str) -> bool:
        """Whether the database has a table of that name."""

    def _usable(self, connection: Any) -> bool:
        """Whether a connection kept from before can still be used."""
        return True

    def _lock_schema(self, tx: Tx) -> None:  # noqa: B027 (an optional hook)
        """Serialize schema changes between processes, where the transaction does not."""

    def _hold_events(self, tx: Tx) -> None:  # noqa: B027 (an optional hook)
        """Hold back new events until this write transaction ends, where its write lock
        does not already (rebuild checks no event came since it read)."""

    def _read_in_bulk(self) -> AbstractContextManager[None]:
        """Set this thread's connection for reads of many rows scattered in a table (a
        rebuild's batches) until the block ends, where the engine has a setting for it."""
        return nullcontext()

    failures: tuple[type[BaseException], ...] = ()
    """Engine errors that mean the database failed (``StoreUnavailable``)."""
    conflicts: tuple[type[BaseException], ...] = ()
    """Engine errors that mean: start the transaction again (a deadlock, say)."""

    # -- connections and transactions ---------------------------------------------------

    def _connection(self) -> Any:
        if self._closed:
            raise StoreUnavailable(f"{self._where()}: closed")
        if os.getpid() != self._pid:
            # A forked child must not use its parent's connections: open its own.
            with self._lock:
                self._local = threading.local()
                self._connections = []
                self._pid = os.getpid()
        connection: Any | None = getattr(self._local, "connection", None)
        if connection is not None and not self._usable(connection):
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
            self._close(connection)
            connection = None
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._lock:
                self._connections.append(connection)
        return connection

    def _release(self) -> None:
        """Close this thread's connection, if it has one (a thread that is ending)."""
        connection: Any | None = getattr(self._local, "connection", None)
        if connection is None:
            return
        self._local.connection = None
        with self._lock:
            if connection in self._connections:
                self._connections.remove(connection)
        self._close(connection)

    @contextmanager
    def _transaction(self, write: bool = True) -> Iterator[Tx]:
        try:
            with self._begin(self._connection(), write) as tx:
                yield tx
        except self.conflicts as exc:
            raise Conflict(str(exc)) from exc
        except self.failures as exc:
            raise StoreUnavailable(f"{self._where()}: {exc}") from exc

    def _where(self) -> str:
        return type(self).__name__.removesuffix("Store").lower() + " store"

    def close(self) -> None:
        """Close every connection this store opened (in this process)."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        if os.getpid() == self._pid:
            for connection in connections:
                self._close(connection)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the database to ``SCHEMA_VERSION``, or refuse it saying what to do."""
        with self._transaction() as tx:
            self._lock_schema(tx)
            if self._has_table(tx, "schema_version"):
                version = read_version(tx, self._where())
            elif any(self._has_table(tx, name) for name in TABLES):
                raise StoreSchemaError(
                    f"{self._where()}: the database has tables named like a cardflow"
                    f" store's ({', '.join(TABLES)}) but no schema_version table: it is not"
                    " a cardflow store; open a new database, or rename those tables"
                )
            else:
                tx.run("CREATE TABLE schema_version (version INTEGER NOT NULL)")
                tx.run("INSERT INTO schema_version (version) VALUES (0)")
                version = 0
            if version > SCHEMA_VERSION:
                raise StoreSchemaError(f"{self._where()}: {newer_message(version)}")
            for target in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[target]:
                    tx.run(statement.format(blob=self.dialect.blob, serial=self.dialect.serial))
                tx.run("UPDATE schema_version SET version = ?", (target,))

    def schema_version(self) -> int:
        """The database's schema version (``SCHEMA_VERSION`` once opened)."""
        with self._transaction(write=False) as tx:
            return read_version(tx, self._where())
