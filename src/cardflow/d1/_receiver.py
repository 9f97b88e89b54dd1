"""The webhook receiver: an ASGI application (Starlette) that any ASGI service mounts.

``POST /notifications/d1/v2/issuers/{issuerId}/cards`` stores each body D1 sends in a
cardflow store and answers only once the store committed it; what every other outcome
answers is the status policy (``_policy.py``). ``GET /cards/{cardId}`` answers a card's
:func:`cardflow.json_view`; ``GET /health`` whether the store answers, and nothing else.

With a ``token``, every request but ``GET /health`` must carry it (``Authorization:
Bearer``), whatever its path: one middleware checks it before any route is chosen, so
an unauthenticated request learns nothing (not which issuers or cards exist), and a
route added later is covered without a word. Tokens are compared in constant time.

Bodies that arrive together in one process share a transaction (``_writer.py``: group
commit), each answered only once its own transaction committed. The request does
nothing but store: reactions are rows of the store's outbox, run by a
dispatcher (``cardflow dispatch``) in another process, never inside the request. The
store's calls are blocking (SQLite, psycopg): they run on a thread (the group
writer's, or Starlette's pool) so that one slow commit never holds up the event loop.

A body is read with two limits: ``max_body`` bytes (checked against Content-Length
before reading, and counted while streaming, for a chunked body) and ``body_timeout``
seconds for the whole body to arrive (a slow or stalled sender gets 408). That POST,
the receiver's hot path, is a plain ASGI endpoint (``_notify.py``) that the
application calls before Starlette's routing (after the token check, when there is
a token); the other routes are Starlette's.

The answer to a notification carries an ``X-Request-Id`` (the sender's, when it is
a short plain token, else a new one). Each body not stored is logged (logger
``cardflow.serve``) with its status, reason and request id, never its bytes; so are
the store's outages and recoveries. ``GET /metrics`` (``_metrics.py``) and ``GET /openapi.json``
(``_openapi.py``) describe the receiver to operators and to tools.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Collection
from typing import Any, Final, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._cardstate import CardState
from .._decode import MAX_BODY
from .._errors import StoreUnavailable
from .._text import printable
from .._view import json_view
from ._metrics import CONTENT_TYPE, ReceiverMetrics
from ._notify import Notifications, header, issuer_of, request_id
from ._openapi import openapi_document
from ._policy import Outcome, notification_headers, notification_status
from ._writer import DEFAULT_GROUP_WAIT, DEFAULT_MAX_GROUP, GroupWriter

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY",
    "NOTIFICATION_PATH",
    "ReceiverStore",
    "check_token",
    "receiver",
    "receiver_from_env",
]

NOTIFICATION_PATH: Final = "/notifications/d1/v2/issuers/{issuer_id}/cards"
DEFAULT_MAX_BODY: Final = MAX_BODY
"""16 MiB (``cardflow fold --max-line-bytes`` has the same default: a body taken here
fits in one line of a log)."""
DEFAULT_BODY_TIMEOUT: Final = 30.0

_SHOWN: Final = 300
"""The most characters of a refusal's detail a log line shows."""
_OPEN_PATHS: Final = frozenset({"/health"})
"""The only paths a request without the token reaches (when there is a token)."""

ENV_PREFIX: Final = "CARDFLOW_SERVE_"
"""Where :func:`receiver_from_env` reads its settings (``cardflow serve`` sets them for
its worker processes): ``DB``, ``TOKEN`` or ``NO_AUTH=1``, ``MAX_BODY``,
``BODY_TIMEOUT``, ``ISSUERS``, ``PASSED`` (``1``: the store's ``passed=True``)."""

log: Final = logging.getLogger("cardflow.serve")
_METRIC: Final = {
    Outcome.NOT_AN_ENVELOPE: "rejected",
    Outcome.TOO_LARGE: "too_large",
    Outcome.TOO_SLOW: "too_slow",
    Outcome.STORE_UNAVAILABLE: "unavailable",
    Outcome.UNAUTHORIZED: "unauthorized",
    Outcome.UNKNOWN_ISSUER: "unknown_issuer",
}
"""The ``outcome`` label of ``cardflow_bodies_total`` for a body that was not stored."""


def check_token(token: str) -> str:
    """``token`` if it can be a bearer token; ``ValueError`` saying why not otherwise.

    An empty or blank token (``--token "$UNSET"``) must never mean "no authentication",
    and a token with spaces or control characters could never arrive in a header.
    """
    if not token.strip():
        raise ValueError("the token is empty: give a secret, or serve without one explicitly")
    if not token.isascii() or not token.isprintable() or any(c.isspace() for c in token):
        raise ValueError("the token must be visible ASCII characters, without spaces")
    return token


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


