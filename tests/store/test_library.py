"""The store's library functions that its commands are shells over: files stored with
``cardflow.batch.store_files``, a card's history as text and JSON, the dispatcher's
service parts (reactions found by name, a signal that stops it, its failure lines)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import sys
from pathlib import Path

import msgspec
import pytest

import cardflow
import cardflow.store
from cardflow.batch import Rejected, store_files

from . import logs


def test_store_files_stores_what_a_fold_folds_and_reports_each_reject(tmp_path: Path) -> None:
    lines = logs.log(cards=12, seed=4)
    bodies = [line for line in lines if not line.startswith(b"@")]
    folder = tmp_path / "in"
    folder.mkdir()
    logs.write(folder / "a.jsonl", bodies[:30])
    logs.write(folder / "b.jsonl", [*bodies[30:], b"{not json", b"\x00"])
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    rejected: list[Rejected] = []
    problems: list[str] = []
    with cardflow.store.open(url) as store:
        paths = [folder, tmp_path / "missing.jsonl"]
        totals = store_files(store, paths, on_reject=rejected.append, on_problem=problems.append)
        assert logs.stored(store) == logs.fold(bodies)  # the oracle: the fold of the good lines
        again = store_files(store, folder, batch=7)  # the same files again change nothing
        assert logs.stored(store) == logs.fold(bodies)
    assert [(r.file, r.line) for r in rejected] == [
        (str(folder / "b.jsonl"), len(bodies) - 30 + 1),
        (str(folder / "b.jsonl"), len(bodies) - 30 + 2),
    ]
    assert problems == [f"cannot read {tmp_path / 'missing.jsonl'}: No such file or directory"]
    assert totals.unreadable == [str(tmp_path / "missing.jsonl")]
    assert totals.bodies == len(bodies) + 2 == again.bodies
    assert totals.rejected_bodies == 2
    assert totals.lines == len(bodies) + 2
    assert store_files(store, []).bodies == 0  # nothing named: nothing read, not stdin


def test_history_as_text_and_json(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    lines = [line for line in logs.log(cards=3, seed=9) if not line.startswith(b"@")]
    with cardflow.store.open(url) as store:
        store.ingest_many(lines)
        card = sorted(logs.fold(lines))[0]
        events = store.history(card)
    table = cardflow.store.history_table(events)
    assert table[0].split() == ["id", "stored", "at", "source", "operation", "reported", "changes"]
    assert len(table) == len(events) + 2
    state = next(e.state for e in reversed(events) if e.state is not None)
    assert state is not None
    assert table[-1] == (
        f"card {card}: {len(events)} stored event{'s' if len(events) > 1 else ''};"
        f" now {state.operation_id}/{state.status}"
    )
    for event, row in zip(events, table[1:], strict=False):
        assert row.split()[0] == str(event.id)
        assert event.operation.operation_id in row
        shown = json.loads(msgspec.json.encode(cardflow.store.history_json(event)))
        assert shown["id"] == event.id
        assert shown["source"] == "notification"
        assert [c["kind"] for c in shown["changes"]] == [c.kind for c in event.changes]


def test_store_views_show_a_store_to_the_conformance_check(tmp_path: Path) -> None:
    from cardflow.testing import check_conformance, fake_traffic, store_views

    traffic = fake_traffic(20, 3)
    url = f"sqlite:///{tmp_path}/cards.db?synchronous=normal"
    with cardflow.store.open(url) as store:
        store.ingest_many(traffic.bodies[:-3])
        views = store_views(store)
        short = asyncio.run(check_conformance(traffic, views))
        store.ingest_many(traffic.bodies[-3:])
        whole = asyncio.run(check_conformance(traffic, views))

        async def unknown() -> object:
            return await views("0000-0000-0000-0000")

        assert asyncio.run(unknown()) is None
    assert not short.ok  # the last bodies, missing, are seen missing
    assert whole.ok, whole.differences[:3]


def test_printable_escapes_what_a_terminal_would_obey() -> None:
    assert cardflow.store.printable("card-1") == "card-1"
    assert cardflow.store.printable("a\x1b[2Jb\nc") == "a\\x1b[2Jb\\nc"


def test_find_reactions_imports_as_python_m_does(tmp_path: Path) -> None:
    (tmp_path / "my_reactions_27.py").write_text(
        "class Hooks:\n    def on_shipment(self, change):\n        return change\nready = Hooks()\n"
    )
    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        made = cardflow.store.find_reactions("my_reactions_27:Hooks")
        assert type(made).__name__ == "Hooks"  # a class is instantiated
        assert cardflow.store.find_reactions("my_reactions_27:ready").on_shipment(1) == 1  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="MODULE:OBJECT"):
            cardflow.store.find_reactions("my_reactions_27")
        with pytest.raises(AttributeError):
            cardflow.store.find_reactions("my_reactions_27:nothing")
    finally:
        os.chdir(here)
        sys.modules.pop("my_reactions_27", None)


def test_stopping_turns_a_signal_into_an_event_then_restores_the_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with cardflow.store.stopping() as stop:
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(5)
    assert signal.getsignal(signal.SIGTERM) is before


def test_follow_writes_and_counts_each_failure_the_dispatcher_logs() -> None:
    out = io.StringIO()
    follow = cardflow.store.Follow(out, every=3600.0)
    with follow.attached():
        log = logging.getLogger("cardflow.dispatch")
        log.warning("key k\x1b1 failed: boom", extra={"outcome": "retried"})
        log.warning("key k2 parked dead", extra={"outcome": "dead"})
        log.warning("something else")  # no outcome: not a failure of a reaction
        assert follow.tick(5, 2) is False  # not yet due
        assert follow.tick(5, 2, force=True) is True
    assert out.getvalue().splitlines() == [
        "cardflow dispatch: key k\\x1b1 failed: boom",
        "cardflow dispatch: key k2 parked dead",
        "cardflow dispatch: progress: 5 done, 1 retried, 1 dead, 2 pending",
    ]
    assert follow not in logging.getLogger("cardflow.dispatch").handlers


def test_counted_reactions_count_what_returns() -> None:
    prometheus = pytest.importorskip("prometheus_client")
    registry = prometheus.CollectorRegistry()
    counter = prometheus.Counter("t27_reactions", "test", ["outcome"], registry=registry)

    class Hooks:
        name = "hooks"

        def on_enter_SHIPPED(self, change: object) -> object:  # noqa: N802 (D1's status)
            return change

    counted = cardflow.store.CountedReactions(Hooks(), counter)
    assert counted.on_enter_SHIPPED(3) == 3
    assert counted.name == "hooks"
    assert registry.get_sample_value("t27_reactions_total", {"outcome": "done"}) == 1.0
