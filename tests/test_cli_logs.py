"""How the long-running commands log: passwords hidden from store URLs, JSON lines with
stable keys, and a handler that follows ``sys.stderr``."""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from cardflow.cli._logs import configure
from cardflow.store import ECHOED, JSON_KEYS, JsonFormatter, public_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///cards.db", "sqlite:///cards.db"),
        ("sqlite:////var/lib/a:b@c.db", "sqlite:////var/lib/a:b@c.db"),
        ("postgresql://bob:s3cr%40t@db:5432/cards", "postgresql://bob:***@db:5432/cards"),
        ("postgresql://bob@db/cards", "postgresql://bob@db/cards"),
        (
            "postgresql:///cards?host=/run/pg&password=hunter2&user=u",
            "postgresql:///cards?host=/run/pg&password=***&user=u",
        ),
        ("postgresql://[::1", "(an unreadable URL)"),
    ],
)
def test_a_store_url_is_shown_without_its_password(url: str, shown: str) -> None:
    assert public_url(url) == shown


def record(name: str, message: str, args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord(name, logging.WARNING, __file__, 1, message, args, None)  # type: ignore[arg-type]
    made.__dict__.update(extra)
    return made


def test_json_lines_have_stable_keys_in_a_stable_order() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(
                "cardflow.serve",
                "refused %d",
                (400,),
                status=400,
                request_id="r1",
                event="refused",
                unknown="dropped",
            )
        )
    )
    assert list(line) == ["time", "level", "logger", "message", "event", "status", "request_id"]
    assert (line["level"], line["message"], line["status"]) == ("warning", "refused 400", 400)
    assert line["time"].endswith("+00:00")
    assert set(line) - {"time", "level", "logger", "message"} <= set(JSON_KEYS)
    access = json.loads(
        JsonFormatter().format(
            record(
                "uvicorn.access",
                '%s - "%s %s HTTP/%s" %d',
                ("127.0.0.1:5", "POST", "/x", "1.1", 204),
            )
        )
    )
    assert access["message"] == '127.0.0.1:5 - "POST /x HTTP/1.1" 204'
    assert (access["client"], access["method"], access["path"], access["status"]) == (
        "127.0.0.1:5", "POST", "/x", 204,
    )  # fmt: skip
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        failed = record("cardflow.serve", "failed", ())
        failed.exc_info = sys.exc_info()
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(failed))["error"]


@pytest.fixture
def unconfigured() -> Iterator[None]:
    """Logging as it was before the test configured it."""
    yield
    for name in ("cardflow", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.setLevel(logging.NOTSET)
        logger.propagate = True


@pytest.mark.usefixtures("unconfigured")
def test_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(argparse.Namespace(log_level="info", log_format="json"))
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)  # stderr replaced after logging was configured
    logging.getLogger("cardflow.test").info("one", extra={"event": "x"})
    logging.getLogger("cardflow.test").debug("not at info")
    assert [json.loads(x)["message"] for x in later.getvalue().splitlines()] == ["one"]
    configure(argparse.Namespace(log_level="warning", log_format="text"))
    again = io.StringIO()
    monkeypatch.setattr(sys, "stderr", again)
    logging.getLogger("cardflow.test").info("quiet")
    logging.getLogger("cardflow.test").warning("loud")
    logging.getLogger("cardflow.test").warning("shown elsewhere", extra={ECHOED: True})
    assert again.getvalue().endswith(" WARNING cardflow.test: loud\n")
