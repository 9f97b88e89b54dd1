"""End to end, every part its own process: the fake D1 delivers with losses and
duplicates to `cardflow serve --workers 2`; `cardflow reconcile` asks the fake about
the cards that need it; the conformance check agrees with the truth on every card;
`cardflow dispatch` runs each reaction once.

CI runs 400 cards; ``CARDFLOW_E2E_CARDS=2000`` runs the issue's full figure.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

import cardflow
import cardflow.store
from cardflow.testing import DEFAULT_ISSUER

from .processes import CARDFLOW, HERE, free_port, running

CARDS = int(os.environ.get("CARDFLOW_E2E_CARDS", "400"))
SEED = 21
LOSE = "0.05"


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARDFLOW, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def wait_delivered(d1: str, timeout: float = 300.0) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        delivery = httpx.get(d1 + "/fake/status").json()["delivery"]
        if delivery["done"]:
            return dict(delivery)
        time.sleep(0.2)
    raise AssertionError(f"the fake D1 did not finish delivering within {timeout} s")


def fireable(key: str) -> bool:
    """Whether a reaction exists for an outbox row's key (REVISED and OLDER have none)."""
    return not key.rsplit("/", 1)[1].startswith(("revised:", "older:"))


def test_fake_d1_to_two_workers_then_reconcile_and_dispatch(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    serve_port, d1_port = free_port(), free_port()
    serve = [*CARDFLOW, "serve", "--db", db, "--port", str(serve_port), "--workers", "2",
             "--no-auth"]  # fmt: skip
    with running(serve, serve_port) as receiver:
        fake = [*CARDFLOW, "fake-d1", "--port", str(d1_port), "--cards", str(CARDS),
                "--seed", str(SEED), "--lose", LOSE, "--duplicates", "0.3",
                "--deliver-to", receiver.url]  # fmt: skip
        with running(fake, d1_port) as d1:
            delivery = wait_delivered(d1.url)
            assert delivery["acknowledged"] == delivery["bodies"]
            now = datetime.now(UTC)
            with cardflow.store.open(db) as store:
                gaps_before = sum(
                    cardflow.ReconcileReason.GAPS in cardflow.needs_reconcile(s, now)
                    for s in store.states()
                )
            assert gaps_before > 0  # the losses left gaps

            reconciled = cli("reconcile", "--db", db, "--d1", d1.url, "--issuer", DEFAULT_ISSUER)
            assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
            summary = reconciled.stdout.splitlines()[0]
            needed = int(summary.split()[1])
            assert f"{needed} answered" in summary
            assert summary.endswith(" 0 failed")

            checked = cli("conformance", "--truth-seed", str(SEED), "--cards", str(CARDS),
                          "--lose", LOSE, "--d1", d1.url,
                          "--view", receiver.url + "/cards/{cardId}")  # fmt: skip
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert f"({needed} served on demand): conforms" in checked.stdout
            # The same check reading the store instead of the receiver's HTTP views.
            by_store = cli("conformance", "--truth-seed", str(SEED), "--cards", str(CARDS),
                           "--lose", LOSE, "--d1", d1.url, "--view", db)  # fmt: skip
            assert by_store.returncode == 0, by_store.stdout + by_store.stderr
            # Without knowing what the fake served, the reconciled cards differ.
            blind = cli("conformance", "--truth-seed", str(SEED), "--cards", str(CARDS),
                        "--lose", LOSE, "--view", db)  # fmt: skip
            assert blind.returncode == 1

    with cardflow.store.open(db) as store:
        states = list(store.states())
        assert not any(
            cardflow.ReconcileReason.GAPS in cardflow.needs_reconcile(s, datetime.now(UTC))
            for s in states
        )
    record = tmp_path / "reactions.txt"
    record.touch()
    dispatch = ["dispatch", "--db", db, "--reactions", "recorder:Recorder"]
    env = {"RECORDER_FILE": str(record), "PYTHONPATH": str(HERE)}
    first = cli(*dispatch, env=env)
    assert first.returncode == 0, first.stderr
    again = cli(*dispatch, env=env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.startswith("dispatched 0 reactions")

    recorded = Counter(record.read_text().split())
    with cardflow.store.open(db) as store:
        keys = store.outbox_keys()
    assert {stage for _, stage in keys} == {"done"}
    assert max(recorded.values()) == 1  # each reaction once, none again
    assert set(recorded) == {key for key, _ in keys if fireable(key)}
    assert len(recorded) > 2 * len(states)
