"""``cardflow fold --db``, ``cardflow outbox`` and ``cardflow dispatch``, on each engine."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import cardflow
import cardflow.store
from cardflow.cli import run
from cardflow.cli._console import Console

from . import logs

NOW = datetime(2025, 3, 1, tzinfo=UTC)


@dataclass
class Result:
    code: int
    out: bytes
    err: str


def cli(*argv: str | Path) -> Result:
    out = io.BytesIO()
    err = io.StringIO()
    console = Console(stdin=io.BytesIO(), stdout=out, stderr=err, environ={}, clock=lambda: NOW)
    code = run([str(a) for a in argv], console)
    return Result(code, out.getvalue(), err.getvalue())


def _snapshot(url: str) -> tuple[dict[str, bytes], set[str], int, int]:
    """What a run leaves in a store: states, outbox keys, events, rejects."""
    with cardflow.store.open(url) as store:
        keys = {key for key, _ in store.outbox_keys()}
        return logs.stored(store), keys, store.event_count(), len(store.rejects())


def _simulated(tmp_path: Path, cards: int) -> Path:
    path = tmp_path / "log.jsonl"
    with path.open("wb") as out:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cardflow.cli",
                "simulate",
                "--cards",
                str(cards),
                "--seed",
                "4",
            ],
            stdout=out,
            check=True,
        )
    return path


def test_fold_into_a_store_reports_as_fold_and_again_changes_nothing(
    store_url: str, tmp_path: Path
) -> None:
    log = _simulated(tmp_path, 60)
    plain = cli("fold", log, "--format", "jsonl", "--now", NOW.isoformat())
    first = cli("fold", "--db", store_url, log, "--format", "jsonl", "--now", NOW.isoformat())
    assert (first.code, first.err) == (0, "")
    assert first.out == plain.out
    once = _snapshot(store_url)
    again = cli("fold", "--db", store_url, log, "--format", "jsonl", "--now", NOW.isoformat())
    assert again.out == plain.out
    assert _snapshot(store_url) == once
    # With no input: a report from the stored states, every format and filter.
    for options in (
        ["--format", "csv"],
        ["--format", "jsonl", "--needs-reconcile", "--now", "2025-06-01T00:00:00Z"],
        ["--format", "jsonl", "--status", "CARD_SHIPPED", "--status", "CARD_RETURNED"],
        ["--format", "json", "--now", NOW.isoformat()],
    ):
        stored = cli("fold", "--db", store_url, *options)
        folded = cli("fold", log, *options)
        assert stored.code == folded.code == 0
        if options[1] == "json":
            assert stored.out.split(b'"cards":', 1)[1] == folded.out.split(b'"cards":', 1)[1]
        else:
            assert stored.out == folded.out
    card = sorted(once[0])[0]
    view = cli("fold", "--db", store_url, "--card", card)
    assert view.code == 0
    assert card in view.out.decode()
    assert cli("fold", "--db", store_url, "--card", "nope").code == 4
    summary = cli("fold", "--db", store_url).out.decode()
    assert summary.startswith(f"{len(once[0])} cards, folded from {once[2]} PRODUCE operations.")


def test_a_killed_fold_run_again_ends_as_an_uninterrupted_one(
    engine: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    log = _simulated(tmp_path, 150)
    urls = [request.getfixturevalue("store_url") for _ in range(1)]
    if engine == "sqlite":
        urls.append(f"sqlite:///{tmp_path}/other.db?synchronous=normal")
    else:
        urls.append(request.getfixturevalue("postgres_server").new_database())
    whole, killed = urls
    assert cli("fold", "--db", whole, log, "--format", "jsonl").code == 0
    expected = _snapshot(whole)
    # Killed as soon as it stored something, then again half-way.
    with cardflow.store.open(killed) as store:
        for threshold in (1, expected[2] // 2):
            process = subprocess.Popen(
                [sys.executable, "-m", "cardflow.cli", "fold", "--db", killed, str(log)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while store.event_count() < threshold and time.monotonic() < deadline:
                time.sleep(0.002)
            os.kill(process.pid, signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL
            assert store.event_count() < expected[2]
    assert cli("fold", "--db", killed, log, "--format", "jsonl").code == 0
    assert _snapshot(killed) == expected


def test_dead_rows_are_listed_and_requeued(store_url: str, tmp_path: Path) -> None:
    with cardflow.store.open(store_url) as store:
        store.ingest(logs.log(cards=2, seed=1)[0])

        class Failing:
            def __getattr__(self, name: str) -> object:
                def fail(change: cardflow.Change) -> None:
                    raise ValueError(f"cannot reach the printer for {change.card_id}")

                return fail

        for attempt in range(2):
            store.dispatch(Failing(), now=NOW + timedelta(hours=attempt), max_attempts=2)
        dead = store.dead()
    assert dead
    listed = cli("outbox", "dead", "--db", store_url)
    assert listed.code == 0
    lines = listed.out.decode().splitlines()
    assert [int(line.split()[0]) for line in lines] == [row.id for row in dead]
    assert "ValueError: cannot reach the printer" in lines[0]
    as_json = cli("outbox", "dead", "--db", store_url, "--format", "jsonl")
    assert as_json.out.count(b"\n") == len(dead)
    assert cli("outbox", "requeue", "--db", store_url, str(dead[0].id)).code == 0
    assert cli("outbox", "requeue", "--db", store_url, str(dead[0].id)).code == 1
    assert cli("outbox", "requeue", "--db", store_url).code == 2
    assert cli("outbox", "requeue", "--db", store_url, "--all").code == 0
    with cardflow.store.open(store_url) as store:
        assert store.dead() == []


def test_dispatch_runs_the_reactions_object(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivered = tmp_path / "delivered"
    (tmp_path / "my_reactions.py").write_text(
        "from pathlib import Path\n"
        "class Reactions:\n"
        "    def on_enter_CARD_SHIPPED(self, change):\n"
        f"        with Path({str(delivered)!r}).open('a') as out:\n"
        "            out.write(change.key + '\\n')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_reactions", raising=False)
    lines = [line for line in logs.log(cards=5, seed=2) if not line.startswith(b"@")]
    with cardflow.store.open(store_url) as store:
        shipped = {
            c.key
            for line in lines
            for c in store.ingest(line).changes
            if c.kind == "STATUS" and c.status == "CARD_SHIPPED"
        }
        rows = len(store.outbox_keys())
    done = cli("dispatch", "--db", store_url, "--reactions", "my_reactions:Reactions")
    assert done.code == 0, done.err
    assert f"dispatched {rows} reactions" in done.err
    assert set(delivered.read_text().split()) == shipped
    again = cli("dispatch", "--db", store_url, "--reactions", "my_reactions:Reactions")
    assert "dispatched 0 reactions" in again.err
    assert cli("dispatch", "--db", store_url, "--reactions", "nowhere").code == 2


def test_a_store_that_cannot_be_opened_exits_5(tmp_path: Path) -> None:
    done = cli("fold", "--db", f"sqlite:///{tmp_path}/no/such/dir/x.db")
    assert done.code == 5
    assert "cannot open" in done.err
    assert cli("outbox", "dead", "--db", "mysql://x").code == 5


def test_jobs_and_dask_do_not_apply_with_a_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/x.db"
    for options in (["--jobs", "2"], ["--dask", "tcp://127.0.0.1:1"]):
        done = cli("fold", "--db", url, *options, tmp_path)
        assert done.code == 2
        assert "do not apply with --db" in done.err


def test_fold_into_a_store_counts_what_fold_counts(store_url: str, tmp_path: Path) -> None:
    log = _simulated(tmp_path, 30)  # redelivered bodies: more operations than events
    plain = cli("fold", log, "--now", NOW.isoformat())
    stored = cli("fold", "--db", store_url, log, "--now", NOW.isoformat())
    assert stored.code == plain.code == 0
    assert stored.out.decode() == plain.out.decode()
    with cardflow.store.open(store_url) as store:
        cards, events = sum(store.counts().values()), store.event_count()
    report = cli("fold", "--db", store_url, "--now", NOW.isoformat()).out.decode()
    assert "Read 0 lines" not in report
    assert report.endswith(
        f"\nRead no input: reported from the store's {cards} cards,"
        f" folded from {events} distinct stored events.\n"
    )


def test_fold_db_and_history_take_passed_as_every_writer_of_the_store_must(
    store_url: str, tmp_path: Path
) -> None:
    """A backfill beside ``serve --passed`` queues what the library's passed=True does."""
    log = _simulated(tmp_path, 30)
    lines = [line for line in log.read_bytes().splitlines() if line.strip()]
    assert cli("fold", "--db", store_url, "--passed", log).code == 0
    with cardflow.store.open(store_url) as store:
        queued = sorted(key for key, _ in store.outbox_keys())
    expected: dict[bool, list[str]] = {}
    for passed in (True, False):
        other = str(tmp_path / f"library-{passed}.db")
        with cardflow.store.open(f"sqlite:///{other}", passed=passed) as library:
            library.ingest_many(lines)
            expected[passed] = sorted(key for key, _ in library.outbox_keys())
    assert queued == expected[True]
    assert set(expected[False]) < set(queued)  # passed queues more: the flag matters
    card = sorted(set(queued) - set(expected[False]))[0].split("/")[0]
    plain = cli("history", "--db", store_url, card, "--format", "jsonl")
    every = cli("history", "--db", store_url, "--passed", card, "--format", "jsonl")
    assert plain.code == every.code == 0
    assert plain.out.count(b'"kind":"STATUS"') < every.out.count(b'"kind":"STATUS"')
    refused = cli("fold", "--passed", log)
    assert (refused.code, refused.err) == (2, "cardflow fold: --passed applies only with --db\n")
