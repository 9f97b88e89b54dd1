"""The worker processes of a parallel fold (``fold_files``, ``--jobs``): a pool of our own.

``concurrent.futures.ProcessPoolExecutor`` runs a task on whichever worker is free;
the two phases of a parallel fold need more: a worker keeps the states it folded in phase
one, and phase two asks *that* worker for them (``submit_to``). So this pool gives
each worker a pipe of its own; a thread of the parent hands the next task to a free
worker (a task for a given worker waits for it) and sets each task's future.

Workers start with ``fork`` on Linux when the parent runs no other thread (the
quickest: nothing to import again), else with ``forkserver`` (safe beside threads;
it imports cardflow once), else ``spawn``. They ignore Ctrl-C: the parent stops them.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.context import BaseContext
from multiprocessing.reduction import ForkingPickler
from typing import Any, ParamSpec, TypeVar

__all__ = ["LocalPool", "running", "start_context", "worker_index"]

P = ParamSpec("P")
T = TypeVar("T")

_index: list[int] = []
"""In a worker process: its index in the pool."""


def worker_index() -> int | None:
    """This worker's index in its pool (None: not in a worker of a ``LocalPool``)."""
    return _index[0] if _index else None


def start_context(preload: list[str]) -> BaseContext:
    """How to start workers: ``fork`` on Linux when this process runs no other thread
    (forking a process with threads may copy a lock that one of them held), else
    ``forkserver`` (which imports ``preload`` once), else ``spawn``."""
    methods = multiprocessing.get_all_start_methods()
    if sys.platform.startswith("linux") and "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(preload)
        return context
    return multiprocessing.get_context("spawn")


def _serve(
    conn: Connection, index: int, initializer: Callable[..., object], initargs: tuple[Any, ...]
) -> None:
    """A worker: run each task its pipe brings, send back (True, result) or (False, error)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _index.append(index)
    initializer(*initargs)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        fn, args = task
        try:
            reply: tuple[bool, object] = (True, fn(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # a result or error that does not pickle
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))


@dataclass(slots=True)
class _Task:
    future: Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class LocalPool(Executor):
    """``jobs`` worker processes; ``submit`` runs a task on any of them, ``submit_to``
    on the one named. Tasks run in the order submitted (per worker, for ``submit_to``)."""

    def __init__(
        self,
        jobs: int,
        context: BaseContext,
        initializer: Callable[..., object],
        initargs: tuple[Any, ...] = (),
    ) -> None:
        self.jobs = jobs
        self._conns: list[Connection] = []
        self._processes: list[Any] = []
        for index in range(jobs):
            parent, child = context.Pipe()
            process = context.Process(  # type: ignore[attr-defined]
                target=_serve, args=(child, index, initializer, initargs), daemon=True
            )
            process.start()
            child.close()
            self._conns.append(parent)
            self._processes.append(process)
        self._wake_r, self._wake_w = context.Pipe(duplex=False)
        self._lock = threading.Lock()
        self._queue: collections.deque[_Task] = collections.deque()
        self._pinned: list[collections.deque[_Task]] = [collections.deque() for _ in range(jobs)]
        self._busy: dict[int, _Task] = {}
        self._closing = False
        self._broken: str | None = None
        self._thread = threading.Thread(target=self._dispatch, name="cardflow-pool", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if kwargs:
            raise TypeError("LocalPool.submit takes positional arguments only")
        return self._put(None, fn, args)

    def submit_to(self, worker: int, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run ``fn(*args)`` on worker ``worker`` (after its earlier tasks)."""
        return self._put(worker, fn, args)

    def _put(self, worker: int | None, fn: Callable[..., T], args: tuple[Any, ...]) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(self._broken)
            if self._closing:
                raise RuntimeError("cannot submit to a pool that is shut down")
            (self._queue if worker is None else self._pinned[worker]).append(
                _Task(future, fn, args)
            )
        self._wake_w.send_bytes(b"")
        return future

    def _assign(self) -> None:
        """Hand queued tasks to idle workers (with the lock held)."""
        for index, conn in enumerate(self._conns):
            while index not in self._busy:
                queue = self._pinned[index] or self._queue
                if not queue:
                    break
                task = queue.popleft()
                if not task.future.set_running_or_notify_cancel():
                    continue
                try:
                    message = ForkingPickler.dumps((task.fn, task.args))
                except Exception as exc:  # the task does not pickle: never sent
                    task.future.set_exception(exc)
                    continue
                conn.send_bytes(message)
                self._busy[index] = task

    def _dispatch(self) -> None:
        """The parent's thread: assign tasks, take results back, until shut down."""
        while True:
            with self._lock:
                try:
                    self._assign()
                except OSError as exc:
                    self._fail(f"a worker process cannot take a task: {exc}")
                    return
                if self._closing and not self._busy:
                    return
                busy = {self._conns[i]: i for i in self._busy}
            for ready in wait([self._wake_r, *busy]):
                if ready is self._wake_r:
                    while self._wake_r.poll():
                        self._wake_r.recv_bytes()
                    continue
                index = busy[ready]  # type: ignore[index]
                try:
                    ok, value = self._conns[index].recv()
                except (EOFError, OSError):
                    with self._lock:
                        self._fail(f"worker process {index} ended abruptly")
                    return
                with self._lock:
                    task = self._busy.pop(index, None)
                if task is None:  # the pool was terminated meanwhile
                    continue
                future = task.future
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _fail(self, why: str) -> None:
        """A worker is gone: every task not done fails (with the lock held)."""
        self._broken = why
        pending = list(self._busy.values())
        pending += self._queue
        for pinned in self._pinned:
            pending += pinned
            pinned.clear()
        self._busy.clear()
        self._queue.clear()
        for task in pending:
            if not task.future.done():
                task.future.set_exception(BrokenProcessPool(why))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            if cancel_futures:
                for queue in (self._queue, *self._pinned):
                    for task in queue:
                        task.future.cancel()
                    queue.clear()
        self._wake_w.send_bytes(b"")
        if not wait:
            self._stop(0)
            return
        self._thread.join()
        self._stop(5)

    def _stop(self, timeout: float) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError, ValueError):
                conn.send(None)
        for process in self._processes:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join()
        for conn in (*self._conns, self._wake_r, self._wake_w):
            conn.close()

    def terminate(self) -> None:
        """Stop every worker at once (the parent failed or was interrupted)."""
        with self._lock:
            self._closing = True
            self._fail("the pool was terminated")
        for process in self._processes:
            process.terminate()
        self._wake_w.send_bytes(b"")
        self._thread.join()
        for process in self._processes:
            process.join()
        for conn in (*self._conns, self._wake_r, self._wake_w):
            conn.close()


@contextlib.contextmanager
def running(pool: LocalPool) -> Iterator[LocalPool]:
    """``pool`` until the block ends: shut down in order, or terminated on an error."""
    try:
        yield pool
    except BaseException:
        pool.terminate()
        raise
    pool.shutdown()
