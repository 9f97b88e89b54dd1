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
store's calls are blocking (SQLite, psycopg): they run in Starlette's thread pool so
that one slow commit never holds up the event loop.

A body is read with two limits: ``max_body`` bytes (checked against Content-Length
before reading, and counted while streaming, for a chunked body) and ``body_timeout``
seconds for the whole body to arrive (a slow or stalled sender gets 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Collection
from typing import Any, Final, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._cardstate import CardState
from .._decode import MAX_BODY
from .._errors import StoreUnavailable
from .._view import json_view
from ._policy import Outcome, notification_headers, notification_status
from ._writer import DEFAULT_GROUP_WAIT, DEFAULT_MAX_GROUP, GroupWriter, Stored

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

_OPEN_PATHS: Final = frozenset({"/health"})
"""The only paths a request without the token reaches (when there is a token)."""

ENV_PREFIX: Final = "CARDFLOW_SERVE_"
"""Where :func:`receiver_from_env` reads its settings (``cardflow serve`` sets them for
its worker processes): ``DB``, ``TOKEN`` or ``NO_AUTH=1``, ``MAX_BODY``,
``BODY_TIMEOUT``, ``ISSUERS``."""


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

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = _digest(f"Bearer {token}".encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _route_path(scope) not in _OPEN_PATHS:
            given = Headers(scope=scope).get("authorization", "").encode("latin-1")
            if not hmac.compare_digest(_digest(given), self.expected):
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


class _BodyError(Exception):
    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


async def read_body(request: Request, max_body: int, timeout: float) -> bytes:
    """The request's body, whole, within the limits; raises _BodyError otherwise."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit():
        raise _BodyError(Outcome.NOT_AN_ENVELOPE, f"Content-Length {declared!r} is no number")
    if int(declared) > max_body:
        raise _BodyError(Outcome.TOO_LARGE, f"{declared} bytes declared, {max_body} allowed")
    parts: list[bytes] = []
    size = 0
    late = f"the body did not arrive whole within {timeout:g} s"
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > max_body:
                    raise _BodyError(Outcome.TOO_LARGE, f"over {max_body} bytes")
                parts.append(chunk)
    except TimeoutError:
        raise _BodyError(Outcome.TOO_SLOW, late) from None
    except ClientDisconnect:
        raise _BodyError(Outcome.TOO_SLOW, "the sender went away before the body ended") from None
    return b"".join(parts)


def _answer(outcome: Outcome, detail: str = "") -> Response:
    """The response for ``outcome``: the policy's status and headers, a short JSON reason."""
    status = notification_status(outcome)
    headers = notification_headers(outcome)
    if status == 204:
        return Response(status_code=204, headers=headers)
    body = {"error": outcome.value, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def receiver(
    store: str | ReceiverStore,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    body_timeout: float = DEFAULT_BODY_TIMEOUT,
    token: str | None = None,
    issuers: Collection[str] | None = None,
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

    backend: ReceiverStore = open_store(store) if isinstance(store, str) else store
    owned = isinstance(store, str)
    writer = GroupWriter(backend, max_bodies=max_group, max_wait=group_wait)
    allowed = None if issuers is None else frozenset(issuers)

    async def notify(request: Request) -> Response:
        if allowed is not None and request.path_params["issuer_id"] not in allowed:
            return _answer(Outcome.UNKNOWN_ISSUER, "this receiver does not serve that issuer")
        try:
            body = await read_body(request, max_body, body_timeout)
        except _BodyError as error:
            return _answer(error.outcome, error.detail)
        written = await writer.write(body)
        if written.outcome is Stored.REJECTED:
            return _answer(Outcome.NOT_AN_ENVELOPE, written.detail)
        if written.outcome is Stored.UNAVAILABLE:
            return _answer(Outcome.STORE_UNAVAILABLE, written.detail)
        return _answer(Outcome.COMMITTED)

    async def card(request: Request) -> Response:
        try:
            state = await run_in_threadpool(backend.get, request.path_params["card_id"])
        except StoreUnavailable as error:
            return _answer(Outcome.STORE_UNAVAILABLE, str(error))
        if state is None:
            return JSONResponse({"error": "UNKNOWN_CARD"}, status_code=404)
        return JSONResponse(json_view(state))

    async def health(request: Request) -> Response:
        # Open to anyone: it says whether the store answers, never why (the error names
        # the database) nor anything of a card.
        try:
            await run_in_threadpool(backend.get, "")
        except StoreUnavailable:
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "ok"})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        writer.close()
        close = getattr(backend, "close", None)
        if owned and close is not None:  # the store we opened: the caller's stays open
            close()

    return Starlette(
        lifespan=lifespan,
        middleware=[] if token is None else [Middleware(_BearerToken, token=token)],
        routes=[
            Route(NOTIFICATION_PATH, notify, methods=["POST"]),
            Route("/cards/{card_id}", card, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
        ],
    )


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
        max_body=int(env.get(ENV_PREFIX + "MAX_BODY", DEFAULT_MAX_BODY)),
        body_timeout=float(env.get(ENV_PREFIX + "BODY_TIMEOUT", DEFAULT_BODY_TIMEOUT)),
        token=token,
        issuers=issuers.split(",") if issuers else None,
    )
