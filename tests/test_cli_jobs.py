"""``cardflow fold --jobs N``: any split of the input reports the same bytes as one pass.

The logs are made so that the split matters: cards' events fall in several files and
in several parts of one file (``--part-size`` cuts small files), with duplicates,
multi-line documents, a byte-order mark, blank lines and bad lines in every part, so
that the reports, the rejects and their file and line numbers are all compared.
"""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys
import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardflow import decode_lenient
from cardflow._simulate import SimulationOptions, simulate
from cardflow.batch._inputs import Reader, Source
from cardflow.batch._jobs import fold_part
from cardflow.batch._parts import Part, PartReader, plan, split
from cardflow.cli import run
from cardflow.cli._console import Console

NOW = datetime(2025, 3, 1, tzinfo=UTC)
"""The clock of the in-process runs: a summary says when it judged reconciliation."""
PART = 3000
"""Bytes per part in these tests: several parts per file."""
BAD = [
    b"this is not JSON",
    b'{"operations": [{"operationId": "x"}]}',  # an operation missing its fields
    b'{"operations": [',  # cut short
]


def _console(stdin: bytes = b"") -> tuple[Console, io.BytesIO, io.StringIO]:
    out, err = io.BytesIO(), io.StringIO()
    console = Console(
        stdin=io.BytesIO(stdin), stdout=out, stderr=err, environ={}, clock=lambda: NOW
    )
    return console, out, err


def fold_cli(*argv: str | Path, stdin: bytes = b"") -> tuple[int, bytes, str]:
    console, out, err = _console(stdin)
    code = run(["fold", *(str(a) for a in argv)], console)
    return code, out.getvalue(), err.getvalue()


