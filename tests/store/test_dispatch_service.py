"""``cardflow dispatch`` as a service, in real processes: its reactions from the current
directory, a clean stop on SIGTERM and SIGINT, failures and progress as they happen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cardflow
import cardflow.store

from .test_cli_db import cli
from .test_outbox import Recorder
from .test_store import _body, _execute, _op

COMMAND = Path(sys.executable).with_name("cardflow")

REACTIONS = """\
import os, time

LOG = {log!r}


class Reactions:
    def _react(self, change):
        with open(LOG, "a") as out:
            out.write(f"start {{change.card_id}}\\n")
        if {slow!r} is None or change.card_id in {slow!r}:
            time.sleep({seconds})
        if change.card_id in {failing!r}:
            raise RuntimeError(f"no printer for {{change.card_id}}")
        with open(LOG, "a") as out:
            out.write(f"end {{change.card_id}}\\n")

    on_enter_CARD_SHIPPED = _react
"""


def _service(
    folder: Path,
    url: str,
    *options: str,
    seconds: float = 0.0,
    failing: tuple[str, ...] = (),
    slow: tuple[str, ...] | None = None,
) -> tuple[list[str], Path]:
    """A reactions module in ``folder`` and the command that runs it from there: each
    reaction takes ``seconds`` (only those of the cards ``slow``, if given) and fails
    for the cards ``failing``."""
    log = folder / "log"
    (folder / "my_reactions.py").write_text(
        REACTIONS.format(log=str(log), seconds=seconds, failing=failing, slow=slow)
    )
    if not COMMAND.exists():
        pytest.skip(f"no console script at {COMMAND}")
    argv = [str(COMMAND), "dispatch", "--db", url, "--reactions", "my_reactions:Reactions"]
    return [*argv, *options], log


def _fill(url: str, cards: int) -> None:
    with cardflow.store.open(url) as store:
        store.ingest_many([_body(_op(f"c-{n:03d}", "CARD_SHIPPED", 1)) for n in range(cards)])


def _environment() -> dict[str, str]:
    """The environment without PYTHONPATH: the reactions are found in the current
    directory, as ``python -m`` finds them."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_reactions_module_is_found_in_the_current_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url, 3)
    argv, log = _service(tmp_path, url)
    done = subprocess.run(
        argv, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "dispatched 3 reactions" in done.stderr
    assert sorted(log.read_text().split("\n")[1::2]) == ["end c-000", "end c-001", "end c-002"]


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_finishes_the_reaction_running_and_gives_back_the_rest(
    tmp_path: Path, sent: signal.Signals
) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url, 20)
    argv, log = _service(tmp_path, url, "--follow", "--lease", "600", seconds=0.3)
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=_environment(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while "start c-001" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the dispatcher did not start"
        time.sleep(0.01)
    process.send_signal(sent)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped by a signal; dispatched 2 reactions" in err
    lines = log.read_text().splitlines()
    assert lines == ["start c-000", "end c-000", "start c-001", "end c-001"]
    with cardflow.store.open(url) as store:
        assert store.outbox_counts() == {"done": 2, "pending": 18}
        # Given back, not left to a lease of 600 s: another dispatcher takes them now.
        assert store.dispatch(Recorder(), limit=1000) == 18


def test_follow_reports_each_failure_and_its_progress(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url, 6)
    argv, _ = _service(
        tmp_path,
        url,
        "--follow",
        "--interval",
        "0.05",
        "--progress-every",
        "0.1",
        "--max-attempts",
        "1",
        failing=("c-002", "c-004"),
    )
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=_environment(), stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while not any("progress: 4 done, 0 retried, 2 dead, 0 pending" in s for s in seen):
        assert time.monotonic() < deadline, seen
        seen.append(process.stderr.readline())
    process.terminate()
    process.communicate(timeout=30)
    assert process.returncode == 0
    failures = [s for s in seen if "failed" in s]
    assert len(failures) == 2
    assert (
        "the reaction to c-002/op-1/CARD_SHIPPED failed (attempt 1 of 1), parked dead:"
        in (failures[0])
    )
    assert failures[0].rstrip().endswith("RuntimeError: no printer for c-002")


def test_requeue_all_with_nothing_dead_is_a_quiet_success(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url, 1)
    done = cli("outbox", "requeue", "--db", url, "--all")
    assert done.code == 0, done.err
    assert done.err == "requeued 0 rows\n"


def test_undecodable_rows_are_parked_and_dispatch_succeeds(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(store_url, 4)
    _execute(store_url, "UPDATE outbox SET skipped = 'not json' WHERE card_id = 'c-001'")
    argv, log = _service(tmp_path, store_url)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "my_reactions", raising=False)
    done = cli(*argv[1:])
    assert done.code == 0, done.err
    assert "outbox row 2 (c-001/op-1/CARD_SHIPPED) parked dead: outbox row 2" in done.err
    assert "dispatched 3 reactions; outbox: 1 dead, 3 done" in done.err
    assert log.read_text().count("end ") == 3


def test_a_dispatcher_killed_mid_reaction_leaves_that_reaction_alone_to_run_again(
    tmp_path: Path,
) -> None:
    """The one case a reaction runs twice: its dispatcher died while it ran. The attempt
    it spent counts; every other row runs once."""
    url = f"sqlite:///{tmp_path}/store.db"
    _fill(url, 5)
    argv, log = _service(tmp_path, url, "--lease", "0.3", seconds=0.6, slow=("c-001",))
    process = subprocess.Popen(argv, cwd=tmp_path, env=_environment(), stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while "start c-001" not in (log.read_text() if log.exists() else ""):
        assert time.monotonic() < deadline, "the dispatcher did not start"
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=30)
    time.sleep(0.4)  # the killed dispatcher's lease on c-001 expires; the others it held
    again = subprocess.run(
        argv, cwd=tmp_path, env=_environment(), capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0, again.stderr
    lines = log.read_text().splitlines()
    assert lines.count("start c-001") == 2
    assert lines.count("end c-001") == 1
    for card in ("c-000", "c-002", "c-003", "c-004"):
        assert lines.count(f"start {card}") == lines.count(f"end {card}") == 1, lines
    with cardflow.store.open(url) as store:
        assert store.outbox_counts() == {"done": 5}
