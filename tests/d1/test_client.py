"""The reconcile client's retry logic, over httpx's MockTransport (no network).

The real paths (TLS, a real fake D1 that fails) are in test_reconcile_cli.py; here
only the decisions: what is retried, how long it waits, what is recorded.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from cardflow.d1 import Client, Failed, FailureKind, Fetched, Retry, answer_class, retry_after
from cardflow.d1._policy import Answer

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
CARD = "271b-6e47-8ec3-7f3f"
GOOD = (
    b'{"operations": [{"operationId": "op-1", "operation": "PRODUCE", "status": "PENDING",'
    b' "startTime": "2025-01-17T06:28:02.492Z", "cardId": "271b-6e47-8ec3-7f3f",'
    b' "details": {"status": "DATA_PREPARED"}}]}'
)


def run(
    handler: Callable[[httpx.Request], httpx.Response],
    card: str = CARD,
    retry: Retry | None = None,
) -> tuple[object, list[float], list[httpx.Request]]:
    """Fetch ``card`` through ``handler``; the result, the waits, the requests."""
    waits: list[float] = []
    seen: list[httpx.Request] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async def main() -> object:
        async with Client(
            "https://d1.example/banking/v1",
            "ISSUER0001",
            token="t0k",
            retry=retry or Retry(attempts=4, base=1.0, cap=8.0),
            clock=lambda: NOW,
            sleep=sleep,
            rng=random.Random(1),
            transport=httpx.MockTransport(record),
        ) as client:
            return await client.fetch(card)

    return asyncio.run(main()), waits, seen


def test_a_good_answer_is_returned_raw_with_the_clock_time() -> None:
    result, waits, seen = run(lambda r: httpx.Response(200, content=GOOD))
    assert result == Fetched(CARD, GOOD, NOW, 1)
    assert waits == []
    request = seen[0]
    assert request.url == (
        "https://d1.example/banking/v1/issuers/ISSUER0001/physicalcards/"
        "271b-6e47-8ec3-7f3f/productionstatus"
    )
    assert request.headers["Authorization"] == "Bearer t0k"


def test_a_card_id_is_percent_encoded_in_the_path() -> None:
    _, _, seen = run(lambda r: httpx.Response(404), card="a/b c")
    assert seen[0].url.raw_path.endswith(b"/physicalcards/a%2Fb%20c/productionstatus")


def test_5xx_then_success_retries_with_growing_jittered_waits() -> None:
    answers = iter([503, 500, 502])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        return httpx.Response(status, content=GOOD if status == 200 else b"busy")

    result, waits, seen = run(handler)
    assert isinstance(result, Fetched)
    assert result.attempts == 4
    assert len(seen) == 4
    assert len(waits) == 3
    for attempt, wait in enumerate(waits, 1):
        assert 0 <= wait <= min(8.0, 2.0 ** (attempt - 1))
    assert len(set(waits)) == 3  # jitter: not one fixed schedule


def test_retries_end_with_the_failure_recorded() -> None:
    result, waits, seen = run(lambda r: httpx.Response(500))
    assert result == Failed(CARD, FailureKind.HTTP_ERROR, "D1 answered 500", 4, 500)
    assert len(seen) == 4
    assert len(waits) == 3


def test_404_is_recorded_at_once_and_never_retried() -> None:
    result, waits, seen = run(lambda r: httpx.Response(404))
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.NOT_FOUND
    assert (len(seen), waits, result.status) == (1, [], 404)


@pytest.mark.parametrize("status", [400, 401, 403, 409])
def test_a_refused_request_is_not_retried(status: int) -> None:
    result, waits, _ = run(lambda r: httpx.Response(status))
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.REFUSED
    assert waits == []


def test_retry_after_in_seconds_is_honoured_when_longer_than_the_backoff() -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"})])
    result, waits, _ = run(lambda r: next(answers, httpx.Response(200, content=GOOD)))
    assert isinstance(result, Fetched)
    assert waits == [7.0]


def test_retry_after_as_an_http_date() -> None:
    later = (NOW + timedelta(seconds=42)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    answers = iter([httpx.Response(503, headers={"Retry-After": later})])
    result, waits, _ = run(lambda r: next(answers, httpx.Response(200, content=GOOD)))
    assert isinstance(result, Fetched)
    assert waits == [42.0]


def test_a_retry_after_too_long_ends_the_card() -> None:
    result, waits, seen = run(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}))
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.HTTP_ERROR
    assert "Retry-After 3600 s is too long" in result.detail
    assert (len(seen), waits) == (1, [])


def test_retry_after_parsing() -> None:
    assert retry_after(None, NOW) is None
    assert retry_after(" 12 ", NOW) == 12.0
    assert retry_after("soon", NOW) is None
    assert retry_after("Wed, 01 Jan 2025 00:00:00 GMT", NOW) == 0.0  # in the past


def test_connection_errors_are_retried_then_recorded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    result, waits, seen = run(handler)
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.UNREACHABLE
    assert "connection refused" in result.detail
    assert (len(seen), len(waits), result.status) == (4, 3, None)


def test_a_timeout_then_success() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, content=GOOD)

    result, _, _ = run(handler)
    assert isinstance(result, Fetched)
    assert result.attempts == 2


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"<html>maintenance</html>", "not a D1 envelope"),
        (b'{"cards": []}', "not a D1 envelope"),
        (b'{"operations": []}', "no PRODUCE operation of card"),
        (GOOD.replace(b"271b-6e47-8ec3-7f3f", b"0000-0000-0000-0000"), "no PRODUCE operation"),
    ],
)
def test_a_garbage_answer_is_retried_then_recorded(body: bytes, says: str) -> None:
    result, _waits, seen = run(lambda r: httpx.Response(200, content=body))
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.GARBAGE
    assert says in result.detail
    assert result.status == 200
    assert len(seen) == 4


def test_an_oversized_answer_is_garbage() -> None:
    result, _, _ = run(lambda r: httpx.Response(200, content=b" " * (2 << 20)))
    assert isinstance(result, Failed)
    assert result.kind is FailureKind.GARBAGE
    assert "bytes" in result.detail


def test_fetch_many_bounds_requests_in_flight_and_answers_every_card() -> None:
    in_flight = 0
    most = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.001)
        in_flight -= 1
        card = request.url.path.split("/")[-2]
        if card.endswith("7"):
            return httpx.Response(404)
        return httpx.Response(200, content=GOOD.replace(CARD.encode(), card.encode()))

    async def main() -> list[object]:
        async with Client(
            "http://d1.test",
            "ISSUER0001",
            concurrency=3,
            transport=httpx.MockTransport(handler),
        ) as client:
            return [r async for r in client.fetch_many(f"card-{n}" for n in range(50))]

    results = asyncio.run(main())
    assert most == 3
    found = sorted(r.card_id for r in results if isinstance(r, Fetched))
    missing = sorted(r.card_id for r in results if isinstance(r, Failed))
    assert missing == sorted(f"card-{n}" for n in range(50) if str(n).endswith("7"))
    assert len(found) + len(missing) == 50


def test_the_status_policy_of_the_client() -> None:
    assert [answer_class(s) for s in (200, 204, 404, 429, 408, 500, 503, 400, 401, 418)] == [
        Answer.READ,
        Answer.READ,
        Answer.NOT_FOUND,
        Answer.RETRY,
        Answer.RETRY,
        Answer.RETRY,
        Answer.RETRY,
        Answer.GIVE_UP,
        Answer.GIVE_UP,
        Answer.GIVE_UP,
    ]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        Retry(attempts=0)
    with pytest.raises(ValueError, match="concurrency"):
        Client("http://x", "ISSUER0001", concurrency=0)
