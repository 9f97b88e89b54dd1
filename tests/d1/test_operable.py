"""`cardflow serve` as an operator runs it: what it logs, its /metrics summed over the
worker processes, its exit statuses, `--passed`; and the dispatcher's metrics. Real
processes on free loopback ports, real HTTP, a real SQLite store."""

from __future__ import annotations

import asyncio
import glob
import importlib.util
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

import cardflow.d1
import cardflow.store
from components import missing

from .conftest import Certs
from .processes import CARDFLOW, Server, free_port, running
from .test_receiver import PATH, body, op, serve

AUTH = {"Authorization": "Bearer t0k"}


def lines(server: Server) -> list[dict[str, Any]]:
    """The JSON log lines the server wrote so far."""
    return [json.loads(x) for x in server.stderr().splitlines() if x.startswith("{")]


def until(found: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not found():
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.05)


def samples(url: str, headers: dict[str, str] | None = None) -> dict[tuple[str, str], float]:
    """One scrape of ``url``: each sample's value by (name, its only label's value)."""
    response = httpx.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            label = next(iter(sample.labels.values()), "") if len(sample.labels) == 1 else ""
            out[sample.name, label] = sample.value
    return out


def test_metrics_count_every_body_summed_over_both_workers(tmp_path: Path) -> None:
    argv, port = serve(tmp_path / "cards.db", "--no-auth", "--log-format", "json")  # 2 workers
    bad_op = op("card-x", "DATA_PREPARED").replace(b".492Z", b".492")  # no offset: rejected

    def round_of(n: int) -> None:  # new connections each: the kernel spreads them
        sent = body(op(f"card-{n}", "DATA_PREPARED"), bad_op)
        assert httpx.post(url + PATH, content=sent).status_code == 204  # stored
        assert httpx.post(url + PATH, content=sent).status_code == 204  # duplicate
        assert httpx.post(url + PATH, content=b"nope").status_code == 400  # rejected

    with running(argv, port) as started:
        url = started.url
        until(lambda: sum(x.get("event") == "worker_started" for x in lines(started)) == 2,
              "two workers")  # fmt: skip
        (first,) = [x for x in lines(started) if x.get("event") == "started"]
        assert first["address"] == f"http://127.0.0.1:{port}"
        assert (first["workers"], first["auth"]) == (2, "none")
        assert first["store"] == f"sqlite:///{tmp_path / 'cards.db'}"
        assert f"listening on http://127.0.0.1:{port}" in first["message"]
        rounds = 0
        with ThreadPoolExecutor(8) as pool:
            while len({x["pid"] for x in lines(started) if x.get("event") == "refused"}) < 2:
                assert rounds < 400, "every body went to one worker"
                list(pool.map(round_of, range(rounds, rounds + 8)))
                rounds += 8
        for _ in range(4):  # whichever worker answers, the sums over both
            got = samples(url + "/metrics")
            assert got["cardflow_bodies_total", "stored"] == rounds
            assert got["cardflow_bodies_total", "duplicate"] == rounds
            assert got["cardflow_bodies_total", "rejected"] == rounds
            assert got["cardflow_bodies_total", "unavailable"] == 0
            assert got["cardflow_operations_total", "stored"] == rounds
            assert got["cardflow_operations_total", "duplicate"] == rounds
            assert got["cardflow_operations_total", "rejected"] == 2 * rounds
            assert got["cardflow_ingest_seconds_count", ""] == 2 * rounds
            assert got["cardflow_outbox_rows", "pending"] == rounds  # a DATA_PREPARED each
            assert got["cardflow_cards", "GAPS"] == rounds  # CARD_PROD_REQUESTED never came
            assert got["cardflow_store_up", ""] == 1
        killed = next(x["pid"] for x in lines(started) if x.get("event") == "worker_started")
        os.kill(killed, signal.SIGKILL)  # uvicorn starts another; the counts stay
        until(lambda: sum(x.get("event") == "worker_started" for x in lines(started)) == 3,
              "a worker in place of the killed one")  # fmt: skip
        assert f"Child process [{killed}] died" in started.stderr()
        after = samples(url + "/metrics")
        assert after["cardflow_bodies_total", "stored"] == rounds
        assert after["cardflow_operations_total", "rejected"] == 2 * rounds
        refused = [x for x in lines(started) if x.get("event") == "refused"]
    assert len(refused) == rounds
    for line in refused:
        assert line.keys() >= {"time", "level", "logger", "message", "status", "outcome",
                               "reason", "request_id"}  # fmt: skip
        assert (line["level"], line["status"], line["outcome"]) == (
            "warning",
            400,
            "NOT_AN_ENVELOPE",
        )
        assert "nope" not in json.dumps(line)  # never the body