class _BearerToken:
    """ASGI middleware: every HTTP request but those to ``_OPEN_PATHS`` must carry
    ``Authorization: Bearer <token>``, checked before routing (401 otherwise).

    Both sides are hashed before ``hmac.compare_digest``, so that the time taken says
    nothing about the token, not even its length.
    """

    def __init__(
        self, app: ASGIApp, token: str, refused: Callable[[Scope], None] | None = None
    ) -> None:
        self.app = app
        self.expected = _digest(f"Bearer {token}".encode())
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) not in _OPEN_PATHS:
            given = header(scope, b"authorization") or b""
            if not hmac.compare_digest(_digest(given), self.expected):
                if self.refused is not None:  # counted and logged by the receiver
                    self.refused(scope)
                answer = _answer(Outcome.UNAUTHORIZED, "a bearer token is required")
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path below where the receiver is mounted (``Mount("/d1", receiver(...))``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class ReceiverStore(Protocol):
    """What the receiver needs of a store (:class:`cardflow.store.Store` has it)."""

    def ingest(self, body: bytes) -> object:
        """Commit one body; ``InvalidNotification`` for a body that is not a D1 envelope,
        ``StoreUnavailable`` when the database fails."""

    def get(self, card_id: str) -> CardState | None:
        """A card's stored state."""


def _answer(outcome: Outcome, detail: str = "") -> Response:
    """The response for ``outcome``: the policy's status and headers, a short JSON reason."""
    status = notification_status(outcome)
    headers = notification_headers(outcome)
    if status == 204:
        return Response(status_code=204, headers=headers)
    body = {"error": outcome.value, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


class _Outage:
    """Whether the store is failing, as this worker saw it last: logs the first failure
    of an outage and the first success after it, not every request in between."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, detail: str) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.error(
                "the store is unavailable: %s", printable(detail, _SHOWN), extra={"event": "outage"}
            )

    def answered(self) -> None:
        if self.since is not None:
            seconds = round(time.monotonic() - self.since, 3)
            self.since = None
            log.warning(
                "the store answers again, after %.3f s",
                seconds,
                extra={"event": "recovery", "seconds": seconds},
            )


def receiver(
    store: str | ReceiverStore,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    token: str | None = None,
    issuers: Collection[str] | None = None,
    passed: bool = False,
    max_group: int = DEFAULT_MAX_GROUP,
    group_wait: float = DEFAULT_GROUP_WAIT,
) -> Starlette:
    """The receiver as a Starlette application over ``store`` (a store URL, opened
    here with :func:`cardflow.store.open`, or an open store).

    ``token``: every request but ``GET /health`` must send ``Authorization: Bearer
    <token>`` (401 otherwise, whatever the path); None serves without authentication
    (behind a proxy that authenticates). An empty or blank token is a ``ValueError``.
    Mutual TLS is the server's business (``docs/d1.md``).
    ``issuers``: the issuerIds accepted in the path (404 for another); default any.
    ``passed``: a store opened here computes reactions as ``Tracker(passed=True)``
    (the passed-over statuses fire too; docs/d1.md).
    ``max_group``, ``group_wait``: bodies that arrive together share a transaction, at
    most ``max_group`` of them, waiting at most ``group_wait`` seconds for more
    (``GroupWriter``); each is answered once its own transaction committed.
    """
    if token is not None:
        check_token(token)
    if max_body < 1:
        raise ValueError(f"max_body must be at least 1 byte, got {max_body}")
    if body_timeout <= 0:
        raise ValueError(f"body_timeout must be positive, got {body_timeout}")
    from ..store import open as open_store

    backend: ReceiverStore = open_store(store, passed=passed) if isinstance(store, str) else store
    owned = isinstance(store, str)
    writer = GroupWriter(backend, max_bodies=max_group, max_wait=group_wait)
    metrics = ReceiverMetrics(backend)
    outage = _Outage()
    described = openapi_document(secured=token is not None, max_body=max_body)

    def note(outcome: Outcome, detail: str, rid: str) -> None:
        """Count and log a body not stored (never its bytes)."""
        status = notification_status(outcome)
        metrics.bodies.labels(_METRIC[outcome]).inc()
        log.warning(
            "refused a body: %d %s (%s), request %s",
            status,
            outcome.value,
            printable(detail, _SHOWN),
            rid,
            extra={"event": "refused", "status": status, "outcome": outcome.value,
                   "reason": printable(detail, _SHOWN), "request_id": rid, "pid": os.getpid()},
        )  # fmt: skip

    def refused(outcome: Outcome, detail: str, rid: str) -> Response:
        note(outcome, detail, rid)
        answer = _answer(outcome, detail)
        answer.headers["X-Request-Id"] = rid
        return answer

    def unauthorized(scope: Scope) -> None:
        """A request the token check refused: a notification is counted and logged."""
        if scope.get("method") == "POST":
            note(Outcome.UNAUTHORIZED, "a bearer token is required", request_id(scope))

    async def card(request: Request) -> Response:
        try:
            state = await run_in_threadpool(backend.get, request.path_params["card_id"])
        except StoreUnavailable as error:
            outage.failed(str(error))
            return _answer(Outcome.STORE_UNAVAILABLE, str(error))
        outage.answered()
        if state is None:
            return JSONResponse({"error": "UNKNOWN_CARD"}, status_code=404)
        return JSONResponse(json_view(state))

    async def health(request: Request) -> Response:
        # Open to anyone: it says whether the store answers, never why (the error names
        # the database) nor anything of a card.
        try:
            await run_in_threadpool(backend.get, "")
        except StoreUnavailable as error:
            outage.failed(str(error))
            return JSONResponse({"status": "unavailable"}, 503)
        outage.answered()
        return JSONResponse({"status": "ok"})

    async def exposition(request: Request) -> Response:
        await run_in_threadpool(metrics.refresh)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def openapi(request: Request) -> Response:
        return JSONResponse(described)

    async def no_route(request: Request, error: Exception) -> Response:
        status = error.status_code if isinstance(error, HTTPException) else 404
        headers = getattr(error, "headers", None)
        return JSONResponse({"error": "NO_SUCH_ROUTE"}, status_code=status, headers=headers)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("worker %d started", os.getpid(), extra={"event": "worker_started",
                                                          "pid": os.getpid()})  # fmt: skip
        yield
        writer.close()
        close = getattr(backend, "close", None)
        if owned and close is not None:  # the store we opened: the caller's stays open
            close()
        log.info("worker %d stopped", os.getpid(), extra={"event": "worker_stopped",
                                                          "pid": os.getpid()})  # fmt: skip

    notifications = Notifications(
        writer, metrics, outage, refused, issuers=issuers, max_body=max_body,
        body_timeout=body_timeout,
    )  # fmt: skip
    app = _Receiver(
        lifespan=lifespan,
        middleware=[]
        if token is None
        else [Middleware(_BearerToken, token=token, refused=unauthorized)],
        routes=[
            Route(NOTIFICATION_PATH, notifications, methods=["POST"]),
            Route("/cards/{card_id}", card, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", exposition, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        exception_handlers={404: no_route, 405: no_route},
    )
    app.notifications = (
        notifications if token is None else _BearerToken(notifications, token, unauthorized)
    )
    return app


class _Receiver(Starlette):
    """The receiver: a POST to the notification path goes straight to the endpoint
    (through the token check, when there is a token), every other request through
    Starlette (``_notify.py`` says why)."""

    notifications: ASGIApp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            issuer = issuer_of(_route_path(scope))
            if issuer is not None:
                scope["app"] = self
                scope["path_params"] = {"issuer_id": issuer}
                await self.notifications(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def receiver_from_env(environ: dict[str, str] | None = None) -> Starlette:
    """The receiver configured by ``CARDFLOW_SERVE_*`` variables: a factory for
    ``uvicorn --factory cardflow.d1:receiver_from_env`` and ``cardflow serve``."""
    env: Any = os.environ if environ is None else environ
    db = env.get(ENV_PREFIX + "DB")
    if not db:
        raise ValueError(f"{ENV_PREFIX}DB is not set: the store URL the receiver writes to")
    issuers = env.get(ENV_PREFIX + "ISSUERS")
    token = env.get(ENV_PREFIX + "TOKEN")
    no_auth = env.get(ENV_PREFIX + "NO_AUTH") == "1"
    if token is None and not no_auth:
        raise ValueError(
            f"{ENV_PREFIX}TOKEN is not set: set it to the bearer token D1 sends, or"
            f" {ENV_PREFIX}NO_AUTH=1 to serve without authentication"
        )
    if token is not None and no_auth:
        raise ValueError(f"{ENV_PREFIX}TOKEN and {ENV_PREFIX}NO_AUTH=1 contradict each other")
    return receiver(
        db,
        passed=env.get(ENV_PREFIX + "PASSED") == "1",
        max_body=int(env.get(ENV_PREFIX + "MAX_BODY", DEFAULT_MAX_BODY)),
        body_timeout=float(env.get(ENV_PREFIX + "BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT)),
        token=token,
        issuers=issuers.split(",") if issuers else None,
    )
