"""``python -m benchmarks --profile``: where decode + fold spends its time (pyinstrument).

Profiles the streaming ``fold(chain.from_iterable(map(decode, bodies)))`` of the
simulator's traffic and prints pyinstrument's call tree. A sampling profiler slows
Python code more than msgspec's C code, so read the shares, not the seconds.
"""

from __future__ import annotations

import importlib.util

from . import _data
from .throughput import decode_fold


def main(events: int) -> int:
    if importlib.util.find_spec("pyinstrument") is None:
        print("pyinstrument is not installed: pip install -e '.[bench]'")
        return 1
    from pyinstrument import Profiler

    data = _data.dataset(events)
    profiler = Profiler(interval=0.0005)
    profiler.start()
    decode_fold(data)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False))
    return 0
