"""Run a command and print its wall time, CPU time and peak RSS as JSON: ``/usr/bin/time``.

``python benchmarks/_launch.py COMMAND...`` (run as a script, so that it imports nothing
but the standard library). A process's peak RSS on Linux counts what its parent held
when it was forked, so the benchmark's own memory would show in every child's figure;
this small process forks the command instead, and reads its figures with ``wait4``.
``wait4`` gives the peak of the largest single process, so a sampler also adds up the
resident memory of the command and all its descendants (worker processes) every
50 ms: ``rss_all``, the peak of that sum (a sample can miss a short peak); and their
CPU times, ``cpu_all`` (``wait4`` counts only the descendants the command waited for:
not the workers a ``forkserver`` started).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

_EVERY = 0.05


def _tree(root: int) -> list[int]:
    """``root`` and its descendants, from /proc (Linux; elsewhere ``root`` alone)."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return [root]
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as file:
                parent = int(file.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(name))
    found = [root]
    for pid in found:
        found += children.get(pid, [])
    return found


def _cpu_ticks(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def _resident(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as file:
            for line in file:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _sample(root: int, done: threading.Event, peak: list[int], ticks: dict[int, int]) -> None:
    while not done.wait(_EVERY):
        tree = _tree(root)
        peak[0] = max(peak[0], sum(_resident(pid) for pid in tree))
        for pid in tree:
            ticks[pid] = max(ticks.get(pid, 0), _cpu_ticks(pid))


def main() -> int:
    started = time.perf_counter()
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
    done, peak, ticks = threading.Event(), [0], dict[int, int]()
    sampler = threading.Thread(target=_sample, args=(process.pid, done, peak, ticks), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - started
    process.returncode = code = os.waitstatus_to_exitcode(status)
    figures = {
        "code": code,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "rss": usage.ru_maxrss * 1024,
        "rss_all": max(peak[0], usage.ru_maxrss * 1024),
        "cpu_all": max(
            sum(ticks.values()) / os.sysconf("SC_CLK_TCK"), usage.ru_utime + usage.ru_stime
        ),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
