"""``cardflow dispatch --metrics-port``: the dispatcher's ``cardflow_reactions_total``
on a Prometheus endpoint of its own (one process: no multiprocess directory).

The reactions object is wrapped, so that each reaction is counted as it returns
(``done``) or raises (``failed``: the store retries it later, or parks it as dead,
which ``cardflow_outbox_rows{stage="dead"}`` of the receiver's ``/metrics`` shows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["REACTION_OUTCOMES", "CountedReactions", "serve_metrics"]

REACTION_OUTCOMES: Final = ("done", "failed")


class CountedReactions:
    """``reactions``, with every ``on_...`` method counted in ``counter`` by outcome;
    any other attribute passes through unchanged."""

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
            try:
                result = method(*args, **kwargs)
            except Exception:
                counter.labels("failed").inc()
                raise
            counter.labels("done").inc()
            return result

        return counted


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
    return CountedReactions(reactions, counter)
