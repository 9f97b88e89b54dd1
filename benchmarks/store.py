"""The store: bodies per second into SQLite and PostgreSQL, as ratios to the Tracker.

Each contender stores the same simulated bodies (one transaction per body, as a
webhook service does) into a new database: 1 writer, and 4 writer processes that
each take every fourth body (so that one card's bodies often reach two writers at
once, as with a service's workers). The ratio is the store's rate over the in-memory
Tracker's rate on the same bodies, measured in the same run; it informs, there is no
target (a store pays a commit per body, the Tracker a dictionary update).

SQLite runs with its default ``synchronous=full`` (a commit survives a power cut:
one fsync per body) and with ``synchronous=normal`` (a commit survives a crash of
any process). PostgreSQL is the one at ``$CARDFLOW_BENCH_POSTGRES`` (a URL), or a
throwaway cluster that this module starts (as the ``postgres`` user when run as
root) with the server's default durability, where the binaries are installed.

Batched (``run_batched``, issue 25), each into a new database, in interleaved rounds:

- ``ingest_many`` with 1,000 bodies a commit, beside a *bare-SQL floor* written in the
  same run (``_floor.py``: the same tables, the rows that commit wrote, precomputed,
  one ``executemany`` per table per commit, the same durability): at least 0.7 of it;
  beside them the *floor of the Python the rows need* (``_floor.python_floor``: no SQL),
  whose ratio is the most of the bare-SQL floor that any store in Python reaches
  (``floor / (floor + Python)``, in time);
- ``cardflow fold --db`` on SQLite (the whole command): at least 0.5 of ``ingest_many``;
- the receiver, ``cardflow serve --workers 2`` loaded by wrk with 32 connections
  (``_receiving.py``): at least 0.5 of ``ingest_many`` with 32 bodies a call, and on
  SQLite a 99th percentile under 250 ms.

``python -m benchmarks.store batched [CARDS]`` runs those alone, with the load average.
``rebuild_run`` measures ``Store.rebuild`` in cards per second beside a plain fold
(``cardflow.fold``) of the same events, decoded and in memory, and beside a fold of
the same bodies (their decoding included): a rebuild that changes nothing (every
state read, folded again, encoded and compared), and one that writes every state
(their rows deleted before each round, untimed); the target is at least 0.5 of the
plain fold's rate on SQLite. On SQLite it also times a rebuild's first steps alone
(its reads, then the decode, then the fold: ``_rebuild_parts``): where its time goes.

``python -m benchmarks.store writer URL FILE K N``: a writer process (stores every
N-th line of FILE from the K-th on, once told to start on stdin);
``python -m benchmarks.store rebuild CARDS``: the rebuild measure alone.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

import cardflow
import cardflow.store
from cardflow._simulate import simulate

from . import _floor, _receiving
from ._data import SEED
from ._timing import Result, median

WRITERS: Final = (1, 4)
PER_COMMIT: Final = 1000
"""Bodies per commit of the batched measures (``cardflow fold --db`` stores as many)."""
PER_CALL: Final = 32
"""Bodies per ``ingest_many`` call that the receiver is measured against."""
CONNECTIONS: Final = 32
MANY_TARGET: Final = 0.70
"""``ingest_many`` with 1,000 bodies a commit: at least this share of the bare-SQL floor."""
RECEIVER_TARGET: Final = 0.50
"""The receiver under 32 connections: at least this share of ``ingest_many``'s rate with
32 bodies a call."""
P99_TARGET_MS: Final = 250.0
"""The receiver's 99th percentile at 32 connections on SQLite, at most."""
FOLD_TARGET: Final = 0.50
"""``cardflow fold --db`` on SQLite: at least this share of ``ingest_many``'s rate."""


def _tracker_rate(bodies: Sequence[bytes], repeat: int = 10) -> float:
    """The Tracker's rate, over ``repeat`` fresh trackers (one is over too soon to time)."""
    started = time.perf_counter()
    for _ in range(repeat):
        tracker = cardflow.Tracker()
        for body in bodies:
            tracker.ingest(body)
    return repeat * len(bodies) / (time.perf_counter() - started)


