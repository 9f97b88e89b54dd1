"""`cardflow reconcile` against a real fake D1 process and a real SQLite store: it
stores what D1 answers, and a D1 that fails never crashes the run, which reports it."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

import cardflow
import cardflow.store
from cardflow.testing import DEFAULT_ISSUER, fake_traffic

from .processes import CARDFLOW, free_port, running

CARDS = 60
SEED = 4


def filled_store(tmp_path: Path) -> str:
    """A store that took the fake's deliveries (10% lost), so that cards need reconciling."""
    url = f"sqlite:///{tmp_path / 'cards.db'}"
    with cardflow.store.open(url) as store:
        for body in fake_traffic(CARDS, SEED, lose=0.1).bodies:
            store.ingest(body)
    return url


def reconcile(url: str, d1: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARDFLOW, "reconcile", "--db", url, "--d1", d1, "--issuer", DEFAULT_ISSUER,
         "--backoff", "0.01", *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def candidates(url: str) -> int:
    with cardflow.store.open(url) as store:
        return sum(1 for _ in store.states(needs_reconcile_at=datetime.now(UTC)))


def test_every_candidate_is_fetched_and_stored(tmp_path: Path) -> None:
    url = filled_store(tmp_path)
    before = candidates(url)
    port = free_port()
    fake = [*CARDFLOW, "fake-d1", "--port", str(port), "--cards", str(CARDS), "--seed", str(SEED)]
    with running(fake, port) as d1:
        done = reconcile(url, d1.url)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert (
        first
        == f"reconcile: {before} cards needed it; {before} answered, {before} changed, 0 failed"
    )
    traffic = fake_traffic(CARDS, SEED)
    with cardflow.store.open(url) as store:
        for state in store.states():
            latest = traffic.latest(state.card_id)
            assert latest is not None
            if state.confirmed_at is not None:  # reconciled: it took its latest event
                assert state.confirmed_status == latest.details.status  # type: ignore[union-attr]
        confirmed = sum(1 for s in store.states() if s.confirmed_at is not None)
    assert confirmed == before


@pytest.mark.parametrize(
    ("fault", "kind", "says"),
    [
        ("garbage", "GARBAGE", "not a D1 envelope"),
        ("error", "HTTP_ERROR", "D1 answered 500"),
        ("hang", "UNREACHABLE", "ReadTimeout"),
    ],
)
def test_a_failing_d1_is_reported_not_raised(
    tmp_path: Path, fault: str, kind: str, says: str
) -> None:
    url = filled_store(tmp_path)
    before = candidates(url)
    port = free_port()
    fake = [*CARDFLOW, "fake-d1", "--port", str(port), "--cards", str(CARDS), "--seed",
            str(SEED), "--fault", fault, "--fault-rate", "0.5"]  # fmt: skip
    with running(fake, port) as d1:
        done = reconcile(
            url, d1.url, "--attempts", "2", "--timeout", "0.5", "--show", "1000", "--progress"
        )
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    failures = [line for line in lines if f": {kind}: " in line]
    assert failures
    assert all(says in line for line in failures)
    answered = before - len(failures)
    assert lines[0] == (
        f"reconcile: {before} cards needed it; {answered} answered, {answered} changed,"
        f" {len(failures)} failed"
    )
    assert f"{len(failures):6d}  failed: {kind}" in done.stdout
    assert candidates(url) >= len(failures)  # the failed ones still need it
    if fault == "hang":  # long enough for the progress line to show, then be erased
        assert f"/{before} cards" in done.stderr
        assert done.stderr.endswith("\x1b[K")  # the line erased at the end


def test_an_unreachable_d1_fails_every_card_and_says_so(tmp_path: Path) -> None:
    url = filled_store(tmp_path)
    before = candidates(url)
    done = reconcile(url, f"http://127.0.0.1:{free_port()}", "--attempts", "2")
    assert done.returncode == 1
    assert done.stdout.splitlines()[0].endswith(f"0 changed, {before} failed")
    assert f"{before:6d}  failed: UNREACHABLE" in done.stdout
