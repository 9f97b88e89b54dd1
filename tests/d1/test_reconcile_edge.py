"""Reconcile trusts an answer only about the card it asked, and only for so long: a real
SQLite store, a real HTTP server (``answers.py``) that answers as each test scripts it,
the library loop and ``cardflow reconcile`` itself."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import cardflow
import cardflow.store
from cardflow.d1 import Client, Failed, FailureKind, Fetched, Retry, reconcile

from .answers import Answer, answering
from .processes import CARDFLOW

ISSUER = "ISSUER0001"
START = "2025-01-17T06:28:02.492Z"
LATER = datetime(2025, 3, 1, tzinfo=UTC)  # every card silent for weeks: all need asking


def operation(card: str, status: str, n: int) -> dict[str, Any]:
    return {
        "operationId": f"op-{card}",
        "operation": "PRODUCE",
        "status": "PENDING" if status != "CARD_SHIPPED" else "SUCCESSFUL",
        "startTime": START,
        "cardId": card,
        "details": {"status": status, "productionSite": f"site-{n}"},
    }


def envelope(*ops: dict[str, Any]) -> bytes:
    return json.dumps({"operations": list(ops)}).encode()


def store_with(tmp_path: Path, *cards: str) -> str:
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    with cardflow.store.open(url) as store:
        for n, card in enumerate(cards):
            store.ingest(envelope(operation(card, "DATA_PREPARED", n)))
    return url


def sweep(url: str, base: str, **options: Any) -> cardflow.d1.Sweep:
    async def main() -> cardflow.d1.Sweep:
        async with Client(base, ISSUER, retry=Retry(attempts=1), **options) as client:
            with cardflow.store.open(url) as store:
                return await reconcile(store, client, now=LATER)

    return asyncio.run(main())


def test_an_answer_stores_only_the_card_it_was_asked_about(tmp_path: Path) -> None:
    """A's answer also carries an event of B, whose own request fails: B is neither
    moved nor confirmed, still needs reconciling, and the stray event is a reject."""
    url = store_with(tmp_path, "card-a", "card-b")
    with cardflow.store.open(url) as store:
        b_before = store.get("card-b")
    stray = operation("card-b", "CARD_SHIPPED", 9)
    answers = {
        "card-a": Answer(envelope(operation("card-a", "CARD_SHIPPED", 0), stray)),
        "card-b": Answer(b"", 503),
    }
    with answering(answers) as (base, script):
        done = sweep(url, base)
    assert sorted(script.asked) == ["card-a", "card-b"]
    assert (done.fetched, done.changed, [f.card_id for f in done.failures]) == (1, 1, ["card-b"])
    with cardflow.store.open(url) as store:
        a, b = store.get("card-a"), store.get("card-b")
        rejects = store.rejects()
        still = {s.card_id for s in store.states(needs_reconcile_at=LATER)}
    assert a is not None
    assert (a.status, a.confirmed_status) == ("CARD_SHIPPED", "CARD_SHIPPED")
    assert b == b_before
    assert b is not None
    assert b.confirmed_at is None
    assert "card-b" in still
    (reject,) = rejects
    assert (reject.index, reject.path) == (1, "$.operations[1].cardId")
    assert "card 'card-b'" in reject.reason
    assert "card 'card-a'" in reject.reason
    assert json.loads(reject.raw)["operations"][0]["cardId"] == "card-b"


def test_without_the_card_asked_an_answer_is_stored_whole_as_before(tmp_path: Path) -> None:
    url = store_with(tmp_path, "card-a")
    body = envelope(operation("card-a", "CARD_SHIPPED", 0), operation("card-b", "CARD_SHIPPED", 1))
    with cardflow.store.open(url) as store:
        store.reconcile(body, LATER)
        assert store.get("card-b") is not None
        assert store.rejects() == []


def test_a_trickled_answer_fails_its_card_at_the_deadline_and_frees_its_slot(
    tmp_path: Path,
) -> None:
    """One slot: the answer trickled a byte every 0.3 s (it would take a minute) is given
    up at the deadline, and the next card is asked and stored after it."""
    url = store_with(tmp_path, "card-a", "card-b")
    slow = envelope(operation("card-a", "CARD_SHIPPED", 0))
    answers = {
        "card-a": Answer(slow, trickle=0.3),
        "card-b": Answer(envelope(operation("card-b", "CARD_SHIPPED", 1))),
    }
    with answering(answers) as (base, _):
        begun = time.monotonic()
        done = sweep(url, base, deadline=1.0, timeout=5.0, concurrency=1)
        took = time.monotonic() - begun
    assert len(slow) * 0.3 > 30
    assert took < 5  # the per-read timeout (5 s) never fired: each byte came in time
    (failure,) = done.failures
    assert (failure.card_id, failure.kind) == ("card-a", FailureKind.TOO_SLOW)
    assert "deadline of 1 s" in failure.detail
    assert done.fetched == 1
    with cardflow.store.open(url) as store:
        a, b = store.get("card-a"), store.get("card-b")
    assert a is not None
    assert a.status == "DATA_PREPARED"
    assert b is not None
    assert b.status == "CARD_SHIPPED"


def test_a_deadline_must_be_positive() -> None:
    for wrong in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="deadline"):
            Client("http://d1", ISSUER, deadline=wrong)


def test_fetch_many_keeps_going_past_a_slow_card() -> None:
    quick = envelope(operation("card-b", "DATA_PREPARED", 1))
    answers = {
        "card-a": Answer(envelope(operation("card-a", "DATA_PREPARED", 0)), trickle=0.5),
        "card-b": Answer(quick),
    }

    async def main(base: str) -> list[Fetched | Failed]:
        async with Client(base, ISSUER, deadline=0.5, concurrency=1) as client:
            return [r async for r in client.fetch_many(["card-a", "card-b"])]

    with answering(answers) as (base, _):
        results = asyncio.run(main(base))
    kinds = {r.card_id: (r.kind if isinstance(r, Failed) else "fetched") for r in results}
    assert kinds == {"card-a": FailureKind.TOO_SLOW, "card-b": "fetched"}


def test_cardflow_reconcile_takes_a_deadline(tmp_path: Path) -> None:
    url = store_with(tmp_path, "card-a", "card-b")
    answers = {
        "card-a": Answer(envelope(operation("card-a", "CARD_SHIPPED", 0)), trickle=0.4),
        "card-b": Answer(envelope(operation("card-b", "CARD_SHIPPED", 1))),
    }
    now = (LATER + timedelta(seconds=1)).isoformat()
    with answering(answers) as (base, _):
        done = subprocess.run(
            [*CARDFLOW, "reconcile", "--db", url, "--d1", base, "--issuer", ISSUER,
             "--deadline", "1", "--concurrency", "1", "--now", now],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0] == (
        "reconcile: 2 cards needed it; 1 answered, 1 changed, 1 failed"
    )
    assert "card-a: TOO_SLOW: no whole answer within the deadline of 1 s" in done.stdout
