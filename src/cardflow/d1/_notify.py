"""The notification endpoint as a plain ASGI application: the receiver's hot path.

Every body D1 sends costs one POST, so this path is written against ASGI's messages
directly: the headers read from the raw list, the body from ``http.request``
messages, a 204 sent as two messages. Starlette's request, routing, middleware and
response objects cost several times what the request itself needs (``cardflow serve``
spent about 2 ms of CPU a request, docs/performance.md); the receiver's other routes
and every answer that is not a 204 still go through them.

What it answers is the receiver's status policy (``_policy.py``): a body is read
within ``max_body`` bytes (checked against Content-Length before reading, and counted
while it streams) and ``body_timeout`` seconds, handed to the process's group writer,
and answered 204 only once its transaction committed. Each answer carries an
``X-Request-Id``: the sender's, when it is a short plain token, else a new one.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Collection
from typing import Final, Protocol

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ._metrics import ReceiverMetrics
from ._policy import Outcome
from ._writer import GroupWriter, Stored

__all__ = ["Notifications", "header", "issuer_of", "request_id"]

_PREFIX: Final = "/notifications/d1/v2/issuers/"
_SUFFIX: Final = "/cards"
_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_OPERATIONS: Final = ("stored", "duplicate", "rejected", "passed_over")


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower case, as ASGI gives names), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def issuer_of(path: str) -> str | None:
    """The issuerId of a notification path (``NOTIFICATION_PATH``), or None for any
    other path: as Starlette's ``{issuer_id}``, one segment, not empty."""
    if path.startswith(_PREFIX) and path.endswith(_SUFFIX):
        issuer = path[len(_PREFIX) : -len(_SUFFIX)]
        if issuer and "/" not in issuer:
            return issuer
    return None


def request_id(scope: Scope) -> str:
    """The request's id: the sender's ``X-Request-Id`` when it is a short plain token
    (safe to log and to echo), else a new one (128 random bits, in hex)."""
    given = header(scope, b"x-request-id")
    if given is not None:
        text = given.decode("latin-1")
        if _REQUEST_ID.fullmatch(text):
            return text
    return os.urandom(16).hex()


class Outage(Protocol):
    """Whether the store is failing, as the receiver tells it."""

    def failed(self, detail: str) -> None: ...

    def answered(self) -> None: ...


class _BodyError(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


async def read_body(scope: Scope, receive: Receive, max_body: int, timeout: float) -> bytes:
    """The request's body, whole, within the limits; ``_BodyError`` otherwise."""
    declared = header(scope, b"content-length")
    if declared is None:
        declared = b"0"
    if not declared.isdigit():
        shown = declared.decode("latin-1")
        raise _BodyError(Outcome.NOT_AN_ENVELOPE, f"Content-Length {shown!r} is no number")
    if int(declared) > max_body:
        raise _BodyError(
            Outcome.TOO_LARGE, f"{declared.decode()} bytes declared, {max_body} allowed"
        )
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "http.disconnect":
                    raise _BodyError(Outcome.TOO_SLOW, "the sender went away before the body ended")
                if kind != "http.request":
                    continue
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > max_body:
                    raise _BodyError(Outcome.TOO_LARGE, f"over {max_body} bytes")
                parts.append(chunk)
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        raise _BodyError(
            Outcome.TOO_SLOW, f"the body did not arrive whole within {timeout:g} s"
        ) from None
    return parts[0] if len(parts) == 1 else b"".join(parts)


class Notifications:
    """``POST NOTIFICATION_PATH`` as an ASGI application (``scope["path_params"]``
    holds ``issuer_id``, as Starlette's routing sets it).

    ``refused(outcome, detail, request_id)``: the answer to a body not stored (it
    counts and logs it).
    """

    def __init__(
        self,
        writer: GroupWriter,
        metrics: ReceiverMetrics,
        outage: Outage,
        refused: Callable[[Outcome, str, str], Response],
        *,
        issuers: Collection[str] | None,
        max_body: int,
        body_timeout: float,
    ) -> None:
        self.writer = writer
        self.metrics = metrics
        self.outage = outage
        self.refused = refused
        self.issuers = None if issuers is None else frozenset(issuers)
        self.max_body = max_body
        self.body_timeout = body_timeout
        # Each labelled series once (a lookup by label costs more than the count).
        self._bodies = {o: metrics.bodies.labels(o) for o in ("stored", "duplicate")}
        self._operations = [metrics.operations.labels(o) for o in _OPERATIONS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(scope)
        if self.issuers is not None and scope["path_params"]["issuer_id"] not in self.issuers:
            detail = "this receiver does not serve that issuer"
            await self.refused(Outcome.UNKNOWN_ISSUER, detail, rid)(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self.max_body, self.body_timeout)
        except _BodyError as error:
            await self.refused(error.outcome, error.detail, rid)(scope, receive, send)
            return
        received = time.perf_counter()
        written = await self.writer.write(body)
        if written.outcome is Stored.REJECTED:
            answer = self.refused(Outcome.NOT_AN_ENVELOPE, written.detail, rid)
            await answer(scope, receive, send)
            return
        if written.outcome is Stored.UNAVAILABLE:
            self.outage.failed(written.detail)
            answer = self.refused(Outcome.STORE_UNAVAILABLE, written.detail, rid)
            await answer(scope, receive, send)
            return
        self.metrics.ingest_seconds.observe(time.perf_counter() - received)
        self.outage.answered()
        self._count(written)
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [(b"x-request-id", rid.encode())],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    def _count(self, written: object) -> None:
        """Count a committed body (``stored`` or ``duplicate``) and its operations, from
        what the store says it did."""
        outcome = getattr(written, "outcome", Stored.STORED)
        done = getattr(written, "ingested", None)
        self._bodies[outcome.value].inc()
        counts = (
            int(getattr(done, "new", 0)),
            int(getattr(done, "duplicates", 0)),
            sum(r.index is not None for r in getattr(done, "rejects", ())),
            int(getattr(done, "passed_over", 0)),
        )
        for series, n in zip(self._operations, counts, strict=True):
            if n:
                series.inc(n)
