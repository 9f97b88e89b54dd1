"""Memory: the RSS that folded states hold, per card, measured in a fresh process.

``python -m benchmarks.memory FILE [--no-shipments]`` folds a file of JSON lines,
streaming, and prints the RSS growth per card as JSON: the RSS after the fold (the
states alive, everything else released) less the RSS before it, once the imports
and cardflow's tables are in place. With ``--no-shipments`` every event loses its
``details.shipment`` before folding: the same cards without shipment data.

RSS, not a sum of object sizes: what a service pays includes the allocator's
overhead and whatever a fold leaves behind.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import msgspec

import cardflow

from . import _data
from ._timing import Result

WITHOUT_SHIPMENTS: Final = 600
WITH_SHIPMENTS: Final = 1200


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _operations(path: Path, shipments: bool) -> Iterator[cardflow.Operation]:
    # Line by line (not in large blocks): the reader itself then holds next to nothing.
    with path.open("rb") as file:
        for op in itertools.chain.from_iterable(map(cardflow.decode, file)):
            yield op if shipments else _without_shipment(op)


def _without_shipment(op: cardflow.Operation) -> cardflow.Operation:
    details = op.details
    if details is None or details.shipment is None:
        return op
    return msgspec.structs.replace(op, details=msgspec.structs.replace(details, shipment=None))


def measure(path: Path, shipments: bool) -> dict[str, float]:
    """Fold the file here and report RSS growth per card (run it in a fresh process)."""
    warm = cardflow.fold(itertools.islice(_operations(path, shipments), 1000))
    del warm
    gc.collect()
    before = _rss()
    states = cardflow.fold(_operations(path, shipments))
    gc.collect()
    after = _rss()
    return {"cards": len(states), "bytes_per_card": (after - before) / len(states)}


def _fresh(path: Path, shipments: bool) -> dict[str, float]:
    command = [sys.executable, "-m", "benchmarks.memory", str(path)]
    if not shipments:
        command.append("--no-shipments")
    done = subprocess.run(command, capture_output=True, check=True, text=True)
    result: dict[str, float] = json.loads(done.stdout)
    return result


def run(cards: int, data: _data.Dataset | None) -> list[Result]:
    """RSS per card for ``cards`` cards (the file of ``data`` when given)."""
    path = data.path if data is not None and data.path is not None else None
    if path is None:
        path = _data.dataset_file(round(cards * _data.EVENTS_PER_CARD))
    results = []
    for shipments, limit in ((False, WITHOUT_SHIPMENTS), (True, WITH_SHIPMENTS)):
        found = _fresh(path, shipments)
        per_card = found["bytes_per_card"]
        results.append(
            Result(
                "memory",
                f"RSS per card held, {'with' if shipments else 'without'} shipment data",
                f"{int(found['cards']):,} cards",
                f"{per_card:.0f} bytes",
                None,
                f"<= {limit}",
                per_card <= limit,
            )
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("file", type=Path)
    parser.add_argument("--no-shipments", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.file, not args.no_shipments)))


if __name__ == "__main__":
    main()