def _store_rate(url: str, path: Path, count: int, writers: int) -> float:
    """Bodies per second, from the start signal until the last writer finished."""
    cardflow.store.open(url).close()
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.store",
                "writer",
                url,
                str(path),
                str(k),
                str(writers),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for k in range(writers)
    ]
    for process in processes:
        assert process.stdout is not None
        if process.stdout.readline() != b"ready\n":
            raise RuntimeError("a writer did not start")
    started = time.perf_counter()
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(b"go\n")
        process.stdin.close()
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"a writer failed with status {process.returncode}")
    return count / (time.perf_counter() - started)


def writer(url: str, path: str, first: int, every: int) -> None:
    """Store every ``every``-th line of the file from line ``first`` (0-based)."""
    lines = Path(path).read_bytes().splitlines()[first::every]
    with cardflow.store.open(url) as store:
        print("ready", flush=True)
        sys.stdin.readline()
        for line in lines:
            store.ingest(line)


def _binary(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if isinstance(found, list):
        return found[-1] if found else None
    return found


@contextmanager
def _postgres() -> Iterator[str | None]:
    """A PostgreSQL URL to measure on, or None (and why, printed) when there is none."""
    given = os.environ.get("CARDFLOW_BENCH_POSTGRES")
    if given:
        yield given
        return
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        print("store: no PostgreSQL binaries and no $CARDFLOW_BENCH_POSTGRES: skipped")
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="cardflow-bench-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        pwd.getpwnam("postgres")
        shutil.chown(root, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", 6432 + os.getpid() % 1000
    try:
        subprocess.run(
            [*as_owner, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *as_owner,
                pg_ctl,
                "-D",
                str(data),
                "-l",
                str(root / "log"),
                "-w",
                "start",
                "-o",
                f"-k {root} -c listen_addresses='' -p {port}",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run(
            [*as_owner, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)


def _reset(url: str) -> None:
    """Empty a PostgreSQL store between measures."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        for table in ("events", "states", "outbox", "rejects", "schema_version"):
            connection.execute(f"DROP TABLE IF EXISTS {table}".encode())


def run(cards: int, count: int = 3) -> list[Result]:
    """Bodies per second into each engine with 1 and 4 writers, against the Tracker:
    ``count`` interleaved rounds (each measures the Tracker, then every contender), the
    ratio the median of the rounds' ratios, since the disk's flushes are as noisy as
    the machine is shared."""
    bodies = list(simulate(cards, SEED))
    size = f"{len(bodies):,} bodies"
    tracker: list[float] = []
    rates: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="cardflow-bench-store-") as folder, _postgres() as pg:
        path = Path(folder) / "bodies.jsonl"
        path.write_bytes(b"".join(body + b"\n" for body in bodies))
        for round_ in range(count):
            tracker.append(_tracker_rate(bodies))
            for sync in ("full", "normal"):
                for writers in WRITERS:
                    url = f"sqlite:///{folder}/{sync}-{writers}-{round_}.db"
                    rate = _store_rate(f"{url}?synchronous={sync}", path, len(bodies), writers)
                    rates.setdefault(f"sqlite {sync}, {writers} writer(s)", []).append(rate)
            if pg is not None:
                for writers in WRITERS:
                    _reset(pg)
                    rate = _store_rate(pg, path, len(bodies), writers)
                    rates.setdefault(f"postgresql, {writers} writer(s)", []).append(rate)
        if pg is not None:
            _reset(pg)
    results = [Result("store", "Tracker.ingest (memory)", size, f"{median(tracker):,.0f} bodies/s")]
    for measure, found in rates.items():
        results.append(
            Result(
                "store",
                measure,
                size,
                f"{median(found):,.0f} bodies/s",
                ratio=statistics.median(r / t for r, t in zip(found, tracker, strict=True)),
            )
        )
    return results


def _many(url: str, bodies: Sequence[bytes], per_call: int) -> float:
    """Bodies per second through ``ingest_many``, ``per_call`` bodies a call."""
    with cardflow.store.open(url) as store:
        started = time.perf_counter()
        for start in range(0, len(bodies), per_call):
            store.ingest_many(bodies[start : start + per_call])
        return len(bodies) / (time.perf_counter() - started)


def _fold_db(url: str, path: Path, count: int) -> float:
    """Bodies per second through ``cardflow fold --db`` (the whole command, its report
    included), into a new store."""
    cardflow.store.open(url).close()
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cardflow.cli", "fold", "--db", url, str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return count / (time.perf_counter() - started)


@dataclass
class _Round:
    """Bodies per second of each batched measure in one round on one engine."""

    floor: float
    python: float
    """Bodies per second of ``_floor.python_floor`` (the Python the rows need)."""
    many: float
    many32: float
    fold: float | None
    receiver: _receiving.Load | None


def _engine_round(
    engine: str, fresh: Callable[[], str], floor: Callable[[str], None], path: Path, count: int
) -> _Round:
    """One round of the batched measures on one engine, each into a new database."""
    bodies = path.read_bytes().splitlines()
    target = fresh()
    started = time.perf_counter()
    floor(target)
    floor_rate = count / (time.perf_counter() - started)
    return _Round(
        floor=floor_rate,
        python=count / _floor.python_floor(bodies, PER_COMMIT),
        many=_many(fresh(), bodies, PER_COMMIT),
        many32=_many(fresh(), bodies, PER_CALL),
        fold=_fold_db(fresh(), path, count) if engine == "sqlite" else None,
        receiver=None
        if _receiving.wrk_missing()
        # As long as the bodies last at a few thousand a second: each is sent once.
        else _receiving.receive(fresh(), path, CONNECTIONS, max(1, min(4, count // 4000))),
    )


def run_batched(cards: int, count: int = 3) -> list[Result]:
    """Batched writes against the bare-SQL floor, and the receiver under load against
    ``ingest_many``: on SQLite (``synchronous=full``) and PostgreSQL, ``count``
    interleaved rounds, each ratio the median of the rounds' ratios."""
    bodies = list(simulate(cards, SEED))
    size = f"{len(bodies):,} bodies"
    missing = _receiving.wrk_missing()
    rounds: dict[str, list[_Round]] = {}
    with tempfile.TemporaryDirectory(prefix="cardflow-bench-batch-") as name, _postgres() as pg:
        folder = Path(name)
        path = folder / "bodies.jsonl"
        path.write_bytes(b"".join(body + b"\n" for body in bodies))
        commits = _floor.precompute(folder, bodies, PER_COMMIT)
        made = iter(range(1_000_000))

        def sqlite_fresh() -> str:
            url = f"sqlite:///{folder}/batch-{next(made)}.db"
            cardflow.store.open(url).close()
            return url

        def sqlite_floor(url: str) -> None:
            _floor.write_sqlite(Path(url.removeprefix("sqlite:///")), commits)

        def pg_fresh() -> str:
            assert pg is not None
            _reset(pg)
            cardflow.store.open(pg).close()
            return pg

        def pg_floor(url: str) -> None:
            _floor.write_postgres(url, commits)

        for _ in range(count):
            rounds.setdefault("sqlite", []).append(
                _engine_round("sqlite", sqlite_fresh, sqlite_floor, path, len(bodies))
            )
            if pg is not None:
                rounds.setdefault("postgresql", []).append(
                    _engine_round("postgresql", pg_fresh, pg_floor, path, len(bodies))
                )
        if pg is not None:
            _reset(pg)
    results: list[Result] = []
    for engine, found in rounds.items():
        results += _batched_results(engine, found, size)
    if missing:
        print(f"store: the receiver was not measured: {missing}")
    return results


def _rates(found: list[_Round], key: str) -> list[float]:
    out = []
    for r in found:
        value = getattr(r, key)
        out.append(value.rate if isinstance(value, _receiving.Load) else float(value))
    return out


def _share(found: list[_Round], top: str, bottom: str) -> float:
    pairs = zip(_rates(found, top), _rates(found, bottom), strict=True)
    return statistics.median(a / b for a, b in pairs)


def _batched_results(engine: str, found: list[_Round], size: str) -> list[Result]:
    def figure(key: str) -> str:
        return f"{median(_rates(found, key)):,.0f} bodies/s"

    share = _share(found, "many", "floor")
    reachable = statistics.median(
        (1 / f) / (1 / f + 1 / p)
        for f, p in zip(_rates(found, "floor"), _rates(found, "python"), strict=True)
    )
    results = [
        Result("store", f"{engine}: bare-SQL floor, {PER_COMMIT:,} bodies a commit", size,
               figure("floor")),
        Result("store", f"{engine}: floor of the Python the rows need (no SQL; the most"
               " any Python store reaches, of the bare-SQL floor)", size, figure("python"),
               reachable),
        Result("store", f"{engine}: ingest_many, {PER_COMMIT:,} bodies a commit (of the floor)",
               size, figure("many"), share, f">= {MANY_TARGET:.2f}", share >= MANY_TARGET),
        Result("store", f"{engine}: ingest_many, {PER_CALL} bodies a call", size,
               figure("many32")),
    ]  # fmt: skip
    if found[0].fold is not None:
        share = _share(found, "fold", "many")
        results.append(
            Result("store", f"{engine}: cardflow fold --db (of ingest_many, {PER_COMMIT:,})",
                   size, figure("fold"), share, f">= {FOLD_TARGET:.2f}", share >= FOLD_TARGET)
        )  # fmt: skip
    loads = [r.receiver for r in found if r.receiver is not None]
    if loads:
        p99 = median([load.p99_ms for load in loads])
        p50 = median([load.p50_ms for load in loads])
        failed = sum(load.failed for load in loads)
        share = _share(found, "receiver", "many32")
        results.append(
            Result("store",
                   f"{engine}: cardflow serve --workers 2, wrk {CONNECTIONS} connections"
                   f" (of ingest_many, {PER_CALL} a call)", size,
                   f"{figure('receiver')}, p50 {p50:.0f} ms, p99 {p99:.0f} ms,"
                   f" {failed} not 204", share, f">= {RECEIVER_TARGET:.2f}",
                   share >= RECEIVER_TARGET and failed == 0)
        )  # fmt: skip
        if engine == "sqlite":
            results.append(
                Result("store", f"{engine}: receiver p99 at {CONNECTIONS} connections", size,
                       f"{p99:.0f} ms", None, f"< {P99_TARGET_MS:.0f} ms", p99 < P99_TARGET_MS)
            )  # fmt: skip
    return results


REBUILD_TARGET: Final = 0.5
"""Rebuild's cards per second over a plain fold's, on SQLite: at least this."""


def _filled(url: str, bodies: Sequence[bytes]) -> cardflow.store.Store:
    store = cardflow.store.open(url)
    for start in range(0, len(bodies), 500):
        store.ingest_many(bodies[start : start + 500])
    return store


_PARTS: Final = ("read", "read + decode", "read + decode + fold")


def _rebuild_parts(store: cardflow.store.Store, batch: int = 500) -> dict[str, float]:
    """Seconds for the first steps of a rebuild that changes nothing, each step timed
    with those before it (the statements ``Store.rebuild`` runs for a batch of every
    card, then msgpack's decode of each event, then the fold of a batch): where the
    rebuild's time goes beside the plain fold's."""
    decoder = msgspec.msgpack.Decoder(cardflow.Operation)
    with store._transaction(False) as tx:
        ids = [
            str(row[0]) for row in tx.rows("SELECT DISTINCT card_id FROM events ORDER BY card_id")
        ]
    spans = [(ids[n], ids[min(n + batch, len(ids)) - 1]) for n in range(0, len(ids), batch)]
    times: dict[str, float] = {}
    for depth, part in enumerate(_PARTS):
        started = time.perf_counter()
        with store._read_in_bulk():  # as Store.rebuild reads
            for first, last in spans:
                with store._transaction(False) as tx:
                    events = tx.rows(
                        "SELECT id, event, read_at FROM events WHERE card_id >= ? AND card_id <= ?",
                        (first, last),
                    )
                    tx.rows(
                        "SELECT card_id, version, state FROM states"
                        " WHERE card_id >= ? AND card_id <= ?",
                        (first, last),
                    )
                if depth >= 1:
                    ops = [decoder.decode(row[1]) for row in events]
                    if depth >= 2:
                        cardflow.Folder(ops).finish()
        times[part] = time.perf_counter() - started
    return times


def rebuild_run(cards: int, count: int = 3) -> list[Result]:
    """Rebuild's cards per second on each engine beside two plain folds of the same
    events, in ``count`` interleaved rounds: ``cardflow.fold`` of the operations decoded
    beforehand (the fold alone: the target's baseline), and a ``Folder`` fed the bodies
    (decoding included, as ``cardflow fold`` does); the ratios are the medians of the
    rounds'."""
    bodies = list(simulate(cards, SEED))
    ops = [op for body in bodies for op in cardflow.decode_lenient(body).operations]
    size = f"{cards:,} cards, {len(ops):,} operations"
    times: dict[str, list[float]] = {"fold": [], "bodies": []}
    with tempfile.TemporaryDirectory(prefix="cardflow-bench-rebuild-") as folder, _postgres() as pg:
        stores = {"sqlite": _filled(f"sqlite:///{folder}/rebuild.db?synchronous=normal", bodies)}
        if pg is not None:
            _reset(pg)
            stores["postgresql"] = _filled(pg, bodies)
        try:
            for _ in range(count):
                started = time.perf_counter()
                folded = cardflow.fold(ops)
                times["fold"].append(time.perf_counter() - started)
                assert len(folded) == cards
                started = time.perf_counter()
                reader = cardflow.Folder()
                for body in bodies:
                    reader.ingest(body)
                times["bodies"].append(time.perf_counter() - started)
                for engine, store in stores.items():
                    started = time.perf_counter()
                    result = store.rebuild()
                    elapsed = time.perf_counter() - started
                    assert (result.cards, result.changed) == (cards, 0)
                    times.setdefault(f"{engine}: rebuild, nothing changes", []).append(elapsed)
                    if engine == "sqlite":
                        for part, spent in _rebuild_parts(store).items():
                            times.setdefault(f"{engine}: {part} alone", []).append(spent)
                    with store._transaction() as tx:  # the damage, untimed
                        tx.run("DELETE FROM states")
                    started = time.perf_counter()
                    result = store.rebuild()
                    elapsed = time.perf_counter() - started
                    assert (result.cards, result.changed) == (cards, cards)
                    times.setdefault(f"{engine}: rebuild, every state written", []).append(elapsed)
        finally:
            for store in stores.values():
                store.close()
            if pg is not None:
                _reset(pg)
    fold, bodies_fold = times.pop("fold"), times.pop("bodies")
    results = [
        Result("store", "fold (operations decoded)", size, f"{cards / median(fold):,.0f} cards/s"),
        Result(
            "store",
            "fold (the bodies, decoding included)",
            size,
            f"{cards / median(bodies_fold):,.0f} cards/s",
            ratio=statistics.median(f / b for f, b in zip(fold, bodies_fold, strict=True)),
        ),
    ]
    for measure, found in times.items():
        ratio = statistics.median(f / t for f, t in zip(fold, found, strict=True))
        target = measure.startswith("sqlite: rebuild")
        results.append(
            Result(
                "store",
                measure,
                size,
                f"{cards / median(found):,.0f} cards/s",
                ratio=ratio,
                target=f">= {REBUILD_TARGET}" if target else "",
                ok=ratio >= REBUILD_TARGET if target else None,
            )
        )
        if measure.endswith(" alone"):
            continue
        results.append(
            Result(
                "store",
                f"{measure}, over the fold of the bodies",
                size,
                "",
                ratio=statistics.median(b / t for b, t in zip(bodies_fold, found, strict=True)),
            )
        )
    return results


if __name__ == "__main__":
    if sys.argv[1:2] == ["writer"]:
        writer(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif sys.argv[1:2] == ["batched"]:
        from ._timing import table

        print(f"load before: {os.getloadavg()}")
        found = run_batched(int(sys.argv[2]) if len(sys.argv) > 2 else 1500)
        print(table(found))
        print(f"load after: {os.getloadavg()}")
    elif sys.argv[1:2] == ["rebuild"]:
        for result in rebuild_run(int(sys.argv[2]) if len(sys.argv) > 2 else 5000):
            print(result)
    else:
        for result in run(int(sys.argv[1]) if len(sys.argv) > 1 else 300):
            print(result)
