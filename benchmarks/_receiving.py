"""The receiver under load: ``cardflow serve --workers 2`` against wrk, each body once.

wrk (Debian's package) opens ``connections`` connections on 2 threads and POSTs the
bodies of a file in turn (``_wrk.lua``: each body once, as long as the run is shorter
than the file), for ``seconds``; the figures are wrk's own: requests completed per
second, the 50th and 99th percentiles of latency, and how many answers were not 2xx
(or failed to arrive). A run whose every body answered 204 stored them all, committed.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

PATH: Final = "/notifications/d1/v2/issuers/ISSUER0001/cards"
_SCRIPT: Final = Path(__file__).with_name("_wrk.lua")
_THREADS: Final = 2


@dataclass(frozen=True)
class Load:
    """What wrk measured."""

    rate: float
    """Requests answered per second."""
    p50_ms: float
    p99_ms: float
    failed: int
    """Answers that were not 2xx, and requests that got no answer."""


def wrk_missing() -> str | None:
    """Why the receiver cannot be measured here, or None."""
    if shutil.which("wrk") is None:
        return "no wrk on PATH (apt-get install wrk)"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cardflow serve stopped with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("cardflow serve did not listen in time")


def receive(url: str, bodies: Path, connections: int, seconds: int) -> Load:
    """Start ``cardflow serve --db url --workers 2``, load it with wrk, stop it."""
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cardflow.cli",
            "serve",
            "--db",
            url,
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-auth",  # loopback only, and the sender is wrk
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait(port, server)
        time.sleep(1.0)  # both workers up (the port answers as soon as one listens)
        done = subprocess.run(
            [
                "wrk",
                "-t",
                str(_THREADS),
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "30s",
                "-s",
                str(_SCRIPT),
                f"http://127.0.0.1:{port}{PATH}",
            ],
            capture_output=True,
            check=True,
            env={**os.environ, "BODIES": str(bodies), "THREADS": str(_THREADS)},
        )
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    for line in done.stdout.decode().splitlines():
        if line.startswith("RESULT "):
            requests, micros, status, broken, p99, p50 = map(int, line.split()[1:])
            return Load(requests / (micros / 1e6), p50 / 1000, p99 / 1000, status + broken)
    raise RuntimeError(f"wrk printed no result: {done.stdout.decode()[-500:]}")
