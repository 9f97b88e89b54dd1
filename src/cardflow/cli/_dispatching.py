"""``cardflow dispatch`` as a service: its reactions found as ``python -m`` finds modules,
a clean stop on SIGTERM or SIGINT, and with ``--follow`` a line per failure as it
happens and a progress line at intervals.

The failures come from the store's ``cardflow.dispatch`` logger: a handler of that
logger writes them to stderr (escaped: a key holds whatever a card id held) and counts
them, so that whatever else listens to the logger (a log configuration, metrics) sees
the same records. Each progress line is written to stderr and logged there too (INFO,
its counts in the record's ``progress``).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TextIO

__all__ = ["Follow", "find_reactions", "printable", "stopping"]

_LOGGER = "cardflow.dispatch"


def find_reactions(spec: str) -> object:
    """The object ``MODULE:OBJECT`` names (a class is instantiated without arguments),
    with the current directory first on the import path, as ``python -m`` has it."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValueError(f"--reactions {spec!r}: expected MODULE:OBJECT")
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.insert(0, here)
    found: object = importlib.import_module(module_name)
    for part in attribute.split("."):
        found = getattr(found, part)
    return found() if isinstance(found, type) else found


@contextmanager
def stopping() -> Iterator[threading.Event]:
    """An event that SIGTERM or SIGINT sets, in place of stopping the process: the
    dispatcher finishes the reaction it runs, gives back the rows it has not started,
    and exits. A second signal acts as it would have (SIGINT: ``KeyboardInterrupt``)."""
    stop = threading.Event()
    kinds = (signal.SIGTERM, signal.SIGINT)
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread can take signals
        return
    before = {kind: signal.getsignal(kind) for kind in kinds}

    def on_signal(number: int, frame: FrameType | None) -> None:
        stop.set()
        for kind, handler in before.items():
            signal.signal(kind, handler)

    for kind in kinds:
        signal.signal(kind, on_signal)
    try:
        yield stop
    finally:
        for kind, handler in before.items():
            signal.signal(kind, handler)


def printable(text: str) -> str:
    """``text`` safe for a terminal: control and other unprintable characters escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class Follow(logging.Handler):
    """Writes each failure the dispatcher logs to stderr and counts the outcomes; writes a
    progress line every ``every`` seconds (``tick``)."""

    def __init__(self, stderr: TextIO, every: float) -> None:
        super().__init__(logging.WARNING)
        self.stderr = stderr
        self.every = every
        self.retried = 0
        self.dead = 0
        self.last = time.monotonic()

    def emit(self, record: logging.LogRecord) -> None:
        outcome = getattr(record, "outcome", None)
        if outcome == "retried":
            self.retried += 1
        elif outcome == "dead":
            self.dead += 1
        else:
            return
        self.stderr.write(f"cardflow dispatch: {printable(record.getMessage())}\n")
        self.stderr.flush()

    def tick(self, done: int, pending: int | None, force: bool = False) -> bool:
        """Write the progress line if it is due (or ``force``); whether it did."""
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return False
        self.last = now
        waiting = "" if pending is None else f", {pending} pending"
        line = f"progress: {done} done, {self.retried} retried, {self.dead} dead{waiting}"
        self.stderr.write(f"cardflow dispatch: {line}\n")
        self.stderr.flush()
        counts = {"done": done, "retried": self.retried, "dead": self.dead, "pending": pending}
        logging.getLogger(_LOGGER).info("%s", line, extra={"progress": counts})
        return True

    @contextmanager
    def attached(self) -> Iterator[Follow]:
        """This handler on the ``cardflow.dispatch`` logger for the block; the logger lets
        WARNING through even where nothing configured logging."""
        logger = logging.getLogger(_LOGGER)
        level = logger.level
        if logger.getEffectiveLevel() > logging.WARNING:
            logger.setLevel(logging.WARNING)
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)
