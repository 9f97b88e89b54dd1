"""Raw SQL on a store's database, beside the store: to damage it as a bad disk, a bad
script or a bad release would, and to read its bytes as they are."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


def run(url: str, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
    """Run one statement (``?`` placeholders) in its own transaction; its rows."""
    return run_all(url, [(sql, params)])


def run_all(url: str, statements: Sequence[tuple[str, Sequence[object]]]) -> list[tuple[Any, ...]]:
    """Run statements in one transaction of one connection; the last one's rows."""
    rows: list[tuple[Any, ...]] = []
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:///").partition("?")[0]
        connection = sqlite3.connect(path, timeout=60)
        try:
            with connection:
                for sql, params in statements:
                    rows = connection.execute(sql, params).fetchall()
        finally:
            connection.close()
        return rows
    import psycopg

    with psycopg.connect(url) as pg, pg.transaction():
        for sql, params in statements:
            cursor = pg.execute(sql.replace("?", "%s").encode(), params)
            rows = cursor.fetchall() if cursor.description is not None else []
    return rows


def state_rows(url: str) -> dict[str, bytes]:
    """Every row of the states table: card id to the state's bytes, as stored."""
    return {str(c): bytes(b) for c, b in run(url, "SELECT card_id, state FROM states")}
