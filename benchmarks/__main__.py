"""``python -m benchmarks [--quick]``: every target of issue 7, side by side, as one table.

--quick (under a minute): throughput at 10k and 100k events; baselines, merge,
tracker and lenient decoding at 10k events; the report at 100k events; memory at
50k cards.

The full run (about 7 minutes, plus 1.5 the first time to generate the 10M-event
file): throughput at 10k, 1M and 10M events (10M streamed from a cache file of JSON
lines); baselines at 10k, 100k and 300k events, and transitions' add_model at 1M;
merge, tracker and lenient decoding at 100k events; the report (aggregate + render
against decode + fold) at 1M events; memory at 1M cards. Data files
are cached in $CARDFLOW_BENCH_CACHE (default: a folder in the system's temporary
directory), keyed by the simulator's source.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import msgspec

import cardflow

from . import _data, baselines, history, memory, operations, profile, report, throughput
from ._timing import Result, table


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument(
        "--only",
        choices=("throughput", "baselines", "operations", "history", "report", "memory"),
        action="append",
        help="run only these groups (repeatable)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile decode + fold with pyinstrument instead of timing (bench extra)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.profile:
        return profile.main(100_000 if args.quick else 1_000_000)
    groups = set(
        args.only or ("throughput", "baselines", "operations", "history", "report", "memory")
    )
    started = time.perf_counter()
    print(
        f"cardflow {cardflow.__version__}, msgspec {msgspec.__version__}, "
        f"Python {platform.python_version()} ({platform.machine()}), "
        f"{'quick' if args.quick else 'full'} run"
    )
    sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    small = 10_000 if args.quick else 100_000
    results: list[Result] = []
    made: dict[int, _data.Dataset] = {}

    def data(size: int) -> _data.Dataset:
        """Each size is generated once, when a group first needs it."""
        if size not in made:
            made[size] = _data.dataset(size)
        return made[size]

    if "throughput" in groups:
        print("throughput...", flush=True)
        results += throughput.run([data(size) for size in sizes])
    if "baselines" in groups:
        for size, count in (
            ((10_000, 3),) if args.quick else ((10_000, 3), (100_000, 1), (300_000, 1))
        ):
            print(f"baselines at {size:,} events...", flush=True)
            results += baselines.run(data(size), count)
        if not args.quick:
            # add_model costs more the more models the machine has: one more size for it.
            print("baselines: transitions add_model at 1M events...", flush=True)
            results += baselines.run(data(1_000_000), 1, only=(baselines.ADD_MODEL,))
    if "operations" in groups:
        print("operations...", flush=True)
        results += operations.run(data(small), 5)
    if "history" in groups:
        print("history (many operations on one card, adversarial documents)...", flush=True)
        results += history.run(data(small), 3)
    if "report" in groups:
        print("report (aggregate + render of the HTML page)...", flush=True)
        results += report.run(data(100_000 if args.quick else 1_000_000), 3)
    if "memory" in groups:
        print("memory (fresh processes)...", flush=True)
        cards = 50_000 if args.quick else 1_000_000
        results += memory.run(cards, None if args.quick else data(max(sizes)))
    print()
    print(table(results))
    missed = [r for r in results if r.ok is False]
    print()
    print(
        f"{len([r for r in results if r.ok])} targets met, {len(missed)} missed, "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
