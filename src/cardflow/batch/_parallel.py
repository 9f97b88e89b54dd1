"""Where a fold of files runs: in this process, in worker processes, or on a Dask cluster.

One pass in this process (``_single.py``) is chosen whenever splitting would not pay:
one job, or inputs that give fewer than two parts for workers (small files, stdin
alone). Otherwise the fold runs in two phases (``_jobs.py``, ``_ranges.py``) on
a local process pool, or on the workers of a Dask cluster, which read the files by
their absolute paths (they must see the same files: a shared file system) and send
their states and report text back to this process. Dask is imported only for ``--dask``.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from .._errors import CardflowError
from ._inputs import Source
from ._parts import cpu_count, plan
from ._workers import Workers, local_pool

__all__ = ["ClusterError", "workers_for"]


class ClusterError(CardflowError):
    """``--dask`` cannot be used: the extra is not installed, or the scheduler is
    unreachable. Part of the one hierarchy, so a caller catching CardflowError sees it."""


@contextlib.contextmanager
def _cluster(address: str) -> Iterator[Workers]:
    """Workers on the Dask cluster at ``address``: as many tasks at once as it has threads."""
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
            yield Workers(executor, threads)


@contextlib.contextmanager
def workers_for(
    sources: list[Source], jobs: int | None, part_size: int | None, dask: str | None = None
) -> Iterator[Workers | None]:
    """The workers of ``jobs`` above 1 (default: one per core) or of the Dask cluster at
    ``dask``; None (fold in this process) when ``sources`` give fewer than two parts."""
    if dask is not None:
        with _cluster(dask) as cluster:
            yield cluster
        return
    jobs = jobs if jobs is not None else cpu_count()
    if jobs < 2 or sum(not part.local for part in plan(sources, jobs, part_size)) < 2:
        yield None
        return
    with local_pool(jobs) as pool:
        yield pool
