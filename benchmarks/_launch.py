"""Run a command and print its wall time, CPU time and peak RSS as JSON: ``/usr/bin/time``.

``python benchmarks/_launch.py COMMAND...`` (run as a script, so that it imports nothing
but the standard library). A process's peak RSS on Linux counts what its parent held
when it was forked, so the benchmark's own memory would show in every child's figure;
this small process forks the command instead, and reads its figures with ``wait4``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main() -> int:
    started = time.perf_counter()
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = code = os.waitstatus_to_exitcode(status)
    figures = {
        "code": code,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss * 1024,
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
