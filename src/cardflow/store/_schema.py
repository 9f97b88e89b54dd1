"""The store's schema, its versions, and how a database is brought up to date.

``SCHEMA_VERSION`` is the version this package writes. ``MIGRATIONS[n]`` takes a
database from version ``n - 1`` to ``n`` (version 0 is an empty database), written
once for both engines with two spellings filled in per engine: the type of a byte
column and of an auto-numbered key. Opening a database runs the migrations it lacks,
in one transaction, under a lock (two processes opening a new database at once
create it once); a database from a later version, or one that is not a store, is
refused with what to do (:class:`cardflow.store.StoreSchemaError`).

Times are integers, microseconds since the Unix epoch in UTC, and flags are
integers 0/1, so that every query is the same text on both engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from .._errors import StoreSchemaError

__all__ = [
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "Dialect",
    "Tx",
    "newer_message",
    "read_version",
]


class Tx(Protocol):
    """One open transaction of an engine; SQL with ``?`` placeholders on both engines."""

    def rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """Run a statement; the rows it returned (none for a statement without rows)."""

    def run(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run a statement; how many rows it changed."""

    def insert(
        self,
        table: str,
        columns: str,
        rows: Sequence[Sequence[object]],
        unique: str,
        *,
        returning: bool = False,
    ) -> set[Any]:
        """Insert the rows, but those whose ``unique`` column (the first of ``columns``)
        holds a value the table has (``ON CONFLICT DO NOTHING``), in their order; with
        ``returning``, the first column's values of the rows inserted. Each engine
        takes its fastest way: SQLite a prepared statement run for each row,
        PostgreSQL multi-row statements (a round trip each)."""

    def upsert(self, table: str, columns: str, rows: Sequence[Sequence[object]], tail: str) -> int:
        """Insert the rows, each with ``tail`` (an ``ON CONFLICT`` clause); how many
        rows were written (inserted, or updated where the clause's condition held). The
        engine's fastest way, as ``insert``."""


@dataclass(frozen=True)
class Dialect:
    """What differs in the schema's text between the engines."""

    blob: str
    """The type of a byte column."""
    serial: str
    """An auto-numbered 64-bit primary key column's type and constraint."""


_V1: Final = (
    # Every distinct event, once. ``key`` is the SHA-256 of its fingerprint (and of the
    # time it was read, for an on-demand status); ``event`` is the fingerprint itself:
    # the operation as msgpack, which decodes back into it.
    """CREATE TABLE events (
        id {serial},
        key {blob} NOT NULL UNIQUE,
        card_id TEXT NOT NULL,
        operation_id TEXT NOT NULL,
        read_at BIGINT,
        event {blob} NOT NULL,
        stored_at BIGINT NOT NULL
    )""",
    "CREATE INDEX events_card ON events (card_id)",
    # One row per card: the state (encode_state) and the columns that reads filter on.
    """CREATE TABLE states (
        card_id TEXT PRIMARY KEY,
        version BIGINT NOT NULL,
        operation_id TEXT NOT NULL,
        status TEXT NOT NULL,
        operation_status TEXT NOT NULL,
        flagged INTEGER NOT NULL,
        settled INTEGER NOT NULL,
        due_day INTEGER,
        last_heard BIGINT NOT NULL,
        state {blob} NOT NULL,
        updated_at BIGINT NOT NULL
    )""",
    "CREATE INDEX states_status ON states (status)",
    "CREATE INDEX states_reconcile ON states (settled, last_heard)",
    # One row per reaction, unique on its idempotency key; ``stage`` is pending, done
    # or dead; a claim holds ``lease_owner`` until ``lease_until``.
    """CREATE TABLE outbox (
        id {serial},
        key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        card_id TEXT NOT NULL,
        operation_id TEXT NOT NULL,
        status TEXT NOT NULL,
        previous_status TEXT,
        skipped TEXT NOT NULL,
        observation TEXT,
        state {blob} NOT NULL,
        stage TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        next_at BIGINT NOT NULL,
        lease_owner TEXT,
        lease_until BIGINT,
        error TEXT,
        created_at BIGINT NOT NULL,
        done_at BIGINT
    )""",
    "CREATE INDEX outbox_due ON outbox (stage, next_at)",
    # Operations (and bodies' faults inside them) that did not decode, once each.
    """CREATE TABLE rejects (
        id {serial},
        key {blob} NOT NULL UNIQUE,
        idx INTEGER,
        path TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw {blob} NOT NULL,
        stored_at BIGINT NOT NULL
    )""",
)


def _escaped(column: str, *, status: bool = False) -> str:
    """SQL for ``Change.key``'s escaping of one part (``cardflow._step.key_part``)."""
    sql = f"REPLACE(REPLACE({column}, '%', '%25'), '/', '%2F')"
    return f"REPLACE(REPLACE({sql}, '@', '%40'), ':', '%3A')" if status else sql


_WHAT: Final = (
    # The last part of a row's key: a shipment's is kept (it never holds / or %), a
    # status's is escaped.
    "CASE WHEN kind = 'SHIPMENT'"
    " THEN substr(key, length(card_id) + length(operation_id) + 3)"
    f" ELSE {_escaped('status', status=True)} END"
)
_NEW_KEY: Final = f"{_escaped('card_id')} || '/' || {_escaped('operation_id')} || '/' || {_WHAT}"
_TEMPORARY: Final = "'%' || CAST(id AS TEXT) || '/'"

_V2: Final = (
    # Keys become unambiguous (``Change.key``): a key whose card, operation or status
    # holds none of / % (nor, in a status, @ :) is unchanged; any other is rewritten to
    # what ``Change.key`` now gives. In two steps, through a temporary key that no
    # other can equal (one /, where keys hold two), so that no row meets another's
    # key on the way: "%<id>/<last part>", then the whole new key.
    f"UPDATE outbox SET key = {_TEMPORARY} || {_WHAT} WHERE key <> {_NEW_KEY}",
    f"UPDATE outbox SET key = {_escaped('card_id')} || '/' || {_escaped('operation_id')}"
    f" || '/' || substr(key, length({_TEMPORARY}) + 1)"
    f" WHERE substr(key, 1, length({_TEMPORARY})) = {_TEMPORARY}",
)

MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {1: _V1, 2: _V2}
"""The statements that take a database from version ``n - 1`` to ``n``."""

SCHEMA_VERSION: Final = max(MIGRATIONS)
"""The schema version this package writes and reads."""

TABLES: Final = ("events", "states", "outbox", "rejects")
"""The store's tables besides ``schema_version``."""


def newer_message(found: int) -> str:
    """What to say about a database whose schema is newer than this package's."""
    return (
        f"the store's schema is version {found}, newer than this cardflow uses"
        f" ({SCHEMA_VERSION}): upgrade cardflow (pip install -U cardflow) in every"
        " process that opens it"
    )


def read_version(tx: Tx, where: str) -> int:
    """The version the ``schema_version`` table holds; ``StoreSchemaError`` when it does
    not hold one row of a whole number (a damaged database)."""
    found = tx.rows("SELECT version FROM schema_version")
    value = found[0][0] if len(found) == 1 else None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        what = f"{len(found)} rows" if len(found) != 1 else f"{value!r}"
        raise StoreSchemaError(
            f"{where}: schema_version holds {what}, not one version number: the database"
            " is damaged; restore it from a backup"
        )
    return value
