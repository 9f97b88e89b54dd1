"""``cardflow.batch.fold_files``: any split of the bodies into files, on any number of
jobs, gives the states of the library's in-memory fold (``cardflow.fold``), in card id
order, with every reject at its file and line.

The equality of ``cardflow fold --jobs N`` with ``--jobs 1`` is in test_cli_jobs.py;
the pieces of the two phases are in test_batch_ranges.py.
"""

from __future__ import annotations

import io
import itertools
import json
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cardflow
import cardflow.batch
from cardflow import D1_LIFECYCLE, CardState, Lifecycle, decode, encode_state
from cardflow._simulate import SimulationOptions, simulate
from cardflow.batch import fold_files, write_csv, write_jsonl

BODIES = list(simulate(40, seed=9, options=SimulationOptions(duplicates=0.2, window=30)))
BAD = [b"this is not JSON", b'{"operations": [{"operationId": "x"}]}']
ORACLE = cardflow.fold(op for body in BODIES for op in decode(body))


def _encoded(states: list[tuple[str, CardState]]) -> list[tuple[str, bytes]]:
    return [(card, encode_state(state)) for card, state in states]


def _expected() -> list[tuple[str, bytes]]:
    return [(card, encode_state(ORACLE[card])) for card in sorted(ORACLE)]


