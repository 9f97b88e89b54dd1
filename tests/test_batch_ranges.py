"""The two phases of ``fold --jobs``: groups spilled, ranges cut, tallies added, failures.

The end-to-end equality with ``--jobs 1`` is in test_cli_jobs.py; these check the
pieces it rests on against oracles of their own.
"""

from __future__ import annotations

import array
import itertools
import random
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardflow import Folder, decode, fold, needs_reconcile
from cardflow._simulate import SimulationOptions, simulate
from cardflow.batch._inputs import Source
from cardflow.batch._jobs import Gather, Spilled, fold_group, spill
from cardflow.batch._parts import Part, groups, plan
from cardflow.batch._ranges import Piece, decoded, ranges
from cardflow.batch._report import Listener, Tally
from cardflow.batch._workers import Workers, local_pool

NOW = datetime(2025, 3, 1, tzinfo=UTC)


def _spill(ids: list[str]) -> Spilled:
    """A spill whose "states" are the card ids themselves, so a piece reads as ids."""
    ends = array.array("Q")
    end = 0
    for card in ids:
        end += len(card)
        ends.append(end)
    return Spilled(ids, ends.tobytes(), "".join(ids).encode())


def _read(piece: Piece) -> list[str]:
    assert isinstance(piece.data, bytes)
    ends = array.array("Q")
    ends.frombytes(piece.ends)
    out, begin = [], piece.start
    for end in ends:
        out.append(piece.data[begin : piece.start + end].decode())
        begin = piece.start + end
    return out


@settings(max_examples=200, deadline=None)
@given(
    spills=st.lists(
        st.sets(st.text("abcdef", min_size=1, max_size=4), max_size=60).map(sorted), max_size=5
    ),
    count=st.integers(1, 7),
)
def test_ranges_take_every_state_once_and_cut_between_card_ids(
    spills: list[list[str]], count: int
) -> None:
    cut = ranges([_spill(ids) for ids in spills], count)
    assert len(cut) <= count
    taken = [[_read(piece) for piece in pieces] for pieces in cut]
    # Every state of every spill, once: the multiset of all ids.
    assert sorted(i for pieces in taken for ids in pieces for i in ids) == sorted(
        i for ids in spills for i in ids
    )
    # A card's states all fall in one range, and the ranges are in card order.
    seen = [{i for ids in pieces for i in ids} for pieces in taken]
    for before, after in itertools.pairwise(seen):
        assert before
        assert after
        assert max(before) < min(after)
    # Within a range, each piece is a run of its spill, in order.
    for pieces in taken:
        for ids in pieces:
            assert ids == sorted(ids)
            assert any(ids == s[s.index(ids[0]) :][: len(ids)] for s in spills if ids[0] in s)


_STATES = sorted(
    fold(
        op
        for body in simulate(80, seed=3, options=SimulationOptions(duplicates=0.2))
        for op in decode(body)
    ).values(),
    key=lambda s: s.card_id,
)


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, len(_STATES)), max_size=6), judged=st.booleans())
def test_tallies_of_consecutive_ranges_add_up_to_the_tally_of_all(
    cuts: list[int], judged: bool
) -> None:
    reasons = {s.card_id: needs_reconcile(s, NOW) for s in _STATES} if judged else None
    bounds = [0, *sorted(cuts), len(_STATES)]
    total = Tally.of([], None if reasons is None else {})
    for lo, hi in itertools.pairwise(bounds):
        total += Tally.of(_STATES[lo:hi], reasons)
    whole = Tally.of(_STATES, reasons)
    # The oracle: counts by hand over all the cards.
    assert whole.cards == total.cards == len(_STATES)
    by_status: dict[str, int] = {}
    for state in _STATES:
        by_status[state.status] = by_status.get(state.status, 0) + 1
    assert dict(total.counts["status"]) == by_status
    assert total.with_gaps == sum(1 for s in _STATES if s.gaps)
    assert {k: +v for k, v in total.counts.items()} == {k: +v for k, v in whole.counts.items()}
    assert total.listed == _STATES[:20]
    if reasons is None:
        assert total.reasons is None
        assert total.candidates == 0
    else:
        candidates = [s for s in _STATES if reasons[s.card_id]]
        assert total.candidates == len(candidates)
        assert total.examples == candidates[:5]
        assert total.reasons is not None
        for state in (*total.examples, *total.listed):
            assert total.reasons[state.card_id] == reasons[state.card_id]


