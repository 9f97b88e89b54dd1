"""Real server processes for the D1 edge's tests: started on a free loopback port,
waited for, and always stopped (SIGTERM, then SIGKILL), their stderr kept for failures."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

HERE = Path(__file__).parent
CARDFLOW = [sys.executable, "-m", "cardflow.cli"]


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until something accepts connections on ``port``; fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


class Server:
    """A started process, its port, and its stderr so far."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running(
    argv: Sequence[str],
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[Server]:
    """Run ``argv`` (which listens on ``port``) for the duration of the block."""
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "stderr.txt"
        with log.open("wb") as err:
            process = subprocess.Popen(
                list(argv),
                stdout=subprocess.DEVNULL,
                stderr=err,
                env={**os.environ, **(env or {})},
                cwd=cwd,
                start_new_session=True,
            )
        try:
            try:
                wait_for_port(port, process)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}:\n{log.read_text(errors='replace')}") from None
            yield Server(process, port, log)
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tracker_app(port: int) -> list[str]:
    """The command line of the stand-in receiver (tests/d1/tracker_app.py)."""
    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "tracker_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip


def mounted_app(port: int) -> list[str]:
    """The command line of the receiver mounted under /d1 (tests/d1/mounted_app.py)."""
    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(HERE), "mounted_app:app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
