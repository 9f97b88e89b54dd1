"""The ``cardflow`` command end to end, as a user runs it: processes, pipes, real files.

The README's quick start runs here as a real pipeline between two processes; the
progress bar on a real terminal is tested in test_cli_progress.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import cardflow
from cardflow._diagram import mermaid
from cardflow._simulate import simulate

ROOT = Path(__file__).parent.parent
SCRIPT = Path(sys.executable).parent / "cardflow"
CLI = [sys.executable, "-m", "cardflow.cli"]
BODY = (
    b'{"operations":[{"operationId":"o1","operation":"PRODUCE","status":"PENDING",'
    b'"startTime":"2025-01-17T06:28:02Z","cardId":"c1","details":{"status":"CARD_PROD_REQUESTED"}}]}\n'
)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CI", None)
    return env


def cardflow_run(
    *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env=_env(),
        timeout=120,
        check=False,
    )


def test_the_console_script_is_declared_and_installed() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "cardflow"]
    assert script.value == "cardflow.cli:main"
    assert SCRIPT.exists(), "install the project (pip install -e .) to get the cardflow command"
    done = subprocess.run([str(SCRIPT), "--version"], capture_output=True, check=False, timeout=60)
    assert done.returncode == 0
    assert done.stdout.decode() == f"cardflow {cardflow.__version__}\n"


def test_help_on_every_command_documents_the_exit_status() -> None:
    for command in ([], ["fold"], ["simulate"], ["diagram"]):
        done = cardflow_run(*command, "--help")
        assert done.returncode == 0, done.stderr
        text = done.stdout.decode()
        assert "exit status:" in text
        assert "141" in text
    fold_help = cardflow_run("fold", "--help").stdout.decode()
    for option in ("--format", "--card", "--status", "--needs-reconcile", "--now", "--rejects"):
        assert option in fold_help
    assert "4    a --card was not in the input" in fold_help


def test_the_exit_status_is_documented_alike_in_help_and_docs() -> None:
    docs = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    fold_help = cardflow_run("fold", "--help").stdout.decode()
    for code in (0, 1, 2, 3, 4, 130, 141):
        assert f"\n  {code} " in fold_help
        assert f"\n| {code} | " in docs
    assert "When several apply, the first of 3, 1, 4 wins." in fold_help
    assert "When several apply, the first of 3, 1, 4 wins." in docs


def test_a_command_is_required_and_usage_errors_exit_2() -> None:
    assert cardflow_run().returncode == 2
    done = cardflow_run("simulate", "--cards", "10")
    assert done.returncode == 2
    assert b"the following arguments are required: --seed" in done.stderr
    done = cardflow_run("simulate", "--cards", "10", "--seed", "1", "--lose", "1.5")
    assert done.returncode == 2
    assert b"--lose: must be at least 0 and below 1, got 1.5" in done.stderr


def test_the_readme_quick_start_pipeline() -> None:
    simulate_proc = subprocess.Popen(
        [*CLI, "simulate", "--cards", "400", "--seed", "1"], stdout=subprocess.PIPE, env=_env()
    )
    assert simulate_proc.stdout is not None
    fold_proc = subprocess.run(
        [*CLI, "fold"],
        stdin=simulate_proc.stdout,
        capture_output=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    simulate_proc.stdout.close()
    assert simulate_proc.wait(timeout=60) == 0
    assert fold_proc.returncode == 0, fold_proc.stderr
    assert fold_proc.stderr == b""  # no progress bar into a pipe
    text = fold_proc.stdout.decode()
    assert text.startswith("400 cards, folded from ")
    assert "Cards by status" in text
    assert "Reconcile candidates as of " in text
    assert "Rejected nothing." in text


def test_simulate_writes_the_same_bytes_for_the_same_seed() -> None:
    args = (
        "simulate",
        "--cards",
        "50",
        "--seed",
        "3",
        "--bulk",
        "3",
        "--lose",
        "0.1",
        "--mix-other-ops",
    )
    first, second = cardflow_run(*args), cardflow_run(*args)
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout
    assert first.stdout.endswith(b"\n")
    in_process = list(
        simulate(50, 3, cardflow._simulate.SimulationOptions(bulk=3, lose=0.1, mix_other_ops=True))
    )
    assert first.stdout.splitlines() == in_process
    assert cardflow_run("simulate", "--cards", "50", "--seed", "4").stdout != first.stdout


def test_fold_files_end_to_end_with_rejects(tmp_path: Path) -> None:
    good = BODY.rstrip(b"\n")
    bad_op = b'{"operationId":"o2","operation":"PRODUCE","status":"PENDING","cardId":"c2"}'
    log = tmp_path / "log.jsonl"
    log.write_bytes(good + b"\n" + b'{"operations":[' + bad_op + b"]}\n" + b"{oops\n")
    rejects = tmp_path / "rejects.jsonl"
    done = cardflow_run(
        "fold", "log.jsonl", "--rejects", "rejects.jsonl", "--format", "jsonl", cwd=tmp_path
    )
    assert done.returncode == 1
    assert done.stderr.decode().splitlines() == [
        "log.jsonl:2: $.operations[0].startTime: Object missing required field `startTime`",
        "log.jsonl:3: $: JSON is malformed: object keys must be strings (byte 1)",
        "cardflow fold: rejected 1 body and 1 operation; written to rejects.jsonl;"
        " everything else was folded",
    ]
    assert rejects.read_bytes() == bad_op + b"\n{oops\n"
    (card,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert card["cardId"] == "c1"
    missing = cardflow_run("fold", "nope.jsonl", "log.jsonl", "--allow-rejects", cwd=tmp_path)
    assert missing.returncode == 3
    assert b"cannot read nope.jsonl: No such file or directory" in missing.stderr


def test_a_closed_stdout_stops_quietly() -> None:
    proc = subprocess.Popen(
        [*CLI, "simulate", "--cards", "20000", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert len(proc.stdout.read(100)) == 100
    proc.stdout.close()
    assert proc.wait(timeout=60) == 141
    assert proc.stderr.read() == b""
    proc.stderr.close()


def test_ctrl_c_exits_130() -> None:
    proc = subprocess.Popen(
        [*CLI, "fold", "--progress"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    assert proc.stdin is not None
    assert proc.stderr is not None
    assert proc.stdout is not None
    try:
        # Feed bodies until the bar shows (half a second into the work): then the
        # command is surely running, past its imports.
        deadline = time.monotonic() + 60
        drawn = False
        while not drawn and time.monotonic() < deadline:
            proc.stdin.write(b'{"operations":[]}\n')
            proc.stdin.flush()
            drawn = bool(select.select([proc.stderr], [], [], 0.1)[0])
        assert drawn, "no progress drawn"
        assert os.read(proc.stderr.fileno(), 4096).startswith(b"\r")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
        assert b"cardflow: interrupted" in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            stream.close()


def test_importing_cardflow_does_not_import_the_cli() -> None:
    code = "import sys, cardflow; print(sorted(m for m in sys.modules if 'cli' in m))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, timeout=60)
    assert done.stdout.decode().strip() == "[]"


def test_diagram_prints_the_lifecycle() -> None:
    done = cardflow_run("diagram")
    assert done.returncode == 0
    assert done.stdout.decode() == mermaid()
    page = cardflow_run("diagram", "--markdown").stdout.decode()
    assert page == (ROOT / "docs" / "state-diagram.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("args", [["fold", "--format", "yaml"], ["fold", "--now", "soon"]])
def test_bad_values_name_the_option(args: list[str]) -> None:
    done = cardflow_run(*args)
    assert done.returncode == 2
    assert args[1].encode() in done.stderr
