"""A durable store of card states: SQLite by default, PostgreSQL for many hosts.

``cardflow.store.open(url)`` gives a :class:`Store`; ``docs/store.md`` states what it
guarantees. Every event is stored once, every body is one transaction, and every
reaction is a row of an outbox that :meth:`Store.dispatch` delivers. Importing this
package imports neither engine's driver: psycopg is imported when a ``postgresql://``
URL is opened (``pip install 'cardflow[postgres]'``).

Beside the store, what a service over it needs, as its commands use them: a card's
history as text and JSON (:func:`history_table`, :func:`history_json`), the
dispatcher's service parts (:func:`find_reactions`, :func:`stopping`, :class:`Follow`,
:func:`serve_metrics`) and the services' logging (:func:`logging_config`,
:func:`public_url`).
"""

from __future__ import annotations

from .._errors import InvalidNotification, NewerStateError, StoreSchemaError, StoreUnavailable
from .._lifecycle import D1_LIFECYCLE, Lifecycle
from ._base import Store, StoredEvent
from ._history import HistoryEvent, history_json, history_table
from ._ingest import Ingested
from ._logging import (
    ECHOED,
    JSON_KEYS,
    LEVELS,
    JsonFormatter,
    StderrHandler,
    logging_config,
    printable,
    public_url,
)
from ._outbox import DeadRow
from ._rebuild import RebuildResult
from ._schema import SCHEMA_VERSION
from ._service import (
    REACTION_OUTCOMES,
    CountedReactions,
    Follow,
    find_reactions,
    serve_metrics,
    stopping,
)
from ._sqlite import SQLiteStore

__all__ = [
    "ECHOED",
    "JSON_KEYS",
    "LEVELS",
    "REACTION_OUTCOMES",
    "SCHEMA_VERSION",
    "CountedReactions",
    "DeadRow",
    "Follow",
    "HistoryEvent",
    "Ingested",
    "InvalidNotification",
    "JsonFormatter",
    "NewerStateError",
    "RebuildResult",
    "SQLiteStore",
    "StderrHandler",
    "Store",
    "StoreSchemaError",
    "StoreUnavailable",
    "StoredEvent",
    "find_reactions",
    "history_json",
    "history_table",
    "logging_config",
    "open",
    "printable",
    "public_url",
    "serve_metrics",
    "stopping",
]


def open(url: str, *, lifecycle: Lifecycle = D1_LIFECYCLE, passed: bool = False) -> Store:
    """Open (creating or upgrading its schema) the store at ``url``.

    ``sqlite:///path/to.db`` (a relative path; ``sqlite:////abs/path.db`` an absolute
    one) or ``postgresql://user@host:port/dbname`` (any libpq URL). ``passed``:
    reactions as ``Tracker(passed=True)`` computes them. Raises ``StoreUnavailable``
    when the database cannot be reached, ``StoreSchemaError`` when its schema is not
    one this version can use, ``ValueError`` for another kind of URL.
    """
    scheme = url.partition(":")[0].lower()
    if scheme == "sqlite":
        return SQLiteStore(url, lifecycle=lifecycle, passed=passed)
    if scheme in ("postgresql", "postgres"):
        try:
            from ._postgres import PostgresStore
        except ImportError as exc:
            raise StoreUnavailable(
                f"a PostgreSQL store needs psycopg 3: pip install 'cardflow[postgres]' ({exc})"
            ) from exc
        return PostgresStore(url, lifecycle=lifecycle, passed=passed)
    raise ValueError(
        f"not a store URL: {url!r} (expected sqlite:///path/to.db or postgresql://...)"
    )
