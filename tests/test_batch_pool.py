"""The worker pool of ``cardflow fold --jobs``: tasks for a named worker, failures that
come back as errors (never a hang), and the start method chosen by the threads alive."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest

from cardflow.batch._pool import LocalPool, running, start_context, worker_index

_state: list[int] = []


def _nothing() -> None:
    pass


def _remember(value: int) -> int | None:
    """Keep ``value`` in this worker; its index."""
    _state.append(value)
    return worker_index()


def _remembered() -> list[int]:
    return list(_state)


def _fail(message: str) -> None:
    raise ValueError(message)


def _die() -> None:
    os._exit(7)


def _pool(jobs: int = 2) -> LocalPool:
    return LocalPool(jobs, start_context([]), _nothing)


def test_a_task_for_a_worker_runs_there_and_finds_what_it_left() -> None:
    with running(_pool()) as pool:
        first = [pool.submit_to(w, _remember, 10 + w) for w in (0, 1)]
        assert [f.result(timeout=60) for f in first] == [0, 1]
        later = [pool.submit_to(w, _remember, 20 + w) for w in (1, 0)]
        assert [f.result(timeout=60) for f in later] == [1, 0]
        kept = [pool.submit_to(w, _remembered).result(timeout=60) for w in (0, 1)]
        assert kept == [[10, 20], [11, 21]]
        anywhere = [pool.submit(_remember, 30) for _ in range(6)]
        assert {f.result(timeout=60) for f in anywhere} <= {0, 1}
    assert worker_index() is None  # this process is no worker


def test_an_error_in_a_task_comes_back_and_the_worker_goes_on() -> None:
    with running(_pool(1)) as pool:
        with pytest.raises(ValueError, match="no such card"):
            pool.submit(_fail, "no such card").result(timeout=60)
        assert pool.submit(_remember, 1).result(timeout=60) == 0


def test_a_task_that_does_not_pickle_fails_without_stopping_the_pool() -> None:
    with running(_pool(1)) as pool:
        with pytest.raises(Exception, match="pickle"):
            pool.submit(lambda: None).result(timeout=60)
        assert pool.submit(_remember, 1).result(timeout=60) == 0


def test_a_worker_that_dies_breaks_the_pool_and_its_tasks() -> None:
    pool = _pool()
    with pytest.raises(BrokenProcessPool), running(pool):  # noqa: PT012 (its end too)
        dying = pool.submit_to(0, _die)
        waiting = pool.submit_to(0, _remember, 1)
        with pytest.raises(BrokenProcessPool, match="worker process 0"):
            dying.result(timeout=60)
        with pytest.raises(BrokenProcessPool):
            waiting.result(timeout=60)
        pool.submit(_remember, 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is chosen on Linux only")
def test_fork_only_while_no_other_thread_runs() -> None:
    if threading.active_count() == 1:  # other tests may have left threads behind
        assert start_context([]).get_start_method() == "fork"
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        method = start_context([]).get_start_method()
    finally:
        stop.set()
        thread.join()
    assert method == "forkserver"
    assert "forkserver" in multiprocessing.get_all_start_methods()


def _fail_beside(pool: LocalPool) -> Future[None]:
    """Give a worker a long task, then fail while it runs."""
    with running(pool):
        long = pool.submit_to(0, time.sleep, 60)
        raise RuntimeError(long)


def test_an_error_in_the_parent_stops_the_workers_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        _fail_beside(_pool())
    long = raised.value.args[0]
    with pytest.raises(BrokenProcessPool, match="terminated"):
        long.result(timeout=10)
    assert time.monotonic() - started < 30
