"""The receiver, as D1 meets it: `cardflow serve --workers 2` in its own process, real
HTTP with httpx, raw sockets where a client must misbehave, TLS by trustme."""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import cardflow
import cardflow.store
from cardflow.d1 import Outcome, notification_headers, notification_status

from .conftest import Certs
from .processes import CARDFLOW, Server, free_port, mounted_app, running

ISSUER = "ISSUER0001"
PATH = f"/notifications/d1/v2/issuers/{ISSUER}/cards"


def op(card: str, status: str, operation_id: str = "op-1") -> bytes:
    return (
        b'{"operationId": "%s", "operation": "PRODUCE", "status": "PENDING",'
        b' "startTime": "2025-01-17T06:28:02.492Z", "cardId": "%s",'
        b' "details": {"status": "%s"}}'
    ) % (operation_id.encode(), card.encode(), status.encode())


def body(*ops: bytes) -> bytes:
    return b'{"operations": [' + b", ".join(ops) + b"]}"


def serve(db: Path, *extra: str, port: int | None = None) -> tuple[list[str], int]:
    port = port or free_port()
    argv = [*CARDFLOW, "serve", "--db", f"sqlite:///{db}", "--port", str(port),
            "--workers", "2", *extra]  # fmt: skip
    return argv, port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    db = tmp_path_factory.mktemp("receiver") / "cards.db"
    argv, port = serve(db, "--body-timeout", "1", "--max-body", "1000000", "--no-auth")
    with running(argv, port) as started:
        yield started, db


def stored(db: Path, card: str) -> cardflow.CardState | None:
    with cardflow.store.open(f"sqlite:///{db}") as store:
        return store.get(card)


def test_a_body_is_answered_204_once_committed_and_the_view_is_served(
    server: tuple[Server, Path],
) -> None:
    started, db = server
    sent = body(op("card-a", "DATA_PREPARED"), op("card-b", "CARD_PROD_REQUESTED", "op-2"))
    response = httpx.post(started.url + PATH, content=sent)
    assert response.status_code == 204
    state = stored(db, "card-a")  # committed before the answer
    assert state is not None
    assert state.status == "DATA_PREPARED"
    view = httpx.get(started.url + "/cards/card-a")
    assert view.status_code == 200
    assert view.json() == cardflow.json_view(state)
    assert httpx.get(started.url + "/cards/nobody").status_code == 404
    assert httpx.get(started.url + "/health").json() == {"status": "ok"}


def test_bad_operations_cost_nothing_to_the_good_ones(server: tuple[Server, Path]) -> None:
    started, db = server
    bad = op("card-c", "DATA_PREPARED").replace(b".492Z", b".492")  # no offset
    response = httpx.post(started.url + PATH, content=body(op("card-d", "DATA_PREPARED"), bad))
    assert response.status_code == 204
    assert stored(db, "card-d") is not None
    assert stored(db, "card-c") is None
    with cardflow.store.open(f"sqlite:///{db}") as store:
        assert any(r.path == "$.operations[1].startTime" for r in store.rejects())


@pytest.mark.parametrize("sent", [b"not json", b"{}", b'{"operations": 3}', b"[]", b""])
def test_a_body_that_is_not_an_envelope_is_400(server: tuple[Server, Path], sent: bytes) -> None:
    started, _ = server
    response = httpx.post(started.url + PATH, content=sent)
    assert response.status_code == 400
    assert response.json()["error"] == "NOT_AN_ENVELOPE"


def test_wrong_paths_and_methods(server: tuple[Server, Path]) -> None:
    started, _ = server
    assert httpx.post(started.url + "/notifications/d1/v1/cards", content=b"{}").status_code == 404
    assert httpx.get(started.url + PATH).status_code == 405


def test_a_100_mb_body_is_413_and_nothing_is_stored(server: tuple[Server, Path]) -> None:
    started, db = server
    filler = b" " * (100 << 20)
    huge = body(op("card-huge", "DATA_PREPARED")) + filler
    response = httpx.post(started.url + PATH, content=huge)
    assert response.status_code == 413
    assert "declared" in response.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        yield body(op("card-huge", "DATA_PREPARED"))[:-2]
        for _ in range(100):
            yield b" " * (1 << 20)
        yield b"]}"

    response = httpx.post(started.url + PATH, content=chunks())
    assert response.status_code == 413
    assert "over 1000000 bytes" in response.json()["detail"]
    assert stored(db, "card-huge") is None


