"""Group commit in the receiver, against `cardflow serve --workers 2` in its own process:
bodies sent together share transactions, each is answered only once its own transaction
committed, and a bad body fails no other."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

import cardflow.store

from .processes import running
from .test_receiver import PATH, body, op, serve

BAD = [b"not json", b'{"operations": 3}', b"[]"]


def test_bodies_sent_together_share_commits_each_answered_after_its_own(tmp_path: Path) -> None:
    db = tmp_path / "cards.db"
    argv, port = serve(db, "--no-auth")
    cards = [f"grp-{n:02d}" for n in range(48)]
    sent: list[tuple[bytes, str | None]] = [(body(op(c, "DATA_PREPARED")), c) for c in cards]
    for n, bad in enumerate(BAD * 3):  # bad bodies among the good ones
        sent.insert(5 * n + 2, (bad, None))

    with running(argv, port) as started, cardflow.store.open(f"sqlite:///{db}") as store:

        async def send_all() -> list[tuple[int, bool]]:
            limits = httpx.Limits(max_connections=len(sent))
            async with httpx.AsyncClient(limits=limits, timeout=60) as client:

                async def one(content: bytes, card: str | None) -> tuple[int, bool]:
                    response = await client.post(started.url + PATH, content=content)
                    # Read at once, before any other answer is handled: committed already.
                    return response.status_code, card is not None and store.get(card) is not None

                return await asyncio.gather(*(one(content, card) for content, card in sent))

        answers = asyncio.run(send_all())
    assert answers == [(204, True) if card else (400, False) for _, card in sent]
    with sqlite3.connect(db) as connection:
        commits, events = connection.execute(
            "SELECT COUNT(DISTINCT stored_at), COUNT(*) FROM events WHERE card_id LIKE 'grp-%'"
        ).fetchone()
    assert events == len(cards)
    assert commits < len(cards)  # a transaction's events share its time: groups were formed
