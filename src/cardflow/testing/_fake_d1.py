"""A fake D1 that tests any receiver end to end, over real HTTP.

It plays both of D1's parts from one :class:`~cardflow.testing.FakeTraffic`:

- **delivery**: it POSTs the planned bodies to
  ``{deliver_to}/notifications/d1/v2/issuers/{issuerId}/cards``, several at a time,
  at least once each: a body that gets a non-2xx answer or no answer in time is sent
  again with backoff (never after a 400: D1 must not retry what can never succeed),
  until ``attempts`` run out;
- **on-demand status**: an ASGI app answers
  ``GET /issuers/{issuerId}/physicalcards/{cardId}/productionstatus`` with the card's
  latest true event as ``{"operations": [...]}`` (404 for an unknown card), and can be
  told to fail for some cards (:class:`Fault`) to test a reconcile client.

It also answers ``GET /fake/status`` (delivery counts, JSON) and ``GET /fake/served``
(the cards whose status it answered well: a conformance check counts their latest
event as delivered). Needs ``cardflow[serve]`` (Starlette, uvicorn, httpx).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import ssl
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .._traffic import FakeTraffic
from .._wire import encode

__all__ = ["DeliveryReport", "FakeD1", "Fault", "notification_url"]

_GARBAGE: Final = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
_HANG: Final = 3600.0


class Fault(enum.StrEnum):
    """How the fake's on-demand status misbehaves for the cards chosen to fail."""

    ERROR = "error"
    """500 Internal Server Error."""
    BUSY = "busy"
    """429 Too Many Requests, with ``Retry-After: 1``."""
    GARBAGE = "garbage"
    """200 with an HTML page instead of an envelope."""
    EMPTY = "empty"
    """200 with an empty body."""
    HANG = "hang"
    """No answer at all: the request waits until the client gives up."""


def notification_url(deliver_to: str, issuer_id: str) -> str:
    """Where D1 posts notifications for ``issuer_id`` under the base URL ``deliver_to``."""
    base = deliver_to.rstrip("/")
    return f"{base}/notifications/d1/v2/issuers/{quote(issuer_id, safe='')}/cards"


@dataclass
class DeliveryReport:
    """What delivering the bodies came to, so far (one body is one POST, retried)."""

    bodies: int
    acknowledged: int = 0
    """Bodies that got a 2xx."""
    rejected: int = 0
    """Bodies that got a 400 (not sent again)."""
    abandoned: int = 0
    """Bodies given up after every attempt failed."""
    attempts: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    """Every answer, by status code (``timeout`` or ``error`` for no answer)."""
    done: bool = False

    def as_json(self) -> dict[str, object]:
        """The counts as JSON values."""
        return {
            "bodies": self.bodies,
            "acknowledged": self.acknowledged,
            "rejected": self.rejected,
            "abandoned": self.abandoned,
            "attempts": self.attempts,
            "answers": dict(sorted(self.answers.items())),
            "done": self.done,
        }


