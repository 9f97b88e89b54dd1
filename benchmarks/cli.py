"""The command line against the library, and against DuckDB, each in a process of its own.

Every contender is a fresh process over the same file of JSON lines (as ``cardflow
simulate`` writes it), its output sent to /dev/null; each child's wall time, CPU time
(user + system) and peak RSS come from ``wait4``, in a small launcher process
(``benchmarks/_launch.py``: a child's peak RSS counts its parent's at the fork), which
also samples the RSS of the child and its worker processes added up (what ``--jobs``
holds in all; a figure's MB). Contenders run in interleaved rounds and a ratio is the
median of the per-round ratios.

- *library*: ``fold(chain.from_iterable(map(decode, file)))`` (``python -m
  benchmarks.cli FILE``), and the same plus writing the report that ``--format jsonl``
  writes (``--write``): what the command line adds is reading lines, reporting
  rejects and starting up;
- *command line*: ``cardflow fold --format jsonl`` and ``--format json``; with
  ``--jobs 1`` and ``--jobs <cores>`` once the command has that option;
- *DuckDB* (``benchmarks/duck.py``): the close query and the highest status per card,
  with as many threads as the command line uses.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

import cardflow

from . import _data, duck
from ._timing import Result

CLI_LIMIT: Final = 1.15
"""``cardflow fold --format jsonl`` at most this many times the library's CPU time."""
JSON_MEMORY_LIMIT: Final = 1.2
"""``--format json``'s peak RSS at most this many times ``--format jsonl``'s."""
DUCKDB_TIME: Final = 1.0
DUCKDB_MEMORY: Final = 1 / 3
"""On every core: at most DuckDB's wall time on the close query, at a third of its memory."""


@dataclass(frozen=True)
class Run:
    """One child process: seconds of wall and CPU time, its peak RSS in bytes, and the
    peak of its and its worker processes' RSS added up."""

    wall: float
    cpu: float
    rss: int
    rss_all: int
    cpu_all: float


_LAUNCH: Final = str(Path(__file__).with_name("_launch.py"))


def child(argv: list[str]) -> Run:
    """Run ``argv`` with its output to /dev/null; its times and peak RSS (from wait4),
    through a small launcher process (see ``benchmarks/_launch.py``)."""
    done = subprocess.run(
        [sys.executable, _LAUNCH, *argv], capture_output=True, text=True, check=True
    )
    figures = json.loads(done.stdout)
    if figures["code"] != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {figures['code']}: {done.stderr}")
    return Run(
        figures["wall"], figures["cpu"], figures["rss"], figures["rss_all"], figures["cpu_all"]
    )


