"""The D1 edge's commands, without servers: help, exit statuses, usage errors."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import Certs
from .processes import CARDFLOW

EDGE = ["serve", "reconcile", "fake-d1", "conformance"]


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CARDFLOW, *argv], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("command", EDGE)
def test_each_command_documents_its_exit_status(command: str) -> None:
    done = run(command, "--help")
    assert done.returncode == 0, done.stderr
    assert "exit status:" in done.stdout
    assert "\n  2    usage error" in done.stdout


def test_usage_errors_exit_2() -> None:
    assert run("fake-d1", "--port", "1", "--cards", "3").returncode == 2  # no --seed
    lose = run("fake-d1", "--port", "1", "--cards", "3", "--seed", "1", "--lose", "1")
    assert "--lose: must be at least 0 and below 1" in lose.stderr
    template = run("conformance", "--truth-seed", "1", "--cards", "3", "--view", "http://x/")
    assert template.returncode == 2
    assert "has no {cardId}" in template.stderr
    now = run("reconcile", "--db", "sqlite:///x.db", "--d1", "http://d1", "--issuer", "I",
              "--now", "2026-01-01T00:00:00")  # fmt: skip
    assert now.returncode == 2
    assert "has no UTC offset" in now.stderr
    tls = run("serve", "--db", "sqlite:///nowhere/x.db", "--no-auth", "--client-ca", "ca.pem")
    assert tls.returncode == 2
    assert "--client-ca needs --certfile" in tls.stderr


SERVE = ("serve", "--db", "sqlite:///nowhere/x.db", "--port", "1")


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        pytest.param(("--token", ""), "--token: the token is empty", id="empty-token"),
        pytest.param(("--token", "  \t"), "--token: the token is empty", id="blank-token"),
        pytest.param((), "give --token TOKEN", id="neither-token-nor-no-auth"),
        pytest.param(("--token", "t", "--no-auth"), "not allowed with", id="both"),
        pytest.param(
            ("--no-auth", "--keyfile", "key.pem"), "--keyfile needs --certfile", id="key-alone"
        ),
    ],
)
def test_serve_fails_closed_with_a_usage_error(argv: tuple[str, ...], said: str) -> None:
    done = run(*SERVE, *argv)
    assert done.returncode == 2
    assert said in done.stderr
    assert "Traceback" not in done.stderr


def test_a_token_file_that_holds_no_token_is_a_usage_error(tmp_path: Path) -> None:
    """``--token-file`` (and every ``--...-file`` secret) reads one short ASCII line."""
    files = {
        "empty": b"\n",
        "large": b"t" * 5000,
        "binary": b"s3cr\xe9t",
        "spaced": b"two words\n",
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    said = {
        "empty": "the file holds no token",
        "large": "over 4096 bytes, not a token",
        "binary": "not ASCII text",
        "missing": "cannot read it: No such file or directory",
    }
    for name, message in said.items():
        done = run(*SERVE, "--token-file", str(tmp_path / name))
        assert done.returncode == 2, (name, done.stderr)
        assert f"cardflow serve: --token-file {tmp_path / name}: {message}" in done.stderr
        assert "Traceback" not in done.stderr
    # Read, then checked as --token is.
    spaced = run(*SERVE, "--token-file", str(tmp_path / "spaced"))
    assert spaced.returncode == 2
    assert "--token: the token must be visible ASCII characters, without spaces" in spaced.stderr
    both = run(*SERVE, "--token", "t", "--token-file", str(tmp_path / "empty"))
    assert both.returncode == 2
    assert "not allowed with" in both.stderr
    view = run("conformance", "--truth-seed", "1", "--cards", "1", "--view",
               "http://x/{cardId}", "--view-token-file", str(tmp_path / "empty"))  # fmt: skip
    assert view.returncode == 2
    assert f"--view-token-file {tmp_path / 'empty'}: the file holds no token" in view.stderr


def test_serve_refuses_a_certificate_without_its_key(certs: Certs) -> None:
    # A TLS file that cannot be used has its own exit status (5), apart from usage (2).
    unreadable = run(*SERVE, "--no-auth", "--certfile", "/nowhere/c.pem", "--keyfile",
                     "/nowhere/c.pem")  # fmt: skip
    assert unreadable.returncode == 5
    assert "--certfile /nowhere/c.pem: cannot read" in unreadable.stderr
    # A certificate given without its key is a usage error, as a key without its
    # certificate is (issue 23).
    done = run(*SERVE, "--no-auth", "--certfile", str(certs.client_cert))
    assert done.returncode == 2
    assert "--certfile: not a certificate with its private key" in done.stderr
    assert "Traceback" not in done.stderr
    wrong = run(*SERVE, "--no-auth", "--certfile", str(certs.client_cert), "--keyfile",
                str(certs.stranger_key))  # fmt: skip
    assert wrong.returncode == 5
    assert "--certfile and --keyfile: not a certificate with its private key" in wrong.stderr


def test_fake_d1_refuses_a_key_without_its_certificate() -> None:
    done = run("fake-d1", "--port", "1", "--cards", "3", "--seed", "1", "--keyfile", "k.pem")
    assert done.returncode == 2
    assert "--keyfile needs --certfile" in done.stderr
    assert "Traceback" not in done.stderr
