"""The reconcile client: D1's on-demand production status, over httpx.

``GET {base_url}/issuers/{issuerId}/physicalcards/{cardId}/productionstatus`` answers
a card's latest event as a D1 envelope. :class:`Client` asks it for many cards at
once and returns, per card, either the raw body and the time it was read
(:class:`Fetched`, ready for ``Store.reconcile(body, at)``) or what went wrong
(:class:`Failed`). It never raises for what D1 answers, so a run over a million
cards ends with a report instead of a traceback.

Why asynchronous: the work is waiting on the network. One event loop keeps one
connection pool, a semaphore bounds the requests in flight exactly, and a request
waiting out its backoff holds no thread at all; a thread pool over the sync client
would need a thread per request in flight and make a cancelled run hard to stop.
:meth:`Client.fetch_many` keeps at most a few tasks per slot alive, so memory does
not grow with the number of cards.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import random
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

import httpx

from .._decode import decode_lenient
from .._wire import PRODUCE
from ._policy import Answer, answer_class

__all__ = [
    "Client",
    "Failed",
    "FailureKind",
    "Fetched",
    "Result",
    "Retry",
    "client_ssl_context",
    "retry_after",
]

DEFAULT_DEADLINE: Final = 30.0
"""Seconds one on-demand request may take, whole (``Client(deadline=)``)."""
MAX_ANSWER: Final = 1 << 20
"""The most bytes read of one on-demand answer (it holds one event): more is garbage."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


class FailureKind(enum.StrEnum):
    """Why a card's on-demand status could not be read."""

    NOT_FOUND = "NOT_FOUND"
    """D1 answered 404: it does not know the card. Not retried."""
    REFUSED = "REFUSED"
    """D1 refused the request (400, 401, 403, ...): retrying would not help."""
    HTTP_ERROR = "HTTP_ERROR"
    """D1 answered 429, 5xx or another retryable status on every attempt."""
    UNREACHABLE = "UNREACHABLE"
    """No answer on any attempt: connection refused or reset, TLS failure, timeout."""
    GARBAGE = "GARBAGE"
    """D1 answered 2xx, but not with a D1 envelope holding an event of the card."""
    TOO_SLOW = "TOO_SLOW"
    """The answer did not arrive whole within the client's ``deadline``. Not retried:
    the card's slot is freed for the others, and the card is left for the next run."""


@dataclass(frozen=True)
class Fetched:
    """A card's on-demand status: the body as D1 sent it, and when it was read."""

    card_id: str
    body: bytes
    at: datetime
    """The clock's time just before the request that got this answer was sent: the
    answer reports at least everything D1 knew then."""
    attempts: int


@dataclass(frozen=True)
class Failed:
    """A card whose on-demand status could not be read, and why."""

    card_id: str
    kind: FailureKind
    detail: str
    attempts: int
    status: int | None = None
    """The last HTTP status D1 answered, if it answered at all."""


Result = Fetched | Failed


@dataclass(frozen=True)
class Retry:
    """How often and how patiently to ask again (exponential backoff, full jitter).

    Attempt ``n`` (from 1) that failed is followed by a wait drawn uniformly from
    ``[0, min(cap, base * 2**(n-1))]``, or by the server's ``Retry-After`` when that is
    longer. A ``Retry-After`` above ``max_retry_after`` ends the card's attempts: the
    run does not stall on one card.
    """

    attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"Retry.attempts must be at least 1, got {self.attempts}")
        if self.base < 0 or self.cap < 0 or self.max_retry_after < 0:
            raise ValueError("Retry.base, cap and max_retry_after must be 0 or more")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait after failed attempt number ``attempt`` (from 1), before jitter's draw."""
        return rng.uniform(0.0, min(self.cap, self.base * 2.0 ** (attempt - 1)))


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date.

    None when absent or unreadable; a date in the past waits 0 seconds.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def client_ssl_context(
    cert: str | Path | None = None, key: str | Path | None = None, ca: str | Path | None = None
) -> ssl.SSLContext:
    """A TLS context for a client: the server checked against ``ca`` (default: the
    system's CAs), and ``cert``/``key`` presented for mutual TLS when given."""
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    if cert is not None:
        context.load_cert_chain(str(cert), str(key) if key is not None else None)
    elif key is not None:
        raise ValueError("a client key was given without its certificate (cert=)")
    return context


def check_answer(card_id: str, body: bytes) -> str | None:
    """What is wrong with ``body`` as the on-demand status of ``card_id``, or None."""
    decoded = decode_lenient(body)
    whole = [r for r in decoded.rejects if r.index is None]
    if whole:
        return f"not a D1 envelope: {whole[0].path}: {whole[0].reason}"
    if not any(op.operation == PRODUCE and op.card_id == card_id for op in decoded.operations):
        rejected = f" ({len(decoded.rejects)} operation(s) rejected)" if decoded.rejects else ""
        return f"no PRODUCE operation of card {card_id!r} in the answer{rejected}"
    return None


