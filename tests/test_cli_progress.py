"""The progress bar: drawn on a real terminal (a pty), never into a pipe, CI or a dumb terminal."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence

import pytest

from cardflow.cli._progress import Progress, wanted

BODY = (
    b'{"operations":[{"operationId":"o1","operation":"PRODUCE","status":"PENDING",'
    b'"startTime":"2025-01-17T06:28:02Z","cardId":"c1","details":{"status":"CARD_PROD_REQUESTED"}}]}\n'
)


def _drain(fd: int, until: float) -> bytes:
    out = b""
    while time.monotonic() < until:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every writer of the terminal has closed it
            break
        if not chunk:
            break
        out += chunk
    return out


def _drawn(terminal: bytes) -> bool:
    """A carriage return that does not end a line (a pty writes each newline as CR LF)."""
    return b"\r" in terminal.replace(b"\r\n", b"\n")


def fold_on_a_terminal(
    extra_env: dict[str, str], args: Sequence[str] = (), *, bar: bool
) -> tuple[int, bytes, bytes]:
    """Run ``cardflow fold`` with stderr on a pty: (exit status, stdout, what the terminal got).

    stdin starts with a bad line: its report on the terminal shows the command is
    running. Bodies follow until the bar shows (``bar``), or for a second, twice the
    bar's delay (not ``bar``).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TERM")}
    env.update({"TERM": "xterm", **extra_env})
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "cardflow.cli", "fold", "--format", "jsonl", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    assert proc.stdin is not None
    assert proc.stdout is not None
    try:
        proc.stdin.write(b"not json\n")
        proc.stdin.flush()
        terminal = b""
        deadline = time.monotonic() + 60
        while b"\n" not in terminal and time.monotonic() < deadline:
            terminal += _drain(master, time.monotonic() + 0.1)
        running = time.monotonic()
        deadline = running + 60 if bar else running + 1.0
        while time.monotonic() < deadline and not (bar and _drawn(terminal)):
            proc.stdin.write(BODY)
            proc.stdin.flush()
            terminal += _drain(master, time.monotonic() + 0.05)
        proc.stdin.close()
        terminal += _drain(master, time.monotonic() + 30)
        out = proc.stdout.read()
        return proc.wait(timeout=30), out, terminal
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        os.close(master)


def test_the_bar_is_drawn_on_a_terminal_and_erased() -> None:
    status, out, terminal = fold_on_a_terminal({}, bar=True)
    assert status == 1  # the bad line
    assert out.count(b'"cardId":"c1"') == 1
    first, rest = terminal.split(b"\n", 1)
    assert first.rstrip(b"\r") == b"<stdin>:1: $: JSON is malformed: invalid character (byte 4)"
    assert rest.startswith(b"\r")
    assert re.search(rb" read  [0-9,]+ ops  1 cards  [0-9.]+ [kM]?B/s\x1b\[K", rest)
    # Erased at the end, before the closing message.
    assert b"\r\x1b[Kcardflow fold: rejected 1 body and 0 operations" in rest


@pytest.mark.parametrize(
    ("env", "args"),
    [({"CI": "true"}, ()), ({"TERM": "dumb"}, ()), ({}, ("--no-progress",))],
)
def test_no_bar_in_ci_on_a_dumb_terminal_or_when_refused(
    env: dict[str, str], args: Sequence[str]
) -> None:
    status, out, terminal = fold_on_a_terminal(env, args, bar=False)
    assert status == 1
    assert out.count(b'"cardId":"c1"') == 1
    assert not _drawn(terminal)
    assert terminal.startswith(b"<stdin>:1: $: JSON is malformed")


def test_wanted_follows_the_flag_then_the_terminal() -> None:
    pipe = io.StringIO()
    assert not wanted(None, pipe, {})
    assert wanted(True, pipe, {})

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wanted(None, Terminal(), {"TERM": "xterm"})
    assert not wanted(None, Terminal(), {"CI": "1"})
    assert not wanted(False, Terminal(), {})


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_known_total_shows_percent_bar_and_time_left(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    clock = Clock()
    stream = io.StringIO()
    done = [0]
    progress = Progress(stream, lambda: (done[0], 1234, 56), total=4_000_000, clock=clock)
    done[0] = 1_000_000
    clock.now += 0.4
    progress.poll()
    assert stream.getvalue() == ""  # short work never flashes a bar
    clock.now += 0.6  # 1 s in: 1 MB/s, 3 MB to go
    progress.poll()
    line = stream.getvalue()
    assert line.startswith("\r 25% ")
    assert "1.0 MB/4.0 MB  1,234 ops  56 cards  1.0 MB/s  0:03 left\x1b[K" in line
    bar = line.split()[1]
    assert len(bar) == bar.count("#") + bar.count("-") >= 10
    assert abs(bar.count("#") / len(bar) - 0.25) <= 1 / len(bar)  # a quarter of the bar
    assert len(line) - len("\r\x1b[K") <= 99  # within the terminal's 100 columns
    clock.now += 0.05
    progress.poll()
    assert stream.getvalue() == line  # at most ten redraws a second
    progress.clear()
    assert stream.getvalue() == line + "\r\x1b[K"
    progress.clear()
    assert stream.getvalue() == line + "\r\x1b[K"  # nothing left to erase


def test_a_bar_that_counts_cards(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    clock = Clock()
    stream = io.StringIO()
    progress = Progress(stream, lambda: (1500, 0, 0), total=6000, clock=clock, unit="cards")
    clock.now += 1.0
    progress.poll()
    line = stream.getvalue()
    assert line.startswith("\r 25% ")
    assert "1,500 cards/6,000 cards  1,500 cards/s  0:03 left\x1b[K" in line
    assert " B" not in line
