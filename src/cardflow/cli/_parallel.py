"""Where ``cardflow fold`` runs: in this process, in ``--jobs`` workers, or on ``--dask``.

One pass in this process (``_fold.py``) is chosen whenever splitting would not pay:
``--jobs 1``, or inputs that give fewer than two parts for workers (small files,
stdin alone). Otherwise ``_jobs.py`` folds the parts on a local process pool, or on
the workers of a Dask cluster, which read the files by their absolute paths (they
must see the same files: a shared file system). Dask is imported only for ``--dask``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from typing import Any, BinaryIO

from ._console import Console
from ._inputs import Source, expand
from ._jobs import Gathered, cpu_count, gather, local_pool, plan

__all__ = ["ClusterError", "fold_in_parts"]


class ClusterError(Exception):
    """``--dask`` cannot be used: the extra is not installed, or the scheduler is unreachable."""


@contextlib.contextmanager
def _cluster(address: str) -> Iterator[tuple[Executor, int]]:
    """An executor on the Dask cluster at ``address``, and how many tasks it runs at once."""
    try:
        distributed: Any = importlib.import_module("distributed")  # untyped
    except ImportError:
        raise ClusterError(
            "--dask needs Dask's distributed scheduler: pip install 'cardflow[dask]'"
        ) from None
    try:
        client = distributed.Client(address, timeout="5s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        threads = sum(client.nthreads().values()) or 1
        # pure=False: a part is named by its path and range, not its bytes; never reuse
        # a result that the cluster may still hold from an earlier run.
        executor = client.get_executor(pure=False)
        with executor:
            yield executor, threads


def fold_in_parts(
    args: argparse.Namespace, console: Console, rejects: BinaryIO | None
) -> Gathered | None:
    """The fold on workers (``--jobs`` above 1 or ``--dask``), or None: fold in this process."""
    paths = list(args.paths)

    def on(
        executor: Callable[[], contextlib.AbstractContextManager[Executor]], jobs: int
    ) -> Gathered:
        return gather(
            paths,
            console,
            rejects,
            watch=frozenset(args.card) if args.card else None,
            progress=args.progress,
            executor=executor,
            jobs=jobs,
            part_size=args.part_size,
        )

    if args.dask is not None:
        with _cluster(args.dask) as (cluster, threads):
            return on(lambda: contextlib.nullcontext(cluster), threads)
    jobs = args.jobs if args.jobs is not None else cpu_count()
    if jobs < 2:
        return None
    sources = [s for s in expand(paths, console.stdin_fd) if isinstance(s, Source)]
    if sum(not part.local for part in plan(sources, jobs, args.part_size)) < 2:
        return None
    return on(lambda: local_pool(jobs), jobs)