def jobs_option() -> bool:
    """Whether ``cardflow fold`` has ``--jobs`` (another change adds it)."""
    done = subprocess.run(
        [sys.executable, "-m", "cardflow.cli", "fold", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    return "--jobs" in done.stdout


def _ratio(runs: dict[str, list[Run]], a: str, b: str, measure: Callable[[Run], float]) -> float:
    return statistics.median(measure(x) / measure(y) for x, y in zip(runs[a], runs[b], strict=True))


def _figure(runs: list[Run]) -> str:
    wall = statistics.median(r.wall for r in runs)
    cpu = statistics.median(r.cpu_all for r in runs)
    rss = max(r.rss_all for r in runs) / 1e6
    return f"{wall:.2f} s wall, {cpu:.2f} s CPU, {rss:.0f} MB"


def _wall(run: Run) -> float:
    return run.wall


def _cpu(run: Run) -> float:
    return run.cpu


def _rss(run: Run) -> float:
    return run.rss


def _rss_all(run: Run) -> float:
    return run.rss_all


def run(path: Path, count: int) -> list[Result]:
    """The command line, the library and DuckDB over the file at ``path``, side by side,
    in ``count`` rounds."""
    events, _ = _data.tally(path)
    py = sys.executable
    file = str(path)
    cores = os.cpu_count() or 1
    jobs = jobs_option()
    one = ["--jobs", "1"] if jobs else []
    cli = [py, "-m", "cardflow.cli", "fold", file]
    contenders: dict[str, list[str]] = {
        "library": [py, "-m", "benchmarks.cli", file],
        "library+write": [py, "-m", "benchmarks.cli", file, "--write"],
        "library+encode": [py, "-m", "benchmarks.cli", file, "--encode"],
        "jsonl": [*cli, "--format", "jsonl", *one],
        "json": [*cli, "--format", "json", *one],
    }
    if jobs and cores > 1:
        contenders["jsonl, every core"] = [*cli, "--format", "jsonl", "--jobs", str(cores)]
    if duck.available():
        base = [py, "-m", "benchmarks.duck"]
        contenders["duckdb close"] = [*base, "close", file, "--threads", "1"]
        contenders["duckdb highest"] = [*base, "highest", file, "--threads", "1"]
        if jobs and cores > 1:
            contenders["duckdb close, every core"] = [
                *base, "close", file, "--threads", str(cores)
            ]  # fmt: skip
    runs: dict[str, list[Run]] = {name: [] for name in contenders}
    for _ in range(count):
        for name, argv in contenders.items():
            runs[name].append(child(argv))

    size = f"{events:,} events"
    flag = " --jobs 1" if jobs else ""
    ratio = functools.partial(_ratio, runs)
    cpu_lib = ratio("jsonl", "library", _cpu)
    cpu_write = ratio("jsonl", "library+write", _cpu)
    memory = ratio("json", "jsonl", _rss)
    results = [
        Result("cli", "library: decode + fold (a process)", size, _figure(runs["library"])),
        Result(
            "cli",
            "library: decode + fold + writing the jsonl report",
            size,
            _figure(runs["library+write"]),
        ),
        Result(
            "cli",
            "floor of a report: library decode + fold + msgspec encoding each card's"
            " public fields (unsorted, no time fix, not written), CPU time vs decode + fold",
            size,
            _figure(runs["library+encode"]),
            ratio("library+encode", "library", _cpu),
        ),
        Result(
            "cli",
            f"cardflow fold --format jsonl{flag}: CPU time vs library decode + fold",
            size,
            _figure(runs["jsonl"]),
            cpu_lib,
            f"<= {CLI_LIMIT}",
            cpu_lib <= CLI_LIMIT,
        ),
        Result(
            "cli",
            f"cardflow fold --format jsonl{flag}: wall time vs library decode + fold",
            size,
            "",
            ratio("jsonl", "library", _wall),
        ),
        Result(
            "cli",
            f"cardflow fold --format jsonl{flag}: CPU time vs library decode + fold + write",
            size,
            "",
            cpu_write,
            f"<= {CLI_LIMIT}",
            cpu_write <= CLI_LIMIT,
        ),
        Result(
            "cli",
            f"cardflow fold --format json{flag}: peak RSS vs --format jsonl",
            size,
            _figure(runs["json"]),
            memory,
            f"<= {JSON_MEMORY_LIMIT}",
            memory <= JSON_MEMORY_LIMIT,
        ),
    ]
    if not jobs:
        results.append(
            Result("cli", "cardflow fold --jobs N (every core)", size, "no --jobs option yet")
        )
    else:
        results.append(
            Result(
                "cli",
                f"cardflow fold --format jsonl --jobs {cores}: wall time vs --jobs 1",
                size,
                _figure(runs["jsonl, every core"]),
                ratio("jsonl, every core", "jsonl", _wall),
            )
        )
    if not duck.available():
        results.append(Result("cli", "DuckDB", size, "not installed: pip install -e '.[bench]'"))
        return results
    for query, label in (("close", "close query"), ("highest", "highest status per card")):
        name = f"duckdb {query}"
        results += [
            Result("cli", f"DuckDB {label}, 1 thread", size, _figure(runs[name])),
            Result(
                "cli",
                f"cardflow fold --format jsonl{flag} vs DuckDB {label}, 1 thread: wall time",
                size,
                "",
                ratio("jsonl", name, _wall),
            ),
        ]
    results.append(
        Result(
            "cli",
            f"cardflow fold --format jsonl{flag} vs DuckDB close query, 1 thread: peak RSS",
            size,
            "",
            ratio("jsonl", "duckdb close", _rss),
        )
    )
    if jobs and cores > 1:
        wall = ratio("jsonl, every core", "duckdb close, every core", _wall)
        rss = ratio("jsonl, every core", "duckdb close, every core", _rss_all)
        results += [
            Result(
                "cli",
                f"DuckDB close query, {cores} threads",
                size,
                _figure(runs["duckdb close, every core"]),
            ),
            Result(
                "cli",
                f"cardflow fold --jobs {cores} vs DuckDB close query, {cores} threads: wall time",
                size,
                "",
                wall,
                f"<= {DUCKDB_TIME:.1f}",
                wall <= DUCKDB_TIME,
            ),
            Result(
                "cli",
                f"cardflow fold --jobs {cores} vs DuckDB close query, {cores} threads: peak RSS",
                size,
                "",
                rss,
                f"<= {DUCKDB_MEMORY:.2f}",
                rss <= DUCKDB_MEMORY,
            ),
        ]
    return results


def library(path: Path, write: bool, encode: bool = False) -> None:
    """The library's decode + fold of a file (and the jsonl report, with ``write``; or,
    with ``encode``, the least any such report costs: msgspec encoding each card's
    public fields, unsorted, its times as msgspec spells them, written nowhere)."""
    with path.open("rb", buffering=1 << 20) as file:
        states = cardflow.fold(itertools.chain.from_iterable(map(cardflow.decode, file)))
    if encode:
        from cardflow.batch._cards import CHUNK, public_row

        values = list(states.values())
        encoder = msgspec.json.Encoder()
        for start in range(0, len(values), CHUNK):
            encoder.encode_lines([public_row(s) for s in values[start : start + CHUNK]])
    if write:
        from cardflow.batch import write_jsonl

        cards = [states[card] for card in sorted(states)]
        with open(os.devnull, "wb") as out:
            write_jsonl(cards, out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cli")
    parser.add_argument("file", type=Path)
    parser.add_argument("--write", action="store_true", help="and write the jsonl report")
    parser.add_argument("--encode", action="store_true", help="and only encode the cards")
    args = parser.parse_args()
    library(args.file, args.write, args.encode)


if __name__ == "__main__":
    main()