def test_a_second_serve_on_a_busy_port_exits_4_naming_the_port(tmp_path: Path) -> None:
    port = free_port()
    argv = [*CARDFLOW, "serve", "--db", f"sqlite:///{tmp_path / 'a.db'}", "--port", str(port),
            "--no-auth"]  # fmt: skip
    with running(argv, port) as started:
        second = subprocess.run(
            [*CARDFLOW, "serve", "--db", f"sqlite:///{tmp_path / 'b.db'}", "--port", str(port),
             "--no-auth"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert f"INFO cardflow.serve: listening on http://127.0.0.1:{port}" in started.stderr()
    assert second.returncode == 4, second.stderr
    assert f"cannot listen on port {port} of 127.0.0.1: it is in use" in second.stderr


def test_each_failure_to_start_has_its_own_exit_status(tmp_path: Path, certs: Certs) -> None:
    def serve_with(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CARDFLOW, "serve", "--port", str(free_port()), "--no-auth", *extra],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    tls = serve_with("--db", db, "--certfile", str(garbage), "--keyfile", str(garbage))
    assert tls.returncode == 5
    assert "--certfile and --keyfile: not a certificate with its private key" in tls.stderr
    ca = serve_with("--db", db, "--certfile", str(certs.server), "--client-ca", str(garbage))
    assert ca.returncode == 5
    assert f"--client-ca {garbage}" in ca.stderr
    store = serve_with("--db", f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert store.returncode == 3
    assert "cannot open" in store.stderr
    usage = serve_with("--db", db, "--log-format", "xml")
    assert usage.returncode == 2
    help_text = subprocess.run([*CARDFLOW, "serve", "--help"], capture_output=True, text=True,
                               timeout=60, check=True).stdout  # fmt: skip
    for status in ("2    usage error", "3    the store", "4    the address", "5    the TLS"):
        assert status in help_text


def test_outages_and_recoveries_are_logged_and_bodies_never(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "cards.db"
    argv = [*CARDFLOW, "serve", "--db", f"sqlite:///{db}", "--port", str(port),
            "--no-auth", "--log-format", "json", "--access-log"]  # fmt: skip
    secret = b"card-SECRET-4711"
    with running(argv, port) as started:
        assert (
            httpx.post(started.url + PATH, content=body(op("c1", "DATA_PREPARED"))).status_code
            == 204
        )
        kept = {name: Path(name).read_bytes() for name in glob.glob(f"{db}*")}
        for name, data in kept.items():  # the disk returns garbage now
            Path(name).write_bytes(b"\x00garbage" * (len(data) // 8 + 1))
        sent = body(op(secret.decode(), "DATA_PREPARED"))
        assert httpx.post(started.url + PATH, content=sent).status_code == 503
        assert httpx.post(started.url + PATH, content=sent).status_code == 503
        for name, data in kept.items():  # and the disk is back
            Path(name).write_bytes(data)
        answer = httpx.post(started.url + PATH, content=b"{" + secret + b"}",
                            headers={"X-Request-Id": "d1-req-42"})  # fmt: skip
        assert (answer.status_code, answer.headers["X-Request-Id"]) == (400, "d1-req-42")
        assert httpx.post(started.url + PATH, content=sent).status_code == 204
        logged, text = lines(started), started.stderr()
    events = [x.get("event") for x in logged if x["logger"].startswith("cardflow")]
    assert events.count("outage") == 1  # the first failure of the outage only
    assert events.count("recovery") == 1
    assert events.index("outage") < events.index("recovery")
    assert [x["request_id"] for x in logged if x.get("status") == 400 and "pid" in x] == [
        "d1-req-42"
    ]
    access = [x for x in logged if x["logger"] == "uvicorn.access"]
    assert [x["status"] for x in access] == [204, 503, 503, 400, 204]
    assert {x["path"] for x in access} == {PATH}
    assert secret.decode() not in text


def test_serve_passed_fires_every_passed_status(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "cards.db"
    argv = [*CARDFLOW, "serve", "--db", f"sqlite:///{db}", "--port", str(port), "--passed",
            "--no-auth"]  # fmt: skip
    with running(argv, port) as started:
        sent = body(op("c1", "CARD_PROD_READY"))
        assert httpx.post(started.url + PATH, content=sent).status_code == 204
    with sqlite3.connect(db) as connection:  # the outbox's rows, whatever their keys
        fired = [row[0] for row in connection.execute("SELECT status FROM outbox ORDER BY id")]
    connection.close()
    assert sorted(fired) == ["CARD_PROD_READY", "CARD_PROD_REQUESTED", "DATA_PREPARED"]


def test_schemathesis_finds_no_failing_check_against_a_real_serve(tmp_path: Path) -> None:
    if importlib.util.find_spec("schemathesis") is None:
        missing("schemathesis", "pip install 'cardflow[test]'")
    port = free_port()
    argv = [*CARDFLOW, "serve", "--db", f"sqlite:///{tmp_path / 'cards.db'}", "--port",
            str(port), "--token", "t0k", "--log-level", "warning"]  # fmt: skip
    with running(argv, port) as started:
        description = httpx.get(started.url + "/openapi.json", headers=AUTH)
        assert description.json()["openapi"] == "3.1.0"
        assert httpx.get(started.url + "/openapi.json").status_code == 401
        assert httpx.get(started.url + "/metrics").status_code == 401
        assert httpx.post(started.url + PATH, content=b"{}").status_code == 401
        counted = samples(started.url + "/metrics", AUTH)
        assert counted["cardflow_bodies_total", "unauthorized"] == 1  # refused before routing
        until(lambda: "refused a body: 401 UNAUTHORIZED" in started.stderr(), "the 401 logged")
        checked = subprocess.run(
            [sys.executable, "-m", "schemathesis.cli", "run", started.url + "/openapi.json",
             "--header", f"Authorization: {AUTH['Authorization']}", "--checks", "all",
             "--max-examples", "10", "--seed", "1", "--request-timeout", "10",
             "--workers", "1"],
            capture_output=True, text=True, timeout=240, check=False, cwd=tmp_path,
        )  # fmt: skip
        served = started.stderr()
    assert checked.returncode == 0, checked.stdout + checked.stderr + served
    assert "Tested: 4" in checked.stdout, checked.stdout  # every route but /openapi.json, read
    assert "Traceback" not in served


REACTIONS = """\
class Reactions:
    def on_enter_DATA_PREPARED(self, change):
        if change.card_id.startswith("bad"):
            raise RuntimeError("the mail server is down")
"""


def test_the_dispatcher_counts_its_reactions_on_its_metrics_port(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    with cardflow.store.open(db) as store:
        store.ingest(body(*(op(card, "DATA_PREPARED") for card in ("ok-1", "ok-2", "bad-1"))))
    (tmp_path / "my_reactions.py").write_text(REACTIONS)
    port = free_port()
    argv = [*CARDFLOW, "dispatch", "--db", db, "--reactions", "my_reactions:Reactions",
            "--follow", "--interval", "0.1", "--metrics-port", str(port),
            "--log-level", "info"]  # fmt: skip
    with running(argv, port, env={"PYTHONPATH": str(tmp_path)}, cwd=tmp_path) as started:
        url = f"http://127.0.0.1:{port}/metrics"
        until(lambda: samples(url)["cardflow_reactions_total", "done"] == 2, "2 reactions done")
        until(lambda: samples(url)["cardflow_reactions_total", "retried"] >= 1, "a retry")
        assert samples(url)["cardflow_reactions_total", "dead"] == 0  # 5 attempts each
        assert f"metrics on http://127.0.0.1:{port}/metrics" in started.stderr()
        busy = subprocess.run(
            [*CARDFLOW, "dispatch", "--db", db, "--reactions", "my_reactions:Reactions",
             "--metrics-port", str(port)], capture_output=True, text=True,
            timeout=60, check=False, cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(tmp_path)},
        )  # fmt: skip
    assert busy.returncode == 2
    assert f"cannot listen on port {port} of 127.0.0.1" in busy.stderr


def test_the_alert_rules_of_the_docs_name_metrics_that_exist(tmp_path: Path) -> None:
    page = (Path(__file__).parents[2] / "docs" / "d1.md").read_text(encoding="utf-8")
    rules = re.search(r"^```yaml\n(groups:.*?)^```", page, re.S | re.M)
    assert rules is not None
    named = set(re.findall(r"\b(cardflow_[a-z_]+)", rules.group(1)))
    assert len(named) >= 3
    app = cardflow.d1.receiver(f"sqlite:///{tmp_path / 'cards.db'}")

    async def scrape() -> str:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://receiver") as client:
            return (await client.get("/metrics")).text

    exposed = {s.name for f in text_string_to_metric_families(asyncio.run(scrape()))
               for s in f.samples}  # fmt: skip
    assert named <= exposed | {"cardflow_reactions_total"}, named - exposed


def test_the_dispatchers_failures_are_json_lines_with_json_logs(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cards.db'}"
    with cardflow.store.open(db) as store:
        store.ingest(body(op("ok-1", "DATA_PREPARED"), op("bad-1", "DATA_PREPARED")))
    (tmp_path / "my_reactions.py").write_text(REACTIONS)
    done = subprocess.run(
        [*CARDFLOW, "dispatch", "--db", db, "--reactions", "my_reactions:Reactions",
         "--max-attempts", "1", "--log-format", "json"],
        capture_output=True, text=True, timeout=60, check=False, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    *logged, summary = done.stderr.splitlines()
    (failure,) = [json.loads(line) for line in logged]  # once, as JSON only
    assert (failure["logger"], failure["level"], failure["outcome"]) == (
        "cardflow.dispatch", "error", "dead",
    )  # fmt: skip
    assert "bad-1" in failure["key"]
    assert "the mail server is down" in failure["message"]
    assert summary.startswith("dispatched 1 reaction;")