@settings(max_examples=15, deadline=None)
@given(
    cuts=st.lists(st.integers(0, len(BODIES)), max_size=4),
    bad=st.lists(st.tuples(st.integers(0, len(BODIES)), st.sampled_from(BAD)), max_size=3),
    jobs=st.sampled_from([1, 2, 3]),
)
def test_any_split_into_files_on_any_jobs_gives_the_library_fold(
    tmp_path_factory: pytest.TempPathFactory,
    cuts: list[int],
    bad: list[tuple[int, bytes]],
    jobs: int,
) -> None:
    lines = list(BODIES)
    for at, text in sorted(bad, reverse=True):
        lines.insert(at, text)
    directory = tmp_path_factory.mktemp("split")
    bounds = [0, *sorted(cuts), len(lines)]
    rejected = []
    for number, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        path = directory / f"{number:02}.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines[lo:hi]))
        # The oracle of the rejects: the bad lines, where they were written.
        rejected += [(str(path), i + 1) for i, line in enumerate(lines[lo:hi]) if line in BAD]
    files = sum(lo < hi for lo, hi in itertools.pairwise(bounds))
    with fold_files([str(directory)], jobs=jobs) as folded:
        # Small files are a part each: workers when there are two of them to share.
        assert (folded.workers is not None) == (jobs > 1 and files > 1)
        assert [(r.file, r.line) for r in folded.rejects] == rejected
        totals = folded.totals
        states = list(folded.states())
    assert _encoded(states) == _expected()
    assert totals.cards == len(ORACLE)
    assert totals.lines == len(lines)
    assert totals.rejected == len(bad)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three files, the cards of the first two interleaved: they share cards."""
    root = tmp_path_factory.mktemp("logs")
    (root / "a.jsonl").write_bytes(b"\n".join(BODIES[::2]) + b"\n")
    (root / "b.jsonl").write_bytes(b"\n".join(BODIES[1::2]) + b"\n" + BAD[0] + b"\n")
    (root / "c.jsonl").write_bytes(b"\n".join(simulate(20, seed=10)) + b"\n")
    return root


def test_the_workers_write_the_bytes_this_process_writes(logs: Path) -> None:
    written: dict[tuple[str, int], bytes] = {}
    for how, jobs in itertools.product(("jsonl", "csv"), (1, 2)):
        out = io.BytesIO()
        with fold_files([str(logs)], jobs=jobs) as folded:
            assert (folded.workers is None) == (jobs == 1)
            getattr(folded, f"write_{how}")(out)
        written[how, jobs] = out.getvalue()
    assert written["jsonl", 2] == written["jsonl", 1]
    assert written["csv", 2] == written["csv", 1]
    # The public writers, over the states in order, write the same.
    states = [state for _, state in fold_files([str(logs)], jobs=2).states()]
    for how, write in (("jsonl", write_jsonl), ("csv", write_csv)):
        out = io.BytesIO()
        write(iter(states), out)  # any iterable, a chunk at a time
        assert out.getvalue() == written[how, 1]
    lines = written["jsonl", 1].splitlines()
    assert [json.loads(line) for line in lines] == [cardflow.json_view(s) for s in states]


def test_the_states_are_handed_out_once_and_the_workers_stopped(logs: Path) -> None:
    folded = fold_files([str(logs)], jobs=2)
    assert folded.workers is not None
    pool: Any = folded.workers.executor
    assert len(list(folded.states())) > len(ORACLE)
    assert all(not process.is_alive() for process in pool._processes)
    with pytest.raises(cardflow.FoldClosedError, match="handed out already"):
        list(folded.states())
    closed = fold_files([str(logs)], jobs=1)
    closed.close()
    with pytest.raises(cardflow.FoldClosedError):
        closed.write_jsonl(io.BytesIO())


def test_progress_ends_with_every_byte_line_and_card(logs: Path) -> None:
    calls: list[tuple[int, int, int]] = []
    with fold_files(logs, jobs=2, progress=lambda *counts: calls.append(counts)) as folded:
        totals = folded.totals
    size = sum(path.stat().st_size for path in logs.iterdir())
    assert calls[-1] == (size, totals.lines, totals.cards)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_an_unreadable_input_is_named_and_the_rest_folded(logs: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.jsonl")
    with fold_files([missing, str(logs / "a.jsonl")], jobs=2) as folded:
        assert folded.totals.unreadable == [missing]
        assert folded.problems == [f"cannot read {missing}: No such file or directory"]
        assert len(list(folded.states())) > 0
    with pytest.raises(ValueError, match="jobs must be at least 1, not 0"):
        fold_files([missing], jobs=0)
    empty = fold_files([])
    assert list(empty.states()) == []
    assert empty.totals.sources == []


def _with_delivery() -> Lifecycle:
    states: list[Any] = [
        {"name": s, "final": D1_LIFECYCLE.is_final(s)} for s in D1_LIFECYCLE.statuses
    ]
    states.append({"name": "CARD_DELIVERED", "final": True})
    transitions: list[Any] = [[e.trigger, e.source, e.dest] for e in D1_LIFECYCLE.edges]
    transitions.append(["deliver", "CARD_SHIPPED", "CARD_DELIVERED"])
    return Lifecycle(
        name="with-delivery", states=states, transitions=transitions, initial=D1_LIFECYCLE.initial
    )


def test_a_lifecycle_of_ones_own_goes_to_the_workers(logs: Path) -> None:
    lifecycle = _with_delivery()
    copy = pickle.loads(pickle.dumps(lifecycle))
    assert copy is not lifecycle
    assert (copy.statuses, copy.edges) == (lifecycle.statuses, lifecycle.edges)
    assert pickle.loads(pickle.dumps(D1_LIFECYCLE)) is D1_LIFECYCLE
    files = [str(logs / "a.jsonl"), str(logs / "b.jsonl")]
    with fold_files(files, jobs=2, lifecycle=lifecycle) as folded:
        assert folded.workers is not None
        got = _encoded(list(folded.states()))
    oracle = cardflow.fold((op for body in BODIES for op in decode(body)), lifecycle=lifecycle)
    assert got == [(card, encode_state(oracle[card])) for card in sorted(oracle)]


def test_the_batch_api_is_pinned_and_the_core_does_not_import_it() -> None:
    assert cardflow.batch.__all__ == [
        "BodyStore",
        "FoldedFiles",
        "Rejected",
        "Totals",
        "fold_files",
        "store_files",
        "write_csv",
        "write_jsonl",
    ]
    for name in cardflow.batch.__all__:
        assert getattr(cardflow.batch, name).__module__.startswith("cardflow.batch.")
    probe = "import sys, cardflow; assert 'cardflow.batch' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