def test_a_body_that_never_finishes_times_out(server: tuple[Server, Path]) -> None:
    started, db = server
    partial = body(op("card-slow", "DATA_PREPARED"))
    with socket.create_connection(("127.0.0.1", started.port), timeout=10) as raw:
        raw.sendall(
            b"POST %s HTTP/1.1\r\nHost: d1\r\nContent-Length: %d\r\n\r\n%s"
            % (PATH.encode(), len(partial), partial[:40])
        )
        begun = time.monotonic()
        answer = raw.recv(4096)
        waited = time.monotonic() - begun
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.9 < waited < 8
    assert stored(db, "card-slow") is None


def test_the_status_policy_in_one_table() -> None:
    assert {o: notification_status(o) for o in Outcome} == {
        Outcome.COMMITTED: 204,
        Outcome.NOT_AN_ENVELOPE: 400,
        Outcome.TOO_LARGE: 413,
        Outcome.TOO_SLOW: 408,
        Outcome.STORE_UNAVAILABLE: 503,
        Outcome.UNAUTHORIZED: 401,
        Outcome.UNKNOWN_ISSUER: 404,
    }
    assert notification_headers(Outcome.STORE_UNAVAILABLE) == {"Retry-After": "5"}
    assert notification_headers(Outcome.COMMITTED) == {}


