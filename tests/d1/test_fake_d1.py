"""The fake D1 and the conformance check: the plan (pure), then real processes.

A stand-in receiver that is not cardflow's (tests/d1/tracker_app.py, its own uvicorn
process) shows the check usable against any receiver: it conforms when correct, and
a receiver that silently drops bodies is caught.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

import cardflow
from cardflow.d1 import Client, Failed, FailureKind, Fetched, Retry
from cardflow.testing import (
    FakeTraffic,
    check_conformance,
    compare_view,
    fake_traffic,
    served_cards,
)

from .conftest import Certs
from .processes import CARDFLOW, free_port, running, tracker_app

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def notes_in(traffic: FakeTraffic) -> Counter[cardflow.Operation]:
    return Counter(op for body in traffic.bodies for op in cardflow.decode(body))


def test_the_plan_is_a_function_of_its_options() -> None:
    one = fake_traffic(200, 5, lose=0.1, duplicates=0.3, bulk=7)
    assert one == fake_traffic(200, 5, lose=0.1, duplicates=0.3, bulk=7)
    other = fake_traffic(200, 5, lose=0.1, duplicates=0.0, bulk=1)
    # What is lost depends on the seed, the cards and the loss rate alone.
    assert other.delivered == one.delivered
    assert fake_traffic(200, 6, lose=0.1).delivered != one.delivered


def test_the_plan_sends_every_delivered_notification_and_no_lost_one() -> None:
    traffic = fake_traffic(300, 2, lose=0.1, duplicates=0.3, bulk=5)
    sent = notes_in(traffic)
    assert set(sent) == traffic.delivered
    truth = {n for card in traffic.cards.values() for o in card.operations for n in o.notifications}
    assert len(truth) == traffic.notifications
    assert 0.05 < traffic.lost / traffic.notifications < 0.15
    copies = sum(sent.values()) - len(sent)
    assert 0.3 < copies / len(sent) < 0.6  # geometric: 0.3 / 0.7 on average
    assert max(len(cardflow.decode(b)) for b in traffic.bodies) == 5
    assert any(len({op.card_id for op in cardflow.decode(b)}) > 1 for b in traffic.bodies)


def tracker_views(tracker: cardflow.Tracker) -> Any:
    async def view(card_id: str) -> Mapping[str, Any] | None:
        state = tracker.get(card_id)
        return None if state is None else cardflow.json_view(state)

    return view


def test_conformance_of_cardflows_fold_with_the_oracle_and_what_it_catches() -> None:
    traffic = fake_traffic(400, 11, lose=0.08, duplicates=0.3)
    tracker = cardflow.Tracker()
    for body in traffic.bodies:
        tracker.ingest(body)
    assert asyncio.run(check_conformance(traffic, tracker_views(tracker))).ok

    served = []
    for card_id, state in list(tracker.items()):
        if cardflow.needs_reconcile(state, NOW):
            served.append(card_id)
            latest = traffic.latest(card_id)
            assert latest is not None
            tracker.reconcile(cardflow.encode([latest]), at=NOW)
    assert served
    result = asyncio.run(check_conformance(traffic, tracker_views(tracker), served=served))
    assert result.ok, result.differences[:5]
    # Forgetting what was served: the cards whose latest event moved them differ.
    stale = asyncio.run(check_conformance(traffic, tracker_views(tracker)))
    assert not stale.ok
    assert {d.card_id for d in stale.differences} <= set(served)


def test_compare_view_names_each_field() -> None:
    traffic = fake_traffic(50, 4)
    card_id = next(iter(traffic.cards))
    expected = traffic.expected(card_id)
    state = cardflow.fold(op for b in traffic.bodies for op in cardflow.decode(b))[card_id]
    view = cardflow.json_view(state)
    assert compare_view(card_id, expected, view) == []
    wrong = {**view, "status": "CARD_PROD_CANCELED", "gaps": ["X"], "endTime": None}
    assert {d.field for d in compare_view(card_id, expected, wrong)} == {
        "status",
        "gaps",
        "endTime",
    } - ({"endTime"} if view["endTime"] is None else set())
    assert [d.field for d in compare_view(card_id, expected, None)] == ["card"]
    assert compare_view(card_id, None, None) == []


def fake_d1(port: int, cards: int, seed: int, *extra: str) -> list[str]:
    return [*CARDFLOW, "fake-d1", "--port", str(port), "--cards", str(cards),
            "--seed", str(seed), *extra]  # fmt: skip


def deliver(cards: int, seed: int, receiver: str, *extra: str) -> str:
    """Run the fake D1 until it delivered everything to ``receiver``; its stderr."""
    done = subprocess.run(
        fake_d1(free_port(), cards, seed, "--deliver-to", receiver, "--exit-when-delivered",
                *extra),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def conformance(cards: int, seed: int, view: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARDFLOW, "conformance", "--truth-seed", str(seed), "--cards", str(cards),
         "--view", view, *extra],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["", "flaky"])
def test_a_foreign_receiver_conforms_over_real_http(mode: str) -> None:
    port = free_port()
    with running(tracker_app(port), port, env={"TRACKER_APP_MODE": mode}) as receiver:
        said = deliver(150, 8, receiver.url, "--lose", "0.05", "--duplicates", "0.3")
        assert " 0 refused (400), 0 abandoned" in said
        if mode == "flaky":  # every third POST got a 503 and was sent again
            attempts = int(said.rsplit(";", 1)[1].split()[0])
            bodies = int(said.split("delivered ")[1].split()[0])
            assert attempts > bodies
        checked = conformance(150, 8, receiver.url + "/cards/{cardId}", "--lose", "0.05")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "150 cards (0 served on demand): conforms" in checked.stdout


def test_a_receiver_that_drops_bodies_is_caught() -> None:
    port = free_port()
    with running(tracker_app(port), port, env={"TRACKER_APP_MODE": "lossy"}) as receiver:
        deliver(150, 8, receiver.url)
        checked = conformance(150, 8, receiver.url + "/cards/{cardId}", "--show", "3")
    assert checked.returncode == 1
    lines = checked.stdout.splitlines()
    assert lines[-1].endswith("cards differ")
    assert "more differences" in lines[-2]
    assert ": expected " in lines[0]


def test_conformance_against_a_wrong_seed_reports_every_card() -> None:
    port = free_port()
    with running(tracker_app(port), port) as receiver:
        deliver(20, 1, receiver.url)
        checked = conformance(20, 2, receiver.url + "/cards/{cardId}", "--format", "json")
    assert checked.returncode == 1
    assert '"cardsDiffering": 20' in checked.stdout


async def fetch_all(client: Client, cards: list[str]) -> dict[str, Any]:
    async with client:
        return {r.card_id: r async for r in client.fetch_many(cards)}


async def _served(url: str) -> list[str]:
    async with httpx.AsyncClient() as client:
        return await served_cards(client, url)


def test_the_fake_serves_each_cards_latest_event_and_404_otherwise() -> None:
    traffic = fake_traffic(30, 9)
    port = free_port()
    with running(fake_d1(port, 30, 9), port) as d1:
        cards = [*traffic.cards, "0000-0000-0000-0000"]
        results = asyncio.run(fetch_all(Client(d1.url, traffic.issuer_id), cards))
        other = asyncio.run(fetch_all(Client(d1.url, "ISSUER0002"), cards[:1]))
        served = asyncio.run(_served(d1.url))
    for card_id in traffic.cards:
        result = results[card_id]
        assert isinstance(result, Fetched)
        assert cardflow.decode(result.body) == [traffic.latest(card_id)]
    assert isinstance(results["0000-0000-0000-0000"], Failed)
    assert results["0000-0000-0000-0000"].kind is FailureKind.NOT_FOUND
    assert other[cards[0]].kind is FailureKind.NOT_FOUND
    assert served == sorted(traffic.cards)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("error", FailureKind.HTTP_ERROR),
        ("garbage", FailureKind.GARBAGE),
        ("empty", FailureKind.GARBAGE),
        ("hang", FailureKind.UNREACHABLE),
    ],
)
def test_a_misbehaving_d1_is_retried_then_recorded(fault: str, kind: FailureKind) -> None:
    traffic = fake_traffic(12, 3)
    port = free_port()
    argv = fake_d1(port, 12, 3, "--fault", fault, "--fault-rate", "0.5")
    with running(argv, port) as d1:
        client = Client(d1.url, traffic.issuer_id, timeout=0.5, retry=Retry(3, base=0.01))
        results = asyncio.run(fetch_all(client, list(traffic.cards)))
        status = httpx.get(d1.url + "/fake/status").json()
    failed = [r for r in results.values() if isinstance(r, Failed)]
    assert failed
    assert len(failed) < len(results)
    for result in failed:
        assert result.kind is kind
        assert result.attempts == 3
    assert status["served"] == len(results) - len(failed)


def test_a_transient_fault_is_outlasted() -> None:
    traffic = fake_traffic(5, 3)
    port = free_port()
    with running(fake_d1(port, 5, 3, "--fault", "busy", "--fault-times", "1"), port) as d1:
        client = Client(d1.url, traffic.issuer_id, retry=Retry(3, base=0.01))
        results = asyncio.run(fetch_all(client, list(traffic.cards)))
    assert all(isinstance(r, Fetched) and r.attempts == 2 for r in results.values())


def test_mutual_tls_with_d1(certs: Certs) -> None:
    traffic = fake_traffic(3, 3)
    port = free_port()
    tls = ["--certfile", str(certs.server), "--client-ca", str(certs.ca)]
    with running(fake_d1(port, 3, 3, *tls), port):
        url = f"https://127.0.0.1:{port}"
        ok = Client(url, traffic.issuer_id, cert=certs.client_cert, key=certs.client_key,
                    ca=certs.ca)  # fmt: skip
        good = asyncio.run(fetch_all(ok, list(traffic.cards)))
        retry = Retry(2, base=0.01)
        anonymous = Client(url, traffic.issuer_id, ca=certs.ca, retry=retry)
        refused = asyncio.run(fetch_all(anonymous, list(traffic.cards)[:1]))
        stranger = Client(url, traffic.issuer_id, cert=certs.stranger_cert,
                          key=certs.stranger_key, ca=certs.ca, retry=retry)  # fmt: skip
        impostor = asyncio.run(fetch_all(stranger, list(traffic.cards)[:1]))
        untrusting = Client(url, traffic.issuer_id, cert=certs.client_cert,
                            key=certs.client_key, retry=retry)  # fmt: skip
        unverified = asyncio.run(fetch_all(untrusting, list(traffic.cards)[:1]))
    assert all(isinstance(r, Fetched) for r in good.values())
    for results in (refused, impostor, unverified):
        (result,) = results.values()
        assert isinstance(result, Failed)
        assert result.kind is FailureKind.UNREACHABLE
    (result,) = unverified.values()
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