class FakeD1:
    """One fake D1 over ``traffic``: an ASGI app for the on-demand status, and
    :meth:`deliver` for the notifications.

    ``fault`` makes the on-demand status misbehave for a share ``fault_rate`` of the
    cards (chosen by a hash of the card id, the same in every run); with
    ``fault_times`` only their first ``fault_times`` requests misbehave.
    """

    def __init__(
        self,
        traffic: FakeTraffic,
        *,
        fault: Fault | None = None,
        fault_rate: float = 1.0,
        fault_times: int | None = None,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, got {fault_rate}")
        self.traffic = traffic
        self.fault = fault
        self.fault_rate = fault_rate
        self.fault_times = fault_times
        self.served: set[str] = set()
        self.requests: dict[str, int] = {}
        self.delivery = DeliveryReport(bodies=len(traffic.bodies))
        self.app = Starlette(
            routes=[
                Route(
                    "/issuers/{issuer_id}/physicalcards/{card_id}/productionstatus",
                    self._productionstatus,
                ),
                Route("/fake/status", self._status),
                Route("/fake/served", self._served),
            ]
        )

    def faulty(self, card_id: str) -> bool:
        """Whether the fault applies to ``card_id`` (before ``fault_times`` runs out)."""
        if self.fault is None:
            return False
        share = zlib.crc32(card_id.encode()) % 10_000 / 10_000
        return share < self.fault_rate

    async def _productionstatus(self, request: Request) -> Response:
        issuer = request.path_params["issuer_id"]
        card_id = request.path_params["card_id"]
        latest = self.traffic.latest(card_id)
        if issuer != self.traffic.issuer_id or latest is None:
            return Response(status_code=404)
        asked = self.requests[card_id] = self.requests.get(card_id, 0) + 1
        if self.faulty(card_id) and (self.fault_times is None or asked <= self.fault_times):
            return await _misbehave(self.fault)
        self.served.add(card_id)
        return Response(encode([latest]), media_type="application/json")

    async def _status(self, request: Request) -> Response:
        body = {
            "issuerId": self.traffic.issuer_id,
            "cards": len(self.traffic.cards),
            "notifications": self.traffic.notifications,
            "lost": self.traffic.lost,
            "served": len(self.served),
            "delivery": self.delivery.as_json(),
        }
        return JSONResponse(body)

    async def _served(self, request: Request) -> Response:
        return JSONResponse(sorted(self.served))

    async def deliver(
        self,
        deliver_to: str,
        *,
        concurrency: int = 4,
        timeout: float = 10.0,
        attempts: int = 8,
        backoff: float = 0.05,
        cap: float = 2.0,
        verify: ssl.SSLContext | bool = True,
        token: str | None = None,
    ) -> DeliveryReport:
        """POST every body to the receiver at ``deliver_to``, at least once each.

        ``concurrency`` bodies are in flight at once; a body is sent again after a
        non-2xx answer other than 400, a timeout or a broken connection, waiting
        a jittered share of ``min(cap, backoff * 2**n)`` seconds, at most ``attempts`` times.
        ``verify``: an SSL context carrying D1's client certificate, for a receiver
        that wants mutual TLS. Returns (and keeps in :attr:`delivery`) the counts.
        """
        url = notification_url(deliver_to, self.traffic.issuer_id)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        bodies: Iterator[tuple[int, bytes]] = enumerate(self.traffic.bodies)
        report = self.delivery

        async def post(client: httpx.AsyncClient, number: int, body: bytes) -> None:
            for attempt in range(1, attempts + 1):
                report.attempts += 1
                try:
                    response = await client.post(url, content=body)
                except httpx.TimeoutException:
                    answer = "timeout"
                except httpx.TransportError:
                    answer = "error"
                else:
                    answer = str(response.status_code)
                    if 200 <= response.status_code < 300:
                        report.answers[answer] = report.answers.get(answer, 0) + 1
                        report.acknowledged += 1
                        return
                    if response.status_code == 400:
                        report.answers[answer] = report.answers.get(answer, 0) + 1
                        report.rejected += 1
                        return
                report.answers[answer] = report.answers.get(answer, 0) + 1
                if attempt < attempts:
                    ceiling = min(cap, backoff * 2.0**attempt)
                    await asyncio.sleep(ceiling * _jitter(number, attempt))
            report.abandoned += 1

        async def worker(client: httpx.AsyncClient) -> None:
            for number, body in bodies:  # one shared iterator: each body to one worker
                await post(client, number, body)

        limits = httpx.Limits(max_connections=concurrency)
        async with httpx.AsyncClient(
            headers=headers, timeout=httpx.Timeout(timeout), limits=limits, verify=verify
        ) as client:
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        report.done = True
        return report


def _jitter(number: int, attempt: int) -> float:
    """A fraction in [0, 1), the same for a body's attempt in every run, spread over
    bodies: retries do not fall in step, and a run can be repeated exactly."""
    digest = hashlib.blake2b(b"%d:%d" % (number, attempt), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


async def _misbehave(fault: Fault | None) -> Response:
    if fault is Fault.ERROR:
        return Response(b"internal error", status_code=500)
    if fault is Fault.BUSY:
        return Response(status_code=429, headers={"Retry-After": "1"})
    if fault is Fault.GARBAGE:
        return Response(_GARBAGE, status_code=200, media_type="text/html")
    if fault is Fault.EMPTY:
        return Response(b"", status_code=200, media_type="application/json")
    await asyncio.sleep(_HANG)
    return Response(status_code=504)