def test_a_failing_store_is_503_so_that_d1_retries(tmp_path: Path) -> None:
    argv, port = serve(tmp_path / "cards.db", "--no-auth")
    with running(argv, port) as started:
        first = httpx.post(started.url + PATH, content=body(op("c1", "DATA_PREPARED")))
        assert first.status_code == 204
        for name in glob.glob(str(tmp_path / "cards.db*")):  # the disk returns garbage now
            size = os.path.getsize(name)
            Path(name).write_bytes(b"\x00garbage" * (size // 8 + 1))
        response = httpx.post(started.url + PATH, content=body(op("c2", "DATA_PREPARED")))
        health = httpx.get(started.url + "/health")
    assert response.status_code == 503
    assert response.json()["error"] == "STORE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "5"
    assert health.status_code == 503
    assert health.json() == {"status": "unavailable"}  # not the database's name or error


def test_a_bearer_token_is_checked_before_anything_else(tmp_path: Path) -> None:
    """Without the token every path answers 401, the same whether an issuer, a card or
    a route exists, so nothing can be enumerated; only /health answers, and it tells
    nothing of cards. The token comes from a file (as a secrets mount gives it, with its
    newline), so the process list never shows it."""
    secret = tmp_path / "token"
    secret.write_text("s3cret\n")
    argv, port = serve(tmp_path / "cards.db", "--token-file", str(secret), "--issuer", ISSUER)
    sent = body(op("c1", "DATA_PREPARED"))
    good = {"Authorization": "Bearer s3cret"}
    other = PATH.replace(ISSUER, "ISSUER0002")
    with running(argv, port) as started:
        assert b"s3cret" not in Path(f"/proc/{started.process.pid}/cmdline").read_bytes()
        url = started.url
        anonymous = {
            "known issuer": httpx.post(url + PATH, content=sent),
            "unknown issuer": httpx.post(url + other, content=sent),
            "known card": httpx.get(url + "/cards/c1"),
            "unknown card": httpx.get(url + "/cards/c2"),
            "no route": httpx.get(url + "/metrics"),
            "wrong method": httpx.get(url + PATH),
        }
        wrong = [
            httpx.post(url + PATH, content=sent, headers={"Authorization": value})
            for value in ("Bearer x", "Bearer s3cre", "Bearer s3cret2", "s3cret", "bearer s3cret")
        ]
        stored_before_right = stored(tmp_path / "cards.db", "c1")
        right = httpx.post(url + PATH, content=sent, headers=good)
        card = httpx.get(url + "/cards/c1", headers=good)
        unknown_issuer = httpx.post(url + other, content=sent, headers=good)
        health = httpx.get(url + "/health")
    assert {k: r.status_code for k, r in anonymous.items()} == dict.fromkeys(anonymous, 401)
    assert len({r.content for r in anonymous.values()}) == 1  # one answer, whatever the path
    assert all(r.headers["WWW-Authenticate"] == "Bearer" for r in anonymous.values())
    assert [r.status_code for r in wrong] == [401] * 5
    assert stored_before_right is None
    assert (right.status_code, card.status_code, unknown_issuer.status_code) == (204, 200, 404)
    assert card.json()["cardId"] == "c1"
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}


def test_serving_without_a_token_is_said_on_startup(tmp_path: Path) -> None:
    argv, port = serve(tmp_path / "cards.db", "--no-auth")
    with running(argv, port) as started:
        assert httpx.get(started.url + "/cards/c1").status_code == 404
        deadline = time.monotonic() + 10
        while "WITHOUT AUTHENTICATION" not in started.stderr() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "--no-auth: serving WITHOUT AUTHENTICATION" in started.stderr()


@pytest.mark.parametrize("token", ["", " ", "\t\n", "two words", "caf\u00e9"])
def test_the_receiver_refuses_a_token_that_cannot_be_one(tmp_path: Path, token: str) -> None:
    from cardflow.d1 import receiver

    with pytest.raises(ValueError, match="token"):
        receiver(f"sqlite:///{tmp_path / 'cards.db'}", token=token)


def test_the_factory_fails_closed_without_a_token(tmp_path: Path) -> None:
    from cardflow.d1 import receiver_from_env

    db = f"sqlite:///{tmp_path / 'cards.db'}"
    with pytest.raises(ValueError, match="CARDFLOW_SERVE_TOKEN is not set"):
        receiver_from_env({"CARDFLOW_SERVE_DB": db})
    with pytest.raises(ValueError, match="empty"):
        receiver_from_env({"CARDFLOW_SERVE_DB": db, "CARDFLOW_SERVE_TOKEN": ""})
    with pytest.raises(ValueError, match="contradict"):
        receiver_from_env(
            {"CARDFLOW_SERVE_DB": db, "CARDFLOW_SERVE_TOKEN": "t", "CARDFLOW_SERVE_NO_AUTH": "1"}
        )


def test_mutual_tls_refuses_a_client_without_a_valid_certificate(
    tmp_path: Path, certs: Certs
) -> None:
    tls = ["--certfile", str(certs.server), "--keyfile", str(certs.server),
           "--client-ca", str(certs.ca)]  # fmt: skip
    argv, port = serve(tmp_path / "cards.db", *tls, "--no-auth")
    url = f"https://127.0.0.1:{port}{PATH}"
    sent = body(op("c1", "DATA_PREPARED"))

    def context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
        made = ssl.create_default_context(cafile=str(certs.ca))
        if cert is not None:
            made.load_cert_chain(str(cert), str(key))
        return made

    with running(argv, port):
        good = httpx.post(url, content=sent, verify=context(certs.client_cert, certs.client_key))
        refused = []
        for cert, key in ((None, None), (certs.stranger_cert, certs.stranger_key)):
            with contextlib.suppress(httpx.TransportError):
                httpx.post(url, content=sent, verify=context(cert, key))
                refused.append(False)
                continue
            refused.append(True)
    assert good.status_code == 204
    assert refused == [True, True]


def test_a_mounted_receiver_takes_notifications_below_its_prefix(tmp_path: Path) -> None:
    """The notification POST skips Starlette's routing: below a Mount, with a token and
    an issuer list, it answers as the routed receiver does, and nothing outside the
    prefix reaches it."""
    db = tmp_path / "cards.db"
    port = free_port()
    env = {"MOUNTED_DB": f"sqlite:///{db}", "MOUNTED_TOKEN": "s3cret"}
    url = "/d1/notifications/d1/v2/issuers/I1/cards"
    good = {"Authorization": "Bearer s3cret"}
    sent = body(op("card-m", "DATA_PREPARED"))
    with (
        running(mounted_app(port), port, env=env) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        assert client.post(url, content=sent).status_code == 401
        wrong = {"Authorization": "Bearer s3"}
        assert client.post(url, content=sent, headers=wrong).status_code == 401
        assert stored(db, "card-m") is None
        other = client.post(url.replace("/I1/", "/I2/"), content=sent, headers=good)
        assert (other.status_code, other.json()["error"]) == (404, "UNKNOWN_ISSUER")
        assert client.post(PATH, content=sent, headers=good).status_code == 404
        answer = client.post(url, content=sent, headers={**good, "X-Request-Id": "req-7"})
        assert (answer.status_code, answer.headers["x-request-id"]) == (204, "req-7")
        assert answer.content == b""
        chunked = client.post(url, content=iter([sent[:10], sent[10:]]), headers=good)
        assert chunked.status_code == 204
        assert len(chunked.headers["x-request-id"]) == 32
        bad = client.post(url, content=b"[1, 2", headers=good)
        assert (bad.status_code, bad.json()["error"]) == (400, "NOT_AN_ENVELOPE")
        assert bad.headers["x-request-id"]
    state = stored(db, "card-m")
    assert state is not None
    assert state.status == "DATA_PREPARED"
