"""``python -m benchmarks [--quick]``: every target, side by side, as one table.

--quick (under a minute): throughput at 10k and 100k events, on the simulator's
traffic and on a shipment-heavy stream; baselines, merge,
tracker, lenient decoding, the operationId checks and the history costs at 10k events;
the report at 100k events; the command line
against the library and DuckDB, and memory, at 100k events (10k cards). The scale
(--jobs and Dask) and store (bodies per second into SQLite and a throwaway
PostgreSQL) groups run only when named: --only scale, --only store.

The full run (under 10 minutes on 2 shared cores, plus about 3 the first time to
generate the 10M-event file): throughput at 10k, 1M and 10M events (10M streamed
from a cache file of JSON lines), and on the shipment-heavy stream at 10k and 1M
(--large adds 10M, from a file of its own); baselines at 10k and 50k events, and
transitions' add_model at 300k; merge, tracker, lenient decoding and the
operationId checks and the history costs at 100k events; the report at 1M events;
the command line against the library and
DuckDB, and memory, at 1M events (100k cards). Data files are cached in
$CARDFLOW_BENCH_CACHE (default: a folder in the system's temporary directory), keyed
by the simulator's source. The machine's load average is printed at the start and
the end: a ratio is measured side by side, but a loaded machine still moves it.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import msgspec

import cardflow

from . import (
    _data,
    baselines,
    cli,
    history,
    memory,
    operation_id,
    operations,
    profile,
    report,
    scale,
    store,
    throughput,
)
from ._timing import Result, table

GROUPS = (
    "throughput",
    "shipments",
    "baselines",
    "operations",
    "operationId",
    "history",
    "report",
    "cli",
    "memory",
)
OPT_IN = ("scale", "store")
"""Groups that run only when named with --only (--jobs and Dask, and the store with a
throwaway PostgreSQL: minutes of their own)."""


def load() -> str:
    """The machine's load average (1, 5 and 15 minutes), as ``uptime`` shows it."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a run under a minute")
    parser.add_argument(
        "--only",
        choices=GROUPS + OPT_IN,
        action="append",
        help="run only these groups (repeatable; scale and store run only when named)",
    )
    parser.add_argument(
        "--large",
        action="store_true",
        help="the shipment-heavy stream at 10M events too (a 4 GB file, generated once)",
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
    groups = set(args.only or GROUPS)
    started = time.perf_counter()
    print(
        f"cardflow {cardflow.__version__}, msgspec {msgspec.__version__}, "
        f"Python {platform.python_version()} ({platform.machine()}), "
        f"{os.cpu_count()} cores, {'quick' if args.quick else 'full'} run"
    )
    print(f"load average at the start: {load()}", flush=True)
    sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000, 10_000_000]
    small = 10_000 if args.quick else 100_000
    results: list[Result] = []
    made: dict[tuple[int, str], _data.Dataset] = {}

    def step(what: str) -> None:
        """Say what runs next, when, and under what load."""
        elapsed = time.perf_counter() - started
        print(f"[{elapsed:4.0f} s, load {load()}] {what}...", flush=True)

    def data(size: int, kind: str = _data.TRAFFIC) -> _data.Dataset:
        """Each size is generated once, when a group first needs it."""
        if (size, kind) not in made:
            made[size, kind] = _data.dataset(size, kind=kind)
        return made[size, kind]

    if "throughput" in groups:
        step("throughput")
        results += throughput.run([data(size) for size in sizes])
    if "shipments" in groups:
        step("throughput on the shipment-heavy stream")
        heavy = sizes[:2] + ([10_000_000] if args.large and not args.quick else [])
        results += throughput.run(
            [data(size, _data.SHIPMENTS) for size in heavy], group="shipments"
        )
        for size in heavy:
            made.pop((size, _data.SHIPMENTS), None)
    if "baselines" in groups:
        for size, count in ((10_000, 2),) if args.quick else ((10_000, 3), (50_000, 1)):
            step(f"baselines at {size:,} events")
            results += baselines.run(data(size), count)
        if not args.quick:
            # add_model costs more the more models the machine has: one more size for it.
            step("baselines: transitions add_model at 300k events")
            results += baselines.run(data(300_000), 1, only=(baselines.ADD_MODEL,))
    if "operations" in groups:
        step("operations")
        results += operations.run(data(small), 5)
    if "operationId" in groups:
        step("operationId checks")
        results += operation_id.run(data(small), 9)
    if "history" in groups:
        step("history (many operations on one card, adversarial documents)")
        results += history.run(data(small), 3)
    if "report" in groups:
        step("report (aggregate + render of the HTML page)")
        results += report.run(data(100_000 if args.quick else 1_000_000), 3)
    # The command line and memory share one file of JSON lines.
    events = 100_000 if args.quick else 1_000_000
    if "cli" in groups:
        step(f"command line, library and DuckDB at {events:,} events")
        results += cli.run(_data.dataset_file(events), 2 if args.quick else 3)
    if "memory" in groups:
        step("memory (fresh processes)")
        results += memory.run(_data.cards_for(events), None)
    if "scale" in groups:
        step("scale (--jobs and Dask)")
        results += scale.run(args.quick)
    if "store" in groups:
        step("store (writer processes, a throwaway PostgreSQL)")
        results += store.run(100, 2) if args.quick else store.run(600, 3)
        step("store, batched: against a bare-SQL floor; the receiver under wrk")
        results += store.run_batched(400, 1) if args.quick else store.run_batched(1500, 3)
        step("store: rebuild beside a plain fold")
        results += store.rebuild_run(1000, 2) if args.quick else store.rebuild_run(10_000, 3)
    made.clear()
    print()
    print(f"load average at the end: {load()}")
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
