"""How many examples check_handler needs to catch each naive handler (docs/proof.md).

Runs check_handler on each named handler of tests/test_testing_handlers.py, many
times, generation phase only and without the example database, counting the
examples up to the first failure. A measurement, not a test:

    python tests/measure_handlers.py TiesByArrival StartTimeAsText --runs 1000
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from hypothesis import Phase, settings

from cardflow.testing import HandlerMismatchError, check_handler


def examples_to_failure(make: Any, limit: int) -> int | None:
    """Examples check_handler ran up to the first failure; None when none failed."""
    made = 0

    def factory() -> Any:
        nonlocal made
        made += 1
        return make()

    run = settings(database=None, phases=[Phase.generate])
    try:
        check_handler(factory, max_examples=limit, settings=run)
    except HandlerMismatchError:
        return made - 2  # check_handler makes two handlers before the run
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("handlers", nargs="+", help="class names in test_testing_handlers")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--limit", type=int, default=2000, help="examples per run, at most")
    args = parser.parse_args()
    import test_testing_handlers as handlers

    for name in args.handlers:
        counts = [
            examples_to_failure(getattr(handlers, name), args.limit) for _ in range(args.runs)
        ]
        found = sorted(c for c in counts if c is not None)
        if not found:
            print(f"{name}: never caught in {args.runs} runs of {args.limit} examples")
            continue
        p90 = found[max(0, -(-9 * len(found) // 10) - 1)]
        print(
            f"{name}: caught in {len(found)} of {args.runs} runs; examples to the first "
            f"failure: median {statistics.median(found):g}, 90th percentile {p90}, "
            f"most {found[-1]}; runs over 100: {sum(c > 100 for c in found)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