def test_a_failed_input_drops_its_later_parts_even_in_later_groups(tmp_path: Path) -> None:
    """One pass stops reading an input where it fails; a group folded before the parent
    knew of the failure is folded again without that input's later parts."""
    bodies = list(simulate(30, seed=11))[:90]
    random.Random(5).shuffle(bodies)
    a, b, c = (tmp_path / n for n in ("a.jsonl", "b.jsonl", "c.jsonl"))
    a.write_bytes(b"\n".join(bodies[:30]) + b"\n")
    b.write_bytes(b"\n".join(bodies[30:60]) + b"\n")
    c.write_bytes(b"\n" * 20 + b"\n".join(bodies[60:]) + b"\n")  # read from byte 20
    # Source 0 is a, then a part that cannot be opened, then "more of it" (c): what a
    # file failing in its second part looks like to the parent.
    first = Part(0, "a", str(a))
    broken = Part(0, "a", str(tmp_path / "gone.jsonl"), 10)
    later = Part(0, "a", str(c), 20)
    other = Part(1, "b", str(b))
    problems: list[str] = []
    with local_pool(2) as workers:
        run = Gather(Listener(lambda r: None, problems.append), None, workers)
        spilled = run.run([[first, broken], [later, other]])
    assert isinstance(workers, Workers)
    folded = {card for s in spilled for card in s.ids}
    expected = fold(op for body in bodies[:60] for op in decode(body))
    assert folded == set(expected)
    assert run.totals.unreadable == ["a"]
    assert any(problem.startswith("cannot read a: ") for problem in problems)
    # The group itself skips what follows a failure of its own.
    alone = fold_group([broken, later], None, None)
    assert [p.skipped for p in alone.parts] == [False, True]
    assert alone.spilled.ids == []


@settings(max_examples=40, deadline=None)
@given(
    count=st.integers(1, 4),
    block=st.integers(1, 3000),
)
def test_spilled_states_read_back_the_same_from_a_file_in_any_blocks(
    tmp_path_factory: pytest.TempPathFactory, count: int, block: int
) -> None:
    folder = Folder(op for body in simulate(40, seed=3) for op in decode(body))
    directory = str(tmp_path_factory.mktemp("spill"))
    on_disk, in_memory = spill(folder, directory), spill(folder, None)
    assert on_disk.ids == in_memory.ids == sorted(folder)
    read = [s for pieces in ranges([on_disk], count) for p in pieces for s in decoded(p, block)]
    kept = [s for pieces in ranges([in_memory], count) for p in pieces for s in decoded(p)]
    assert read == kept == [folder[card] for card in sorted(folder)]


def test_the_progress_bar_counts_every_part_the_workers_fold(tmp_path: Path) -> None:
    """The workers add each part's bytes and operations to counters the parent's bar
    reads; at the end they count the whole input."""
    bodies = list(simulate(40, seed=5))
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\n".join(bodies) + b"\n")
    size = path.stat().st_size
    parts = plan([Source("log", str(path), size)], 2, size // 5)
    assert len(parts) >= 4
    with local_pool(2) as workers:
        run = Gather(Listener(lambda r: None, lambda m: None), None, workers)
        spilled = run.run(groups(parts, 2))
        done_bytes, lines, operations, cards = run.snapshot()
    assert done_bytes == size
    assert lines == len(bodies)
    assert operations == sum(len(decode(body)) for body in bodies)
    assert cards == sum(len(s.ids) for s in spilled)
