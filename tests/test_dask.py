"""cardflow.dask and ``cardflow fold --dask`` on a real cluster: two worker processes.

One ``distributed.LocalCluster`` (2 processes, 1 thread each) serves the module. The
oracle is the single-process ``cardflow.fold`` over the same bodies: the laws of the
join say any partitioning folds to the same states, so the states must be equal byte
for byte through the state format.
"""

from __future__ import annotations

import io
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

import cardflow
from cardflow._simulate import SimulationOptions, simulate
from cardflow.cli import run
from cardflow.cli._console import Console
from components import missing

dask: Any  # Dask's API is untyped: used through Any
db: Any
distributed: Any
try:
    import dask
    import dask.bag as db
    import distributed

    import cardflow.dask as cfd
except ImportError as exc:  # pragma: no cover (CI installs the dask extra)
    IMPORT_ERROR: ImportError | None = exc
else:
    IMPORT_ERROR = None

OPTIONS = SimulationOptions(duplicates=0.3, window=400, mix_other_ops=True)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    if IMPORT_ERROR is not None:
        missing("dask", f"install cardflow[dask] ({IMPORT_ERROR})")
    with (
        distributed.LocalCluster(
            processes=True, n_workers=2, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as connected,
    ):
        yield connected


def _bodies(cards: int, seed: int) -> list[bytes]:
    return list(simulate(cards, seed=seed, options=OPTIONS))


def _encoded(states: dict[str, cardflow.CardState]) -> dict[str, bytes]:
    return {card: cardflow.encode_state(state) for card, state in states.items()}


def _oracle(bodies: list[bytes]) -> dict[str, bytes]:
    return _encoded(
        cardflow.fold(op for b in bodies for op in cardflow.decode_lenient(b).operations)
    )


def _computed(bag: Any) -> dict[str, bytes]:
    states: list[cardflow.CardState] = bag.compute()
    found = {s.card_id: s for s in states}
    assert len(found) == len(states), "a card in two output partitions"
    return _encoded(found)


def test_a_bag_folds_to_the_single_process_fold(client: Any) -> None:
    bodies = _bodies(200, seed=3)
    shuffled = bodies[:]
    random.Random(3).shuffle(shuffled)  # a card's events and duplicates in many partitions
    bag = db.from_sequence(shuffled, npartitions=6)
    partitions = bag.map_partitions(
        lambda part: [{o.card_id for b in part for o in cardflow.decode(b)}]
    ).compute()
    assert sum(len([p for p in partitions if card in p]) > 2 for card in set().union(*partitions))
    folded: Any = cfd.fold(bag, npartitions=3)
    assert folded.npartitions == 3
    assert _computed(folded) == _oracle(bodies)
    # Partitioned by card id: each card in one partition, each partition sorted.
    parts = folded.map_partitions(lambda part: [[s.card_id for s in part]]).compute()
    assert all(part == sorted(part) for part in parts)
    assert sum(bool(part) for part in parts) == 3


def test_text_bodies_fold_alike(client: Any) -> None:
    bodies = _bodies(40, seed=4)
    bag = db.from_sequence([b.decode() for b in bodies], npartitions=3)
    assert _computed(cfd.fold(bag)) == _oracle(bodies)


def test_files_are_read_by_glob_and_bad_lines_are_kept_with_their_path(
    client: Any, tmp_path: Path
) -> None:
    bodies = _bodies(80, seed=5)
    bad = [b"not json", b'{"operations": [{"operationId": "x"}]}']
    first, second = bodies[: len(bodies) // 2], bodies[len(bodies) // 2 :]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join([bad[0], *first]) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\n".join([*second, b"", bad[1]]) + b"\n")
    bag = cfd.read_bodies(str(tmp_path / "*.jsonl"), blocksize=4000)
    assert bag.npartitions > 4
    result = cfd.fold_with_rejects(bag, npartitions=2)
    rejected: Any = result.rejects
    states, rejects = dask.compute(result.states, rejected)
    found = {s.card_id: s for s in states}
    assert _encoded(found) == _oracle(bodies)
    assert sorted((Path(r.source).name, r.reject.raw) for r in rejects) == [
        ("a.jsonl", b"not json"),
        ("b.jsonl", b'{"operationId": "x"}'),
    ]
    assert rejected.count().compute() == 2


def _die_once(body: bytes, marker: str, at: bytes) -> bytes:
    """Kill this worker's process the first time ``at`` comes by (the marker says)."""
    if body == at:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return body
        os._exit(1)
    return body


def test_a_worker_killed_mid_computation_changes_nothing(client: Any, tmp_path: Path) -> None:
    bodies = _bodies(150, seed=6)
    marker = str(tmp_path / "killed")
    bag = db.from_sequence(bodies, npartitions=8).map(
        partial(_die_once, marker=marker, at=bodies[len(bodies) * 5 // 8])
    )
    assert _computed(cfd.fold(bag, npartitions=4)) == _oracle(bodies)
    assert os.path.exists(marker)  # a worker did die
    client.wait_for_workers(2, timeout=60)


def test_the_cli_on_the_cluster_reports_what_one_process_reports(
    client: Any, tmp_path: Path
) -> None:
    bodies = _bodies(60, seed=8)
    (tmp_path / "a.jsonl").write_bytes(b"\n".join([*bodies[:150], b"garbage"]) + b"\n")
    (tmp_path / "b.jsonl").write_bytes(b"\n".join(bodies[150:]) + b"\n")

    def fold_cli(*extra: str) -> tuple[int, bytes, str]:
        out, err = io.BytesIO(), io.StringIO()
        console = Console(stdin=io.BytesIO(), stdout=out, stderr=err, environ={})
        code = run(["fold", str(tmp_path), *extra], console)
        return code, out.getvalue(), err.getvalue()

    now = ["--now", "2025-03-01T00:00:00Z"]
    for options in (
        ["--format", "jsonl"],
        ["--format", "json", *now],
        ["--format", "csv", "--needs-reconcile", *now],
        ["--format", "summary", *now],
    ):
        one = fold_cli(*options, "--jobs", "1")
        on_dask = fold_cli(*options, "--dask", client.scheduler.address, "--part-size", "5000")
        assert on_dask == one
        assert one[0] == 1
        assert one[1]
        assert "a.jsonl:151: $: JSON is malformed" in one[2]


def test_the_cli_names_an_unreachable_scheduler() -> None:
    if IMPORT_ERROR is not None:
        missing("dask", f"install cardflow[dask] ({IMPORT_ERROR})")
    out, err = io.BytesIO(), io.StringIO()
    console = Console(stdin=io.BytesIO(), stdout=out, stderr=err, environ={})
    code = run(["fold", "--dask", "tcp://127.0.0.1:9", "-"], console)
    assert code == 2
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in err.getvalue()


def test_an_unreachable_scheduler_is_a_cardflow_error() -> None:
    """The pool's own error is part of the one hierarchy, not a bare Exception."""
    if IMPORT_ERROR is not None:
        missing("dask", f"install cardflow[dask] ({IMPORT_ERROR})")
    from cardflow.batch._parallel import workers_for

    unreachable = workers_for([], None, None, "tcp://127.0.0.1:9")
    with pytest.raises(cardflow.CardflowError, match="cannot reach the Dask scheduler"):
        unreachable.__enter__()


def test_the_dask_api_is_pinned() -> None:
    if IMPORT_ERROR is not None:
        missing("dask", f"install cardflow[dask] ({IMPORT_ERROR})")
    assert cfd.__all__ == ["DaskFold", "Rejected", "fold", "fold_with_rejects", "read_bodies"]
    assert all(getattr(cfd, name).__module__.startswith("cardflow.dask") for name in cfd.__all__)


def test_importing_cardflow_and_its_cli_does_not_import_dask() -> None:
    code = "import sys, cardflow, cardflow.cli; assert 'dask' not in sys.modules, 'dask'"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
