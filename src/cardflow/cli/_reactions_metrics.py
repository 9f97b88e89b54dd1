"""``cardflow dispatch --metrics-port``: the dispatcher's ``cardflow_reactions_total`` on
a Prometheus endpoint of its own (one process: no multiprocess directory).

``done``: a reaction returned (the reactions object is wrapped to count it).
``retried`` and ``dead``: a reaction raised and its row is due again later, or was
parked dead (or a row could not be read and was parked), as the store's
``cardflow.dispatch`` logger reports each one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

__all__ = ["REACTION_OUTCOMES", "CountedReactions", "serve_metrics"]

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
    logging.getLogger("cardflow.dispatch").addHandler(_Failures(counter))
    return CountedReactions(reactions, counter)