def _pretty(body: bytes) -> bytes:
    return json.dumps(json.loads(body), indent=2).encode()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two JSON Lines files and a file of pretty documents, cards spread over all three."""
    root = tmp_path_factory.mktemp("logs")
    options = SimulationOptions(duplicates=0.3, window=200, mix_other_ops=True)
    bodies = list(simulate(60, seed=7, options=options))
    rng = random.Random(7)
    files: dict[str, list[bytes]] = defaultdict(list)
    for body in bodies:
        files[rng.choice(["a.jsonl", "a.jsonl", "b.jsonl", "c.json"])].append(body)
    for name, lines in files.items():
        for bad in BAD:
            lines.insert(rng.randrange(len(lines)), bad)
        if name == "c.json":
            text = b"\n".join(_pretty(b) if b.startswith(b'{"operations":[') else b for b in lines)
        else:
            text = b"\n".join(lines)
        prefix = b"\xef\xbb\xbf" if name == "a.jsonl" else b""
        (root / name).write_bytes(prefix + text.replace(b"\n", b"\n\n", 3) + b"\n")
    return root


def test_the_logs_put_cards_in_several_parts(logs: Path) -> None:
    sources = [Source(p.name, str(p), p.stat().st_size) for p in sorted(logs.iterdir())]
    parts = plan(sources, 2, PART)
    assert len(parts) > 3 * len(sources)
    where: dict[str, set[int]] = defaultdict(set)
    for number, part in enumerate(parts):
        with open(part.path, "rb") as stream:
            stream.seek(part.start)
            data = stream.read() if part.end is None else stream.read(part.size)
        for body in Reader(io.BytesIO(data)):
            for op in body.decoded.operations:
                where[op.card_id].add(number)
    assert sum(len(found) > 1 for found in where.values()) > 10


@pytest.mark.parametrize(
    "options",
    [
        ["--format", "summary", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "jsonl"],
        ["--format", "json", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "csv", "--needs-reconcile", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "jsonl", "--status", "CARD_SHIPPED"],
        ["--format", "summary", "--status", "CARD_SHIPPED", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "summary", "--needs-reconcile", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "json", "--status", "NO_SUCH_STATUS"],
        ["--format", "csv", "--status", "NO_SUCH_STATUS", "--now", "2025-03-01T00:00:00Z"],
        ["--format", "jsonl", "--needs-reconcile", "--now", "2099-01-01T00:00:00Z"],
    ],
)
def test_jobs_2_reports_the_same_bytes_as_jobs_1(logs: Path, options: list[str]) -> None:
    one = fold_cli(logs, "--jobs", "1", *options)
    two = fold_cli(logs, "--jobs", "2", "--part-size", str(PART), *options)
    assert one[0] == 1  # the bad lines
    assert two == one
    assert one[1]


def test_rejects_have_the_same_files_lines_and_text(logs: Path, tmp_path: Path) -> None:
    now = ["--now", "2025-03-01T00:00:00Z"]
    one = fold_cli(logs, "--jobs", "1", *now, "--rejects", tmp_path / "one.jsonl")
    two = fold_cli(
        logs, "--jobs", "2", "--part-size", str(PART), *now, "--rejects", tmp_path / "two.jsonl"
    )
    assert two == (one[0], one[1], one[2].replace("one.jsonl", "two.jsonl"))
    located = [line for line in one[2].splitlines() if ".json" in line.split(":")[0]]
    assert len(located) == 3 * len(BAD)  # every bad line of every file, with its line
    for message in located:
        path, number = message.split(":")[:2]
        text = Path(path).read_bytes().split(b"\n")[int(number) - 1]
        assert text.removeprefix(b"\xef\xbb\xbf") in BAD
    assert (tmp_path / "one.jsonl").read_bytes() == (tmp_path / "two.jsonl").read_bytes()


def test_a_watched_card_has_the_same_view_and_history(logs: Path) -> None:
    cards = json.loads(fold_cli(logs, "--jobs", "1", "--format", "json")[1])["cards"]
    card = max(cards, key=lambda c: len(c["operationIds"]))["cardId"]
    one = fold_cli(logs, "--jobs", "1", "--card", card, "--now", "2025-03-01T00:00:00Z")
    two = fold_cli(
        logs, "--jobs", "2", "--part-size", "1000", "--card", card, "--now", "2025-03-01T00:00:00Z"
    )
    assert two == one
    assert f"{logs / 'a.jsonl'}:" in one[1].decode()  # where each event was first seen


def test_stdin_among_files_is_read_by_the_parent(logs: Path) -> None:
    stdin = (logs / "b.jsonl").read_bytes()
    args: list[str | Path] = [logs / "a.jsonl", "-", logs / "c.json", "--format", "jsonl"]
    one = fold_cli(*args, "--jobs", "1", stdin=stdin)
    two = fold_cli(*args, "--jobs", "2", "--part-size", str(PART), stdin=stdin)
    assert two == one


def test_stdin_from_a_pipe_among_files_in_worker_processes(logs: Path) -> None:
    """A real pipe (it cannot tell or seek) read by the parent beside the workers."""
    command = [sys.executable, "-m", "cardflow.cli", "fold", str(logs / "a.jsonl"), "-"]
    command += [str(logs / "c.json"), "--format", "jsonl"]
    stdin = (logs / "b.jsonl").read_bytes()
    one = subprocess.run(
        [*command, "--jobs", "1"], input=stdin, capture_output=True, timeout=120, check=False
    )
    two = subprocess.run(
        [*command, "--jobs", "2", "--part-size", str(PART)],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)
    assert one.stdout


def test_an_unreadable_path_is_reported_alike(logs: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    one = fold_cli(logs, missing, "--jobs", "1", "--format", "jsonl")
    two = fold_cli(logs, missing, "--jobs", "2", "--part-size", str(PART), "--format", "jsonl")
    assert two == one
    assert one[0] == 3


def test_the_console_script_folds_in_worker_processes(logs: Path) -> None:
    """A real process with the default start method: the workers import cardflow anew."""
    command = [sys.executable, "-m", "cardflow.cli", "fold", str(logs), "--format", "csv"]
    one = subprocess.run([*command, "--jobs", "1"], capture_output=True, timeout=120, check=False)
    two = subprocess.run(
        [*command, "--jobs", "2", "--part-size", str(PART)],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (two.returncode, two.stdout, two.stderr) == (one.returncode, one.stdout, one.stderr)
    assert one.returncode == 1


def test_a_part_rejects_what_its_lines_reject_with_lines_from_its_start(logs: Path) -> None:
    path = logs / "a.jsonl"
    first, second, *_ = split(Source("a", str(path), path.stat().st_size), 0, PART)
    assert first.end == second.start
    data = path.read_bytes()
    assert data[second.start - 1 : second.start + 1] == b"\n{"
    assert second.end is not None
    lines = data[second.start : second.end].split(b"\n")[:-1]
    # The oracle: a JSON Lines file, so each line decodes on its own.
    expected = [
        (i, r.reason) for i, text in enumerate(lines, 1) for r in decode_lenient(text).rejects
    ]
    folded = fold_part(second, None)
    assert [(line, r.reason) for line, r in folded.rejects] == expected
    assert folded.lines == len(lines)


@settings(max_examples=60, deadline=None)
@given(
    lines=st.lists(
        st.sampled_from([b'{"a":1}', b"  indented", b"}", b"", b"x" * 70_000, b"{" + b"y" * 9]),
        max_size=40,
    ),
    part_size=st.integers(1, 200_000),
)
def test_parts_cover_the_file_and_start_at_a_line_opening_a_body(
    tmp_path_factory: pytest.TempPathFactory, lines: list[bytes], part_size: int
) -> None:
    data = b"\n".join(lines) + b"\n"
    path = tmp_path_factory.mktemp("split") / "f.jsonl"
    path.write_bytes(data)
    parts = split(Source("f", str(path), len(data)), 0, part_size)
    # The oracle: every place a line starts with "{", scanned byte by byte.
    openings = [i for i in range(1, len(data)) if data[i - 1 : i + 1] == b"\n{"]
    expected = [0]
    while len(data) >= 2 * part_size:
        later = [i for i in openings if i >= expected[-1] + part_size]
        if not later:
            break
        expected.append(later[0])
    assert [p.start for p in parts] == expected
    assert [p.end for p in parts] == [*expected[1:], None]
    assert all(p == Part(0, "f", str(path), p.start, p.end) for p in parts)


def test_cards_folded_by_both_workers_are_merged_in_every_format(tmp_path: Path) -> None:
    """Two files of the same cards, one part each: the pool gives the first to one
    worker and the second to the other, so each card's state is split between them
    (JSON Lines merges those states in the parent, the lines of the others by id)."""
    bodies = list(simulate(80, seed=21, options=SimulationOptions(window=50)))
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_bytes(b"\n".join(bodies[::2]) + b"\n")
    second.write_bytes(b"\n".join(bodies[1::2]) + b"\n")
    only = tmp_path / "only.jsonl"  # cards no other file has
    only.write_bytes(b"\n".join(simulate(30, seed=22)) + b"\n")
    for options in (["--format", "jsonl"], ["--format", "csv"], ["--status", "CARD_SHIPPED"]):
        one = fold_cli(first, second, only, "--jobs", "1", *options)
        two = fold_cli(first, second, only, "--jobs", "2", *options)
        assert two == one
        assert one[0] == 0
        assert one[1]


def test_the_same_bytes_when_threads_run_beside_the_pool(logs: Path) -> None:
    """A thread alive in this process: the workers start from the forkserver."""
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        two = fold_cli(logs, "--jobs", "2", "--part-size", str(PART), "--format", "jsonl")
    finally:
        stop.set()
        thread.join()
    assert two == fold_cli(logs, "--jobs", "1", "--format", "jsonl")


def test_a_part_reader_gives_the_bytes_of_its_part_alone(logs: Path) -> None:
    path = logs / "a.jsonl"
    data = path.read_bytes()
    parts = split(Source("a", str(path), len(data)), 0, PART)
    assert len(parts) > 2
    read = []
    for part in parts:
        raw = PartReader(part)
        with raw, io.BufferedReader(raw, 64) as stream:
            read.append(b"".join(stream))
        assert raw.bytes_read == len(read[-1])
    assert b"".join(read) == data
    assert all(chunk.startswith(b"{") for chunk in read[1:])
