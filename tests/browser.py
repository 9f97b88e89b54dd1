"""Headless Chromium driven over the Chrome DevTools protocol, on a pipe, with the stdlib.

Chromium started with ``--remote-debugging-pipe`` reads protocol commands on its
file descriptor 3 and writes replies and events on 4, each message JSON ended by a
NUL byte. That is all a test needs to load a page and hear every console message,
uncaught exception and network request: no driver, no websocket library, no
dependency. One :class:`Browser` runs one page at a time; every event is kept.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["CHROMIUM", "Browser", "BrowserError", "Page", "find_chromium"]

CHROMIUM: Final = "/usr/bin/chromium"
FLAGS: Final = (
    "--headless",
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class BrowserError(Exception):
    """Chromium failed, exited, or did not answer in time."""


def find_chromium() -> str | None:
    """Debian's chromium, or one on PATH; None when there is none."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium")


@dataclass
class Page:
    """What one page load did: its console errors, exceptions and requests."""

    session: str
    url: str
    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, method: str) -> list[dict[str, Any]]:
        return [e["params"] for e in self.events if e.get("method") == method]

    @property
    def console_errors(self) -> list[str]:
        """Console messages of level error or warning, uncaught exceptions, log errors."""
        found = [
            " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            for p in self.of("Runtime.consoleAPICalled")
            if p["type"] in ("error", "warning", "assert")
        ]
        found += [p["exceptionDetails"].get("text", "") for p in self.of("Runtime.exceptionThrown")]
        found += [
            p["entry"]["text"]
            for p in self.of("Log.entryAdded")
            if p["entry"]["level"] in ("error", "warning")
        ]
        return found

    @property
    def requests(self) -> list[str]:
        """The URL of every request the page made, its own document included."""
        return [p["request"]["url"] for p in self.of("Network.requestWillBeSent")]


class Browser:
    """One headless Chromium process with a fresh profile; close it (or use ``with``)."""

    def __init__(self, executable: str, timeout: float = 30.0) -> None:
        self.timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="cardflow-chromium-")
        to_child, self._write = os.pipe()
        self._read, from_child = os.pipe()

        def wire() -> None:  # in the child: its fds 3 and 4 become the pipe's ends
            high_in = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10)
            high_out = fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self._process = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=wire,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next = 0
        self._events: list[dict[str, Any]] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Ask Chromium to quit, wait for it, and remove its profile."""
        if self._process.poll() is None:
            with contextlib.suppress(BrowserError, OSError):
                self.send("Browser.close")
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self._profile, ignore_errors=True)

    # -- the protocol -------------------------------------------------------------

    def _message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("Chromium did not answer in time")
            ready, _, _ = select.select([self._read], [], [], left)
            if ready:
                chunk = os.read(self._read, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited ({self._process.poll()})")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; events that come first are kept."""
        self._next += 1
        command: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session is not None:
            command["sessionId"] = session
        os.write(self._write, json.dumps(command).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._message(deadline)
            if message.get("id") == self._next:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._events.append(message)

    def _wait_for(self, method: str, session: str) -> None:
        deadline = time.monotonic() + self.timeout
        for event in self._events:
            if event.get("method") == method and event.get("sessionId") == session:
                return
        while True:
            message = self._message(deadline)
            self._events.append(message)
            if message.get("method") == method and message.get("sessionId") == session:
                return

    # -- pages --------------------------------------------------------------------

    def open(self, path: Path, width: int = 1280, height: int = 900) -> Page:
        """Load a local file in a new tab, listening from before the first request."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Runtime", "Log", "Network", "Page"):
            self.send(f"{domain}.enable", session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )
        mark = len(self._events)
        url = path.resolve().as_uri()
        self.send("Page.navigate", session, url=url)
        self._wait_for("Page.loadEventFired", session)
        page = Page(session, url)
        page.events = self._events[mark:]
        self._page_mark = (page, len(self._events))
        return page

    def settle(self, page: Page) -> None:
        """Let pending events in (a round trip), and add this page's new ones to it."""
        self.evaluate(page, "1")
        new = [e for e in self._events if e.get("sessionId") == page.session]
        page.events = new

    def evaluate(self, page: Page, expression: str) -> Any:
        """The JSON value of ``expression`` in the page; a thrown exception fails."""
        reply = self.send(
            "Runtime.evaluate",
            page.session,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in reply:
            raise BrowserError(f"evaluate: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, page: Page, path: Path) -> Path:
        """The whole page, top to bottom, as a PNG at ``path``."""
        reply = self.send(
            "Page.captureScreenshot", page.session, format="png", captureBeyondViewport=True
        )
        path.write_bytes(base64.b64decode(reply["data"]))
        return path