class _RetryableError(Exception):
    """One attempt failed in a way worth another: what to report if none is left."""

    def __init__(self, kind: FailureKind, detail: str, status: int | None, wait: float | None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.wait = wait


class Client:
    """D1's on-demand production status for many cards: retries, backoff, a limit.

    ``cert``/``key``: the client certificate D1 expects (mutual TLS); ``ca``: the CA
    bundle D1's server certificate is checked against (default: the system's);
    ``token``: sent as ``Authorization: Bearer``. ``timeout`` applies to connecting,
    each read and each write; ``deadline`` to a request as a whole, from sending it to
    the last byte of the answer, so that an answer trickled a byte at a time cannot
    hold a slot for longer (the card fails as ``TOO_SLOW``). At most ``concurrency``
    requests are in flight.
    ``clock`` gives :attr:`Fetched.at` (only the default reads the real clock);
    ``sleep`` and ``rng`` drive the backoff; ``transport`` replaces the network (tests).
    Use it as an async context manager, or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        issuer_id: str,
        *,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        ca: str | Path | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        deadline: float = DEFAULT_DEADLINE,
        concurrency: int = 8,
        retry: Retry | None = None,
        clock: Callable[[], datetime] = _utc_now,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if not issuer_id:
            raise ValueError("issuer_id must not be empty")
        if not deadline > 0:
            raise ValueError(f"deadline must be a positive number of seconds, got {deadline}")
        self.deadline = deadline
        self.base_url = base_url.rstrip("/")
        self.issuer_id = issuer_id
        self.concurrency = concurrency
        self.retry = retry or Retry()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(concurrency)
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: ssl.SSLContext | bool = True
        if self.base_url.startswith("https:"):
            verify = client_ssl_context(cert, key, ca)
        self._http = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
            verify=verify,
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def url(self, card_id: str) -> str:
        """The on-demand status URL of ``card_id`` (the ids are percent-encoded)."""
        issuer = quote(self.issuer_id, safe="")
        card = quote(card_id, safe="")
        return f"{self.base_url}/issuers/{issuer}/physicalcards/{card}/productionstatus"

    async def fetch(self, card_id: str) -> Result:
        """The on-demand status of one card, after as many attempts as it takes."""
        url = self.url(card_id)
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._slots:
                    at = self._clock()
                    try:
                        async with asyncio.timeout(self.deadline):
                            body = await self._attempt(card_id, url)
                    except TimeoutError:
                        detail = f"no whole answer within the deadline of {self.deadline:g} s"
                        raise _FinalError(FailureKind.TOO_SLOW, detail, None) from None
            except _RetryableError as failure:
                wait = self.retry.backoff(attempt, self._rng)
                if failure.wait is not None:
                    if failure.wait > self.retry.max_retry_after:
                        detail = f"{failure.detail}; Retry-After {failure.wait:.0f} s is too long"
                        return Failed(card_id, failure.kind, detail, attempt, failure.status)
                    wait = max(wait, failure.wait)
                if attempt >= self.retry.attempts:
                    return Failed(card_id, failure.kind, failure.detail, attempt, failure.status)
                await self._sleep(wait)
                continue
            except _FinalError as final:
                return Failed(card_id, final.kind, final.detail, attempt, final.status)
            return Fetched(card_id, body, at, attempt)

    async def _attempt(self, card_id: str, url: str) -> bytes:
        """One request: the body of a good answer, else raises _RetryableError or _FinalError."""
        body: bytes | None = None
        try:
            async with self._http.stream("GET", url) as response:
                status = response.status_code
                answer = answer_class(status)
                if answer is Answer.READ:
                    body = await _read_capped(response)
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise _RetryableError(FailureKind.UNREACHABLE, detail, None, None) from None
        if answer is Answer.NOT_FOUND:
            raise _FinalError(FailureKind.NOT_FOUND, "D1 does not know this card (404)", status)
        if answer is Answer.GIVE_UP:
            raise _FinalError(FailureKind.REFUSED, f"D1 refused the request ({status})", status)
        if answer is Answer.RETRY:
            wait = retry_after(response.headers.get("Retry-After"), self._clock())
            raise _RetryableError(FailureKind.HTTP_ERROR, f"D1 answered {status}", status, wait)
        if body is None:
            detail = f"an answer over {MAX_ANSWER} bytes"
            raise _RetryableError(FailureKind.GARBAGE, detail, status, None)
        fault = check_answer(card_id, body)
        if fault is not None:
            raise _RetryableError(FailureKind.GARBAGE, fault, status, None)
        return body

    async def fetch_many(self, card_ids: Iterable[str]) -> AsyncIterator[Result]:
        """Each card's result, in the order they complete, ``concurrency`` at a time.

        At most twice ``concurrency`` cards are in progress, so ``card_ids`` may be a
        generator over millions of cards.
        """
        ids = iter(card_ids)
        window = 2 * self.concurrency
        running: set[asyncio.Task[Result]] = set()
        try:
            for card_id in ids:
                running.add(asyncio.ensure_future(self.fetch(card_id)))
                if len(running) >= window:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
            while running:
                done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    yield task.result()
        finally:
            for task in running:
                task.cancel()


class _FinalError(Exception):
    """One attempt failed in a way that another would not fix."""

    def __init__(self, kind: FailureKind, detail: str, status: int | None):
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None once it passes ``MAX_ANSWER`` bytes."""
    parts: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER:
            return None
        parts.append(chunk)
    return b"".join(parts)
