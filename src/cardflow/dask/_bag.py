"""The Bag fold: per-partition folds, a shuffle by card id in the state format, merges.

The graph, for ``N`` input partitions and ``P`` output partitions:

- ``fold-i``: partition ``i`` of bodies folded into states, which are encoded and put in
  ``P`` buckets by a stable hash of the card id (CRC-32: the same in every process,
  unlike ``hash``), beside the bodies and operations it rejected;
- ``bucket-i-j``: bucket ``j`` of ``fold-i`` alone, so that only it moves to the worker
  that merges ``j``;
- ``states-j``: every ``bucket-*-j`` decoded and merged, one state per card, sorted by
  card id: partition ``j`` of the result.

Merging is commutative, associative and idempotent, so neither the order the buckets
arrive in nor a task that Dask runs twice (after a worker is lost) changes a state.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple, cast

import dask.bag as db
import msgspec
from dask.base import tokenize
from dask.bytes import core as dask_bytes
from dask.delayed import delayed
from dask.highlevelgraph import HighLevelGraph

from .._codec import decode_state, encode_state
from .._decode import Reject
from .._state import CardState, Folder, merge

__all__ = ["DaskFold", "Rejected", "fold", "fold_with_rejects", "read_bodies"]

_BOM = b"\xef\xbb\xbf"
read_bytes: Callable[..., Any] = dask_bytes.read_bytes  # untyped in Dask


class Rejected(msgspec.Struct, frozen=True):
    """A body or operation that did not decode, and the file it came from (when known)."""

    source: str | None
    reject: Reject


class DaskFold(NamedTuple):
    """The fold of a Bag: ``states`` (``CardState``, one per card, partitioned by card id)
    and ``rejects`` (:class:`Rejected`). Compute them together to fold once."""

    states: db.Bag
    rejects: db.Bag


def read_bodies(
    urlpath: str | Sequence[str],
    *,
    blocksize: int | str | None = "64MiB",
    storage_options: dict[str, Any] | None = None,
    compression: str | None = "infer",
) -> db.Bag:
    """A Bag of ``(line, path)`` from JSON Lines files: anything Dask's ``read_bytes``
    (and so ``dask.bag.read_text``) reads: globs, ``s3://``, ``gs://``, compressed files.

    Files are cut in blocks of ``blocksize`` at line ends, one partition a block; a
    compressed file cannot be cut and is one partition. Each line must be one body
    (a webhook body or on-demand response); it stays bytes (no text decoding), and
    its path goes with it so that a rejected line says where it came from.
    """
    read = functools.partial(
        read_bytes,
        urlpath,
        delimiter=b"\n",
        sample=False,
        compression=compression,
        include_path=True,
        **(storage_options or {}),
    )
    try:
        _, blocks, paths = read(blocksize=blocksize)
    except ValueError as exc:  # "Cannot do chunked reads on compressed files"
        if "compressed" not in str(exc):
            raise
        _, blocks, paths = read(blocksize=None)
    lines = delayed(_lines, pure=True)
    parts = [lines(block, path) for path, file in zip(paths, blocks, strict=True) for block in file]
    bag: db.Bag = db.from_delayed(parts)  # type: ignore[no-untyped-call]
    return bag


def _lines(block: bytes, path: str) -> list[tuple[bytes, str]]:
    return [(line, path) for line in block.split(b"\n") if line.strip()]


def _bucket(card_id: str, partitions: int) -> int:
    return zlib.crc32(card_id.encode()) % partitions


def _fold_partition(
    items: Iterable[bytes | str | tuple[bytes | str, str]], partitions: int
) -> tuple[list[list[bytes]], list[Rejected]]:
    """Fold one partition of bodies: encoded states in buckets by card id, and rejects."""
    folder = Folder()
    rejected: list[Rejected] = []
    for item in items:
        source: str | None = None
        if isinstance(item, tuple):
            item, source = item
        if isinstance(item, str):
            item = item.encode()
        body = item.strip().removeprefix(_BOM)
        if not body:
            continue
        decoded = folder.ingest(body)  # one decoding for the usual body
        rejected += [Rejected(source, reject) for reject in decoded.rejects]
    buckets: list[list[bytes]] = [[] for _ in range(partitions)]
    for card_id, state in folder.finish().items():  # each summary released as it is frozen
        buckets[_bucket(card_id, partitions)].append(encode_state(state))
    return buckets, rejected


def _buckets_of(folded: tuple[list[list[bytes]], list[Rejected]], j: int) -> list[bytes]:
    return folded[0][j]


def _rejects_of(folded: tuple[list[list[bytes]], list[Rejected]]) -> list[Rejected]:
    return folded[1]


def _merge_buckets(buckets: list[list[bytes]]) -> list[CardState]:
    """One output partition: the states of its cards from every input partition, merged."""
    states: dict[str, CardState] = {}
    for bucket in buckets:
        for data in bucket:
            state = decode_state(data)
            old = states.get(state.card_id)
            states[state.card_id] = state if old is None else merge(old, state)
    return [states[card_id] for card_id in sorted(states)]


def fold_with_rejects(bag: db.Bag, *, npartitions: int | None = None) -> DaskFold:
    """Fold a Bag of bodies (bytes or str, or ``(body, path)`` as :func:`read_bodies`
    gives) into a Bag of states partitioned by card id, and a Bag of what was rejected.

    A bad body or operation never fails the computation: it is kept in ``rejects``
    (count it with ``rejects.count()``), and the good operations beside it are folded.
    ``npartitions`` is the number of output partitions (default: the input's).
    """
    inputs = bag.npartitions
    outputs = npartitions or inputs
    token = tokenize(bag, outputs)
    folded = f"cardflow-fold-{token}"
    bucket = f"cardflow-bucket-{token}"
    states = f"cardflow-states-{token}"
    rejects = f"cardflow-rejects-{token}"
    layer: dict[Any, Any] = {}
    for i in range(inputs):
        layer[(folded, i)] = (_fold_partition, (bag.name, i), outputs)
        layer[(rejects, i)] = (_rejects_of, (folded, i))
        for j in range(outputs):
            layer[(bucket, i, j)] = (_buckets_of, (folded, i), j)
    for j in range(outputs):
        layer[(states, j)] = (_merge_buckets, [(bucket, i, j) for i in range(inputs)])
    graph = HighLevelGraph.from_collections(states, layer, dependencies=[cast("Any", bag)])
    return DaskFold(
        states=db.Bag(graph, states, outputs),
        rejects=db.Bag(graph, rejects, inputs),
    )


def fold(bag: db.Bag, *, npartitions: int | None = None) -> db.Bag:
    """Fold a Bag of bodies into a Bag of :class:`~cardflow.CardState`, one per card,
    partitioned by card id (each partition sorted by card id).

    Rejected input is dropped here: use :func:`fold_with_rejects` to keep it.
    """
    return fold_with_rejects(bag, npartitions=npartitions).states
