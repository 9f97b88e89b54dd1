"""Scaling out (issue 14): ``fold --jobs 2`` against ``--jobs 1``, Dask against one process.

- *--jobs*: the real command (``python -m cardflow.cli fold FILE --format jsonl``, its
  output to /dev/null), the whole wall time from start to exit: reading, folding,
  merging and writing the report. Target: ``--jobs 2`` at least 1.7x as fast on 2 cores.
  The machine is shared, and wall time with it, so a second line bounds the speedup
  on two idle cores from CPU times, which load changes less: twice ``--jobs 1``'s
  against that of all the processes of ``--jobs 2`` (the parent and its workers),
  which counts what the split costs but not how evenly the work spreads.
- *fold_files*: ``cardflow.batch.fold_files(FILE, jobs=2)`` in a Python process writing
  the cards as JSON Lines to /dev/null (``write_jsonl``), against the command doing the
  same (``--jobs 2``), both whole processes. Target: at most 1.05x the command's time
  (the command is a shell over it). A second line times ``states()`` (every state
  handed to the Python process, merged there range by range) against the same command.
- *Dask*: ``cardflow.dask.fold`` over ``read_bodies(FILE)`` on a ``LocalCluster`` of two
  worker processes (started beforehand, not timed), counting the states on the workers,
  against one process reading, decoding and folding the same file. Target: at most 1.5x
  the one process's time (an overhead bound: scheduling, the shuffle in the state format).

Contenders run in interleaved rounds; a ratio is the median of the per-round ratios.
``python -m benchmarks.scale [--quick]`` runs this alone; ``python -m benchmarks --only
scale`` puts it in the table.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import cardflow

from ._data import dataset_file
from ._timing import Result, median, ratio, rounds, table

JOBS_TARGET: Final = 1.7
LIBRARY_TARGET: Final = 1.05
DASK_TARGET: Final = 1.5


def _cli(path: Path, jobs: int) -> Callable[[], object]:
    command = [sys.executable, "-m", "cardflow.cli", "fold", str(path), "--format", "jsonl"]
    command += ["--jobs", str(jobs), "--no-progress", "--allow-rejects"]

    def run() -> object:
        return subprocess.run(command, stdout=subprocess.DEVNULL, check=True)

    return run


def _tree_cpu(command: list[str]) -> float:
    """CPU seconds of a command and every process it waited for (its workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _model(path: Path) -> tuple[float, float]:
    """CPU seconds of ``--jobs 1`` and of all the processes of ``--jobs 2``."""
    command = [sys.executable, "-m", "cardflow.cli", "fold", str(path), "--format", "jsonl"]
    command += ["--no-progress", "--allow-rejects", "--jobs"]
    return _tree_cpu([*command, "1"]), _tree_cpu([*command, "2"])


def jobs(path: Path, label: str, count: int) -> list[Result]:
    """Wall time side by side, and the speedup that CPU times predict on two idle cores."""
    times = rounds({"1": _cli(path, 1), "2": _cli(path, 2)}, count)
    speedup = ratio(times["1"], times["2"])
    figure = f"{median(times['1']):.1f} s -> {median(times['2']):.1f} s"
    load = os.getloadavg()[0]
    one, two = _model(path)
    # Two idle cores at best: the CPU of all the processes of --jobs 2 (the split's
    # overhead included) shared evenly between the cores.
    predicted = 2 * one / two
    return [
        Result(
            "scale",
            f"fold --jobs 2 vs --jobs 1 (speedup, wall; load {load:.1f})",
            label,
            figure,
            speedup,
            f">= {JOBS_TARGET}",
            speedup >= JOBS_TARGET,
        ),
        Result(
            "scale",
            "  the same from CPU times on 2 idle cores (at best)",
            label,
            f"cpu {one:.1f} s; all processes of --jobs 2 {two:.1f} s",
            predicted,
        ),
    ]


_LIBRARY: Final = """\
import os, sys
from cardflow.batch import fold_files
with fold_files([sys.argv[1]], jobs=2) as folded, open(os.devnull, "wb") as out:
    if sys.argv[2] == "jsonl":
        folded.write_jsonl(out)
    else:
        for _ in folded.states():
            pass
"""


def _library(path: Path, how: str) -> Callable[[], object]:
    command = [sys.executable, "-c", _LIBRARY, str(path), how]

    def run() -> object:
        return subprocess.run(command, stdout=subprocess.DEVNULL, check=True)

    return run


def library(path: Path, label: str, count: int) -> list[Result]:
    """``fold_files(jobs=2)`` in a Python process against ``cardflow fold --jobs 2``."""
    times = rounds(
        {
            "command": _cli(path, 2),
            "jsonl": _library(path, "jsonl"),
            "states": _library(path, "states"),
        },
        count,
    )
    command = median(times["command"])
    out = ratio(times["jsonl"], times["command"])
    load = os.getloadavg()[0]
    return [
        Result(
            "scale",
            f"fold_files(jobs=2).write_jsonl vs fold --jobs 2 (time ratio; load {load:.1f})",
            label,
            f"{median(times['jsonl']):.1f} s vs {command:.1f} s",
            out,
            f"<= {LIBRARY_TARGET}",
            out <= LIBRARY_TARGET,
        ),
        Result(
            "scale",
            "  fold_files(jobs=2).states(), every state to Python, vs the same",
            label,
            f"{median(times['states']):.1f} s vs {command:.1f} s",
            ratio(times["states"], times["command"]),
        ),
    ]


def _one_process(path: Path) -> int:
    """One process's fold of the file, the way the Dask tasks fold a partition."""
    folder = cardflow.Folder()
    with path.open("rb") as stream:
        for line in stream:
            if line.strip():
                folder.ingest(line)
    return len(folder.states())


def dask(path: Path, label: str, count: int) -> list[Result]:
    try:
        import distributed

        import cardflow.dask as cfd
    except ImportError:
        print("  dask is not installed (pip install 'cardflow[dask]'): skipped")
        return []
    cluster: Any = distributed.LocalCluster(  # type: ignore[no-untyped-call]
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client: Any = distributed.Client(cluster)  # type: ignore[no-untyped-call]
    try:
        bag: Any = cfd.fold(cfd.read_bodies(str(path), blocksize="32MiB"))
        counts: list[int] = []

        def on_dask() -> object:
            counts.append(bag.count().compute())
            return None

        times = rounds({"one": lambda: _one_process(path), "dask": on_dask}, count)
    finally:
        client.close()
        cluster.close()
    overhead = ratio(times["dask"], times["one"])
    figure = f"{median(times['one']):.1f} s vs {median(times['dask']):.1f} s"
    assert len(set(counts)) == 1
    return [
        Result(
            "scale",
            "Dask, 2 workers vs one process (time ratio)",
            label,
            figure,
            overhead,
            f"<= {DASK_TARGET}",
            overhead <= DASK_TARGET,
        )
    ]


def run(quick: bool) -> list[Result]:
    """The measures: 300k events quick; 2M (--jobs, fold_files) and 10M (Dask) in full."""
    results: list[Result] = []
    sizes = (300_000, 300_000) if quick else (2_000_000, 10_000_000)
    print(f"scale: --jobs at {sizes[0]:,} events...", flush=True)
    results += jobs(dataset_file(sizes[0]), f"{sizes[0] // 1000}k events", 3 if quick else 2)
    print(f"scale: fold_files at {sizes[0]:,} events...", flush=True)
    results += library(dataset_file(sizes[0]), f"{sizes[0] // 1000}k events", 3)
    print(f"scale: Dask at {sizes[1]:,} events...", flush=True)
    results += dask(dataset_file(sizes[1]), f"{sizes[1] // 1000}k events", 2 if quick else 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="300k events, a minute")
    args = parser.parse_args(argv)
    print(table(run(args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
