"""The store's dispatcher as a service (what ``cardflow dispatch`` runs, and any process
of yours can): its reactions found as ``python -m`` finds modules, a clean stop on
SIGTERM or SIGINT, a line per failure as it happens and a progress line at intervals
(:class:`Follow`), and ``cardflow_reactions_total`` on a Prometheus endpoint of its
own (:func:`serve_metrics`).

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, Final, TextIO

from ._logging import ECHOED, printable

__all__ = [
    "REACTION_OUTCOMES",
    "CountedReactions",
    "Follow",
    "find_reactions",
    "serve_metrics",
    "stopping",
]

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


class Follow(logging.Handler):
    """Writes each failure the dispatcher logs to stderr and counts the outcomes; writes a
    progress line every ``every`` seconds (``tick``). With ``echo`` False (``--log-format
    json``) it only counts: the log configuration writes the failures, as JSON; with it,
    the line written here is the failure's only one (``ECHOED`` marks the record)."""

    def __init__(self, stderr: TextIO, every: float, echo: bool = True) -> None:
        super().__init__(logging.WARNING)
        self.stderr = stderr
        self.every = every
        self.echo = echo
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
        if self.echo:
            self.stderr.write(f"cardflow dispatch: {printable(record.getMessage())}\n")
            self.stderr.flush()
            setattr(record, ECHOED, True)

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


# -- cardflow_reactions_total ----------------------------------------------------------
# ``done``: a reaction returned (the reactions object is wrapped to count it).
# ``retried`` and ``dead``: a reaction raised and its row is due again later, or was
# parked dead (or a row could not be read and was parked), as the ``cardflow.dispatch``
# logger reports each one. One process: no multiprocess directory.

REACTION_OUTCOMES: Final = ("done", "retried", "dead")


class CountedReactions:
    """``reactions``, with every ``on_...`` method that returns counted as ``done`` in
    ``counter``; any other attribute passes through unchanged."""

    def __init__(self, reactions: object, counter: Any) -> None:
        self._reactions = reactions
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._reactions, name)
        if not name.startswith("on_") or not callable(found):
            return found
        counter = self._counter
        method: Callable[..., object] = found

        def counted(*args: object, **kwargs: object) -> object:
            result = method(*args, **kwargs)
            counter.labels("done").inc()
            return result

        return counted


class _Failures(logging.Handler):
    """Counts the failures the store's dispatcher logs, by their ``outcome``."""

    def __init__(self, counter: Any) -> None:
        super().__init__(logging.WARNING)
        self._counter = counter

    def emit(self, record: logging.LogRecord) -> None:
        outcome = getattr(record, "outcome", None)
        if outcome in ("retried", "dead"):
            self._counter.labels(outcome).inc()


def serve_metrics(reactions: object, host: str, port: int) -> CountedReactions:
    """Serve ``/metrics`` on ``host:port`` in a background thread (``OSError`` when
    the port cannot be taken); the reactions to dispatch with, counted."""
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    registry = CollectorRegistry()
    counter = Counter(
        "cardflow_reactions", "Reactions run by this dispatcher, by outcome.", ["outcome"],
        registry=registry,
    )  # fmt: skip
    for outcome in REACTION_OUTCOMES:
        counter.labels(outcome)
    start_http_server(port, addr=host, registry=registry)
    logging.getLogger(_LOGGER).addHandler(_Failures(counter))
    return CountedReactions(reactions, counter)
